"""Tool calling between LlamaIndex's tool objects and the chat endpoint's ``tools``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from llama_index.core.base.llms.types import ChatMessage, ChatResponse, MessageRole, ToolCallBlock
from llama_index.core.llms.llm import ToolSelection
from llama_index.core.llms.utils import parse_partial_json

if TYPE_CHECKING:
    from llama_index.core.tools.types import BaseTool

_TOOL_CHOICE_KEYWORDS = frozenset({"none", "auto", "required"})


def tool_specs(tools: Sequence[BaseTool]) -> list[dict[str, Any]]:
    """The OpenAI ``tools`` entries for LlamaIndex tools."""
    return [tool.metadata.to_openai_tool(skip_length_check=True) for tool in tools]


def resolve_tool_choice(
    tool_choice: str | dict[str, Any] | None, tool_required: bool
) -> str | dict[str, Any] | None:
    """``tool_choice`` as the endpoint takes it.

    A tool's name means "call that tool"; nothing given means "required" when
    the caller requires a tool and otherwise nothing at all, leaving the
    server's default ("auto") in place without sending a field some servers refuse.
    """
    if tool_choice is None:
        return "required" if tool_required else None
    if isinstance(tool_choice, str) and tool_choice not in _TOOL_CHOICE_KEYWORDS:
        return {"type": "function", "function": {"name": tool_choice}}
    return tool_choice


def build_history(
    user_msg: str | ChatMessage | None, chat_history: Sequence[ChatMessage] | None
) -> list[ChatMessage]:
    """The messages to send: a new list, so the caller's history is never mutated."""
    messages = list(chat_history or [])
    if isinstance(user_msg, str):
        user_msg = ChatMessage(role=MessageRole.USER, content=user_msg)
    if user_msg is not None:
        messages.append(user_msg)
    return messages


def tool_selections(response: ChatResponse, *, error_on_no_tool_call: bool) -> list[ToolSelection]:
    """The tool calls in ``response``, from ``ToolCallBlock``s or, for messages
    built by older code, ``additional_kwargs["tool_calls"]``.

    Agents call this on every streamed chunk, so arguments may be cut-off JSON:
    they are read leniently, and an unreadable fragment gives ``{}``.
    """
    blocks = [block for block in response.message.blocks if isinstance(block, ToolCallBlock)]
    if blocks:
        selections = [
            ToolSelection(
                tool_id=block.tool_call_id or "",
                tool_name=block.tool_name,
                tool_kwargs=_arguments(block.tool_kwargs),
            )
            for block in blocks
        ]
    else:
        selections = _legacy_selections(response.message.additional_kwargs.get("tool_calls"))
    if not selections and error_on_no_tool_call:
        raise ValueError("Expected at least one tool call, but the response has none.")
    return selections


def keep_first_tool_call(response: ChatResponse) -> ChatResponse:
    """Drop every tool call after the first, for callers that did not allow parallel calls."""
    seen_call = False
    kept = []
    for block in response.message.blocks:
        if isinstance(block, ToolCallBlock):
            if seen_call:
                continue
            seen_call = True
        kept.append(block)
    response.message.blocks = kept
    return response


def _arguments(value: Any) -> dict[str, Any]:
    if isinstance(value, Mapping):
        return dict(value)
    if not isinstance(value, str) or not value.strip():
        return {}
    try:
        parsed = parse_partial_json(value)
    except (ValueError, TypeError):
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _legacy_selections(value: Any) -> list[ToolSelection]:
    if not value or not isinstance(value, Sequence):
        return []
    selections = []
    for item in value:
        call = item.model_dump() if hasattr(item, "model_dump") else item
        if not isinstance(call, Mapping):
            continue
        function = call.get("function") or {}
        selections.append(
            ToolSelection(
                tool_id=str(call.get("id") or ""),
                tool_name=function.get("name") or "",
                tool_kwargs=_arguments(function.get("arguments")),
            )
        )
    return selections

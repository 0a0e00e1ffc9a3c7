"""LlamaIndex ``ChatMessage`` -> OpenAI-style message dicts, the shape the core sends."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from llama_index.core.base.llms.types import (
    AudioBlock,
    CachePoint,
    ChatMessage,
    ImageBlock,
    MessageRole,
    TextBlock,
    ThinkingBlock,
    ToolCallBlock,
)

from oaicompat import _json
from oaicompat.types import Message

# Roles other providers use for the assistant; OpenAI-compatible servers know only "assistant".
_ASSISTANT_ALIASES = frozenset({MessageRole.CHATBOT, MessageRole.MODEL})


def to_message_dicts(
    messages: Iterable[ChatMessage], *, send_reasoning: bool = False
) -> list[Message]:
    """Every message converted; see `to_message_dict`."""
    return [to_message_dict(message, send_reasoning=send_reasoning) for message in messages]


def to_message_dict(message: ChatMessage, *, send_reasoning: bool = False) -> Message:
    """One message as the chat endpoint takes it.

    Text-only content becomes a plain string (the form every server accepts);
    images and audio turn it into a list of parts. ``ToolCallBlock``s, or the
    legacy ``additional_kwargs["tool_calls"]``, become ``tool_calls``.
    ``ThinkingBlock``s are dropped unless ``send_reasoning`` is set, for
    servers that want the reasoning of earlier turns back (DeepSeek with tools).
    """
    role = MessageRole.ASSISTANT if message.role in _ASSISTANT_ALIASES else message.role
    texts: list[str] = []
    media_parts: list[dict[str, Any]] = []
    ordered_parts: list[dict[str, Any]] = []
    tool_calls: list[dict[str, Any]] = []
    reasoning: list[str] = []

    for block in message.blocks:
        if isinstance(block, TextBlock):
            texts.append(block.text)
            ordered_parts.append({"type": "text", "text": block.text})
        elif isinstance(block, ImageBlock):
            part = _image_part(block)
            media_parts.append(part)
            ordered_parts.append(part)
        elif isinstance(block, AudioBlock):
            part = _audio_part(block)
            media_parts.append(part)
            ordered_parts.append(part)
        elif isinstance(block, ToolCallBlock):
            tool_calls.append(tool_call_dict(block))
        elif isinstance(block, ThinkingBlock):
            if block.content:
                reasoning.append(block.content)
        elif isinstance(block, CachePoint):
            continue  # a provider-specific cache hint with no chat-completions equivalent
        else:
            raise ValueError(
                f"{type(block).__name__} cannot be sent to an OpenAI-compatible chat endpoint; "
                "convert it to text or an image first"
            )

    out: Message = {"role": str(role.value)}
    out["content"] = ordered_parts if media_parts else "\n".join(texts)

    if not tool_calls:
        tool_calls = _legacy_tool_calls(message.additional_kwargs.get("tool_calls"))
    if tool_calls:
        out["tool_calls"] = tool_calls
    if send_reasoning and reasoning and role == MessageRole.ASSISTANT:
        out["reasoning_content"] = "\n".join(reasoning)

    for key in ("tool_call_id", "name"):
        value = message.additional_kwargs.get(key)
        if value is not None:
            out[key] = value
    return out


def _image_part(block: ImageBlock) -> dict[str, Any]:
    url = str(block.url) if block.url is not None else block.inline_url()
    image_url: dict[str, Any] = {"url": url}
    if block.detail:
        image_url["detail"] = block.detail
    return {"type": "image_url", "image_url": image_url}


def _audio_part(block: AudioBlock) -> dict[str, Any]:
    data = block.resolve_audio(as_base64=True).read().decode("ascii")
    return {"type": "input_audio", "input_audio": {"data": data, "format": block.format}}


def tool_call_dict(block: ToolCallBlock) -> dict[str, Any]:
    """A ``ToolCallBlock`` as an assistant message's ``tool_calls`` entry."""
    return {
        "id": block.tool_call_id or "",
        "type": "function",
        "function": {
            "name": block.tool_name,
            "arguments": arguments_text(block.tool_kwargs) or "{}",
        },
    }


def arguments_text(arguments: Mapping[str, Any] | str) -> str:
    """Tool arguments as the JSON text the wire carries; text is kept as it is."""
    if isinstance(arguments, str):
        return arguments
    return _json.dumps(arguments).decode()


def _legacy_tool_calls(value: Any) -> list[dict[str, Any]]:
    """``additional_kwargs["tool_calls"]`` as older integrations stored it: dicts or
    OpenAI SDK objects."""
    if not value or not isinstance(value, Sequence):
        return []
    calls: list[dict[str, Any]] = []
    for item in value:
        call = item.model_dump() if hasattr(item, "model_dump") else item
        if not isinstance(call, Mapping):
            continue
        function = call.get("function") or {}
        arguments = function.get("arguments")
        calls.append(
            {
                "id": str(call.get("id") or ""),
                "type": "function",
                "function": {
                    "name": function.get("name") or "",
                    "arguments": arguments_text(arguments if arguments is not None else {}),
                },
            }
        )
    return calls

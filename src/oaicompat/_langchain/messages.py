"""LangChain messages in, OpenAI-style message dicts out."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    ChatMessage,
    FunctionMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.messages.block_translators.openai import convert_to_openai_data_block
from langchain_core.messages.content import is_data_content_block

from oaicompat.types import Message

__all__ = ["to_openai_message", "to_openai_messages"]

# Blocks that describe the assistant's own output (reasoning, tool calls in Anthropic or
# v1 shape). They are carried by dedicated fields, never as content parts.
_NON_CONTENT_BLOCKS = frozenset(
    {
        "reasoning",
        "thinking",
        "redacted_thinking",
        "reasoning_content",
        "tool_use",
        "tool_call",
        "tool_call_chunk",
        "invalid_tool_call",
        "server_tool_call",
        "server_tool_call_chunk",
        "server_tool_result",
        "function_call",
    }
)


def to_openai_messages(
    messages: Sequence[BaseMessage], *, send_reasoning: bool = False
) -> list[Message]:
    """The chat history as the ``messages`` list of a chat completions request.

    ``send_reasoning`` puts each assistant turn's reasoning back as
    ``reasoning_content``, which DeepSeek's thinking mode needs during a tool loop
    and most other servers ignore or refuse, hence off by default.
    """
    return [to_openai_message(message, send_reasoning=send_reasoning) for message in messages]


def to_openai_message(message: BaseMessage, *, send_reasoning: bool = False) -> Message:
    """One LangChain message as an OpenAI-style dict."""
    if isinstance(message, AIMessage):
        assistant = _assistant_message(message)
        if send_reasoning and (reasoning := _reasoning(message)):
            assistant["reasoning_content"] = reasoning
        return assistant
    if isinstance(message, ToolMessage):
        return {
            "role": "tool",
            "tool_call_id": message.tool_call_id,
            "content": _content(message.content),
        }
    if isinstance(message, HumanMessage):
        role = "user"
    elif isinstance(message, SystemMessage):
        role = message.additional_kwargs.get("__openai_role__", "system")
    elif isinstance(message, ChatMessage):
        role = message.role
    elif isinstance(message, FunctionMessage):
        return {"role": "function", "name": message.name, "content": _content(message.content)}
    else:
        raise TypeError(f"cannot send a message of type {type(message).__name__}")
    out: Message = {"role": role, "content": _content(message.content)}
    if message.name:
        out["name"] = message.name
    return out


def _assistant_message(message: AIMessage) -> Message:
    out: Message = {"role": "assistant", "content": _content(message.content)}
    if message.name:
        out["name"] = message.name
    tool_calls = [
        _tool_call(call["id"], call["name"], json.dumps(call["args"], ensure_ascii=False))
        for call in message.tool_calls
    ]
    # A malformed call the model made is still part of the conversation: replaying it
    # verbatim lets the tool message that answers it keep a matching id.
    tool_calls += [
        _tool_call(call.get("id"), call.get("name") or "", call.get("args") or "")
        for call in message.invalid_tool_calls
    ]
    if not tool_calls and isinstance(message.additional_kwargs.get("tool_calls"), list):
        tool_calls = [
            {key: value for key, value in call.items() if key in ("id", "type", "function")}
            for call in message.additional_kwargs["tool_calls"]
        ]
    if tool_calls:
        out["tool_calls"] = tool_calls
        if not out["content"]:
            out["content"] = None
    elif "function_call" in message.additional_kwargs:
        out["function_call"] = message.additional_kwargs["function_call"]
    return out


def _reasoning(message: AIMessage) -> str:
    """The turn's reasoning, from ``additional_kwargs`` or from reasoning content blocks."""
    kept = message.additional_kwargs.get("reasoning_content")
    if isinstance(kept, str):
        return kept
    return "".join(
        str(block.get("reasoning", ""))
        for block in message.content
        if isinstance(block, dict) and block.get("type") == "reasoning"
    )


def _tool_call(call_id: str | None, name: str, arguments: str) -> dict[str, Any]:
    return {
        "id": call_id or "",
        "type": "function",
        "function": {"name": name, "arguments": arguments},
    }


def _content(content: str | list[str | dict[str, Any]]) -> str | list[dict[str, Any]]:
    """Message content as a string when it is all text, else a list of OpenAI parts.

    A string is what every server accepts; many local servers reject a list of parts
    for system, assistant or tool messages, so text-only lists are joined.
    """
    if isinstance(content, str):
        return content
    parts = [part for part in (_part(item) for item in content) if part is not None]
    if all(part["type"] == "text" for part in parts):
        return "".join(part["text"] for part in parts)
    return parts


def _part(item: str | dict[str, Any]) -> dict[str, Any] | None:
    if isinstance(item, str):
        return {"type": "text", "text": item}
    kind = item.get("type")
    if kind == "text":
        return {"type": "text", "text": item.get("text", "")}
    if kind in _NON_CONTENT_BLOCKS:
        return None
    if kind == "image_url":
        image_url = item["image_url"]
        return {
            "type": "image_url",
            "image_url": {"url": image_url} if isinstance(image_url, str) else image_url,
        }
    if is_data_content_block(item):
        return convert_to_openai_data_block(item)
    if kind == "image" and isinstance(source := item.get("source"), dict):
        # Anthropic's image block, which LangChain users pass around too.
        if source.get("type") == "base64":
            url = f"data:{source.get('media_type')};base64,{source.get('data')}"
            return {"type": "image_url", "image_url": {"url": url}}
        if source.get("type") == "url":
            return {"type": "image_url", "image_url": {"url": source.get("url")}}
    if kind == "non_standard" and isinstance(value := item.get("value"), dict):
        return _part(value)
    # Anything else is already an OpenAI part (input_audio, file, ...) or a server's
    # own extension: pass it through rather than guess.
    return dict(item)

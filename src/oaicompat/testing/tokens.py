"""Deterministic token counting for the scripted server.

A token is a run of word characters or one punctuation character. The rule is
crude but it has the two properties tests rely on: the same text always
counts the same, streamed or not, and counting a prefix never gives more than
counting the whole, so running totals only grow.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from oaicompat._json import dumps

__all__ = ["count_prompt_tokens", "count_tokens", "message_text", "truncate_to_tokens"]

_TOKEN = re.compile(r"\w+|[^\w\s]")
_PER_MESSAGE = 4
"""Role and separators, as chat templates add them around every message."""
_PRIMING = 3
"""The assistant header the template appends after the last message."""


def count_tokens(text: str) -> int:
    return sum(1 for _ in _TOKEN.finditer(text))


def truncate_to_tokens(text: str, limit: int) -> str:
    """The longest prefix of ``text`` holding at most ``limit`` tokens."""
    if limit <= 0:
        return ""
    for count, match in enumerate(_TOKEN.finditer(text), start=1):
        if count == limit:
            return text[: match.end()]
    return text


def message_text(message: Mapping[str, Any]) -> str:
    """The text of a message's content: a string, or the text parts of a list."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [
            part.get("text", "")
            for part in content
            if isinstance(part, Mapping) and isinstance(part.get("text"), str)
        ]
        return "\n".join(parts)
    return ""


def _tool_call_text(message: Mapping[str, Any]) -> Iterable[str]:
    calls = message.get("tool_calls")
    if not isinstance(calls, list):
        return
    for call in calls:
        function = call.get("function") if isinstance(call, Mapping) else None
        if isinstance(function, Mapping):
            yield str(function.get("name", ""))
            yield str(function.get("arguments", ""))


def count_prompt_tokens(body: Mapping[str, Any]) -> int:
    """Prompt tokens for a chat request: every message, tool call and tool definition;
    for a legacy completion request, its ``prompt``."""
    prompt = body.get("prompt")
    if isinstance(prompt, str):
        # Sent to the model as is: no chat template adds tokens around it.
        return count_tokens(prompt)
    total = _PRIMING
    messages = body.get("messages")
    for message in messages if isinstance(messages, list) else ():
        if not isinstance(message, Mapping):
            continue
        total += _PER_MESSAGE + count_tokens(message_text(message))
        total += sum(count_tokens(text) for text in _tool_call_text(message))
    tools = body.get("tools")
    if tools:
        total += count_tokens(dumps(tools).decode("utf-8"))
    return total

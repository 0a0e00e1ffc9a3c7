"""oaicompat's normalized answers -> LlamaIndex ``ChatResponse``s, whole and streamed.

LlamaIndex reads usage from ``raw["usage"]`` (OpenAI's field names) and falls
back to ``additional_kwargs``; both get the normalized numbers so token
counters and tracing handlers see what the server reported, streams included.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from llama_index.core.base.llms.types import (
    ChatMessage,
    ChatResponse,
    ContentBlock,
    MessageRole,
    TextBlock,
    ThinkingBlock,
    ToolCallBlock,
)

from oaicompat import types as core
from oaicompat._llama_index.messages import tool_call_dict

PARSED_KEY = "parsed"
"""``ChatResponse.additional_kwargs`` key holding the core's structured-output value."""
THINKING_DELTA_KEY = "thinking_delta"
"""The key LlamaIndex agents read a chunk's reasoning delta from."""


def usage_kwargs(usage: core.Usage | None) -> dict[str, int]:
    """Token counts under the names LlamaIndex handlers look for, cached and
    reasoning counts only when the server gave them."""
    if usage is None:
        return {}
    counts = {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.total_tokens,
    }
    if usage.cached_input_tokens is not None:
        counts["cached_tokens"] = usage.cached_input_tokens
    if usage.reasoning_tokens is not None:
        counts["reasoning_tokens"] = usage.reasoning_tokens
    return counts


def raw_with_usage(raw: dict[str, Any], usage: core.Usage | None) -> dict[str, Any]:
    """The server's JSON with ``usage`` replaced by the normalized one (a copy:
    the core's ``raw`` stays as the server sent it)."""
    if usage is None:
        return dict(raw)
    return {**raw, "usage": usage.to_openai_dict()}


def to_chat_response(response: core.ChatResponse) -> ChatResponse:
    """A whole answer as LlamaIndex expects it."""
    reasoning_tokens = response.usage.reasoning_tokens if response.usage else None
    blocks = _blocks(
        response.content,
        response.reasoning,
        reasoning_tokens,
        [_final_tool_block(call) for call in response.tool_calls],
    )
    additional_kwargs: dict[str, Any] = dict(usage_kwargs(response.usage))
    if response.parsed is not None:
        additional_kwargs[PARSED_KEY] = response.parsed
    return ChatResponse(
        message=_assistant_message(blocks),
        raw=raw_with_usage(response.raw, response.usage),
        additional_kwargs=additional_kwargs,
    )


@dataclass(slots=True)
class _PartialCall:
    id: str | None = None
    name: str | None = None
    arguments: str = ""


class StreamFolder:
    """Turns a stream of `ChatChunk`s into LlamaIndex's cumulative ``ChatResponse``s.

    Each response carries the whole message so far plus the text ``delta``;
    tool-call arguments mid-stream are the partial JSON text received so far
    (readers parse it leniently). `finish` builds the last response from the
    core's final answer, so the last one LlamaIndex sees holds the exact text,
    parsed tool calls with their ids, reasoning and usage.
    """

    __slots__ = ("_calls", "_content", "_reasoning")

    def __init__(self) -> None:
        self._content = ""
        self._reasoning = ""
        self._calls: dict[int, _PartialCall] = {}

    def add(self, chunk: core.ChatChunk) -> ChatResponse | None:
        """The cumulative response after ``chunk``, or None when it carried no
        text, reasoning or tool call (role-only, finish and usage-only chunks)."""
        if not (chunk.content or chunk.reasoning or chunk.tool_call_deltas):
            return None
        self._content += chunk.content
        self._reasoning += chunk.reasoning
        for delta in chunk.tool_call_deltas:
            call = self._calls.get(delta.index)
            if call is None:
                call = self._calls[delta.index] = _PartialCall()
            # Servers may repeat id and name on every delta: keep the first, never concatenate.
            if delta.id and not call.id:
                call.id = delta.id
            if delta.name and not call.name:
                call.name = delta.name
            call.arguments += delta.arguments

        tool_blocks: list[ContentBlock] = [
            ToolCallBlock(
                tool_call_id=call.id, tool_name=call.name or "", tool_kwargs=call.arguments
            )
            for _, call in sorted(self._calls.items())
        ]
        additional_kwargs: dict[str, Any] = dict(usage_kwargs(chunk.usage))
        if chunk.reasoning:
            additional_kwargs[THINKING_DELTA_KEY] = chunk.reasoning
        return ChatResponse(
            message=_assistant_message(
                _blocks(self._content, self._reasoning or None, None, tool_blocks)
            ),
            delta=chunk.content,
            raw=raw_with_usage(chunk.raw, chunk.usage),
            additional_kwargs=additional_kwargs,
        )

    def finish(self, final: core.ChatResponse) -> ChatResponse:
        """The last response of the stream: the whole answer, with an empty delta."""
        response = to_chat_response(final)
        response.delta = ""
        return response


def _assistant_message(blocks: list[ContentBlock]) -> ChatMessage:
    """An assistant message; its tool calls are also mirrored, OpenAI-style, in
    ``additional_kwargs["tool_calls"]``, which parts of LlamaIndex (its streaming
    structured-output program) still look for before reading the blocks."""
    calls = [tool_call_dict(block) for block in blocks if isinstance(block, ToolCallBlock)]
    return ChatMessage(
        role=MessageRole.ASSISTANT,
        blocks=blocks,
        additional_kwargs={"tool_calls": calls} if calls else {},
    )


def _blocks(
    content: str,
    reasoning: str | None,
    reasoning_tokens: int | None,
    tool_blocks: list[ContentBlock],
) -> list[ContentBlock]:
    blocks: list[ContentBlock] = []
    if reasoning:
        blocks.append(ThinkingBlock(content=reasoning, num_tokens=reasoning_tokens))
    # Always a TextBlock, even empty, so ``message.content`` is "" rather than None.
    blocks.append(TextBlock(text=content))
    blocks.extend(tool_blocks)
    return blocks


def _final_tool_block(call: core.ToolCall) -> ToolCallBlock:
    # Arguments that did not parse stay as text so a lenient reader can still try.
    kwargs: dict[str, Any] | str = call.arguments if call.error is None else call.arguments_text
    return ToolCallBlock(tool_call_id=call.id, tool_name=call.name, tool_kwargs=kwargs)

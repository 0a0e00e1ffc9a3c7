"""The normalized shapes every server's answer is turned into.

Plain slotted dataclasses rather than pydantic models: a stream builds one
`ChatChunk` per server event, and validation there would be pure overhead.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Message = dict[str, Any]
"""An OpenAI-style chat message: ``{"role": ..., "content": ...}`` and friends."""

JSONObject = dict[str, Any]


@dataclass(slots=True)
class Usage:
    """Token counts, normalized across servers.

    ``input_tokens`` counts every prompt token, cached ones included;
    ``output_tokens`` counts every generated token, reasoning included.
    ``cached_input_tokens`` and ``reasoning_tokens`` are None when the server
    did not say, which is different from saying zero.
    """

    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    cached_input_tokens: int | None = None
    reasoning_tokens: int | None = None
    raw: JSONObject | None = field(default=None, repr=False, compare=False)

    def to_openai_dict(self) -> JSONObject:
        """The usage in OpenAI's field names, for code that expects that shape."""
        out: JSONObject = {
            "prompt_tokens": self.input_tokens,
            "completion_tokens": self.output_tokens,
            "total_tokens": self.total_tokens,
        }
        if self.cached_input_tokens is not None:
            out["prompt_tokens_details"] = {"cached_tokens": self.cached_input_tokens}
        if self.reasoning_tokens is not None:
            out["completion_tokens_details"] = {"reasoning_tokens": self.reasoning_tokens}
        return out


@dataclass(slots=True)
class ToolCall:
    """A complete tool call. ``arguments`` is the parsed JSON object.

    When the server's argument text is not a JSON object, ``arguments`` is
    ``{}``, ``arguments_text`` keeps what was sent and ``error`` says why:
    nothing is dropped and nothing raises.
    """

    id: str
    name: str
    arguments: JSONObject
    arguments_text: str = ""
    error: str | None = None

    def to_openai_dict(self) -> JSONObject:
        """The call as an assistant message's ``tool_calls`` entry."""
        return {
            "id": self.id,
            "type": "function",
            "function": {"name": self.name, "arguments": self.arguments_text or "{}"},
        }


@dataclass(slots=True)
class ToolCallDelta:
    """One streamed fragment of a tool call; fragments with one ``index`` make one call."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""


@dataclass(slots=True)
class ChatChunk:
    """One streamed event: the deltas it carried, already normalized."""

    content: str = ""
    reasoning: str = ""
    tool_call_deltas: list[ToolCallDelta] = field(default_factory=list)
    finish_reason: str | None = None
    usage: Usage | None = None
    raw: JSONObject = field(default_factory=dict, repr=False, compare=False)


@dataclass(slots=True)
class ChatResponse:
    """A whole answer, the same shape whether it came streamed or not."""

    content: str = ""
    reasoning: str | None = None
    tool_calls: list[ToolCall] = field(default_factory=list)
    finish_reason: str | None = None
    usage: Usage | None = None
    model: str | None = None
    id: str | None = None
    system_fingerprint: str | None = None
    raw: JSONObject = field(default_factory=dict, repr=False, compare=False)
    latency_s: float | None = field(default=None, compare=False)
    time_to_first_token_s: float | None = field(default=None, compare=False)
    parsed: Any = field(default=None, compare=False)
    """The structured-output value, when the request asked for one."""

    def to_message(self) -> Message:
        """The assistant message to append to the history for the next turn."""
        message: Message = {"role": "assistant", "content": self.content}
        if self.tool_calls:
            message["tool_calls"] = [call.to_openai_dict() for call in self.tool_calls]
        return message

    def _repr_markdown_(self) -> str:
        """How Jupyter shows an answer: content, folded reasoning, tool calls, usage."""
        from oaicompat.display import response_markdown  # only notebooks pay for it

        return response_markdown(self)

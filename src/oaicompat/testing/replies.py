"""What the scripted server answers: reply objects and ready-made faults.

A :class:`Reply` describes one chat completion *and how it travels*. The same
object answers a streaming and a non-streaming request; the request decides.
Content fields (``text``, ``reasoning``, ``tool_calls``, ``finish_reason``,
``usage``) say what the model produced. Wire fields (delays, drops, framing,
malformed or error events, gzip) say what goes wrong on the way, so one reply
can be "a correct answer whose stream is cut after three events".

:class:`RawReply` sends an arbitrary status, body and headers (error pages,
``200`` with an error object, a hand-written SSE body). :class:`Disconnect`
resets the TCP connection before any byte of the response. The functions at
the end build the faults real servers produce, in their own wording.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import KW_ONLY, dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

if TYPE_CHECKING:
    from oaicompat.testing.server import RecordedRequest

__all__ = [
    "Disconnect",
    "RawReply",
    "Reply",
    "ReplyFactory",
    "ReplyLike",
    "ScriptedToolCall",
    "UsageStyle",
    "context_length_exceeded",
    "error_in_200",
    "html_error",
    "invalid_api_key",
    "model_not_found",
    "rate_limited",
    "server_error",
    "service_unavailable",
    "validation_error",
]

UsageStyle = Literal["openai", "llamacpp", "groq", "running", "none"]
"""Where token counts go.

- ``openai``: ``usage`` with ``prompt_tokens_details`` / ``completion_tokens_details``;
  in a stream, one extra chunk with empty ``choices`` when the request sets
  ``stream_options.include_usage`` (and ``"usage": null`` on the other chunks).
- ``llamacpp``: ``usage`` plus a ``timings`` object (``prompt_n``, ``cache_n``,
  ``predicted_n``); a stream carries ``timings`` on its last choice chunk always,
  and the usage chunk only when asked for.
- ``groq``: in a stream, usage under ``x_groq.usage`` on the last chunk, always.
- ``running``: in a stream, usage with running totals on every chunk.
- ``none``: no token counts anywhere.
"""

ReasoningField = Literal["reasoning_content", "reasoning", "think"]
ToolCallStyle = Literal["fragments", "whole"]
ToolCallOrder = Literal["normal", "duplicate", "out_of_order"]


@dataclass(frozen=True)
class ScriptedToolCall:
    """One tool call the scripted model makes.

    ``arguments`` is a dict (sent as compact JSON) or a string sent exactly as
    given, which is how to script malformed arguments. ``id`` defaults to a
    fresh ``call_...`` id.
    """

    name: str
    arguments: Mapping[str, Any] | str = field(default_factory=dict)
    id: str | None = None


@dataclass(frozen=True)
class Reply:
    """One scripted chat completion, streamed or not as the request asks.

    Content:
        text: the answer text.
        reasoning: reasoning text, sent in ``reasoning_field``: ``"reasoning_content"``
            (DeepSeek, llama.cpp, vLLM), ``"reasoning"`` (Ollama, OpenRouter) or
            ``"think"`` (``<think>...</think>`` ahead of the text in ``content``).
        tool_calls: calls to send, in order; several means parallel calls.
        finish_reason: defaults to ``"tool_calls"`` when there are tool calls, else ``"stop"``.
        usage: a :data:`UsageStyle`.
        prompt_tokens / completion_tokens: override the server's own deterministic count.
        cached_tokens: how many prompt tokens to report as served from cache.
        model: the model name in the answer; defaults to the requested one.
        extra: fields merged into the response object and into every stream chunk.

    Streaming shape:
        chunk_size: characters per content/reasoning/argument chunk; ``None``
            sends one word (with its leading space) per chunk.
        tool_call_style: ``"fragments"`` (name first, then argument pieces) or
            ``"whole"`` (every call complete in one chunk, as Ollama does).
        tool_call_ids / tool_call_index: send ``id`` / ``index`` on tool-call deltas.
        tool_call_order: ``"duplicate"`` gives every call index 0 (ids tell
            them apart); ``"out_of_order"`` sends the last call first.

    Faults on the wire:
        first_byte_delay: seconds before the status line.
        chunk_delay: seconds before every stream event after the first.
        drop_after: close the socket after this many stream events, without the
            terminating HTTP chunk; for a non-streamed answer, after half the body.
        error_after: after this many events, send ``data: {"error": error}``.
        malformed_at: insert one event whose JSON is cut short before event N.
        keepalive: send a ``: keep-alive`` comment before every Nth event (0: never).
        line_ending: ``"\\n"``, ``"\\r\\n"`` or ``"\\r"`` to end SSE lines.
        done: send ``data: [DONE]`` at the end.
        gzip: ``Content-Encoding: gzip`` (streams are compressed event by event).
        status / headers: the HTTP status (200 unless a test wants oddities) and extra headers.
    """

    text: str = ""
    _: KW_ONLY
    reasoning: str | None = None
    reasoning_field: ReasoningField = "reasoning_content"
    tool_calls: Sequence[ScriptedToolCall] = ()
    finish_reason: str | None = None
    usage: UsageStyle = "openai"
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cached_tokens: int = 0
    model: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    chunk_size: int | None = None
    tool_call_style: ToolCallStyle = "fragments"
    tool_call_ids: bool = True
    tool_call_index: bool = True
    tool_call_order: ToolCallOrder = "normal"

    first_byte_delay: float = 0.0
    chunk_delay: float = 0.0
    drop_after: int | None = None
    error_after: int | None = None
    error: Mapping[str, Any] = field(
        default_factory=lambda: {
            "message": "The server had an error while processing your request.",
            "type": "server_error",
            "code": 500,
        }
    )
    malformed_at: int | None = None
    keepalive: int = 0
    line_ending: Literal["\n", "\r\n", "\r"] = "\n"
    done: bool = True
    gzip: bool = False
    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def resolved_finish_reason(self) -> str:
        if self.finish_reason is not None:
            return self.finish_reason
        return "tool_calls" if self.tool_calls else "stop"


@dataclass(frozen=True)
class RawReply:
    """Any HTTP answer, sent as given.

    ``body`` as a dict or list is sent as JSON, a string or bytes as is.
    ``content_type`` defaults from the body's kind. With ``gzip`` the body is
    compressed and ``Content-Encoding: gzip`` is set.
    """

    status: int = 200
    body: Any = b""
    _: KW_ONLY
    headers: Mapping[str, str] = field(default_factory=dict)
    content_type: str | None = None
    gzip: bool = False
    first_byte_delay: float = 0.0


@dataclass(frozen=True, kw_only=True)
class Disconnect:
    """Reset the connection (TCP RST) before sending any byte, after ``delay`` seconds."""

    delay: float = 0.0


ReplyLike: TypeAlias = "Reply | RawReply | Disconnect"
"""Anything the server can answer a request with."""
ReplyFactory: TypeAlias = "Callable[[RecordedRequest], Reply | RawReply | Disconnect]"
"""A callable that builds the answer from the request, e.g. to echo a field back."""


def _error_body(message: str, type_: str, code: str | int | None, param: str | None = None) -> Any:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def rate_limited(
    retry_after: float | None = 1.0,
    *,
    retry_after_ms: int | None = None,
    message: str | None = None,
) -> RawReply:
    """429 in OpenAI's wording, with ``Retry-After`` (seconds) and/or ``retry-after-ms``."""
    headers: dict[str, str] = {}
    if retry_after is not None:
        headers["Retry-After"] = f"{retry_after:g}"
    if retry_after_ms is not None:
        headers["retry-after-ms"] = str(retry_after_ms)
    text = message or "Rate limit reached for requests. Please try again later."
    return RawReply(
        status=429,
        body=_error_body(text, "requests", "rate_limit_exceeded"),
        headers=headers,
    )


def invalid_api_key() -> RawReply:
    """401 as OpenAI sends it for a wrong key."""
    return RawReply(
        status=401,
        body=_error_body(
            "Incorrect API key provided. You can find your API key in your account settings.",
            "invalid_request_error",
            "invalid_api_key",
        ),
    )


def model_not_found(model: str = "missing-model") -> RawReply:
    """404 for an unknown model, in OpenAI's wording."""
    return RawReply(
        status=404,
        body=_error_body(
            f"The model `{model}` does not exist or you do not have access to it.",
            "invalid_request_error",
            "model_not_found",
        ),
    )


def context_length_exceeded(limit: int = 4096, requested: int = 5000) -> RawReply:
    """400 for an overlong prompt, in OpenAI's wording."""
    message = (
        f"This model's maximum context length is {limit} tokens. However, your messages "
        f"resulted in {requested} tokens. Please reduce the length of the messages."
    )
    return RawReply(
        status=400,
        body=_error_body(message, "invalid_request_error", "context_length_exceeded", "messages"),
    )


def validation_error(field_name: str = "messages") -> RawReply:
    """422 with FastAPI's ``detail`` list, as vLLM and llama-cpp-python send."""
    return RawReply(
        status=422,
        body={
            "detail": [
                {"type": "missing", "loc": ["body", field_name], "msg": "Field required"},
            ]
        },
    )


def server_error(status: int = 500, message: str = "Internal server error") -> RawReply:
    """A 5xx with an OpenAI-style error object."""
    return RawReply(status=status, body=_error_body(message, "server_error", None))


def service_unavailable(retry_after: float | None = None) -> RawReply:
    """503 ``Service Unavailable`` (a model still loading), optionally with ``Retry-After``."""
    headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else {}
    return RawReply(
        status=503,
        body=_error_body("Loading model", "unavailable_error", 503),
        headers=headers,
    )


def html_error(status: int = 502, title: str = "502 Bad Gateway") -> RawReply:
    """An HTML error page, as a reverse proxy (nginx) sends it."""
    page = (
        f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n"
        f"<center><h1>{title}</h1></center>\r\n<hr><center>nginx</center>\r\n"
        "</body>\r\n</html>\r\n"
    )
    return RawReply(status=status, body=page, content_type="text/html")


def error_in_200(message: str = "upstream model failed", code: int = 500) -> RawReply:
    """A ``200 OK`` whose JSON body is an error object instead of a completion."""
    return RawReply(status=200, body=_error_body(message, "server_error", code))

"""The chat-completions protocol without I/O: request bodies in, responses and chunks out.

``build_body`` writes the request a profile's server accepts
(``build_completion_body`` the same for the legacy ``/completions`` endpoint);
``parse_response`` turns a completion into a ``ChatResponse``; ``StreamParser``
turns the bytes of a stream into ``ChatChunk`` objects and, at the end, the
same ``ChatResponse`` a non-streamed call would have produced. Legacy text
completions (``choices[0].text``) are read by both, streamed or not.

The stream path runs once per token, so it works on plain dicts from the JSON
parser, touches each field once and builds no intermediate objects beyond the
chunk it returns.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from oaicompat._json import loads
from oaicompat.errors import (
    ResponseParseError,
    StreamError,
    error_from_payload,
    extract_server_message,
)
from oaicompat.profiles import ServerProfile
from oaicompat.sse import DEFAULT_MAX_EVENT_BYTES, SSEDecoder
from oaicompat.think import ThinkTagSplitter
from oaicompat.tool_calls import ToolCallAccumulator, parse_tool_calls
from oaicompat.types import ChatChunk, ChatResponse, JSONObject, ToolCallDelta, Usage
from oaicompat.usage import usage_from_payload

__all__ = [
    "StreamParser",
    "build_body",
    "build_completion_body",
    "normalize_finish_reason",
    "parse_response",
    "split_content",
]

_FINISH_REASONS = {
    "eos_token": "stop",
    "eos": "stop",
    "stop_sequence": "stop",
    "end_turn": "stop",
    "model_length": "length",
    "max_tokens": "length",
}
_DONE = b"[DONE]"


def normalize_finish_reason(value: Any) -> str | None:
    """OpenAI's words for why generation stopped; unknown values are kept."""
    if value is None or value == "":
        return None
    text = value if isinstance(value, str) else str(value)
    return _FINISH_REASONS.get(text, text)


def _tool(tool: Mapping[str, Any]) -> Mapping[str, Any]:
    """Accept the bare ``{"name", "parameters"}`` shorthand beside the OpenAI tool shape."""
    if "type" in tool or "function" in tool:
        return tool
    return {"type": "function", "function": dict(tool)}


def _tool_choice(choice: Any) -> Any:
    if isinstance(choice, str) and choice not in ("auto", "none", "required"):
        return {"type": "function", "function": {"name": choice}}
    return choice


def build_body(
    *,
    model: str,
    messages: Sequence[Mapping[str, Any]],
    profile: ServerProfile,
    defaults: Mapping[str, Any],
    stream: bool,
    tools: Sequence[Mapping[str, Any]] | None = None,
    tool_choice: Any = None,
    parallel_tool_calls: bool | None = None,
    response_format: Mapping[str, Any] | None = None,
    params: Mapping[str, Any],
) -> JSONObject:
    """The JSON body for one request. Options left as None are not sent at all."""
    body: JSONObject = {"model": model, "messages": list(messages)}
    _merge_params(body, defaults, params, preferred=profile.max_tokens_param)
    if tools:
        body["tools"] = [_tool(tool) for tool in tools]
    if tool_choice is not None:
        body["tool_choice"] = _tool_choice(tool_choice)
    if parallel_tool_calls is not None and profile.supports_parallel_tool_calls:
        body["parallel_tool_calls"] = parallel_tool_calls
    if response_format is not None:
        body["response_format"] = response_format
    return _conform_stream(body, profile, stream)


def build_completion_body(
    *,
    model: str,
    prompt: str,
    profile: ServerProfile,
    defaults: Mapping[str, Any],
    stream: bool,
    params: Mapping[str, Any],
) -> JSONObject:
    """The JSON body for one request to the legacy text ``/completions`` endpoint.

    Merged like `build_body`'s, except that the output limit is spelled
    ``max_tokens``: the legacy endpoint never took ``max_completion_tokens``
    (the models that need it are chat-only), so a profile's chat spelling is
    used only once the server is known to refuse ``max_tokens``.
    """
    if not isinstance(prompt, str):
        raise TypeError(f"prompt must be a string, got {type(prompt).__name__}")
    body: JSONObject = {"model": model, "prompt": prompt}
    refused = "max_tokens" in profile.unsupported_params
    _merge_params(
        body, defaults, params, preferred=profile.max_tokens_param if refused else "max_tokens"
    )
    return _conform_stream(body, profile, stream)


def _merge_params(
    body: JSONObject,
    defaults: Mapping[str, Any],
    params: Mapping[str, Any],
    *,
    preferred: str,
) -> None:
    """Defaults, then per-call params, into ``body``; None unsets a key."""
    other = "max_completion_tokens" if preferred == "max_tokens" else "max_tokens"
    for source in (defaults, params):
        for key, value in source.items():
            if key == other:
                # Renamed before merging, so a per-call limit beats a default
                # whichever of the two names each was given under.
                if preferred in source:
                    continue
                key = preferred
            if value is None:
                body.pop(key, None)
            else:
                body[key] = value


def _conform_stream(body: JSONObject, profile: ServerProfile, stream: bool) -> JSONObject:
    """``body`` with the stream flags the profile wants and without refused params."""
    if stream:
        body["stream"] = True
        if profile.stream_usage and profile.supports_stream_options:
            options = body.get("stream_options")
            if not isinstance(options, Mapping) or "include_usage" not in options:
                body["stream_options"] = {**(options or {}), "include_usage": True}
    else:
        body.pop("stream", None)
        body.pop("stream_options", None)
    for param in profile.unsupported_params:
        body.pop(param, None)
    return body


def split_content(content: Any) -> tuple[str, str | None]:
    """``(text, reasoning)`` from a content field: a string, None, or a list of parts.

    ``thinking`` parts (Mistral's Magistral) are reasoning; every other part
    with text is answer text.
    """
    if content is None:
        return "", None
    if isinstance(content, str):
        return content, None
    if not isinstance(content, list):
        return str(content), None
    texts: list[str] = []
    thoughts: list[str] = []
    for part in content:
        if isinstance(part, str):
            texts.append(part)
        elif isinstance(part, Mapping):
            if part.get("type") == "thinking":
                thoughts.append(split_content(part.get("thinking"))[0])
            else:
                text = part.get("text")
                if isinstance(text, str):
                    texts.append(text)
    return "".join(texts), ("".join(thoughts) if thoughts else None)


def _reasoning_of(message: Mapping[str, Any], profile: ServerProfile) -> str | None:
    for field in profile.reasoning_fields:
        value = message.get(field)
        if isinstance(value, str) and value:
            return value
    return None


def _join_reasoning(*parts: str | None) -> str | None:
    present = [part for part in parts if part]
    return "".join(present) if present else None


def _status_of(error: Any) -> int:
    code = error.get("code") if isinstance(error, Mapping) else None
    if isinstance(code, str) and code.isdecimal() and len(code) == 3:
        code = int(code)
    return code if isinstance(code, int) and 400 <= code < 600 else 500


def parse_response(data: Any, profile: ServerProfile) -> ChatResponse:
    """A ``ChatResponse`` from a decoded chat-completion body."""
    if not isinstance(data, Mapping):
        raise ResponseParseError(
            f"expected a chat completion object, got {type(data).__name__}", body=data
        )
    choices = data.get("choices")
    if not choices:
        if data.get("error"):
            raise error_from_payload(_status_of(data["error"]), data)
        raise ResponseParseError("the response has no choices; is this a chat endpoint?", body=data)
    choice = choices[0] if isinstance(choices, list) else None
    if not isinstance(choice, Mapping):
        raise ResponseParseError("the first choice is not an object", body=data)
    message = choice.get("message")
    if not isinstance(message, Mapping):
        # A legacy completions answer puts the text on the choice itself.
        message = {"content": choice.get("text")} if "text" in choice else {}
    content, part_reasoning = split_content(message.get("content"))
    reasoning = _join_reasoning(_reasoning_of(message, profile), part_reasoning)
    if profile.think_tags and content:
        splitter = ThinkTagSplitter()
        tag_reasoning, content = splitter.feed(content)
        tail_reasoning, tail_content = splitter.flush()
        content += tail_content
        reasoning = _join_reasoning(reasoning, tag_reasoning + tail_reasoning)
    return ChatResponse(
        content=content,
        reasoning=reasoning,
        tool_calls=parse_tool_calls(message),
        finish_reason=normalize_finish_reason(choice.get("finish_reason")),
        usage=usage_from_payload(data),
        model=_str_or_none(data.get("model")),
        id=_str_or_none(data.get("id")),
        system_fingerprint=_str_or_none(data.get("system_fingerprint")),
        raw=dict(data),
    )


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None if value is None else str(value)


class StreamParser:
    """Bytes of an SSE chat (or legacy text-completion) stream in; chunks out; the whole
    response at the end."""

    def __init__(
        self, profile: ServerProfile, *, max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES
    ) -> None:
        self.profile = profile
        self.done = False
        self._decoder = SSEDecoder(max_event_bytes=max_event_bytes)
        self._reasoning_fields = profile.reasoning_fields
        self._splitter = ThinkTagSplitter() if profile.think_tags else None
        self._tools = ToolCallAccumulator()
        self._content: list[str] = []
        self._reasoning: list[str] = []
        self._finish_reason: str | None = None
        self._usage: Usage | None = None
        self._id: str | None = None
        self._model: str | None = None
        self._fingerprint: str | None = None
        self._created: Any = None
        self._started = False
        self._text_completion = False
        self._pending_error: StreamError | None = None

    def feed(self, data: bytes) -> list[ChatChunk]:
        """Decode ``data`` and return the chunks it completed."""
        if self._pending_error is not None:
            raise self._pending_error
        try:
            events = self._decoder.feed(data)
        except StreamError as exc:
            exc.partial = self.partial()
            raise
        chunks: list[ChatChunk] = []
        for event in events:
            try:
                chunk = self._event(event)
            except StreamError as exc:
                if not chunks:
                    raise
                # Hand over what arrived before the failure first; the caller sees
                # the error on its next call, as it would had they come apart.
                self._pending_error = exc
                break
            if chunk is not None:
                chunks.append(chunk)
        return chunks

    def finish(self) -> ChatResponse:
        """End of stream: flush pending text and return the whole response."""
        if self._pending_error is not None:
            raise self._pending_error
        for event in self._decoder.close():
            self._event(event)
        if self._splitter is not None:
            reasoning, content = self._splitter.flush()
            if reasoning:
                self._reasoning.append(reasoning)
            if content:
                self._content.append(content)
        return self.partial()

    def partial(self) -> ChatResponse:
        """Everything received so far, as a response."""
        content = "".join(self._content)
        reasoning = "".join(self._reasoning) or None
        tool_calls = self._tools.calls()
        choice: JSONObject = {"index": 0}
        if self._text_completion:
            choice["text"] = content
        else:
            message: JSONObject = {"role": "assistant", "content": content}
            if reasoning is not None:
                message["reasoning_content"] = reasoning
            if tool_calls:
                message["tool_calls"] = [call.to_openai_dict() for call in tool_calls]
            choice["message"] = message
        choice["finish_reason"] = self._finish_reason
        raw: JSONObject = {
            "id": self._id,
            "object": "text_completion" if self._text_completion else "chat.completion",
            "created": self._created,
            "model": self._model,
            "choices": [choice],
        }
        if self._fingerprint is not None:
            raw["system_fingerprint"] = self._fingerprint
        if self._usage is not None:
            raw["usage"] = self._usage.raw
        return ChatResponse(
            content=content,
            reasoning=reasoning,
            tool_calls=tool_calls,
            finish_reason=self._finish_reason,
            usage=self._usage,
            model=self._model,
            id=self._id,
            system_fingerprint=self._fingerprint,
            raw=raw,
        )

    def _event(self, event: tuple[bytes | None, bytes]) -> ChatChunk | None:
        name, data = event
        if data == _DONE:
            self.done = True
            return None
        try:
            payload = loads(data)
        except ValueError as exc:
            raise StreamError(
                f"the server sent a stream event that is not valid JSON: {data[:200]!r}",
                partial=self.partial(),
                payload=data,
            ) from exc
        if not isinstance(payload, dict):
            raise StreamError(
                f"the server sent a stream event that is not a JSON object: {data[:200]!r}",
                partial=self.partial(),
                payload=payload,
            )
        # OpenRouter reports a mid-stream failure as a chunk that has both an
        # `error` object and a choice with finish_reason "error".
        if name == b"error" or payload.get("error"):
            message = extract_server_message(payload) or "the server reported an error"
            raise StreamError(
                f"the server reported an error mid-stream: {message}",
                partial=self.partial(),
                payload=payload,
            )
        return self._chunk(payload)

    def _chunk(self, payload: dict[str, Any]) -> ChatChunk:
        if not self._started:
            self._start(payload)
        usage = None
        if (
            payload.get("usage") is not None
            or "x_groq" in payload
            or "timings" in payload
            or "eval_count" in payload
            or "prompt_eval_count" in payload
        ):
            usage = usage_from_payload(payload)
            if usage is not None:
                self._usage = usage
        choices = payload.get("choices")
        if not choices or not isinstance(choices, list) or not isinstance(choices[0], dict):
            return ChatChunk(usage=usage, raw=payload)
        choice = choices[0]
        delta = choice.get("delta") or choice.get("message")
        if not isinstance(delta, dict):
            # Reached by chat finish chunks (empty delta) and by every chunk of a
            # legacy /completions stream, which puts its text on the choice itself.
            text = choice.get("text")
            if isinstance(text, str):
                self._text_completion = True
                delta = {"content": text}
            else:
                delta = {}
        content = delta.get("content")
        reasoning = ""
        tool_deltas: list[ToolCallDelta] = []
        if content is not None and not isinstance(content, str):
            content, part_reasoning = split_content(content)
            reasoning = part_reasoning or ""
        # Text-only deltas ({"content"} or {"role", "content"}) are the common case:
        # look for reasoning and tool calls only when the delta has other keys.
        if len(delta) > ("content" in delta) + ("role" in delta):
            for field in self._reasoning_fields:
                value = delta.get(field)
                if value:
                    reasoning = value + reasoning if isinstance(value, str) else reasoning
                    break
            if "tool_calls" in delta or "function_call" in delta:
                tool_deltas = self._tools.add_delta(delta)
        if content and self._splitter is not None:
            tag_reasoning, content = self._splitter.feed(content)
            reasoning += tag_reasoning
        if content:
            self._content.append(content)
        if reasoning:
            self._reasoning.append(reasoning)
        finish_reason = choice.get("finish_reason")
        if finish_reason is not None:
            finish_reason = normalize_finish_reason(finish_reason)
            if finish_reason is not None:
                self._finish_reason = finish_reason
        return ChatChunk(
            content=content or "",
            reasoning=reasoning,
            tool_call_deltas=tool_deltas,
            finish_reason=finish_reason,
            usage=usage,
            raw=payload,
        )

    def _start(self, payload: Mapping[str, Any]) -> None:
        self._started = True
        self._id = _str_or_none(payload.get("id"))
        self._model = _str_or_none(payload.get("model"))
        self._fingerprint = _str_or_none(payload.get("system_fingerprint"))
        self._created = payload.get("created", int(time.time()))

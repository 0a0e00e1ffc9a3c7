"""Our responses and stream chunks in, LangChain messages and generations out.

Two rules from langchain-core shape the stream side. Chunks are summed with
``+``: ``usage_metadata`` is added up and ``response_metadata`` strings are
concatenated, so both go on exactly one chunk, the closing one. Tool-call chunks
merge by integer ``index`` and their ``name`` strings concatenate too, so a call's
id and name are sent once, on its first fragment.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from langchain_core.messages import AIMessage, AIMessageChunk
from langchain_core.messages.ai import InputTokenDetails, OutputTokenDetails, UsageMetadata
from langchain_core.messages.tool import ToolCallChunk, invalid_tool_call, tool_call
from langchain_core.messages.tool import tool_call_chunk as make_tool_call_chunk
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult

from oaicompat.structured import StructuredOutputError
from oaicompat.types import ChatChunk, ChatResponse, ToolCallDelta, Usage

__all__ = [
    "PROVIDER",
    "STRUCTURED_ERROR_KEY",
    "ChunkConverter",
    "Outcome",
    "ai_message",
    "chat_result",
    "closing_chunk",
    "outcome_of",
    "response_metadata",
    "usage_metadata",
]

PROVIDER = "oaicompat"
"""Our ``model_provider``. Not ``"openai"``: LangChain's OpenAI block translator drops
``reasoning_content``, while the generic path turns it into a reasoning block."""


def usage_metadata(usage: Usage) -> UsageMetadata:
    """LangChain's usage dict; details only when the server stated them."""
    out = UsageMetadata(
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        total_tokens=usage.total_tokens,
    )
    if usage.cached_input_tokens is not None:
        out["input_token_details"] = InputTokenDetails(cache_read=usage.cached_input_tokens)
    if usage.reasoning_tokens is not None:
        out["output_token_details"] = OutputTokenDetails(reasoning=usage.reasoning_tokens)
    return out


def response_metadata(response: ChatResponse, requested_model: str) -> dict[str, Any]:
    """What LangChain users look for in ``response_metadata``, with no ``None`` values."""
    metadata: dict[str, Any] = {
        "model_name": response.model or requested_model,
        "model_provider": PROVIDER,
    }
    optional = {
        "finish_reason": response.finish_reason,
        "system_fingerprint": response.system_fingerprint,
        "id": response.id,
        "latency_s": response.latency_s,
        "time_to_first_token_s": response.time_to_first_token_s,
    }
    metadata.update({key: value for key, value in optional.items() if value is not None})
    return metadata


STRUCTURED_ERROR_KEY = "structured_output_error"
"""Where an answer that failed the core's structured-output check says why, so the
output parser of ``with_structured_output`` can report it (or ``include_raw`` keep it)."""


def _structured_kwargs(response: ChatResponse, structured_error: str | None) -> dict[str, Any]:
    if structured_error is not None:
        return {STRUCTURED_ERROR_KEY: structured_error}
    if response.parsed is not None:
        return {"parsed": response.parsed}
    return {}


def ai_message(
    response: ChatResponse, requested_model: str, *, structured_error: str | None = None
) -> AIMessage:
    """The whole answer as an ``AIMessage``; malformed tool arguments become invalid calls."""
    valid = [
        tool_call(name=call.name, args=call.arguments, id=call.id)
        for call in response.tool_calls
        if call.error is None
    ]
    invalid = [
        invalid_tool_call(name=call.name, args=call.arguments_text, id=call.id, error=call.error)
        for call in response.tool_calls
        if call.error is not None
    ]
    extra = {"reasoning_content": response.reasoning} if response.reasoning else {}
    return AIMessage(
        content=response.content,
        additional_kwargs={**extra, **_structured_kwargs(response, structured_error)},
        tool_calls=valid,
        invalid_tool_calls=invalid,
        usage_metadata=usage_metadata(response.usage) if response.usage else None,
        response_metadata=response_metadata(response, requested_model),
        id=response.id,
    )


def chat_result(
    response: ChatResponse, requested_model: str, *, structured_error: str | None = None
) -> ChatResult:
    """The result ``_generate`` returns."""
    message = ai_message(response, requested_model, structured_error=structured_error)
    llm_output: dict[str, Any] = {"model_name": message.response_metadata["model_name"]}
    if response.usage is not None:
        # OpenAI-shaped totals: what LangChain's OpenAI callback handler and older
        # chains read from ``llm_output``.
        llm_output["token_usage"] = response.usage.to_openai_dict()
    if response.system_fingerprint:
        llm_output["system_fingerprint"] = response.system_fingerprint
    generation_info = {"finish_reason": response.finish_reason} if response.finish_reason else None
    return ChatResult(
        generations=[ChatGeneration(message=message, generation_info=generation_info)],
        llm_output=llm_output,
    )


class ChunkConverter:
    """Turns one stream's ``ChatChunk`` objects into ``ChatGenerationChunk`` objects.

    Holds the little state the conversion needs: which tool calls already sent
    their id and name, and the ids synthesized for calls the server left unnamed.
    """

    __slots__ = ("_call_ids", "_named")

    def __init__(self) -> None:
        self._call_ids: dict[int, str] = {}
        self._named: set[int] = set()

    def convert(self, chunk: ChatChunk) -> ChatGenerationChunk | None:
        """The LangChain chunk for one server chunk, or None when it carried no delta."""
        call_chunks = [self._call_chunk(delta) for delta in chunk.tool_call_deltas]
        if not (chunk.content or chunk.reasoning or call_chunks):
            return None
        extra = {"reasoning_content": chunk.reasoning} if chunk.reasoning else {}
        chunk_id = chunk.raw.get("id")
        message = AIMessageChunk(
            content=chunk.content,
            additional_kwargs=extra,
            tool_call_chunks=call_chunks,
            id=chunk_id if isinstance(chunk_id, str) and chunk_id else None,
        )
        return ChatGenerationChunk(message=message)

    def _call_chunk(self, delta: ToolCallDelta) -> ToolCallChunk:
        index: int = delta.index
        call_id: str | None = None
        if index not in self._call_ids:
            call_id = delta.id or f"call_{uuid.uuid4().hex[:24]}"
            self._call_ids[index] = call_id
        name: str | None = None
        if index not in self._named and delta.name:
            name = delta.name
            self._named.add(index)
        return make_tool_call_chunk(
            name=name, args=delta.arguments or None, id=call_id, index=index
        )


def closing_chunk(
    response: ChatResponse, requested_model: str, *, structured_error: str | None = None
) -> ChatGenerationChunk:
    """The last chunk of a stream: usage, metadata and any parsed value, once."""
    metadata = response_metadata(response, requested_model)
    message = AIMessageChunk(
        content="",
        additional_kwargs=_structured_kwargs(response, structured_error),
        usage_metadata=usage_metadata(response.usage) if response.usage else None,
        response_metadata=metadata,
        id=response.id,
        chunk_position="last",
    )
    generation_info = {"finish_reason": response.finish_reason} if response.finish_reason else None
    return ChatGenerationChunk(message=message, generation_info=generation_info)


class Outcome:
    """The answer to one request and, when the core's structured-output check
    rejected it, why (see `outcome_of`)."""

    __slots__ = ("_model", "rejected", "response")

    response: ChatResponse

    def __init__(self, model: str) -> None:
        self._model = model
        self.rejected: str | None = None

    def chat_result(self) -> ChatResult:
        return chat_result(self.response, self._model, structured_error=self.rejected)

    def closing_chunk(self) -> ChatGenerationChunk:
        return closing_chunk(self.response, self._model, structured_error=self.rejected)


@contextmanager
def outcome_of(model: str, *, user_tools: bool) -> Iterator[Outcome]:
    """``with outcome_of(model, ...) as outcome: outcome.response = ...``, where an
    answer the core's structured-output check rejected is kept, not raised.

    LangChain expects the model to return the message and the output parser to
    judge it, so that ``include_raw=True`` can hand back both. An error that
    carries no answer is raised as is.
    """
    outcome = Outcome(model)
    try:
        yield outcome
    except StructuredOutputError as error:
        if error.response is None:
            raise
        outcome.response = error.response
        # A turn that calls one of the caller's own tools is not a structured answer
        # at all (an agent's tool round), so it carries no verdict.
        if not (error.response.tool_calls and user_tools):
            outcome.rejected = str(error)

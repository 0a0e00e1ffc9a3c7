"""``complete`` and its variants over the core's legacy text ``/completions`` endpoint.

Used by ``OpenAICompatible(use_completions_endpoint=True)``, whose requests
(core clients, request params) it reuses. The answers look
like the ones the chat route gives ``complete()``: the text, ``raw`` with the
normalized usage, and the token counts in ``additional_kwargs``, so callback
handlers and ``TokenCountingHandler`` read them the same way. Streamed
answers carry the cumulative text and the ``delta``; the last one is the
whole answer with its usage.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from llama_index.core.base.llms.types import (
    CompletionResponse,
    CompletionResponseAsyncGen,
    CompletionResponseGen,
)

from oaicompat import types as core
from oaicompat._llama_index.folding import afold_stream, fold_stream
from oaicompat._llama_index.responses import THINKING_DELTA_KEY, raw_with_usage, usage_kwargs

if TYPE_CHECKING:
    from oaicompat.llama_index import OpenAICompatible


def to_completion_response(response: core.ChatResponse) -> CompletionResponse:
    """A whole answer as LlamaIndex expects it."""
    return CompletionResponse(
        text=response.content,
        raw=raw_with_usage(response.raw, response.usage),
        additional_kwargs=dict(usage_kwargs(response.usage)),
    )


class CompletionFolder:
    """Turns a stream of `ChatChunk`s into cumulative ``CompletionResponse``s."""

    __slots__ = ("_text",)

    def __init__(self) -> None:
        self._text = ""

    def add(self, chunk: core.ChatChunk) -> CompletionResponse | None:
        """The response after ``chunk``, or None when it carried no text or reasoning."""
        if not (chunk.content or chunk.reasoning):
            return None
        self._text += chunk.content
        additional_kwargs: dict[str, Any] = dict(usage_kwargs(chunk.usage))
        if chunk.reasoning:
            additional_kwargs[THINKING_DELTA_KEY] = chunk.reasoning
        return CompletionResponse(
            text=self._text,
            delta=chunk.content,
            raw=raw_with_usage(chunk.raw, chunk.usage),
            additional_kwargs=additional_kwargs,
        )

    def finish(self, final: core.ChatResponse) -> CompletionResponse:
        """The last response of the stream: the whole answer, with an empty delta."""
        response = to_completion_response(final)
        response.delta = ""
        return response


def _prompt(llm: OpenAICompatible, prompt: str, formatted: bool) -> str:
    # As OpenAILike does: a prompt not yet formatted goes through completion_to_prompt.
    if formatted or llm.completion_to_prompt is None:
        return prompt
    return llm.completion_to_prompt(prompt)


def complete(
    llm: OpenAICompatible, prompt: str, formatted: bool, kwargs: dict[str, Any]
) -> CompletionResponse:
    client = llm._get_client()
    return to_completion_response(
        client.complete(_prompt(llm, prompt, formatted), **llm._params(kwargs))
    )


async def acomplete(
    llm: OpenAICompatible, prompt: str, formatted: bool, kwargs: dict[str, Any]
) -> CompletionResponse:
    client = llm._get_aclient()
    return to_completion_response(
        await client.complete(_prompt(llm, prompt, formatted), **llm._params(kwargs))
    )


def stream_complete(
    llm: OpenAICompatible, prompt: str, formatted: bool, kwargs: dict[str, Any]
) -> CompletionResponseGen:
    """The text continued after ``prompt``, streamed (see `fold_stream`)."""
    client, params = llm._get_client(), llm._params(kwargs)
    prompt = _prompt(llm, prompt, formatted)
    return fold_stream(client.stream_complete(prompt, **params), CompletionFolder())


def astream_complete(
    llm: OpenAICompatible, prompt: str, formatted: bool, kwargs: dict[str, Any]
) -> CompletionResponseAsyncGen:
    """The async twin of `stream_complete`."""
    client, params = llm._get_aclient(), llm._params(kwargs)
    prompt = _prompt(llm, prompt, formatted)
    return afold_stream(client.stream_complete(prompt, **params), CompletionFolder())

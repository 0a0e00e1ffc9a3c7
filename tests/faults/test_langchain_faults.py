"""The faults through the LangChain adapter: LangChain's own error types, seen by callbacks.

Every call style LangChain offers (``invoke``, ``ainvoke``, ``stream``,
``astream``) meets each fault over real sockets; the error raised must be a
``langchain_core.exceptions`` class (and still ours), and a callback handler
must see it in ``on_llm_error``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import aclosing
from typing import Any
from uuid import UUID

import httpx
import pytest
from faults_harness import (
    ScriptedServer,
    StallingServer,
    Stopwatch,
    assert_pool_released,
    assert_pool_released_soon,
    expected_echo,
    refused_url,
    unique_prompt,
)
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.exceptions import (
    ContextOverflowError,
    ModelAPIError,
    ModelAuthenticationError,
    ModelConnectionError,
    ModelError,
    ModelInvalidRequestError,
    ModelRateLimitError,
    ModelTimeoutError,
)

from oaicompat import errors as core
from oaicompat.langchain import ChatOpenAICompatible
from oaicompat.testing import (
    Disconnect,
    RawReply,
    Reply,
    context_length_exceeded,
    error_in_200,
    html_error,
    invalid_api_key,
    rate_limited,
    server_error,
)

READ_TIMEOUT = 0.3
SLACK = 1.5
CALL_STYLES = ["invoke", "ainvoke", "stream", "astream"]


class ErrorRecorder(BaseCallbackHandler):
    """Records what LangChain reports to callback handlers about each run."""

    run_inline = True

    def __init__(self) -> None:
        self.started: list[UUID] = []
        self.errors: list[BaseException] = []
        self.ended: list[UUID] = []

    def on_chat_model_start(
        self, serialized: Any, messages: Any, *, run_id: UUID, **kw: Any
    ) -> None:
        self.started.append(run_id)

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self.errors.append(error)

    def on_llm_end(self, response: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self.ended.append(run_id)


async def call(llm: ChatOpenAICompatible, style: str, recorder: ErrorRecorder) -> str:
    """The answer text by one of LangChain's call styles, with ``recorder`` as callback."""
    config: Any = {"callbacks": [recorder]}
    if style == "invoke":
        return str(llm.invoke("Hi", config=config).content)
    if style == "ainvoke":
        return str((await llm.ainvoke("Hi", config=config)).content)
    if style == "stream":
        return "".join(str(chunk.content) for chunk in llm.stream("Hi", config=config))
    parts = [str(chunk.content) async for chunk in llm.astream("Hi", config=config)]
    return "".join(parts)


@pytest.fixture
async def make_llm() -> Any:
    made: list[ChatOpenAICompatible] = []

    def make(base_url: str, **fields: Any) -> ChatOpenAICompatible:
        llm = ChatOpenAICompatible(model="scripted-model", base_url=base_url, **fields)
        made.append(llm)
        return llm

    yield make
    for llm in made:
        await llm.aclose()


def with_retry_after_zero(reply: RawReply) -> RawReply:
    """The same error answer, telling the client to retry at once (no backoff in tests)."""
    return dataclasses.replace(reply, headers={**reply.headers, "Retry-After": "0"})


# Which LangChain class each fault must arrive as ----------------------------------------

STATUS_FAULTS = {
    "429": (rate_limited(retry_after=0), ModelRateLimitError, core.RateLimitError),
    "500": (with_retry_after_zero(server_error(500)), ModelAPIError, core.InternalServerError),
    "502-html": (with_retry_after_zero(html_error(502)), ModelAPIError, core.InternalServerError),
    "401": (invalid_api_key(), ModelAuthenticationError, core.AuthenticationError),
    "context": (context_length_exceeded(), ContextOverflowError, core.ContextLengthError),
    "error-in-200": (
        error_in_200("bad stop", code=400),
        ModelInvalidRequestError,
        core.BadRequestError,
    ),
    "html-in-200": (
        html_error(200, "Sign in to the network"),
        ModelAPIError,
        core.ResponseParseError,
    ),
}


def assert_recorded(recorder: ErrorRecorder, error: BaseException) -> None:
    assert len(recorder.started) == 1
    assert recorder.errors == [error]
    assert recorder.ended == []


@pytest.mark.parametrize("style", CALL_STYLES)
@pytest.mark.parametrize("fault", list(STATUS_FAULTS))
async def test_error_answers_arrive_as_langchain_errors(
    make_llm: Any, server: ScriptedServer, style: str, fault: str
) -> None:
    reply, theirs, ours = STATUS_FAULTS[fault]
    server.enqueue(reply, times=3)
    llm = make_llm(server.base_url, max_retries=1)
    recorder = ErrorRecorder()
    with pytest.raises(theirs) as caught:
        await call(llm, style, recorder)
    error = caught.value
    assert isinstance(error, ours)
    assert error.is_retryable is error.retryable  # type: ignore[attr-defined]
    assert_recorded(recorder, error)
    attempts = 2 if error.retryable else 1
    assert len(server.chat_requests) == attempts


@pytest.mark.parametrize("style", CALL_STYLES)
async def test_connection_refused_is_a_model_connection_error(make_llm: Any, style: str) -> None:
    llm = make_llm(refused_url(), max_retries=0)
    recorder = ErrorRecorder()
    with pytest.raises(ModelConnectionError) as caught:
        await call(llm, style, recorder)
    assert isinstance(caught.value, core.APIConnectionError)
    assert caught.value.is_retryable is True
    assert_recorded(recorder, caught.value)


@pytest.mark.parametrize("style", CALL_STYLES)
async def test_reset_is_a_model_connection_error(
    make_llm: Any, server: ScriptedServer, style: str
) -> None:
    server.enqueue(Disconnect())
    llm = make_llm(server.base_url, max_retries=0)
    recorder = ErrorRecorder()
    with pytest.raises(ModelConnectionError):
        await call(llm, style, recorder)
    assert len(server.chat_requests) == 1
    assert len(recorder.errors) == 1


@pytest.mark.parametrize("style", CALL_STYLES)
async def test_stall_before_the_first_byte_is_a_model_timeout_on_time(
    make_llm: Any, server: ScriptedServer, style: str
) -> None:
    server.enqueue(Reply(text="late", first_byte_delay=3.0))
    llm = make_llm(server.base_url, timeout=httpx.Timeout(10.0, read=READ_TIMEOUT), max_retries=0)
    recorder = ErrorRecorder()
    with Stopwatch() as clock, pytest.raises(ModelTimeoutError) as caught:
        await call(llm, style, recorder)
    assert READ_TIMEOUT <= clock.elapsed < READ_TIMEOUT + SLACK
    assert isinstance(caught.value, core.APITimeoutError)
    assert_recorded(recorder, caught.value)


@pytest.mark.parametrize("style", CALL_STYLES)
async def test_errors_then_success_are_retried_by_the_core_once_each(
    make_llm: Any, server: ScriptedServer, style: str
) -> None:
    server.enqueue(rate_limited(retry_after=0))
    server.enqueue(with_retry_after_zero(server_error(503)))
    server.enqueue(with_retry_after_zero(html_error(502)))
    server.enqueue(Reply(text="made it"))
    llm = make_llm(server.base_url, max_retries=3)
    recorder = ErrorRecorder()
    assert await call(llm, style, recorder) == "made it"
    assert len(server.chat_requests) == 4
    assert recorder.errors == []
    assert len(recorder.ended) == 1


# Faults after a stream started -------------------------------------------------------


@pytest.mark.parametrize("style", ["stream", "astream"])
async def test_stream_cut_short_keeps_the_partial_answer_and_is_recorded(
    make_llm: Any, server: ScriptedServer, style: str
) -> None:
    server.enqueue(Reply(text="one two three four five six", drop_after=4))
    llm = make_llm(server.base_url, max_retries=2)
    recorder = ErrorRecorder()
    with pytest.raises(core.StreamError) as caught:
        await call(llm, style, recorder)
    assert caught.value.partial is not None
    assert caught.value.partial.content == "one two three"
    assert_recorded(recorder, caught.value)
    assert len(server.chat_requests) == 1


@pytest.mark.parametrize("style", ["stream", "astream"])
async def test_stream_cut_short_is_a_langchain_model_error(
    make_llm: Any, server: ScriptedServer, style: str
) -> None:
    server.enqueue(Reply(text="one two three four five six", drop_after=4))
    llm = make_llm(server.base_url)
    with pytest.raises(ModelError) as caught:
        await call(llm, style, ErrorRecorder())
    assert isinstance(caught.value, ModelAPIError)
    assert isinstance(caught.value, core.StreamError)
    # LangChain may resend the whole call, though the core never resumes a stream.
    assert caught.value.is_retryable is True
    assert caught.value.partial is not None
    assert caught.value.partial.content == "one two three"


@pytest.mark.parametrize("style", ["invoke", "ainvoke"])
async def test_with_retry_on_model_api_error_resends_a_stream_cut_short(
    make_llm: Any, server: ScriptedServer, style: str
) -> None:
    server.enqueue(Reply(text="one two three four five six", drop_after=4))
    server.enqueue(Reply(text="whole answer"))
    llm = make_llm(server.base_url, streaming=True)
    retrying = llm.with_retry(
        retry_if_exception_type=(ModelAPIError,),
        stop_after_attempt=2,
        wait_exponential_jitter=False,
    )
    answer = retrying.invoke("Hi") if style == "invoke" else await retrying.ainvoke("Hi")
    assert answer.content == "whole answer"
    assert len(server.chat_requests) == 2


@pytest.mark.parametrize("style", ["stream", "astream"])
async def test_stall_between_chunks_is_recorded(make_llm: Any, style: str) -> None:
    with StallingServer(["Hello", " there"], stall=5.0) as stalling:
        llm = make_llm(
            stalling.base_url, timeout=httpx.Timeout(10.0, read=READ_TIMEOUT), max_retries=2
        )
        recorder = ErrorRecorder()
        with Stopwatch() as clock, pytest.raises(core.StreamError, match="read timeout") as caught:
            await call(llm, style, recorder)
        assert READ_TIMEOUT <= clock.elapsed < READ_TIMEOUT + SLACK
        assert caught.value.partial is not None
        assert caught.value.partial.content == "Hello there"
        assert_recorded(recorder, caught.value)


# Walking away and crowds -------------------------------------------------------------


async def test_breaking_out_of_stream_releases_the_connection(
    make_llm: Any, server: ScriptedServer
) -> None:
    llm = make_llm(server.base_url)
    prompt = unique_prompt(1, words=60)
    for _ in range(3):
        for seen, _chunk in enumerate(llm.stream(prompt), 1):
            if seen == 3:
                break
        assert_pool_released(llm.client)
    assert llm.invoke("after").content == expected_echo("after")


async def test_closing_or_cancelling_astream_releases_the_connection(
    make_llm: Any, server: ScriptedServer
) -> None:
    llm = make_llm(server.base_url)
    prompt = unique_prompt(2, words=60)
    async with aclosing(llm.astream(prompt)) as chunks:
        async for _ in chunks:
            break
    # LangChain's astream drops our generator rather than closing it: asyncio closes it.
    await assert_pool_released_soon(llm.async_client)

    started = asyncio.Event()

    async def consume() -> None:
        async for _ in llm.astream(prompt):
            started.set()
            await asyncio.sleep(0)

    task = asyncio.create_task(consume())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await assert_pool_released_soon(llm.async_client)
    assert (await llm.ainvoke("after")).content == expected_echo("after")


async def test_many_concurrent_astreams_through_one_model(
    make_llm: Any, server: ScriptedServer
) -> None:
    llm = make_llm(server.base_url)

    async def one(index: int) -> tuple[str, str]:
        prompt = unique_prompt(index, words=10)
        parts = [str(chunk.content) async for chunk in llm.astream(prompt)]
        return prompt, "".join(parts)

    results = await asyncio.gather(*(one(index) for index in range(200)))
    assert [prompt for prompt, text in results if text != expected_echo(prompt)] == []
    assert_pool_released(llm.async_client)


def test_threads_share_one_model(make_llm: Any, server: ScriptedServer) -> None:
    llm = make_llm(server.base_url)
    start = threading.Barrier(8)

    def work(thread: int) -> list[tuple[str, str]]:
        start.wait()
        answers = []
        for n in range(8):
            prompt = unique_prompt(thread * 100 + n, words=6)
            if n % 2:
                answers.append((prompt, str(llm.invoke(prompt).content)))
            else:
                answers.append((prompt, "".join(str(c.content) for c in llm.stream(prompt))))
        return answers

    with ThreadPoolExecutor(8) as pool:
        results = [answer for answers in pool.map(work, range(8)) for answer in answers]
    assert len(results) == 64
    assert [prompt for prompt, text in results if text != expected_echo(prompt)] == []

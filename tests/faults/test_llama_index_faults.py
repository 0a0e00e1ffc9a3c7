"""The faults through the LlamaIndex adapter: typed errors, seen by callbacks and instrumentation.

LlamaIndex has no error hierarchy of its own for model calls, so the adapter
raises the core's typed errors unchanged. What LlamaIndex does have is two
observation systems: callback handlers (``on_event_end`` with an
``EXCEPTION`` payload) and instrumentation (a dropped span for ``chat``, an
``ExceptionEvent`` for streams). Each fault must reach both, as the very error
the caller gets.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import aclosing
from typing import Any

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
from llama_index.core.bridge.pydantic import Field
from llama_index.core.callbacks import CallbackManager, CBEventType, EventPayload
from llama_index.core.callbacks.base_handler import BaseCallbackHandler
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from llama_index.core.instrumentation.events import BaseEvent
from llama_index.core.instrumentation.events.span import SpanDropEvent
from llama_index.core.instrumentation.span import SimpleSpan
from llama_index.core.instrumentation.span_handlers import BaseSpanHandler
from llama_index.core.llms import ChatMessage

from oaicompat import errors as core
from oaicompat.llama_index import OpenAICompatible
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
CALL_STYLES = ["chat", "achat", "stream_chat", "astream_chat"]
HELLO = [ChatMessage(role="user", content="Hi")]


class ExceptionRecorder(BaseCallbackHandler):
    """A callback handler keeping every exception LlamaIndex reports at an event's end."""

    def __init__(self) -> None:
        super().__init__(event_starts_to_ignore=[], event_ends_to_ignore=[])
        self.errors: list[BaseException] = []
        self.llm_ends = 0

    def on_event_start(
        self,
        event_type: CBEventType,
        payload: dict[str, Any] | None = None,
        event_id: str = "",
        parent_id: str = "",
        **kwargs: Any,
    ) -> str:
        return event_id

    def on_event_end(
        self,
        event_type: CBEventType,
        payload: dict[str, Any] | None = None,
        event_id: str = "",
        **kwargs: Any,
    ) -> None:
        if event_type is CBEventType.LLM:
            self.llm_ends += 1
            error = (payload or {}).get(EventPayload.EXCEPTION)
            # Not a consumer leaving (GeneratorExit): see EventRecorder.handle.
            if isinstance(error, Exception):
                self.errors.append(error)

    def start_trace(self, trace_id: str | None = None) -> None:
        pass

    def end_trace(
        self, trace_id: str | None = None, trace_map: dict[str, list[str]] | None = None
    ) -> None:
        pass


class EventRecorder(BaseEventHandler):
    """Every instrumentation event the root dispatcher sends."""

    events: list[BaseEvent] = Field(default_factory=list)

    @classmethod
    def class_name(cls) -> str:
        return "FaultEventRecorder"

    def handle(self, event: BaseEvent, **kwargs: Any) -> None:
        # LlamaIndex reports a consumer leaving a stream (GeneratorExit, CancelledError) as
        # an ExceptionEvent; its traceback holds the stream's frames, and with them the
        # connection. A handler that keeps such an event keeps the connection busy.
        exception = getattr(event, "exception", None)
        if isinstance(exception, BaseException) and not isinstance(exception, Exception):
            return
        self.events.append(event)


class DroppedSpans(BaseSpanHandler[SimpleSpan]):
    """The error of every span that ended by raising."""

    errors: list[BaseException] = Field(default_factory=list)

    @classmethod
    def class_name(cls) -> str:
        return "FaultDroppedSpans"

    def new_span(
        self,
        id_: str,
        bound_args: Any,
        instance: Any | None = None,
        parent_span_id: str | None = None,
        tags: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> SimpleSpan:
        return SimpleSpan(id_=id_, parent_id=parent_span_id)

    def prepare_to_exit_span(
        self, id_: str, bound_args: Any, instance: Any | None = None, result: Any = None, **kw: Any
    ) -> None:
        return None

    def prepare_to_drop_span(
        self,
        id_: str,
        bound_args: Any,
        instance: Any | None = None,
        err: BaseException | None = None,
        **kwargs: Any,
    ) -> None:
        if err is not None:
            self.errors.append(err)


@dataclasses.dataclass
class Observers:
    callbacks: ExceptionRecorder
    events: EventRecorder
    spans: DroppedSpans

    def instrumented_errors(self) -> list[BaseException]:
        """Errors instrumentation saw: exception events and dropped spans, deduplicated."""
        seen: list[BaseException] = []
        from_events = [getattr(event, "exception", None) for event in self.events.events]
        for error in [*from_events, *self.spans.errors]:
            if isinstance(error, BaseException) and all(error is not known for known in seen):
                seen.append(error)
        return seen


@pytest.fixture
def observers() -> Iterator[Observers]:
    dispatcher = get_dispatcher()
    watched = Observers(ExceptionRecorder(), EventRecorder(), DroppedSpans())
    dispatcher.add_event_handler(watched.events)
    dispatcher.add_span_handler(watched.spans)
    yield watched
    dispatcher.event_handlers.remove(watched.events)
    dispatcher.span_handlers.remove(watched.spans)


@pytest.fixture
async def make_llm(observers: Observers) -> Any:
    made: list[OpenAICompatible] = []

    def make(base_url: str, **fields: Any) -> OpenAICompatible:
        llm = OpenAICompatible(
            model="scripted-model",
            base_url=base_url,
            context_window=8192,
            callback_manager=CallbackManager([observers.callbacks]),
            **fields,
        )
        made.append(llm)
        return llm

    yield make
    for llm in made:
        await llm.aclose()


def call_sync(llm: OpenAICompatible, style: str, messages: list[ChatMessage] = HELLO) -> str:
    if style == "chat":
        return str(llm.chat(messages).message.content)
    responses = list(llm.stream_chat(messages))
    return str(responses[-1].message.content)


async def call(llm: OpenAICompatible, style: str, messages: list[ChatMessage] = HELLO) -> str:
    """The answer text by one of the LLM's four chat methods (the last response of a stream)."""
    if style in ("chat", "stream_chat"):
        return call_sync(llm, style, messages)
    if style == "achat":
        return str((await llm.achat(messages)).message.content)
    responses = [response async for response in await llm.astream_chat(messages)]
    return str(responses[-1].message.content)


def with_retry_after_zero(reply: RawReply) -> RawReply:
    return dataclasses.replace(reply, headers={**reply.headers, "Retry-After": "0"})


def assert_observed(observers: Observers, error: BaseException) -> None:
    assert observers.callbacks.errors == [error]
    assert observers.instrumented_errors() == [error]


STATUS_FAULTS: dict[str, tuple[RawReply, type[core.OAICompatError]]] = {
    "429": (rate_limited(retry_after=0), core.RateLimitError),
    "500": (with_retry_after_zero(server_error(500)), core.InternalServerError),
    "502-html": (with_retry_after_zero(html_error(502)), core.InternalServerError),
    "401": (invalid_api_key(), core.AuthenticationError),
    "context": (context_length_exceeded(), core.ContextLengthError),
    "error-in-200": (error_in_200("bad stop", code=400), core.BadRequestError),
}


@pytest.mark.parametrize("style", CALL_STYLES)
@pytest.mark.parametrize("fault", list(STATUS_FAULTS))
async def test_error_answers_are_typed_and_observed(
    make_llm: Any, observers: Observers, server: ScriptedServer, style: str, fault: str
) -> None:
    reply, expected = STATUS_FAULTS[fault]
    server.enqueue(reply, times=3)
    llm = make_llm(server.base_url, max_retries=1)
    with pytest.raises(expected) as caught:
        await call(llm, style)
    assert_observed(observers, caught.value)
    assert len(server.chat_requests) == (2 if caught.value.retryable else 1)


@pytest.mark.parametrize("style", CALL_STYLES)
async def test_connection_refused_is_typed_and_observed(
    make_llm: Any, observers: Observers, style: str
) -> None:
    llm = make_llm(refused_url(), max_retries=0)
    with pytest.raises(core.APIConnectionError) as caught:
        await call(llm, style)
    assert_observed(observers, caught.value)


@pytest.mark.parametrize("style", CALL_STYLES)
async def test_reset_before_headers_is_typed_and_observed(
    make_llm: Any, observers: Observers, server: ScriptedServer, style: str
) -> None:
    server.enqueue(Disconnect())
    llm = make_llm(server.base_url, max_retries=0)
    with pytest.raises(core.APIConnectionError) as caught:
        await call(llm, style)
    assert len(server.chat_requests) == 1
    assert_observed(observers, caught.value)


@pytest.mark.parametrize("style", CALL_STYLES)
async def test_stall_before_the_first_byte_times_out_on_time(
    make_llm: Any, observers: Observers, server: ScriptedServer, style: str
) -> None:
    server.enqueue(Reply(text="late", first_byte_delay=3.0))
    llm = make_llm(server.base_url, timeout=READ_TIMEOUT, max_retries=0)
    with Stopwatch() as clock, pytest.raises(core.APITimeoutError) as caught:
        await call(llm, style)
    assert READ_TIMEOUT <= clock.elapsed < READ_TIMEOUT + SLACK
    assert_observed(observers, caught.value)


@pytest.mark.parametrize("style", CALL_STYLES)
async def test_errors_then_success(
    make_llm: Any, observers: Observers, server: ScriptedServer, style: str
) -> None:
    server.enqueue(rate_limited(retry_after=0))
    server.enqueue(with_retry_after_zero(server_error(503)))
    server.enqueue(Reply(text="made it"))
    llm = make_llm(server.base_url, max_retries=2)
    assert await call(llm, style) == "made it"
    assert observers.callbacks.errors == []
    assert observers.instrumented_errors() == []
    assert observers.callbacks.llm_ends == 1


@pytest.mark.parametrize("style", ["stream_chat", "astream_chat"])
async def test_stream_cut_short_keeps_the_partial_answer_and_is_observed(
    make_llm: Any, observers: Observers, server: ScriptedServer, style: str
) -> None:
    server.enqueue(Reply(text="one two three four five six", drop_after=4))
    llm = make_llm(server.base_url, max_retries=2)
    with pytest.raises(core.StreamError) as caught:
        await call(llm, style)
    assert caught.value.partial is not None
    assert caught.value.partial.content == "one two three"
    assert len(server.chat_requests) == 1
    assert_observed(observers, caught.value)


@pytest.mark.parametrize("style", ["stream_chat", "astream_chat"])
async def test_stall_between_chunks_is_observed(
    make_llm: Any, observers: Observers, style: str
) -> None:
    with StallingServer(["Hello", " there"], stall=5.0) as stalling:
        llm = make_llm(stalling.base_url, timeout=READ_TIMEOUT, max_retries=2)
        with Stopwatch() as clock, pytest.raises(core.StreamError, match="read timeout") as caught:
            await call(llm, style)
        assert READ_TIMEOUT <= clock.elapsed < READ_TIMEOUT + SLACK
        assert caught.value.partial is not None
        assert caught.value.partial.content == "Hello there"
        assert_observed(observers, caught.value)


def test_dropped_span_carries_the_error_text(
    make_llm: Any, observers: Observers, server: ScriptedServer
) -> None:
    server.enqueue(server_error(500, "CUDA out of memory"))
    llm = make_llm(server.base_url, max_retries=0)
    with pytest.raises(core.InternalServerError):
        llm.chat(HELLO)
    drops = [event for event in observers.events.events if isinstance(event, SpanDropEvent)]
    assert any("CUDA out of memory" in event.err_str for event in drops)


# Walking away and crowds -------------------------------------------------------------


async def test_breaking_out_of_stream_chat_releases_the_connection(
    make_llm: Any, server: ScriptedServer
) -> None:
    llm = make_llm(server.base_url)
    long_prompt = [ChatMessage(role="user", content=unique_prompt(3, words=60))]
    for _ in range(3):
        for seen, _response in enumerate(llm.stream_chat(long_prompt), 1):
            if seen == 3:
                break
        assert_pool_released(llm._get_client())
    assert await call(llm, "chat") == expected_echo("Hi")


async def test_closing_or_cancelling_astream_chat_releases_the_connection(
    make_llm: Any, server: ScriptedServer
) -> None:
    llm = make_llm(server.base_url)
    long_prompt = [ChatMessage(role="user", content=unique_prompt(4, words=60))]
    async with aclosing(await llm.astream_chat(long_prompt)) as responses:
        async for _ in responses:
            break
    await assert_pool_released_soon(llm._get_aclient())

    started = asyncio.Event()

    async def consume() -> None:
        async for _ in await llm.astream_chat(long_prompt):
            started.set()
            await asyncio.sleep(0)

    task = asyncio.create_task(consume())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await assert_pool_released_soon(llm._get_aclient())
    assert await call(llm, "achat") == expected_echo("Hi")


async def test_many_concurrent_astream_chats_through_one_llm(
    make_llm: Any, server: ScriptedServer
) -> None:
    llm = make_llm(server.base_url)

    async def one(index: int) -> tuple[str, str]:
        prompt = unique_prompt(index, words=10)
        text = await call(llm, "astream_chat", [ChatMessage(role="user", content=prompt)])
        return prompt, text

    results = await asyncio.gather(*(one(index) for index in range(200)))
    assert [prompt for prompt, text in results if text != expected_echo(prompt)] == []
    assert_pool_released(llm._get_aclient())


def test_threads_share_one_llm(make_llm: Any, server: ScriptedServer) -> None:
    llm = make_llm(server.base_url)

    def work(thread: int) -> list[tuple[str, str]]:
        answers = []
        for n in range(8):
            prompt = unique_prompt(thread * 100 + n, words=6)
            messages = [ChatMessage(role="user", content=prompt)]
            style = "stream_chat" if n % 2 else "chat"
            answers.append((prompt, call_sync(llm, style, messages)))
        return answers

    with ThreadPoolExecutor(8) as pool:
        results = [answer for answers in pool.map(work, range(8)) for answer in answers]
    assert len(results) == 64
    assert [prompt for prompt, text in results if text != expected_echo(prompt)] == []

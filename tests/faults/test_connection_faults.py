"""Network faults over real sockets: refused, reset, dropped, stalled; each a typed error, on time.

Timing bounds are deliberately loose on the slow side (a shared 2-core machine)
and strict on the fast side: a timeout that fires early is as wrong as one that
never fires.
"""

from __future__ import annotations

import httpx
import pytest
from faults_harness import (
    ScriptedServer,
    StallingServer,
    Stopwatch,
    Way,
    assert_pool_released,
    read_timeout,
    refused_url,
    streamed_text,
)

from oaicompat import APIConnectionError, APITimeoutError, StreamError
from oaicompat.testing import Disconnect, Reply

READ_TIMEOUT = 0.3
SLACK = 1.5
"""How late a timeout may fire on a loaded machine; it must never fire early."""


async def test_connection_refused_is_retried_then_a_connection_error(way: Way) -> None:
    client = way.client(refused_url(), max_retries=2)
    with Stopwatch() as clock, pytest.raises(APIConnectionError, match="cannot connect") as caught:
        await way.chat(client)
    assert not isinstance(caught.value, APITimeoutError)
    assert isinstance(caught.value.__cause__, httpx.ConnectError)
    assert len(way.delays) == 2
    assert clock.elapsed < SLACK


async def test_connection_refused_when_a_stream_opens(way: Way) -> None:
    client = way.client(refused_url(), max_retries=1)
    with pytest.raises(APIConnectionError, match="cannot connect"):
        await way.stream_all(client)
    assert len(way.delays) == 1


@pytest.mark.parametrize("streamed", [False, True], ids=["chat", "stream"])
async def test_reset_before_headers_is_retried(
    way: Way, server: ScriptedServer, streamed: bool
) -> None:
    server.enqueue(Disconnect(), times=2)
    server.enqueue(Reply(text="third time lucky"))
    client = way.client(server.base_url, max_retries=2)
    assert await way.answer(client, streamed=streamed) == "third time lucky"
    assert len(server.chat_requests) == 3
    assert len(way.delays) == 2
    assert_pool_released(client)


async def test_reset_before_headers_gives_up_after_max_retries(
    way: Way, server: ScriptedServer
) -> None:
    server.enqueue(Disconnect(), times=5)
    client = way.client(server.base_url, max_retries=3)
    with pytest.raises(APIConnectionError) as caught:
        await way.chat(client)
    assert not isinstance(caught.value, APITimeoutError)
    assert len(server.chat_requests) == 4
    assert server.pending() == 1


async def test_dropped_mid_stream_keeps_the_partial_answer_and_is_not_retried(
    way: Way, server: ScriptedServer
) -> None:
    text = "one two three four five six seven eight"
    server.enqueue(Reply(text=text, drop_after=5))
    server.enqueue(Reply(text="a retry must not happen"))
    client = way.client(server.base_url, max_retries=3)
    chunks: list = []
    with pytest.raises(StreamError, match="cut short") as caught:
        await way.stream_collect(client, chunks)
    partial = caught.value.partial
    assert partial is not None
    # Role chunk first, then one word per event: four words arrived before the drop.
    assert partial.content == "one two three four"
    assert streamed_text(chunks) == partial.content
    assert partial.finish_reason is None
    assert len(server.chat_requests) == 1
    assert way.delays == []
    assert_pool_released(client)
    # The client is still usable after the drop.
    assert (await way.chat(client)).content == "a retry must not happen"


async def test_dropped_mid_body_is_retried_as_a_connection_failure(
    way: Way, server: ScriptedServer
) -> None:
    server.enqueue(Reply(text="half of this arrives", drop_after=0))
    server.enqueue(Reply(text="whole answer"))
    client = way.client(server.base_url, max_retries=1)
    answer = await way.chat(client)
    assert answer.content == "whole answer"
    assert len(server.chat_requests) == 2


async def test_dropped_mid_body_gives_up_as_a_connection_error(
    way: Way, server: ScriptedServer
) -> None:
    server.enqueue(Reply(text="half of this arrives", drop_after=0), times=2)
    client = way.client(server.base_url, max_retries=1)
    with pytest.raises(APIConnectionError):
        await way.chat(client)
    assert_pool_released(client)


@pytest.mark.parametrize("streamed", [False, True], ids=["chat", "stream"])
async def test_stall_before_the_first_byte_times_out_on_time(
    way: Way, server: ScriptedServer, streamed: bool
) -> None:
    server.enqueue(Reply(text="too late", first_byte_delay=3.0))
    client = way.client(server.base_url, timeout=read_timeout(READ_TIMEOUT), max_retries=0)
    with Stopwatch() as clock, pytest.raises(APITimeoutError, match="read timeout") as caught:
        await way.answer(client, streamed=streamed)
    assert READ_TIMEOUT <= clock.elapsed < READ_TIMEOUT + SLACK
    assert isinstance(caught.value.__cause__, httpx.ReadTimeout)
    assert_pool_released(client)


async def test_stall_before_the_first_byte_is_retried_within_a_bounded_time(
    way: Way, server: ScriptedServer
) -> None:
    server.enqueue(Reply(text="too late", first_byte_delay=3.0), times=3)
    client = way.client(server.base_url, timeout=read_timeout(READ_TIMEOUT), max_retries=2)
    with Stopwatch() as clock, pytest.raises(APITimeoutError):
        await way.chat(client)
    attempts = 3
    assert len(server.chat_requests) == attempts
    assert attempts * READ_TIMEOUT <= clock.elapsed < attempts * READ_TIMEOUT + SLACK


async def test_stall_between_chunks_is_a_stream_error_with_what_arrived(way: Way) -> None:
    with StallingServer(["Hello", " there", ","], stall=5.0) as stalling:
        client = way.client(stalling.base_url, timeout=read_timeout(READ_TIMEOUT), max_retries=3)
        chunks: list = []
        with Stopwatch() as clock, pytest.raises(StreamError, match="read timeout") as caught:
            await way.stream_collect(client, chunks)
        assert READ_TIMEOUT <= clock.elapsed < READ_TIMEOUT + SLACK
        partial = caught.value.partial
        assert partial is not None
        assert partial.content == "Hello there,"
        assert streamed_text(chunks) == "Hello there,"
        assert isinstance(caught.value.__cause__, httpx.ReadTimeout)
        # A stream that started is never retried: the caller already saw its chunks.
        assert way.delays == []
        assert_pool_released(client)


async def test_silence_after_the_headers_is_a_stream_error_not_a_retry(way: Way) -> None:
    with StallingServer([], stall=5.0) as stalling:
        client = way.client(stalling.base_url, timeout=read_timeout(READ_TIMEOUT), max_retries=3)
        with Stopwatch() as clock, pytest.raises(StreamError) as caught:
            await way.stream_all(client)
        assert READ_TIMEOUT <= clock.elapsed < READ_TIMEOUT + SLACK
        assert caught.value.partial is not None
        assert caught.value.partial.content == ""
        assert way.delays == []


async def test_a_slow_but_steady_stream_is_not_a_timeout(way: Way, server: ScriptedServer) -> None:
    # Each gap is below the read timeout, the whole answer takes far longer than it.
    text = " ".join(f"w{n}" for n in range(6))
    server.enqueue(Reply(text=text, chunk_delay=READ_TIMEOUT / 3))
    client = way.client(server.base_url, timeout=read_timeout(READ_TIMEOUT))
    with Stopwatch() as clock:
        chunks, answer = await way.stream_all(client)
    assert answer.content == text
    assert streamed_text(chunks) == text
    assert clock.elapsed > READ_TIMEOUT

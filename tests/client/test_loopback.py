"""The same client behaviour over real sockets, against the scripted loopback server.

The mock-transport tests pin down the logic; these check it survives a real
network stack: real timeouts, real resets, connections returned to the pool.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from client_harness import Mode

from oaicompat import (
    APIConnectionError,
    APITimeoutError,
    AsyncClient,
    RateLimitError,
    StreamError,
)
from oaicompat.testing.replies import Disconnect, Reply, ScriptedToolCall, rate_limited
from oaicompat.testing.server import ScriptedServer as LoopbackServer


@pytest.fixture(scope="module")
def loopback() -> Iterator[LoopbackServer]:
    with LoopbackServer() as server:
        yield server


@pytest.fixture
def server(loopback: LoopbackServer) -> LoopbackServer:
    loopback.clear()
    return loopback


def real_client(mode: Mode, server: LoopbackServer, **kwargs: Any) -> Any:
    kwargs.setdefault("sleep", mode.delays.append)
    client = mode.client_class(server.base_url, "scripted-model", **kwargs)
    mode._clients.append(client)
    return client


async def test_stream_final_equals_chat(mode: Mode, server: LoopbackServer) -> None:
    reply = Reply(
        text="Checking the weather now.",
        reasoning="The user wants weather.",
        tool_calls=[ScriptedToolCall("weather", {"city": "Oslo"}, id="call_7")],
        cached_tokens=2,
    )
    server.enqueue(reply, times=2)
    client = real_client(mode, server)
    chatted = await mode.chat(client)
    chunks, streamed = await mode.stream_all(client)
    assert streamed.id != chatted.id  # two completions; everything else must match
    assert dataclasses.replace(streamed, id=chatted.id) == chatted
    assert streamed.tool_calls[0].arguments == {"city": "Oslo"}
    assert streamed.usage is not None
    assert streamed.usage.cached_input_tokens == 2
    assert len(chunks) > 3


async def test_read_timeout_between_chunks_is_a_stream_error(
    mode: Mode, server: LoopbackServer
) -> None:
    server.enqueue(Reply(text="first then silence", chunk_delay=2.0))
    client = real_client(mode, server, timeout=httpx.Timeout(5.0, read=0.3))
    with pytest.raises(StreamError, match="read timeout") as caught:
        await mode.stream_all(client)
    partial = caught.value.partial
    assert partial is not None
    assert "first then silence".startswith(partial.content)
    assert partial.latency_s is not None
    assert partial.latency_s >= 0.3
    assert isinstance(caught.value.__cause__, httpx.ReadTimeout)


async def test_slow_first_byte_times_out_and_is_retried(mode: Mode, server: LoopbackServer) -> None:
    server.enqueue(Reply(text="late", first_byte_delay=2.0))
    server.enqueue(Reply(text="on time"))
    client = real_client(mode, server, timeout=httpx.Timeout(5.0, read=0.3))
    response = await mode.chat(client)
    assert response.content == "on time"
    assert len(mode.delays) == 1


async def test_slow_first_byte_gives_up_as_a_timeout(mode: Mode, server: LoopbackServer) -> None:
    server.enqueue(Reply(text="late", first_byte_delay=2.0))
    client = real_client(mode, server, timeout=httpx.Timeout(5.0, read=0.3), max_retries=0)
    with pytest.raises(APITimeoutError, match="read timeout"):
        await mode.chat(client)


async def test_dropped_stream_keeps_its_partial_answer(mode: Mode, server: LoopbackServer) -> None:
    server.enqueue(Reply(text="one two three four five six", drop_after=4))
    client = real_client(mode, server, max_retries=3)
    with pytest.raises(StreamError) as caught:
        await mode.stream_all(client)
    partial = caught.value.partial
    assert partial is not None
    assert partial.content
    assert "one two three four five six".startswith(partial.content)
    assert len(server.chat_requests) == 1


async def test_reset_connection_is_retried_then_reported(
    mode: Mode, server: LoopbackServer
) -> None:
    server.enqueue(Disconnect(), times=3)
    client = real_client(mode, server)
    with pytest.raises(APIConnectionError):
        await mode.chat(client)
    assert len(server.chat_requests) == 3
    assert len(mode.delays) == 2


async def test_rate_limit_waits_what_the_server_says(mode: Mode, server: LoopbackServer) -> None:
    server.enqueue(rate_limited(retry_after=0.25))
    server.enqueue(Reply(text="after the wait"))
    client = real_client(mode, server)
    response = await mode.chat(client)
    assert response.content == "after the wait"
    assert mode.delays == [0.25]


async def test_rate_limit_error_when_retries_run_out(mode: Mode, server: LoopbackServer) -> None:
    server.enqueue(rate_limited(retry_after=1), times=2)
    client = real_client(mode, server, max_retries=1)
    with pytest.raises(RateLimitError) as caught:
        await mode.chat(client)
    assert caught.value.retry_after == 1.0


async def test_gzipped_stream(mode: Mode, server: LoopbackServer) -> None:
    server.enqueue(Reply(text="squeezed through gzip", gzip=True))
    _, final = await mode.stream_all(real_client(mode, server))
    assert final.content == "squeezed through gzip"


async def test_early_exit_leaves_the_client_usable(mode: Mode, server: LoopbackServer) -> None:
    server.enqueue(Reply(text=" ".join(f"w{n}" for n in range(300)), chunk_delay=0.001))
    server.enqueue(Reply(text="next answer"))
    client = real_client(mode, server, timeout=10)
    chunks, stream = await mode.stream_take(client, 2)
    assert stream.closed
    assert len(chunks) == 2
    response = await mode.chat(client)
    assert response.content == "next answer"


# Sockets of a finished loop cannot be closed from the next one; Python warns when it frees them.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_async_client_survives_several_event_loops(server: LoopbackServer) -> None:
    # What a notebook does: asyncio.run() per cell, one client for all of them.
    server.enqueue(Reply(text="first"), Reply(text="second"), Reply(text="third"))
    client = AsyncClient(server.base_url, "scripted-model")

    async def ask() -> str:
        return (await client.chat("Hi")).content

    async def ask_streaming() -> str:
        async with client.stream("Hi") as stream:
            return (await stream.final()).content

    try:
        assert asyncio.run(ask()) == "first"
        assert asyncio.run(ask()) == "second"
        assert asyncio.run(ask_streaming()) == "third"
    finally:
        asyncio.run(client.aclose())
        # Free the dead loops' sockets now, under this test's warning filter, not in a later test.
        gc.collect()


async def test_many_concurrent_streams_on_one_async_client(server: LoopbackServer) -> None:
    client = AsyncClient(server.base_url, "scripted-model")

    async def one(index: int) -> str:
        async with client.stream(f"Say {index}") as stream:
            return (await stream.final()).content

    try:
        answers = await asyncio.gather(*(one(index) for index in range(300)))
    finally:
        await client.aclose()
    assert [answer.endswith(f"Say {index}") for index, answer in enumerate(answers)] == [True] * 300
    assert len(server.chat_requests) == 300

"""Abandoned streams give their connection back: break, an exception, cancellation, timeouts.

Each way of walking away from a stream mid-answer is checked on its own (the
pool holds no connection in use and the next request succeeds), then a
thousand of them in a row on one client, after which the pool is still clean,
no socket is left open and the client still answers.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager

import pytest
from faults_harness import (
    ScriptedServer,
    Way,
    assert_pool_released,
    expected_echo,
    open_descriptors,
    pool_state,
    unique_prompt,
    wait_until,
)

from oaicompat import AsyncClient, Client
from oaicompat._aio_transport import OPT_OUT_ENV

PROMPT = unique_prompt(0, words=60)
"""Echoed back in 60-odd chunks: any abandonment happens with most of the answer unsent."""

STRUCTURED = {
    "type": "object",
    "properties": {
        "answer": {"type": "string", "description": " ".join(f"w{n}" for n in range(60))}
    },
    "required": ["answer"],
}
"""The scripted server fills the field with its description: 60-odd chunks of JSON too."""


class ConsumerFailed(Exception):
    """Raised by a test's own loop body, standing for a bug in the caller's code."""


# One way of walking away each --------------------------------------------------------


def break_sync(client: Client) -> int:
    with client.stream(PROMPT) as stream:
        for seen, _ in enumerate(stream, 1):
            if seen == 3:
                break
    assert stream.closed
    return seen


def raise_sync(client: Client) -> int:
    seen = 0

    def consume() -> None:
        nonlocal seen
        with client.stream(PROMPT) as stream:
            for _ in stream:
                seen += 1
                if seen == 3:
                    raise ConsumerFailed

    with pytest.raises(ConsumerFailed):
        consume()
    return seen


def break_bare_sync(client: Client) -> int:
    # No ``with``: the stream is dropped with the loop, and must close itself then.
    for seen, _ in enumerate(client.stream(PROMPT), 1):
        if seen == 3:
            break
    return seen


@contextmanager
def collector_paused() -> Iterator[None]:
    # A stream kept alive by a reference cycle still lets go of its connection once the
    # collector runs; with the collector paused, only a stream freed at once passes.
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def break_bare_structured_sync(client: Client) -> int:
    with collector_paused():
        for seen, _ in enumerate(client.stream(PROMPT, response_format=STRUCTURED), 1):
            if seen == 3:
                break
        assert_pool_released(client)
    return seen


async def break_async(client: AsyncClient) -> int:
    async with client.stream(PROMPT) as stream:
        seen = 0
        async for _ in stream:
            seen += 1
            if seen == 3:
                break
    assert stream.closed
    return seen


async def raise_async(client: AsyncClient) -> int:
    seen = 0

    async def consume() -> None:
        nonlocal seen
        async with client.stream(PROMPT) as stream:
            async for _ in stream:
                seen += 1
                if seen == 3:
                    raise ConsumerFailed

    with pytest.raises(ConsumerFailed):
        await consume()
    return seen


async def break_bare_async(client: AsyncClient) -> int:
    seen = 0
    async for _ in client.stream(PROMPT):
        seen += 1
        if seen == 3:
            break
    # asyncio closes a dropped async generator in a task of its own: give it its turns.
    await wait_until(lambda: not pool_state(client).busy, timeout=2.0)
    return seen


async def break_bare_structured_async(client: AsyncClient) -> int:
    seen = 0
    with collector_paused():
        async for _ in client.stream(PROMPT, response_format=STRUCTURED):
            seen += 1
            if seen == 3:
                break
        await wait_until(lambda: not pool_state(client).busy, timeout=2.0)
    return seen


async def cancel_task(client: AsyncClient) -> int:
    started = asyncio.Event()
    seen = 0

    async def consume() -> None:
        nonlocal seen
        async with client.stream(PROMPT) as stream:
            async for _ in stream:
                seen += 1
                started.set()
                # A reader that yields to the loop: the task is cancelled mid-answer.
                await asyncio.sleep(0)

    task = asyncio.create_task(consume())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    return seen


class Progress:
    """How many chunks a consumer saw, readable after it was cancelled."""

    seen = 0


if sys.version_info >= (3, 11):

    async def read_past_a_deadline(client: AsyncClient, progress: Progress) -> None:
        # The deadline is set once the first chunk is in, so it always lands mid-answer.
        async with asyncio.timeout(None) as deadline:
            async with client.stream(PROMPT) as stream:
                async for _ in stream:
                    progress.seen += 1
                    if progress.seen == 1:
                        deadline.reschedule(asyncio.get_running_loop().time() + 0.01)
                    await asyncio.sleep(0.002)

else:  # pragma: no cover - Python 3.10 has no asyncio.timeout

    async def read_past_a_deadline(client: AsyncClient, progress: Progress) -> None:
        first_chunk = asyncio.Event()

        async def consume() -> None:
            async with client.stream(PROMPT) as stream:
                async for _ in stream:
                    progress.seen += 1
                    first_chunk.set()
                    await asyncio.sleep(0.002)

        task = asyncio.ensure_future(consume())
        await first_chunk.wait()
        await asyncio.wait_for(task, 0.01)


async def time_out(client: AsyncClient) -> int:
    progress = Progress()
    # asyncio.TimeoutError is the builtin TimeoutError from 3.11 on, its own class before.
    with pytest.raises(asyncio.TimeoutError):
        await read_past_a_deadline(client, progress)
    return progress.seen


SYNC_WAYS: dict[str, Callable[[Client], int]] = {
    "break": break_sync,
    "exception": raise_sync,
    "break-without-with": break_bare_sync,
    "structured-break-without-with": break_bare_structured_sync,
}
ASYNC_WAYS: dict[str, Callable[[AsyncClient], Awaitable[int]]] = {
    "break": break_async,
    "exception": raise_async,
    "break-without-with": break_bare_async,
    "structured-break-without-with": break_bare_structured_async,
    "task-cancel": cancel_task,
    "timeout": time_out,
}


async def walk_away(way_name: str, client: Client | AsyncClient) -> int:
    if isinstance(client, AsyncClient):
        return await ASYNC_WAYS[way_name](client)
    return SYNC_WAYS[way_name](client)


@pytest.fixture
def echo_server(server: ScriptedServer) -> ScriptedServer:
    # Every answer is the default policy's echo; nothing is queued.
    return server


async def assert_next_request_succeeds(way: Way, client: Client | AsyncClient) -> None:
    _, final = await way.stream_all(client, "after")
    assert final.content == expected_echo("after")
    assert (await way.chat(client, "and again")).content == expected_echo("and again")


@pytest.mark.parametrize("name", list(SYNC_WAYS))
async def test_sync_stream_abandoned_releases_its_connection(
    echo_server: ScriptedServer, name: str
) -> None:
    way = Way(is_async=False)
    try:
        client = way.client(echo_server.base_url)
        seen = await walk_away(name, client)
        assert 1 <= seen < 20
        assert_pool_released(client)
        await assert_next_request_succeeds(way, client)
        assert_pool_released(client)
    finally:
        await way.close()


@pytest.mark.parametrize("transport", ["aio", "httpx"])
@pytest.mark.parametrize("name", list(ASYNC_WAYS))
async def test_async_stream_abandoned_releases_its_connection(
    echo_server: ScriptedServer, name: str, transport: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Owned async pools use oaicompat's own transport for http://; httpx's is the fallback.
    monkeypatch.setenv(OPT_OUT_ENV, "1" if transport == "httpx" else "0")
    way = Way(is_async=True)
    try:
        client = way.client(echo_server.base_url)
        seen = await walk_away(name, client)
        assert 1 <= seen < 20
        assert_pool_released(client)
        await assert_next_request_succeeds(way, client)
        assert_pool_released(client)
    finally:
        await way.close()


ABANDONED = 1000


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
async def test_a_thousand_abandoned_streams_leave_the_pool_clean(
    echo_server: ScriptedServer, is_async: bool
) -> None:
    way = Way(is_async=is_async)
    names = list(ASYNC_WAYS if is_async else SYNC_WAYS)
    try:
        client = way.client(echo_server.base_url)
        await assert_next_request_succeeds(way, client)
        gc.collect()
        descriptors_before = open_descriptors()
        for name in itertools.islice(itertools.cycle(names), ABANDONED):
            await walk_away(name, client)
        gc.collect()
        assert_pool_released(client)
        # An abandoned connection cannot be reused (its answer is half read): it must
        # have been closed, not parked, so the pool holds at most the one idle
        # connection kept from before.
        assert len(pool_state(client).connections) <= 1
        descriptors_after = open_descriptors()
        if descriptors_before is not None and descriptors_after is not None:
            # The server side lives in this process too: both ends must be closed.
            await wait_until(lambda: (open_descriptors() or 0) <= descriptors_before + 2)
        await assert_next_request_succeeds(way, client)
        assert len(echo_server.chat_requests) == ABANDONED + 4
    finally:
        await way.close()

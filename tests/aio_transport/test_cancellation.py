"""Cancelled and abandoned requests close their connection; they never leak or poison the pool."""

from __future__ import annotations

import asyncio
import random

import httpx
import pytest
from aio_harness import (
    MakeClient,
    Peer,
    RawServer,
    answering,
    assert_pool_idle,
    chunk,
    chunked_head,
    pool_of,
    response,
)


async def endless_stream(peer: Peer) -> None:
    while (request := await peer.read_request()) is not None:
        if request.target == "/ok":
            await peer.send(response(b"ok"))
            continue
        await peer.send(chunked_head())
        while True:
            await peer.send(chunk(b"tick"))
            await asyncio.sleep(0.01)


async def test_cancelling_a_reader_mid_body_closes_its_connection(
    make_client: MakeClient,
) -> None:
    async with RawServer(endless_stream) as server:
        client = make_client()
        got_some = asyncio.Event()

        async def read_forever() -> None:
            async with client.stream("GET", server.url) as answer:
                async for _ in answer.aiter_raw():
                    got_some.set()

        reader = asyncio.ensure_future(read_forever())
        await got_some.wait()
        reader.cancel()
        with pytest.raises(asyncio.CancelledError):
            await reader
        assert pool_of(client).connections == []
        assert (await client.get(f"{server.url}/ok")).text == "ok"
        assert server.connections == 2


@pytest.mark.parametrize("stage", ["head", "body"])
async def test_cancelling_while_waiting_for_the_server_closes_the_connection(
    make_client: MakeClient, stage: str
) -> None:
    async def slow(peer: Peer) -> None:
        while (request := await peer.read_request()) is not None:
            if request.target == "/slow":
                if stage == "body":
                    await peer.send(chunked_head(), chunk(b"first"))
                await asyncio.sleep(30)
            await peer.send(response(b"ok"))

    async with RawServer(slow) as server:
        client = make_client()

        async def fetch() -> bytes:
            return (await client.get(f"{server.url}/slow")).content

        task = asyncio.ensure_future(fetch())
        await asyncio.sleep(0.1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert pool_of(client).connections == []
        assert (await client.get(f"{server.url}/ok")).text == "ok"


async def test_cancelling_a_connect_gives_the_slot_back(
    make_client: MakeClient, unanswered_port: int
) -> None:
    client = make_client(max_connections=1)
    task = asyncio.ensure_future(client.get(f"http://127.0.0.1:{unanswered_port}/"))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    async with RawServer(answering(lambda r: response(b"ok"))) as server:
        assert (await client.get(server.url, timeout=httpx.Timeout(5.0, pool=0.5))).text == "ok"


async def test_cancelling_a_blocked_write_closes_the_connection(make_client: MakeClient) -> None:
    stop = asyncio.Event()

    async def never_reads(peer: Peer) -> None:
        await stop.wait()

    async with RawServer(never_reads) as server:
        client = make_client()
        task = asyncio.ensure_future(client.post(server.url, content=b"x" * (48 * 1024 * 1024)))
        await asyncio.sleep(0.2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        stop.set()
        assert pool_of(client).connections == []


async def test_a_stream_closed_early_is_not_reused_and_a_finished_one_is(
    make_client: MakeClient,
) -> None:
    events = [chunk(b"event %d" % n) for n in range(20)]

    async def answer(peer: Peer) -> None:
        while await peer.read_request():
            await peer.send(chunked_head(), *events, chunk(b""), gap=0.005)

    async with RawServer(answer) as server:
        client = make_client()
        async with client.stream("GET", server.url) as early:
            async for _ in early.aiter_raw():
                break
        assert server.connections == 1
        assert pool_of(client).connections == []
        async with client.stream("GET", server.url) as whole:
            pieces = [piece async for piece in whole.aiter_raw()]
        assert len(pieces) == 20
        await client.get(server.url)
        assert server.connections == 2
        assert_pool_idle(client)


async def test_cancellations_at_random_moments_leave_a_consistent_pool(
    make_client: MakeClient,
) -> None:
    events = [chunk(b"e%d" % n) for n in range(30)]

    async def answer(peer: Peer) -> None:
        while await peer.read_request():
            await peer.send(chunked_head(), *events, chunk(b""), gap=0.002)

    rng = random.Random(7)
    async with RawServer(answer) as server:
        client = make_client(max_connections=20)

        async def read() -> None:
            async with client.stream("GET", server.url) as stream:
                async for _ in stream.aiter_raw():
                    pass

        tasks = [asyncio.ensure_future(read()) for _ in range(100)]
        for task in tasks:
            asyncio.get_running_loop().call_later(rng.uniform(0, 0.3), task.cancel)
        results = await asyncio.gather(*tasks, return_exceptions=True)
        assert all(r is None or isinstance(r, asyncio.CancelledError) for r in results)
        assert any(r is None for r in results)
        assert any(isinstance(r, asyncio.CancelledError) for r in results)
        assert_pool_idle(client)
        await asyncio.sleep(0.05)  # let the server notice closed connections
        assert server.open_connections == len(pool_of(client).connections)
        async with client.stream("GET", server.url) as stream:
            assert len([p async for p in stream.aiter_raw()]) == 30

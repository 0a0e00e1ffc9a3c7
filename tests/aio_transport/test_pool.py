"""The connection pool: keep-alive reuse, limits, waiting, expiry."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from aio_harness import (
    MakeClient,
    Peer,
    RawServer,
    Request,
    answering,
    assert_pool_idle,
    chunk,
    chunked_head,
    pool_of,
    response,
)


def echo_path(request: Request) -> bytes:
    return response(f"{request.method} {request.target}".encode())


async def test_sequential_requests_reuse_one_connection(make_client: MakeClient) -> None:
    async with RawServer(answering(echo_path)) as server:
        client = make_client()
        for n in range(5):
            answer = await client.get(f"{server.url}/n/{n}")
            assert answer.text == f"GET /n/{n}"
        assert server.connections == 1
        assert [r.connection for r in server.requests] == [1] * 5
        assert len(pool_of(client).idle_connections) == 1
        assert_pool_idle(client)


async def test_requests_to_two_origins_get_their_own_connections(
    make_client: MakeClient,
) -> None:
    async with RawServer(answering(echo_path)) as one, RawServer(answering(echo_path)) as two:
        client = make_client()
        for _ in range(3):
            assert (await client.get(f"{one.url}/a")).text == "GET /a"
            assert (await client.get(f"{two.url}/b")).text == "GET /b"
        assert (one.connections, two.connections) == (1, 1)


@pytest.mark.parametrize(
    "answer",
    [
        response(b"bye", headers={"Connection": "close"}),
        b"HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nbye",
    ],
    ids=["connection-close", "http-1.0"],
)
async def test_a_connection_the_server_will_close_is_not_reused(
    make_client: MakeClient, answer: bytes
) -> None:
    async def handle(peer: Peer) -> None:
        if await peer.read_request():
            await peer.send(answer)

    async with RawServer(handle) as server:
        client = make_client()
        for _ in range(3):
            assert (await client.get(server.url)).text == "bye"
        assert server.connections == 3
        assert pool_of(client).connections == []


async def test_a_request_saying_connection_close_does_not_keep_its_connection(
    make_client: MakeClient,
) -> None:
    async with RawServer(answering(echo_path)) as server:
        client = make_client()
        for _ in range(2):
            await client.get(server.url, headers={"Connection": "close"})
        assert server.connections == 2
        assert pool_of(client).connections == []


async def test_an_idle_connection_the_server_closed_is_replaced_quietly(
    make_client: MakeClient,
) -> None:
    async def one_answer_per_connection(peer: Peer) -> None:
        if await peer.read_request():
            await peer.send(response(b"ok"))  # keep-alive promised, then closed anyway

    async with RawServer(one_answer_per_connection) as server:
        client = make_client()
        assert (await client.get(server.url)).text == "ok"
        await asyncio.sleep(0.05)  # the FIN arrives while the connection is idle
        assert (await client.get(server.url)).text == "ok"
        assert server.connections == 2


async def test_idle_connections_expire(make_client: MakeClient) -> None:
    async with RawServer(answering(echo_path)) as server:
        client = make_client(keepalive_expiry=0.05)
        await client.get(server.url)
        await client.get(server.url)
        assert server.connections == 1
        await asyncio.sleep(0.1)
        await client.get(server.url)
        assert server.connections == 2
        assert len(pool_of(client).connections) == 1
        # The expired connection was closed, not just forgotten.
        assert await server.peers[0].eof()


async def test_at_most_max_keepalive_connections_stay_open(make_client: MakeClient) -> None:
    async with RawServer(answering(echo_path, gap=0.01)) as server:
        client = make_client(max_keepalive_connections=2)
        await asyncio.gather(*(client.get(server.url) for _ in range(5)))
        assert server.connections == 5
        assert len(pool_of(client).idle_connections) == 2
        closed = [await peer.eof(timeout=0.3) for peer in server.peers]
        assert closed.count(True) == 3


async def test_max_connections_bounds_concurrent_requests(make_client: MakeClient) -> None:
    async def slow(peer: Peer) -> None:
        while await peer.read_request():
            await peer.send(chunked_head(), chunk(b"a"), chunk(b"b"), chunk(b""), gap=0.02)

    async with RawServer(slow) as server:
        client = make_client(max_connections=2)
        answers = await asyncio.gather(*(client.get(server.url) for _ in range(8)))
        assert [a.text for a in answers] == ["ab"] * 8
        assert server.most_open_connections == 2
        assert server.connections == 2
        assert_pool_idle(client)


async def test_waiting_for_a_connection_past_the_pool_timeout_is_a_pool_timeout(
    make_client: MakeClient,
) -> None:
    release = asyncio.Event()

    async def held_open(peer: Peer) -> None:
        while await peer.read_request():
            await peer.send(chunked_head(), chunk(b"first"))
            await release.wait()
            await peer.send(chunk(b""))

    async with RawServer(held_open) as server:
        client = make_client(max_connections=1)
        async with client.stream("GET", server.url) as held:
            with pytest.raises(httpx.PoolTimeout):
                await client.get(server.url, timeout=httpx.Timeout(5.0, pool=0.1))
            assert pool_of(client).waiting_requests == 0
            waiting = asyncio.ensure_future(client.get(server.url))
            await asyncio.sleep(0.05)
            assert pool_of(client).waiting_requests == 1
            release.set()
            assert await held.aread() == b"first"
        release.clear()
        # The waiting request got the connection back once the stream finished.
        server_done = asyncio.get_running_loop().call_later(0.05, release.set)
        assert (await waiting).text == "first"
        server_done.cancel()
        assert server.connections == 1
        assert_pool_idle(client)


async def test_a_cancelled_waiter_leaves_the_queue_and_the_next_gets_the_slot(
    make_client: MakeClient,
) -> None:
    async with RawServer(answering(echo_path)) as server:
        client = make_client(max_connections=1)
        pool = pool_of(client)
        held = await client.send(client.build_request("GET", server.url), stream=True)
        cancelled = asyncio.ensure_future(client.get(f"{server.url}/cancelled"))
        served = asyncio.ensure_future(client.get(f"{server.url}/served"))
        await asyncio.sleep(0.02)
        assert pool.waiting_requests == 2
        cancelled.cancel()
        await asyncio.sleep(0)
        assert pool.waiting_requests == 1
        await held.aread()
        await held.aclose()
        assert (await served).text == "GET /served"
        assert cancelled.cancelled()
        assert [r.target for r in server.requests] == ["/", "/served"]


async def test_a_full_pool_closes_an_idle_connection_to_another_origin(
    make_client: MakeClient,
) -> None:
    async with RawServer(answering(echo_path)) as one, RawServer(answering(echo_path)) as two:
        client = make_client(max_connections=1)
        await client.get(one.url)
        await client.get(two.url)  # would wait forever if the idle one kept its slot
        assert await one.peers[0].eof()
        assert len(pool_of(client).connections) == 1


async def test_aclose_closes_idle_connections(make_client: MakeClient) -> None:
    async with RawServer(answering(echo_path)) as server:
        client = make_client()
        await asyncio.gather(*(client.get(server.url) for _ in range(3)))
        await client.aclose()
        assert pool_of(client).connections == []
        assert all([await peer.eof() for peer in server.peers])

"""Each httpx timeout and failure, raised as httpx raises it, leaving the pool usable."""

from __future__ import annotations

import asyncio
import socket

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
)
from aio_harness import response as full_response


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_connect_timeout(make_client: MakeClient, unanswered_port: int) -> None:
    client = make_client(max_connections=1)
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(httpx.ConnectTimeout):
        await client.get(
            f"http://127.0.0.1:{unanswered_port}/", timeout=httpx.Timeout(5.0, connect=0.2)
        )
    assert 0.15 < loop.time() - started < 2.0
    # The one slot came back: another origin can still be reached.
    async with RawServer(answering(lambda r: full_response(b"ok"))) as server:
        assert (await client.get(server.url, timeout=httpx.Timeout(5.0, pool=0.5))).text == "ok"


async def test_refused_connection_is_a_connect_error(make_client: MakeClient) -> None:
    client = make_client(max_connections=1)
    for _ in range(2):  # the failed attempt gave its slot back
        with pytest.raises(httpx.ConnectError):
            await client.get(
                f"http://127.0.0.1:{free_port()}/", timeout=httpx.Timeout(5.0, pool=0.5)
            )
    assert pool_of(client).connections == []


async def test_no_answer_within_the_read_timeout(make_client: MakeClient) -> None:
    async def silent_then_reads(peer: Peer) -> None:
        await peer.read_request()
        await peer.read_request()  # returns None once the client closes the connection

    async with RawServer(silent_then_reads) as server:
        client = make_client()
        with pytest.raises(httpx.ReadTimeout):
            await client.get(server.url, timeout=httpx.Timeout(5.0, read=0.1))
        assert await server.peers[0].eof()
        assert pool_of(client).connections == []


async def test_read_timeout_between_two_pieces_of_a_stream(make_client: MakeClient) -> None:
    release = asyncio.Event()

    async def stalls(peer: Peer) -> None:
        await peer.read_request()
        await peer.send(chunked_head(), chunk(b"one"), chunk(b"two"))
        await release.wait()

    async with RawServer(stalls) as server:
        client = make_client()
        received: list[bytes] = []

        async def read_all() -> None:
            timeout = httpx.Timeout(5.0, read=0.2)
            async with client.stream("GET", server.url, timeout=timeout) as answer:
                async for piece in answer.aiter_raw():
                    received.append(piece)

        with pytest.raises(httpx.ReadTimeout):
            await read_all()
        release.set()
        assert received == [b"one", b"two"]
        assert pool_of(client).connections == []


async def test_the_read_timeout_is_per_read_not_per_body(make_client: MakeClient) -> None:
    pieces = [chunk(b"%d" % n) for n in range(12)]

    async def trickles(peer: Peer) -> None:
        while await peer.read_request():
            await peer.send(chunked_head(), *pieces, chunk(b""), gap=0.04)

    async with RawServer(trickles) as server:
        client = make_client()
        answer = await client.get(server.url, timeout=httpx.Timeout(5.0, read=0.2))
        assert answer.text == "".join(str(n) for n in range(12))
        assert_pool_idle(client)


async def test_write_timeout_when_the_server_stops_reading(make_client: MakeClient) -> None:
    stop = asyncio.Event()

    async def never_reads(peer: Peer) -> None:
        await stop.wait()

    async with RawServer(never_reads) as server:
        client = make_client()
        body = b"x" * (48 * 1024 * 1024)  # more than the socket buffers on both sides hold
        with pytest.raises(httpx.WriteTimeout):
            await client.post(server.url, content=body, timeout=httpx.Timeout(5.0, write=0.2))
        stop.set()
        assert pool_of(client).connections == []


@pytest.mark.parametrize("when", ["before-answer", "mid-body"])
async def test_a_reset_connection_is_a_read_error(make_client: MakeClient, when: str) -> None:
    async def resets(peer: Peer) -> None:
        await peer.read_request()
        if when == "mid-body":
            await peer.send(full_response(b"0123456789")[:-5])
            await asyncio.sleep(0.05)
        peer.reset()

    async with RawServer(resets) as server:
        client = make_client()
        with pytest.raises(httpx.ReadError):
            await client.get(server.url)
        assert pool_of(client).connections == []


async def test_https_is_not_served() -> None:
    from oaicompat._aio_transport import AioTransport

    transport = AioTransport()
    with pytest.raises(httpx.UnsupportedProtocol):
        await transport.handle_async_request(httpx.Request("GET", "https://localhost/"))
    await transport.aclose()

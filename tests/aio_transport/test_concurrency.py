"""A thousand streams at once on one pool: every byte of every stream where it belongs."""

from __future__ import annotations

import asyncio

import httpx
from aio_harness import MakeClient, Peer, RawServer, assert_pool_idle, chunk, chunked_head

from oaicompat import AsyncClient
from oaicompat._aio_transport import AioTransport
from oaicompat.testing import ScriptedServer

STREAMS = 1000
PIECES = 40


def piece(stream: int, n: int) -> bytes:
    return b"<%d:%d>" % (stream, n)


async def test_a_thousand_concurrent_streams_get_exactly_their_bytes(
    make_client: MakeClient,
) -> None:
    all_connected = asyncio.Event()

    async def serve(peer: Peer) -> None:
        while (request := await peer.read_request()) is not None:
            stream = int(request.target.lstrip("/"))
            if peer.server.connections == STREAMS:
                all_connected.set()
            await peer.send(chunked_head())
            # Hold every answer until all streams are open, so they truly overlap.
            await asyncio.wait_for(all_connected.wait(), 30)
            for n in range(PIECES):
                await peer.send(chunk(piece(stream, n)))
                if n % 8 == 0:
                    await asyncio.sleep(0)
            await peer.send(chunk(b""))

    async with RawServer(serve) as server:
        client = make_client(timeout=60.0, max_connections=STREAMS)

        async def one(stream: int) -> tuple[bytes, int]:
            async with client.stream("GET", f"{server.url}/{stream}") as answer:
                pieces = [p async for p in answer.aiter_raw()]
            return b"".join(pieces), len(pieces)

        results = await asyncio.gather(*(one(stream) for stream in range(STREAMS)))

    for stream, (body, count) in enumerate(results):
        assert body == b"".join(piece(stream, n) for n in range(PIECES))
        assert count == PIECES
    assert server.most_open_connections == STREAMS
    assert_pool_idle(client)


async def test_a_thousand_concurrent_chat_streams_on_an_owned_async_client() -> None:
    with ScriptedServer() as server:
        async with AsyncClient(server.base_url, "scripted-model") as client:
            transport = client._http._transport_for_url(httpx.URL(server.base_url))
            assert isinstance(transport, AioTransport)

            async def one(index: int) -> tuple[str, str, str]:
                prompt = f"stream {index}: " + " ".join(f"w{index}x{n}" for n in range(10))
                async with client.stream(prompt) as stream:
                    text = "".join([chunk.content async for chunk in stream])
                    final = await stream.final()
                return prompt, text, final.content

            results = await asyncio.gather(*(one(index) for index in range(STREAMS)))
            assert transport.waiting_requests == 0
            assert len(transport.idle_connections) == len(transport.connections)
    wrong = [r for r in results if not r[1] == r[2] == f"You said: {r[0]}"]
    assert wrong == []
    received = sorted(request.json["messages"][-1]["content"] for request in server.requests)
    assert received == sorted(prompt for prompt, _, _ in results)

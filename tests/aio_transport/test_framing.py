"""Response bodies as servers frame them, and responses that are framed wrong."""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import AsyncIterator

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


def byte_by_byte(data: bytes) -> list[bytes]:
    return [data[i : i + 1] for i in range(len(data))]


async def test_content_length_body_arrives_whole(make_client: MakeClient) -> None:
    async with RawServer(answering(lambda r: response(b"x" * 1000))) as server:
        client = make_client()
        answer = await client.get(server.url)
        assert answer.content == b"x" * 1000
        assert answer.http_version == "HTTP/1.1"
        assert answer.reason_phrase == "OK"


async def test_a_large_body_read_slowly_is_complete(make_client: MakeClient) -> None:
    body = bytes(range(256)) * 20_000  # 5 MB: fills the receive buffer, pausing the socket
    async with RawServer(answering(lambda r: response(body))) as server:
        client = make_client()
        digest = hashlib.sha256()
        async with client.stream("GET", server.url) as answer:
            async for piece in answer.aiter_raw():
                digest.update(piece)
        assert digest.digest() == hashlib.sha256(body).digest()
        await client.get(server.url)
        assert server.connections == 1


async def test_chunked_body_yields_one_piece_per_chunk(make_client: MakeClient) -> None:
    events = [b"data: %d\n\n" % n for n in range(50)]
    wire = chunked_head() + b"".join(chunk(e) for e in events) + chunk(b"")
    async with RawServer(answering(lambda r: wire)) as server:
        client = make_client()
        async with client.stream("GET", server.url) as answer:
            pieces = [piece async for piece in answer.aiter_raw()]
        assert pieces == events
        await client.get(server.url)
        assert server.connections == 1


@pytest.mark.parametrize("chunked", [True, False], ids=["chunked", "content-length"])
async def test_a_response_sent_byte_by_byte_parses_the_same(
    make_client: MakeClient, chunked: bool
) -> None:
    body = b"hello, world"
    if chunked:
        wire = chunked_head(headers={"X-A": "1"}) + chunk(body[:5]) + chunk(body[5:]) + chunk(b"")
    else:
        wire = response(body, headers={"X-A": "1"})

    async def handle(peer: Peer) -> None:
        while await peer.read_request():
            await peer.send(*byte_by_byte(wire), gap=0.0005)

    async with RawServer(handle) as server:
        client = make_client()
        for _ in range(2):
            answer = await client.get(server.url)
            assert (answer.content, answer.headers["x-a"]) == (body, "1")
        assert server.connections == 1


async def test_a_body_ended_by_close_is_read_to_the_end(make_client: MakeClient) -> None:
    async def handle(peer: Peer) -> None:
        await peer.read_request()
        await peer.send(b"HTTP/1.1 200 OK\r\n\r\n", b"part one, ", b"part two", gap=0.01)

    async with RawServer(handle) as server:
        client = make_client()
        answer = await client.get(server.url)
        assert answer.content == b"part one, part two"
        assert pool_of(client).connections == []


@pytest.mark.parametrize(
    ("method", "wire"),
    [
        ("HEAD", response(b"").replace(b"Content-Length: 0", b"Content-Length: 99")),
        ("GET", b"HTTP/1.1 204 No Content\r\n\r\n"),
        ("GET", b"HTTP/1.1 304 Not Modified\r\nContent-Length: 99\r\n\r\n"),
        ("GET", response(b"")),
    ],
    ids=["head", "204", "304", "empty"],
)
async def test_answers_without_a_body_keep_the_connection(
    make_client: MakeClient, method: str, wire: bytes
) -> None:
    def respond(request: Request) -> bytes:
        return wire if request.method == method and request.target == "/empty" else response(b"ok")

    async with RawServer(answering(respond)) as server:
        client = make_client()
        first = await client.request(method, f"{server.url}/empty")
        assert first.content == b""
        assert (await client.get(f"{server.url}/next")).text == "ok"
        assert server.connections == 1


async def test_informational_answers_before_the_real_one_are_skipped(
    make_client: MakeClient,
) -> None:
    early = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n"
    async with RawServer(answering(lambda r: early + response(b"final"))) as server:
        client = make_client()
        answer = await client.post(server.url, content=b"body")
        assert (answer.status_code, answer.text) == (200, "final")
        assert "link" not in answer.headers


async def test_gzip_is_decoded_by_httpx_above_the_transport(make_client: MakeClient) -> None:
    packed = gzip.compress(b'{"ok": true}')
    wire = response(packed, headers={"Content-Encoding": "gzip"})
    async with RawServer(answering(lambda r: wire)) as server:
        client = make_client()
        assert (await client.get(server.url)).json() == {"ok": True}


async def test_request_bodies_are_sent_whole(make_client: MakeClient) -> None:
    async def parts() -> AsyncIterator[bytes]:
        for n in range(3):
            yield b"part%d;" % n

    async with RawServer(answering(lambda r: response(r.body))) as server:
        client = make_client()
        assert (await client.post(server.url, content=b"x" * 70_000)).content == b"x" * 70_000
        assert (await client.post(server.url, content=parts())).content == b"part0;part1;part2;"
        assert server.requests[1].headers["transfer-encoding"] == "chunked"
        assert server.connections == 1


async def test_bytes_after_the_body_make_the_connection_unusable(
    make_client: MakeClient,
) -> None:
    async with RawServer(answering(lambda r: response(b"ok") + b"garbage")) as server:
        client = make_client()
        assert (await client.get(server.url)).text == "ok"
        assert (await client.get(server.url)).text == "ok"
        assert server.connections == 2


MALFORMED = {
    "bad-status-line": b"HTTP/1.1 OK\r\nContent-Length: 0\r\n\r\n",
    "not-http": b"SSH-2.0-OpenSSH_9.6\r\n\r\n",
    "bad-header": b"HTTP/1.1 200 OK\r\nno colon\r\nContent-Length: 0\r\n\r\n",
    "bad-length": b"HTTP/1.1 200 OK\r\nContent-Length: ten\r\n\r\n",
    "two-lengths": b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
    "bad-chunk-size": chunked_head() + b"xyz\r\nabc\r\n0\r\n\r\n",
    "chunk-without-crlf": chunked_head() + b"3\r\nabcX\r\n0\r\n\r\n",
    "unknown-coding": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: br\r\n\r\n",
    "head-too-large": b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n",
}
TRUNCATED = {
    "nothing": b"",
    "half-a-head": b"HTTP/1.1 200 OK\r\nContent-Le",
    "short-body": response(b"0123456789")[:-4],
    "chunks-cut": chunked_head() + chunk(b"abc") + b"5\r\nab",
    "no-last-chunk": chunked_head() + chunk(b"abc"),
}


@pytest.mark.parametrize(
    "wire", [*MALFORMED.values(), *TRUNCATED.values()], ids=[*MALFORMED, *TRUNCATED]
)
async def test_malformed_or_cut_responses_are_protocol_errors(
    make_client: MakeClient, wire: bytes
) -> None:
    async def handle(peer: Peer) -> None:
        request = await peer.read_request()
        assert request is not None
        if request.target == "/bad":
            await peer.send(wire)
            peer.writer.close()  # cut answers end here; malformed ones must not need it
            return
        await peer.send(response(b"fine"))
        while await peer.read_request():
            await peer.send(response(b"fine"))

    async with RawServer(handle) as server:
        client = make_client()
        with pytest.raises(httpx.RemoteProtocolError):
            await client.get(f"{server.url}/bad")
        assert_pool_idle(client)
        assert pool_of(client).connections == []
        assert (await client.get(f"{server.url}/good")).text == "fine"

"""HTTP/1.1 framing rules of the asyncio transport, on literal bytes (no sockets)."""

from __future__ import annotations

import itertools

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from oaicompat._aio_wire import (
    MAX_HEAD_BYTES,
    ChunkedDecoder,
    body_framing,
    parse_response_head,
    request_head,
)


def test_request_head_is_request_line_then_headers_in_order() -> None:
    head = request_head("POST", b"/v1/chat?x=1", [(b"Host", b"h:1"), (b"Content-Length", b"2")])
    assert head == b"POST /v1/chat?x=1 HTTP/1.1\r\nHost: h:1\r\nContent-Length: 2\r\n\r\n"


@pytest.mark.parametrize("bad", [b"a\r\nX-Injected: 1", b"a\nb", b"a\rb", b"a\0b"])
def test_request_head_refuses_header_injection(bad: bytes) -> None:
    with pytest.raises(httpx.LocalProtocolError):
        request_head("GET", b"/", [(b"X-Note", bad)])
    with pytest.raises(httpx.LocalProtocolError):
        request_head("GET", b"/", [(b"X" + bad, b"v")])


def test_status_line_headers_and_reason_are_parsed() -> None:
    head = parse_response_head(
        b"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nX-Empty:\r\nContent-Length: 12"
    )
    assert (head.status, head.reason, head.http_version) == (404, b"Not Found", b"HTTP/1.1")
    assert head.headers == [
        (b"Content-Type", b"text/plain"),
        (b"X-Empty", b""),
        (b"Content-Length", b"12"),
    ]
    assert head.content_length == 12
    assert not head.chunked
    assert head.keep_alive


def test_a_status_line_without_reason_is_accepted() -> None:
    assert parse_response_head(b"HTTP/1.1 204").status == 204


@pytest.mark.parametrize(
    ("head", "keep_alive"),
    [
        (b"HTTP/1.1 200 OK", True),
        (b"HTTP/1.1 200 OK\r\nConnection: close", False),
        (b"HTTP/1.1 200 OK\r\nConnection: Keep-Alive, CLOSE", False),
        (b"HTTP/1.0 200 OK", False),
        (b"HTTP/1.0 200 OK\r\nConnection: keep-alive", True),
    ],
)
def test_keep_alive_follows_version_and_connection_header(head: bytes, keep_alive: bool) -> None:
    assert parse_response_head(head).keep_alive is keep_alive


@pytest.mark.parametrize(
    "head",
    [
        b"HTTP/2 200 OK",
        b"ICY 200 OK",
        b"HTTP/1.1 20 OK",
        b"HTTP/1.1 2000 OK",
        b"HTTP/1.1 abc OK",
        b"HTTP/1.1 200OK",
        b"HTTP/1.1 200 OK\r\nno colon here",
        b"HTTP/1.1 200 OK\r\n: no name",
        b"HTTP/1.1 200 OK\r\nName : space before colon",
        b"HTTP/1.1 200 OK\r\nX-A: 1\r\n  folded continuation",
        b"HTTP/1.1 200 OK\r\nContent-Length: -1",
        b"HTTP/1.1 200 OK\r\nContent-Length: 1e3",
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6",
        b"HTTP/1.1 200 OK\r\nContent-Length: 5, 6",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked",
    ],
)
def test_malformed_heads_are_protocol_errors(head: bytes) -> None:
    with pytest.raises(httpx.RemoteProtocolError):
        parse_response_head(head)


def test_repeated_equal_content_lengths_are_one_length() -> None:
    head = parse_response_head(b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\nContent-Length: 7, 7")
    assert head.content_length == 7


def test_chunked_with_content_length_trusts_chunks_but_not_the_connection() -> None:
    head = parse_response_head(
        b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: Chunked"
    )
    assert head.chunked
    assert head.content_length is None
    assert not head.keep_alive
    assert body_framing("GET", head) == "chunked"


@pytest.mark.parametrize(
    ("method", "head", "framing"),
    [
        ("GET", b"HTTP/1.1 200 OK\r\nContent-Length: 3", "length"),
        ("GET", b"HTTP/1.1 200 OK\r\nContent-Length: 0", "none"),
        ("HEAD", b"HTTP/1.1 200 OK\r\nContent-Length: 3", "none"),
        ("GET", b"HTTP/1.1 204 No Content\r\nContent-Length: 3", "none"),
        ("GET", b"HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked", "none"),
        ("GET", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked", "chunked"),
        ("GET", b"HTTP/1.1 200 OK", "close"),
    ],
)
def test_body_framing(method: str, head: bytes, framing: str) -> None:
    assert body_framing(method, parse_response_head(head)) == framing


def test_max_head_size_leaves_room_for_real_heads() -> None:
    assert MAX_HEAD_BYTES >= 16 * 1024


def _encode(payloads: list[bytes], trailer: bytes = b"") -> bytes:
    return b"".join(b"%x\r\n%b\r\n" % (len(p), p) for p in payloads) + b"0\r\n" + trailer + b"\r\n"


def test_chunked_body_in_one_piece_gives_one_payload_per_chunk() -> None:
    decoder = ChunkedDecoder()
    pieces = decoder.feed(_encode([b"data: 1\n\n", b"data: 2\n\n"]) + b"NEXT")
    assert pieces == [b"data: 1\n\n", b"data: 2\n\n"]
    assert decoder.done
    assert decoder.leftover == b"NEXT"


def test_chunk_extensions_upper_case_sizes_and_trailers_are_accepted() -> None:
    decoder = ChunkedDecoder()
    body = b"A;name=value\r\n0123456789\r\n0\r\nX-Trailer: 1\r\nX-Other: 2\r\n\r\n"
    assert decoder.feed(body) == [b"0123456789"]
    assert decoder.done
    assert decoder.leftover == b""


@given(
    payloads=st.lists(st.binary(min_size=1, max_size=40), max_size=8),
    cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=12),
)
def test_chunked_body_split_anywhere_gives_the_same_bytes(
    payloads: list[bytes], cuts: list[int]
) -> None:
    wire = _encode(payloads, trailer=b"X-T: 1\r\n")
    edges = sorted({0, len(wire), *(c for c in cuts if c < len(wire))})
    decoder = ChunkedDecoder()
    out: list[bytes] = []
    for start, end in itertools.pairwise(edges):
        assert not decoder.done
        out += decoder.feed(wire[start:end])
    assert decoder.done
    assert b"".join(out) == b"".join(payloads)
    assert all(out)


def test_a_partial_chunk_is_handed_on_before_it_completes() -> None:
    decoder = ChunkedDecoder()
    assert decoder.feed(b"a\r\n01234") == [b"01234"]
    assert decoder.feed(b"56789\r") == [b"56789"]
    assert decoder.feed(b"\n0\r\n\r\n") == []
    assert decoder.done


@pytest.mark.parametrize(
    "wire",
    [
        b"zz\r\nab\r\n",
        b"0x2\r\nab\r\n",
        b"+2\r\nab\r\n",
        b"-2\r\nab\r\n",
        b"1_0\r\n",
        b"\r\nab\r\n",
        b"2\r\nabXY",
        b"2\r\nab\r\nFFFFF" + b"F" * 2000,
    ],
)
def test_malformed_chunks_are_protocol_errors(wire: bytes) -> None:
    with pytest.raises(httpx.RemoteProtocolError):
        ChunkedDecoder().feed(wire)

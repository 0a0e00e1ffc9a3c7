"""HTTP/1.1 framing for `AioTransport`, as plain functions and a small state machine.

No I/O here: the request head is built as bytes, the response head is parsed
from bytes, and chunked bodies are decoded piece by piece, so every rule can be
tested with literal byte strings. Malformed input raises
``httpx.RemoteProtocolError``, a request that cannot be written safely raises
``httpx.LocalProtocolError``: the clients already map both.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx

__all__ = [
    "MAX_HEAD_BYTES",
    "ChunkedDecoder",
    "ResponseHead",
    "body_framing",
    "parse_response_head",
    "request_head",
]

MAX_HEAD_BYTES = 64 * 1024
"""A response head longer than this is refused rather than buffered without bound."""

_MAX_CHUNK_LINE = 1024
_HEX_DIGITS = b"0123456789abcdefABCDEF"
_FORBIDDEN_IN_HEADERS = (b"\r", b"\n", b"\0")

Headers = list[tuple[bytes, bytes]]


def request_head(method: str, target: bytes, headers: Headers) -> bytes:
    """The request line and header block, ready to be written in front of the body."""
    lines = [method.encode("ascii"), b" ", target, b" HTTP/1.1\r\n"]
    for name, value in headers:
        for bad in _FORBIDDEN_IN_HEADERS:
            # A CR or LF from a caller-supplied value would let it inject headers.
            if bad in value or bad in name:
                raise httpx.LocalProtocolError(f"illegal character in header {name!r}")
        lines += (name, b": ", value, b"\r\n")
    lines.append(b"\r\n")
    return b"".join(lines)


@dataclass(frozen=True)
class ResponseHead:
    status: int
    reason: bytes
    http_version: bytes
    headers: Headers
    content_length: int | None
    chunked: bool
    keep_alive: bool
    """Whether the server allows another request on this connection after this body."""


def parse_response_head(head: bytes) -> ResponseHead:
    """Parse a response head (without the blank line that ends it)."""
    status_line, *lines = head.split(b"\r\n")
    version, _, rest = status_line.partition(b" ")
    if version not in (b"HTTP/1.1", b"HTTP/1.0"):
        raise httpx.RemoteProtocolError(f"not an HTTP/1.x status line: {status_line[:80]!r}")
    code = rest[:3]
    if len(code) != 3 or not code.isdigit() or rest[3:4] not in (b"", b" "):
        raise httpx.RemoteProtocolError(f"malformed status line: {status_line[:80]!r}")
    headers: Headers = []
    lengths: set[bytes] = set()
    transfer_encoding: bytes | None = None
    connection = b""
    for line in lines:
        name, colon, value = line.partition(b":")
        if not colon or not name or name[:1] in b" \t" or name[-1:] in b" \t":
            # Includes obsolete line folding: refusing it is what RFC 9112 allows.
            raise httpx.RemoteProtocolError(f"malformed header line: {line[:80]!r}")
        value = value.strip(b" \t")
        headers.append((name, value))
        lowered = name.lower()
        if lowered == b"content-length":
            lengths.update(part.strip(b" \t") for part in value.split(b","))
        elif lowered == b"transfer-encoding":
            transfer_encoding = value.lower() if transfer_encoding is None else b"repeated"
        elif lowered == b"connection":
            connection += b"," + value.lower()

    content_length: int | None = None
    if lengths:
        if len(lengths) != 1 or not next(iter(lengths)).isdigit():
            raise httpx.RemoteProtocolError(f"invalid Content-Length: {sorted(lengths)!r}")
        content_length = int(next(iter(lengths)))
    if transfer_encoding is not None and transfer_encoding != b"chunked":
        raise httpx.RemoteProtocolError(
            f"unsupported Transfer-Encoding: {transfer_encoding.decode('latin-1')!r}"
        )
    tokens = {token.strip() for token in connection.split(b",")}
    keep_alive = b"close" not in tokens and (version == b"HTTP/1.1" or b"keep-alive" in tokens)
    if transfer_encoding is not None and content_length is not None:
        # Both framings at once is how responses get smuggled: trust the chunked
        # framing for this body, never the connection afterwards (RFC 9112, 6.3).
        content_length = None
        keep_alive = False
    return ResponseHead(
        status=int(code),
        reason=rest[4:],
        http_version=version,
        headers=headers,
        content_length=content_length,
        chunked=transfer_encoding is not None,
        keep_alive=keep_alive,
    )


def body_framing(method: str, head: ResponseHead) -> str:
    """How the body ends: ``none``, ``length``, ``chunked`` or ``close`` (at end of stream)."""
    status = head.status
    if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
        return "none"
    if head.chunked:
        return "chunked"
    if head.content_length is not None:
        return "length" if head.content_length else "none"
    return "close"


class ChunkedDecoder:
    """Decodes a chunked body fed in arbitrary pieces.

    ``feed`` returns the payloads that the piece completed, one per HTTP chunk
    as the server framed them (servers send one SSE event per chunk, and a
    stream parser fed event by event hands each on before a later one fails),
    plus the part of an unfinished chunk, so a slow stream is passed on as it
    arrives. ``done`` turns
    true after the last chunk and its trailers, and ``leftover`` then holds
    whatever followed the body (a well-behaved server sends nothing).
    """

    __slots__ = ("_pending", "_remaining", "_state", "done", "leftover")

    _SIZE, _DATA, _DATA_END, _TRAILERS = range(4)

    def __init__(self) -> None:
        self._state = self._SIZE
        self._remaining = 0
        self._pending = b""
        self.done = False
        self.leftover = b""

    def feed(self, data: bytes) -> list[bytes]:
        if self._pending:
            data = self._pending + data
            self._pending = b""
        out: list[bytes] = []
        pos = 0
        end = len(data)
        while pos < end:
            state = self._state
            if state == self._DATA:
                take = min(self._remaining, end - pos)
                out.append(data if take == end else data[pos : pos + take])
                pos += take
                self._remaining -= take
                if not self._remaining:
                    self._state = self._DATA_END
            elif state == self._DATA_END:
                if end - pos < 2:
                    break
                if data[pos : pos + 2] != b"\r\n":
                    raise httpx.RemoteProtocolError("chunk data not followed by CRLF")
                pos += 2
                self._state = self._SIZE
            else:
                newline = data.find(b"\r\n", pos)
                if newline < 0:
                    if end - pos > _MAX_CHUNK_LINE:
                        raise httpx.RemoteProtocolError("chunk size line too long")
                    break
                line = data[pos:newline]
                pos = newline + 2
                if state == self._SIZE:
                    self._start_chunk(line)
                elif not line:
                    self.done = True
                    self.leftover = data[pos:]
                    return out
        self._pending = data[pos:]
        return out

    def _start_chunk(self, line: bytes) -> None:
        size_text = line.split(b";", 1)[0].strip(b" \t")
        # int(..., 16) alone would also take "0x1f", "+1f" and "1_f".
        if not size_text or size_text.strip(_HEX_DIGITS):
            raise httpx.RemoteProtocolError(f"invalid chunk size: {line[:40]!r}")
        size = int(size_text, 16)
        if size:
            self._remaining = size
            self._state = self._DATA
        else:
            self._state = self._TRAILERS

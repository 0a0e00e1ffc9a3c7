"""A loopback HTTP/1.1 server in the test's own event loop, answering with scripted bytes.

Each test gives a handler that gets a `Peer` per accepted connection and
decides, byte by byte if it wants, what goes back: well-formed answers,
malformed ones, silence, resets. The server counts connections and records
requests, so tests can tell a reused connection from a new one.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from types import TracebackType

import httpx

from oaicompat._aio_transport import AioTransport


@dataclass
class Request:
    method: str
    target: str
    headers: dict[str, str]
    body: bytes
    connection: int
    """The number of the connection it came on (1 for the first accepted)."""


@dataclass
class Peer:
    """One accepted connection, as the handler sees it."""

    number: int
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    server: RawServer
    requests: list[Request] = field(default_factory=list)
    client_closed: asyncio.Event = field(default_factory=asyncio.Event)

    async def read_request(self) -> Request | None:
        """The next request on this connection, or None when the client closed it."""
        try:
            head = await self.reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            self.client_closed.set()
            return None
        request_line, *lines = head[:-4].decode("latin-1").split("\r\n")
        method, target, _ = request_line.split(" ", 2)
        headers: dict[str, str] = {}
        for line in lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if headers.get("transfer-encoding") == "chunked":
            body = await self._read_chunked()
        else:
            body = await self.reader.readexactly(int(headers.get("content-length", "0")))
        request = Request(method, target, headers, body, self.number)
        self.requests.append(request)
        self.server.requests.append(request)
        return request

    async def _read_chunked(self) -> bytes:
        parts = []
        while True:
            size = int((await self.reader.readuntil(b"\r\n")).strip(), 16)
            if not size:
                await self.reader.readuntil(b"\r\n")
                return b"".join(parts)
            parts.append(await self.reader.readexactly(size))
            await self.reader.readexactly(2)

    async def send(self, *pieces: bytes, gap: float = 0.0) -> None:
        """Write ``pieces`` one by one, ``gap`` seconds apart (0: as fast as possible)."""
        for piece in pieces:
            self.writer.write(piece)
            await self.writer.drain()
            if gap:
                await asyncio.sleep(gap)

    def reset(self) -> None:
        """Close with a TCP reset instead of an orderly FIN."""
        sock = self.writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.writer.close()

    async def eof(self, timeout: float = 5.0) -> bool:
        """Whether the client closes this connection within ``timeout`` seconds.

        Only for handlers that keep calling `read_request` (as `answering` does).
        """
        try:
            await asyncio.wait_for(self.client_closed.wait(), timeout)
        except asyncio.TimeoutError:
            return False
        return True


Handler = Callable[[Peer], Awaitable[None]]

MakeClient = Callable[..., httpx.AsyncClient]
"""The ``make_client`` fixture: ``make_client(timeout=..., **httpx_limits)``."""


class RawServer:
    """``async with RawServer(handler) as server: ... server.url ...``."""

    def __init__(self, handler: Handler) -> None:
        self._handler = handler
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: list[asyncio.StreamWriter] = []
        self.peers: list[Peer] = []
        self.requests: list[Request] = []
        self.open_connections = 0
        self.most_open_connections = 0

    @property
    def connections(self) -> int:
        """How many connections were accepted so far."""
        return len(self.peers)

    @property
    def url(self) -> str:
        assert self._server is not None
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def __aenter__(self) -> RawServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, backlog=2048)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        assert self._server is not None
        self._server.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for writer in self._writers:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.append(writer)
        peer = Peer(len(self.peers) + 1, reader, writer, self)
        self.peers.append(peer)
        self.open_connections += 1
        self.most_open_connections = max(self.most_open_connections, self.open_connections)
        try:
            await self._handler(peer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            # Cancelled only by __aexit__; ending normally keeps asyncio from logging it.
            pass
        finally:
            self.open_connections -= 1
            self._tasks.discard(task)
            writer.close()


def response(
    body: bytes = b"", status: str = "200 OK", headers: dict[str, str] | None = None
) -> bytes:
    """A complete Content-Length response."""
    head = [f"HTTP/1.1 {status}", f"Content-Length: {len(body)}"]
    head += [f"{name}: {value}" for name, value in (headers or {}).items()]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def chunked_head(headers: dict[str, str] | None = None, status: str = "200 OK") -> bytes:
    head = [f"HTTP/1.1 {status}", "Transfer-Encoding: chunked"]
    head += [f"{name}: {value}" for name, value in (headers or {}).items()]
    return ("\r\n".join(head) + "\r\n\r\n").encode()


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%b\r\n" % (len(data), data) if data else b"0\r\n\r\n"


def answering(respond: Callable[[Request], bytes | list[bytes]], gap: float = 0.0) -> Handler:
    """A handler that answers every request on a connection with ``respond(request)``."""

    async def handle(peer: Peer) -> None:
        while (request := await peer.read_request()) is not None:
            answer = respond(request)
            await peer.send(*(answer if isinstance(answer, list) else [answer]), gap=gap)

    return handle


def pool_of(client: httpx.AsyncClient) -> AioTransport:
    """The `AioTransport` behind a client made by the ``make_client`` fixture."""
    transport = client._transport
    assert isinstance(transport, AioTransport)
    return transport


def assert_pool_idle(client: httpx.AsyncClient) -> None:
    """Nothing borrowed from the pool and nobody waiting for it."""
    pool = pool_of(client)
    assert pool.waiting_requests == 0
    busy = [conn for conn in pool.connections if conn not in pool.idle_connections]
    assert busy == []

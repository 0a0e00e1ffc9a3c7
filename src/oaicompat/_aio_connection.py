"""One HTTP/1.1 connection on an `asyncio.Protocol`, and the response body read off it.

The pool in ``_aio_transport`` hands a `Connection` to one request at a time;
`ResponseBody` gives it back through a callback once the body was read to its
end, or has it closed when the body is abandoned, so a half-read answer can
never be taken for the next one.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import cast

import httpx

from oaicompat._aio_wire import MAX_HEAD_BYTES, ChunkedDecoder, ResponseHead, parse_response_head

__all__ = ["Connection", "Origin", "ResponseBody", "connect", "time_out"]

Origin = tuple[str, int]

_READ_HIGH_WATER = 256 * 1024
"""Buffered unread bytes past which the socket stops being read (a slow consumer)."""

_FAIR_SHARE = 16
"""Body pieces handed out in a row without suspending before the reader yields to the loop."""


def time_out(waiter: asyncio.Future[bool]) -> None:
    """Timer callback: resolve ``waiter`` as "timed out" unless an event came first."""
    if not waiter.done():
        waiter.set_result(False)


class Connection(asyncio.Protocol):
    """One TCP connection: a receive buffer and a single waiter for whoever uses it.

    Only one task uses a connection at a time (the pool hands it out), and it
    either writes or reads, so one waiter serves data, EOF and drain events.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, origin: Origin) -> None:
        self.loop = loop
        self.origin = origin
        self.idle_since = 0.0
        self.waited = False
        """Whether the last `receive` had to wait for data (rather than find it buffered)."""
        self._transport: asyncio.Transport | None = None
        self._pieces: list[bytes] = []
        self._buffered = 0
        self._eof = False
        self._lost = False
        self._closed_here = False
        self._error: BaseException | None = None
        self._reading_paused = False
        self._writing_paused = False
        self._waiter: asyncio.Future[bool] | None = None

    # asyncio.Protocol ----------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self._pieces.append(data)
        self._buffered += len(data)
        if self._buffered > _READ_HIGH_WATER and not self._reading_paused:
            self._reading_paused = True
            assert self._transport is not None
            self._transport.pause_reading()
        self._wake()

    def eof_received(self) -> None:
        self._eof = True
        self._wake()

    def connection_lost(self, exc: Exception | None) -> None:
        self._eof = self._lost = True
        self._error = exc
        self._wake()

    def pause_writing(self) -> None:
        self._writing_paused = True

    def resume_writing(self) -> None:
        self._writing_paused = False
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(True)

    # For the pool and the transport --------------------------------------

    def is_idle_usable(self) -> bool:
        """Open, not half-closed by the server, and holding no stray bytes."""
        return not self._eof and not self._pieces

    def is_closed(self) -> bool:
        return self._lost or self._closed_here

    def close(self) -> None:
        """Drop the connection now; a task reading it gets `httpx.ReadError`."""
        if self._closed_here:
            return
        self._closed_here = self._eof = True
        self._wake()
        transport = self._transport
        if transport is not None and not self.loop.is_closed():
            # abort, not close: whatever is unsent or unread belongs to a failed exchange.
            transport.abort()

    async def _wait(self, timeout: float | None) -> bool:
        """Wait for the next protocol event; False when ``timeout`` passed first."""
        waiter: asyncio.Future[bool] = self.loop.create_future()
        self._waiter = waiter
        timer = None if timeout is None else self.loop.call_later(timeout, time_out, waiter)
        try:
            return await waiter
        finally:
            self._waiter = None
            if timer is not None:
                timer.cancel()

    async def send(self, data: bytes, timeout: float | None) -> None:
        transport = self._transport
        if transport is None or self._lost or self._closed_here or transport.is_closing():
            raise httpx.WriteError("the connection was closed before the request was sent")
        transport.write(data)
        while self._writing_paused:
            if self.is_closed():
                raise httpx.WriteError(self._describe_loss("while sending the request"))
            if not await self._wait(timeout):
                raise httpx.WriteTimeout("timed out sending the request")

    async def receive(self, timeout: float | None) -> bytes:
        """The bytes buffered so far, waiting for some if there are none; b"" at EOF."""
        self.waited = False
        while not self._pieces:
            if self._eof:
                if self._closed_here or self._error is not None:
                    raise httpx.ReadError(self._describe_loss("while reading the response"))
                return b""
            self.waited = True
            if not await self._wait(timeout):
                raise httpx.ReadTimeout("timed out waiting for the server")
        pieces = self._pieces
        data = pieces[0] if len(pieces) == 1 else b"".join(pieces)
        pieces.clear()
        self._buffered = 0
        if self._reading_paused and not self._lost:
            self._reading_paused = False
            assert self._transport is not None
            self._transport.resume_reading()
        return data

    def unread(self, data: bytes) -> None:
        if data:
            self._pieces.insert(0, data)
            self._buffered += len(data)

    def _describe_loss(self, when: str) -> str:
        if self._closed_here:
            return f"the connection was closed {when}"
        if self._error is not None:
            return f"connection lost {when}: {self._error}"
        return f"the server closed the connection {when}"

    async def read_head(self, timeout: float | None) -> ResponseHead:
        """The next final (non-1xx) response head; the bytes after it stay buffered."""
        while True:
            data = b""
            while True:
                piece = await self.receive(timeout)
                if not piece:
                    if data:
                        raise httpx.RemoteProtocolError(
                            "the server closed the connection in the middle of the response head"
                        )
                    raise httpx.RemoteProtocolError(
                        "Server disconnected without sending a response."
                    )
                scanned = len(data)
                data = data + piece if data else piece
                end = data.find(b"\r\n\r\n", max(0, scanned - 3))
                if end > MAX_HEAD_BYTES or (end < 0 and len(data) > MAX_HEAD_BYTES):
                    raise httpx.RemoteProtocolError("the response head is too large")
                if end >= 0:
                    break
            self.unread(data[end + 4 :])
            head = parse_response_head(data[:end])
            # 1xx answers (100 Continue, 103 Early Hints) come before the real one.
            if not 100 <= head.status < 200 or head.status == 101:
                return head


class ResponseBody(httpx.AsyncByteStream):
    """The body of one response, read off its connection as the caller iterates.

    The connection goes to ``give_back(connection, reusable)`` the moment the last
    byte of the body is read; a body closed before that (an abandoned or cancelled stream)
    closes the connection instead, since its unread rest would be taken for
    the next response.
    """

    __slots__ = (
        "_conn",
        "_decoder",
        "_framing",
        "_give_back",
        "_keep_alive",
        "_ready",
        "_remaining",
        "_streak",
        "_timeout",
    )

    def __init__(
        self,
        give_back: Callable[[Connection, bool], None],
        conn: Connection,
        framing: str,
        head: ResponseHead,
        keep_alive: bool,
        timeout: float | None,
    ) -> None:
        self._give_back = give_back
        self._conn: Connection | None = conn
        self._framing = framing
        self._remaining = head.content_length or 0
        self._decoder = ChunkedDecoder() if framing == "chunked" else None
        self._keep_alive = keep_alive
        self._timeout = timeout
        self._ready: deque[bytes] = deque()
        self._streak = 0
        if framing == "none":
            self._release(keep_alive)

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self

    async def __anext__(self) -> bytes:
        ready = self._ready
        try:
            if not ready:
                await self._fill()
                if not ready:
                    raise StopAsyncIteration
            self._streak += 1
            if self._streak >= _FAIR_SHARE:
                # Pieces that were already buffered are returned without suspending;
                # now and then yield anyway, so one busy stream cannot hold the loop.
                self._streak = 0
                await asyncio.sleep(0)
        except StopAsyncIteration:
            raise
        except BaseException:
            # Cancelled, timed out or malformed: the connection's state is unknown.
            self._release(reuse=False)
            raise
        return ready.popleft()

    async def _fill(self) -> None:
        """Read until at least one piece of the body is ready, or the body has ended."""
        while not self._ready and self._conn is not None:
            conn = self._conn
            data = await conn.receive(self._timeout)
            if conn.waited:
                self._streak = 0
            self._take(conn, data)

    def _take(self, conn: Connection, data: bytes) -> None:
        if self._decoder is not None:
            self._take_chunked(conn, self._decoder, data)
        elif self._framing == "close":
            if data:
                self._ready.append(data)
            else:
                self._release(reuse=False)
        elif not data:
            raise httpx.RemoteProtocolError(
                "peer closed connection without sending complete message body: "
                f"{self._remaining} bytes missing"
            )
        elif len(data) < self._remaining:
            self._remaining -= len(data)
            self._ready.append(data)
        else:
            conn.unread(data[self._remaining :])
            self._ready.append(data[: self._remaining] if len(data) > self._remaining else data)
            self._remaining = 0
            self._release(self._keep_alive)

    def _take_chunked(self, conn: Connection, decoder: ChunkedDecoder, data: bytes) -> None:
        if not data:
            raise httpx.RemoteProtocolError(
                "peer closed connection without sending complete message body: "
                "incomplete chunked read"
            )
        self._ready.extend(decoder.feed(data))
        if decoder.done:
            conn.unread(decoder.leftover)
            self._release(self._keep_alive)

    def _release(self, reuse: bool) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            self._give_back(conn, reuse)

    async def aclose(self) -> None:
        self._ready.clear()
        self._release(reuse=False)


async def connect(
    loop: asyncio.AbstractEventLoop, origin: Origin, timeout: float | None
) -> Connection:
    host, port = origin
    conn = Connection(loop, origin)
    # A task of its own, so that a timeout or a cancellation that lands just as the
    # connection is made can still close it (asyncio.wait_for leaks it on 3.10/3.11).
    attempt = loop.create_task(loop.create_connection(lambda: conn, host, port))
    try:
        done, _ = await asyncio.wait((attempt,), timeout=timeout)
    except BaseException:
        _abandon(attempt)
        raise
    if not done:
        _abandon(attempt)
        raise httpx.ConnectTimeout(f"timed out connecting to {host}:{port}")
    error = attempt.exception()
    if isinstance(error, OSError):
        raise httpx.ConnectError(str(error) or type(error).__name__) from error
    if error is not None:
        raise error
    return conn


def _abandon(attempt: asyncio.Task[tuple[asyncio.BaseTransport, asyncio.BaseProtocol]]) -> None:
    def close_if_connected(
        task: asyncio.Task[tuple[asyncio.BaseTransport, asyncio.BaseProtocol]],
    ) -> None:
        if not task.cancelled() and task.exception() is None:
            task.result()[0].close()

    attempt.cancel()
    attempt.add_done_callback(close_if_connected)

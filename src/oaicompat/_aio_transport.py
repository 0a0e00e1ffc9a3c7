"""`AioTransport`: HTTP/1.1 over plain asyncio for the local servers `AsyncClient` talks to.

httpx's default async transport goes through httpcore and anyio, whose
per-request cost is several times that of the HTTP work itself; against a
local server (Ollama, vLLM, llama.cpp...) that overhead is most of what a
short call costs. This transport does the same job on an `asyncio.Protocol`:
one write per request, a byte-level response parser (``_aio_wire``), a
keep-alive pool per origin, httpx's timeouts and exceptions. httpx still does
everything above the transport (cookies, content decoding, redirects, hooks).

It serves ``http://`` only; ``https://``, proxies and HTTP/2 stay with httpx's
own transport (see `owned_client_mounts`).
"""

from __future__ import annotations

import asyncio
import os
from collections import deque
from collections.abc import AsyncGenerator
from typing import cast
from urllib.request import getproxies

import httpx

from oaicompat._aio_connection import Connection, Origin, ResponseBody, connect, time_out
from oaicompat._aio_wire import body_framing, request_head

__all__ = ["OPT_OUT_ENV", "AioTransport", "owned_client_mounts"]

OPT_OUT_ENV = "OAICOMPAT_HTTPX_TRANSPORT"
"""Set to 1 to have owned `AsyncClient` pools use httpx's default transport instead."""

_SWEEP_INTERVAL = 1.0


def owned_client_mounts(
    limits: httpx.Limits, *, http2: bool
) -> dict[str, httpx.AsyncBaseTransport] | None:
    """The ``mounts`` for an ``httpx.AsyncClient`` that oaicompat creates itself.

    None (httpx's own transport for everything) when HTTP/2 was asked for, when
    the environment names a proxy for plain http (the mount would bypass it),
    or when ``OAICOMPAT_HTTPX_TRANSPORT`` is set to anything but ``0``.
    """
    if http2 or os.environ.get(OPT_OUT_ENV, "").strip() not in ("", "0"):
        return None
    proxies = getproxies()
    if proxies.get("http") or proxies.get("all"):
        return None
    transport = AioTransport(limits)
    mounts: dict[str, httpx.AsyncBaseTransport] = {"http://": transport}
    for pattern in _no_proxy_patterns():
        mounts[pattern] = transport
    return mounts


def _no_proxy_patterns() -> list[str]:
    """``http://`` patterns for the hosts in ``NO_PROXY``.

    httpx mounts "no proxy, use the default transport" for each of them, and those
    mounts are more specific than ``http://``: without patterns of our own, the
    common ``NO_PROXY=localhost,127.0.0.1`` would send local servers back to httpcore.
    """
    try:
        from httpx._utils import get_environment_proxies
    except ImportError:  # a private helper; without it NO_PROXY hosts keep httpx's transport
        return []
    patterns = []
    for key, proxy in get_environment_proxies().items():
        scheme, _, rest = key.partition("://")
        if proxy is None and scheme in ("all", "http"):
            patterns.append(f"http://{rest}")
    return patterns


class AioTransport(httpx.AsyncBaseTransport):
    """An ``httpx.AsyncBaseTransport`` for ``http://`` URLs on asyncio, with a keep-alive pool.

    ``AioTransport(limits=httpx.Limits(...))``: ``max_connections`` bounds the
    open connections over all origins (a request waits up to the pool timeout
    for one, then raises ``httpx.PoolTimeout``), ``max_keepalive_connections``
    the idle ones kept, ``keepalive_expiry`` how long one may stay idle.
    Timeouts come from the request as httpx sets them (connect, read between
    two pieces of the body, write, pool) and raise httpx's own exceptions.

    An `AsyncClient` that creates its own httpx client mounts this transport for
    ``http://``; ``https://``, proxies, HTTP/2 and an ``http_client`` passed in
    keep httpx's transport. Set the environment variable
    ``OAICOMPAT_HTTPX_TRANSPORT=1`` to use httpx's transport for everything.

    The pool belongs to the event loop that first uses it: on another loop it
    starts afresh, and when a loop shuts down (the end of ``asyncio.run``) its
    idle connections are closed while the loop can still close them.
    """

    def __init__(self, limits: httpx.Limits | None = None) -> None:
        limits = limits or httpx.Limits()
        self._max_connections = limits.max_connections
        self._max_idle = limits.max_keepalive_connections
        self._keepalive_expiry = limits.keepalive_expiry
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_watch: AsyncGenerator[None, None] | None = None
        self._idle: dict[Origin, list[Connection]] = {}
        self._idle_count = 0
        self._busy: set[Connection] = set()
        self._open = 0
        self._waiters: deque[asyncio.Future[bool]] = deque()
        self._next_sweep = 0.0

    @property
    def connections(self) -> list[Connection]:
        """Every connection the pool holds, busy or idle (for tests and diagnostics)."""
        return [*self._busy, *self.idle_connections]

    @property
    def idle_connections(self) -> list[Connection]:
        """Connections kept open for reuse, the next one to be reused last per origin."""
        return [conn for stack in self._idle.values() for conn in stack]

    @property
    def waiting_requests(self) -> int:
        """Requests waiting for a free connection."""
        return sum(not waiter.done() for waiter in self._waiters)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        if url.scheme != "http":
            raise httpx.UnsupportedProtocol(
                f"AioTransport serves http:// URLs only, not {url.scheme}://"
            )
        timeouts = request.extensions.get("timeout") or {}
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            await self._bind(loop)
        head = request_head(request.method, url.raw_path, request.headers.raw)
        try:
            body: bytes | None = request.content
        except httpx.RequestNotRead:
            body = None
        conn = await self._acquire((url.host, url.port or 80), timeouts)
        write_timeout = timeouts.get("write")
        read_timeout = timeouts.get("read")
        try:
            if body is not None:
                await conn.send(head + body, write_timeout)
            else:
                await conn.send(head, write_timeout)
                await self._send_streamed_body(conn, request, write_timeout)
            response_head = await conn.read_head(read_timeout)
        except BaseException:
            self._release(conn, reuse=False)
            raise
        keep_alive = response_head.keep_alive and not _asks_to_close(request)
        framing = body_framing(request.method, response_head)
        if response_head.status == 101:
            keep_alive = False  # a protocol switch this transport does not speak
        stream = ResponseBody(self._release, conn, framing, response_head, keep_alive, read_timeout)
        return httpx.Response(
            response_head.status,
            headers=response_head.headers,
            stream=stream,
            extensions={
                "http_version": response_head.http_version,
                "reason_phrase": response_head.reason,
            },
        )

    async def _send_streamed_body(
        self, conn: Connection, request: httpx.Request, timeout: float | None
    ) -> None:
        chunked = request.headers.get("transfer-encoding", "").lower() == "chunked"
        stream = cast(httpx.AsyncByteStream, request.stream)
        async for part in stream:
            if part:
                await conn.send(b"%x\r\n%b\r\n" % (len(part), part) if chunked else part, timeout)
        if chunked:
            await conn.send(b"0\r\n\r\n", timeout)

    # The pool --------------------------------------------------------------

    async def _bind(self, loop: asyncio.AbstractEventLoop) -> None:
        old_watch, self._loop_watch = self._loop_watch, None
        self._loop = loop
        self._close_connections()
        if old_watch is not None:
            await old_watch.aclose()
        watch = self._close_at_end_of(loop)
        # A started async generator is finalized by the loop's shutdown_asyncgens():
        # the one hook that runs while a finishing loop can still close sockets.
        await watch.__anext__()
        self._loop_watch = watch

    async def _close_at_end_of(self, loop: asyncio.AbstractEventLoop) -> AsyncGenerator[None, None]:
        try:
            yield
        finally:
            if self._loop is loop:
                self._close_connections()

    async def _acquire(self, origin: Origin, timeouts: dict[str, float | None]) -> Connection:
        loop = cast(asyncio.AbstractEventLoop, self._loop)
        deadline: float | None = None
        while True:
            now = loop.time()
            if now >= self._next_sweep:
                self._sweep(now)
            conn = self._take_idle(origin, now)
            if conn is not None:
                self._busy.add(conn)
                return conn
            limit = self._max_connections
            if limit is None or self._open < limit or self._drop_one_idle():
                break
            pool_timeout = timeouts.get("pool")
            if pool_timeout is not None and deadline is None:
                deadline = now + pool_timeout
            if not await self._wait_for_slot(loop, None if deadline is None else deadline - now):
                raise httpx.PoolTimeout("timed out waiting for a free connection in the pool")
        self._open += 1
        try:
            conn = await connect(loop, origin, timeouts.get("connect"))
        except BaseException:
            self._open -= 1
            self._wake_one()
            raise
        self._busy.add(conn)
        return conn

    async def _wait_for_slot(self, loop: asyncio.AbstractEventLoop, timeout: float | None) -> bool:
        if timeout is not None and timeout <= 0:
            return False
        waiter: asyncio.Future[bool] = loop.create_future()
        self._waiters.append(waiter)
        timer = None if timeout is None else loop.call_later(timeout, time_out, waiter)
        try:
            woken = await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled() and waiter.result():
                self._wake_one()  # the slot this task was given goes to the next in line
            else:
                self._waiters.remove(waiter)
            raise
        finally:
            if timer is not None:
                timer.cancel()
        if not woken:
            self._waiters.remove(waiter)
        return woken

    def _wake_one(self) -> None:
        waiters = self._waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(True)
                return

    def _take_idle(self, origin: Origin, now: float) -> Connection | None:
        stack = self._idle.get(origin)
        while stack:
            conn = stack.pop()
            self._idle_count -= 1
            if conn.is_idle_usable() and not self._expired(conn, now):
                return conn
            self._drop(conn)
        return None

    def _expired(self, conn: Connection, now: float) -> bool:
        expiry = self._keepalive_expiry
        return expiry is not None and now - conn.idle_since > expiry

    def _sweep(self, now: float) -> None:
        """Close idle connections that expired or that the server closed."""
        self._next_sweep = now + _SWEEP_INTERVAL
        for origin, stack in list(self._idle.items()):
            keep = [c for c in stack if c.is_idle_usable() and not self._expired(c, now)]
            if len(keep) != len(stack):
                for conn in stack:
                    if conn not in keep:
                        self._drop(conn)
                self._idle_count -= len(stack) - len(keep)
                stack[:] = keep
            if not keep:
                del self._idle[origin]

    def _drop_one_idle(self) -> bool:
        """Close the longest-idle connection (to any origin) to make room; False if none."""
        oldest: list[Connection] | None = None
        for stack in self._idle.values():
            if stack and (oldest is None or stack[0].idle_since < oldest[0].idle_since):
                oldest = stack
        if oldest is None:
            return False
        self._idle_count -= 1
        self._drop(oldest.pop(0))
        return True

    def _drop(self, conn: Connection) -> None:
        conn.close()
        self._open -= 1
        self._wake_one()

    def _release(self, conn: Connection, reuse: bool) -> None:
        if conn not in self._busy:
            conn.close()  # from a loop this pool has left, or after aclose()
            return
        self._busy.discard(conn)
        loop = cast(asyncio.AbstractEventLoop, self._loop)
        if (
            reuse
            and conn.is_idle_usable()
            and (self._max_idle is None or self._idle_count < self._max_idle)
        ):
            conn.idle_since = loop.time()
            self._idle.setdefault(conn.origin, []).append(conn)
            self._idle_count += 1
            self._wake_one()
        else:
            self._drop(conn)

    def _close_connections(self) -> None:
        for conn in self.connections:
            conn.close()
        self._idle.clear()
        self._busy.clear()
        self._idle_count = self._open = 0
        while self._waiters:
            self._wake_one()

    async def aclose(self) -> None:
        self._close_connections()
        watch, self._loop_watch = self._loop_watch, None
        self._loop = None
        if watch is not None:
            await watch.aclose()


def _asks_to_close(request: httpx.Request) -> bool:
    value = request.headers.get("connection")
    return value is not None and "close" in value.lower()

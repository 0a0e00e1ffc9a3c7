"""Shared helpers for the fault-injection suite: one scenario, sync or async, over real sockets.

Every test takes the ``way`` fixture and awaits its methods; in sync mode they
call `Client` directly (blocking the test's event loop, which is harmless: the
scripted server runs its own loop in a thread), in async mode they await
`AsyncClient`. Retries sleep through a recorder unless a test asks for real sleeps.
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from oaicompat import AsyncChatStream, AsyncClient, ChatChunk, ChatResponse, ChatStream, Client
from oaicompat._aio_transport import AioTransport
from oaicompat._json import dumps
from oaicompat.testing import ScriptedServer

AnyClient = Client | AsyncClient
MODEL = "scripted-model"


class Way:
    """Sync or async: the same scenario through `Client` or `AsyncClient`."""

    def __init__(self, is_async: bool) -> None:
        self.is_async = is_async
        self.delays: list[float] = []
        self._clients: list[AnyClient] = []

    def __repr__(self) -> str:
        return "async" if self.is_async else "sync"

    def client(self, base_url: str, *, real_sleep: bool = False, **kwargs: Any) -> Any:
        """A client closed after the test; retries wait through ``self.delays`` unless asked."""
        if not real_sleep:
            kwargs.setdefault("sleep", self.delays.append)
        cls = AsyncClient if self.is_async else Client
        client = cls(base_url, MODEL, **kwargs)
        self._clients.append(client)
        return client

    async def chat(self, client: AnyClient, prompt: str = "Hi", **params: Any) -> ChatResponse:
        if isinstance(client, AsyncClient):
            return await client.chat(prompt, **params)
        return client.chat(prompt, **params)

    async def stream_all(
        self, client: AnyClient, prompt: str = "Hi", **params: Any
    ) -> tuple[list[ChatChunk], ChatResponse]:
        """Every chunk of a stream read inside its ``with`` block, and the final answer."""
        chunks: list[ChatChunk] = []
        if isinstance(client, AsyncClient):
            async with client.stream(prompt, **params) as astream:
                async for chunk in astream:
                    chunks.append(chunk)
                return chunks, await astream.final()
        with client.stream(prompt, **params) as stream:
            chunks.extend(stream)
            return chunks, stream.final()

    async def answer(self, client: AnyClient, *, streamed: bool, prompt: str = "Hi") -> str:
        """The answer's text by ``chat()`` or by a stream (whose chunks must add up to it)."""
        if not streamed:
            return (await self.chat(client, prompt)).content
        chunks, final = await self.stream_all(client, prompt)
        assert streamed_text(chunks) == final.content
        return final.content

    async def stream_collect(
        self, client: AnyClient, chunks: list[ChatChunk], prompt: str = "Hi", **params: Any
    ) -> ChatStream | AsyncChatStream:
        """Read a stream into ``chunks`` (kept even when reading raises); return the stream."""
        if isinstance(client, AsyncClient):
            async with client.stream(prompt, **params) as astream:
                async for chunk in astream:
                    chunks.append(chunk)
            return astream
        with client.stream(prompt, **params) as stream:
            for chunk in stream:
                chunks.append(chunk)
        return stream

    async def close(self) -> None:
        for client in self._clients:
            if isinstance(client, AsyncClient):
                await client.aclose()
            else:
                client.close()


def streamed_text(chunks: Sequence[ChatChunk]) -> str:
    return "".join(chunk.content for chunk in chunks)


class Stopwatch:
    """``with Stopwatch() as clock: ...`` then ``clock.elapsed`` in seconds."""

    elapsed: float = 0.0

    def __enter__(self) -> Stopwatch:
        self._started = time.perf_counter()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.elapsed = time.perf_counter() - self._started


def refused_url() -> str:
    """A loopback URL where nothing listens: the port was just free, and is closed again."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


# The connection pool ---------------------------------------------------------------


@dataclass
class PoolState:
    """What the connection pool behind a client holds right now."""

    connections: list[Any] = field(default_factory=list)
    busy: list[Any] = field(default_factory=list)
    """Connections serving or reserved for a request."""
    waiting_requests: int = 0


def pool_state(client: AnyClient) -> PoolState:
    """The state of the pool that serves the client's chat URL, whichever transport it is.

    Owned async clients send ``http://`` through oaicompat's own `AioTransport`;
    everything else goes through httpx's default transport and its httpcore pool.
    """
    transport = client._http._transport_for_url(client._chat_url)
    if isinstance(transport, AioTransport):
        idle = transport.idle_connections
        connections = transport.connections
        busy = [c for c in connections if all(c is not i for i in idle) and not c.is_closed()]
        return PoolState(connections, busy, transport.waiting_requests)
    pool = transport._pool  # type: ignore[attr-defined]
    connections = list(pool.connections)
    busy = [c for c in connections if not c.is_idle() and not c.is_closed()]
    return PoolState(connections, busy, len(pool._requests))


def assert_pool_released(client: AnyClient) -> None:
    state = pool_state(client)
    assert state.waiting_requests == 0, f"requests still waiting in the pool: {state}"
    assert not state.busy, f"connections still in use: {state.busy}"


async def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll ``condition`` on the running loop, failing after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "timed out waiting for the condition"
        await asyncio.sleep(0.001)


async def assert_pool_released_soon(client: AnyClient, timeout: float = 2.0) -> None:
    """`assert_pool_released`, allowing asyncio a few turns to finalize a dropped generator.

    An async generator abandoned without ``aclose()`` (frameworks often drop the
    inner one when their own is closed) is closed by asyncio in a task of its own.
    """

    def released() -> bool:
        state = pool_state(client)
        return not state.busy and not state.waiting_requests

    await wait_until(released, timeout)


def open_descriptors() -> int | None:
    """How many file descriptors this process holds (Linux), else None."""
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return None


# A server that goes silent mid-stream ------------------------------------------------


def _sse(chunk: dict[str, Any]) -> bytes:
    event = b"data: " + dumps(chunk) + b"\n\n"
    return b"%x\r\n%b\r\n" % (len(event), event)


def _content_chunk(text: str, finish_reason: str | None = None) -> dict[str, Any]:
    delta = {"content": text} if text else {}
    return {
        "id": "chatcmpl-stall",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": MODEL,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
    }


class StallingServer:
    """A loopback server that streams ``words`` as chunks, then says nothing for ``stall`` s.

    The scripted server delays every chunk alike; this one stalls once, after some
    content arrived, which is what a hung GPU worker looks like from the client.
    After the stall it finishes the stream properly.
    """

    def __init__(self, words: Sequence[str], stall: float) -> None:
        self.words = list(words)
        self.stall = stall
        self._stop = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._threads: list[threading.Thread] = []
        self._accepter = threading.Thread(target=self._accept, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}/v1"

    def __enter__(self) -> StallingServer:
        self._accepter.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        # Wakes accept() with an error; the accept loop then ends.
        self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        self._accepter.join(5)
        for thread in self._threads:
            thread.join(5)

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self._listener.accept()
            except OSError:
                return
            thread = threading.Thread(target=self._serve, args=(connection,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, connection: socket.socket) -> None:
        with connection:
            try:
                self._read_request(connection)
                connection.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                    b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                )
                for word in self.words:
                    connection.sendall(_sse(_content_chunk(word)))
                if self._stop.wait(self.stall):
                    return
                connection.sendall(_sse(_content_chunk("", "stop")))
                connection.sendall(b"%x\r\n%b\r\n0\r\n\r\n" % (14, b"data: [DONE]\n\n"))
            except OSError:
                return

    @staticmethod
    def _read_request(connection: socket.socket) -> None:
        data = b""
        while b"\r\n\r\n" not in data:
            piece = connection.recv(65536)
            if not piece:
                raise OSError("client left")
            data += piece
        head, _, body = data.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
        while len(body) < length:
            piece = connection.recv(65536)
            if not piece:
                raise OSError("client left")
            body += piece


def read_timeout(seconds: float) -> httpx.Timeout:
    """A timeout that is generous everywhere except reading, so only a silence trips it."""
    return httpx.Timeout(10.0, read=seconds)


def unique_prompt(index: int, words: int = 24) -> str:
    """A prompt whose echo is long enough to stream in many chunks and tells requests apart."""
    return f"request {index}: " + " ".join(f"w{index}x{n}" for n in range(words))


def expected_echo(prompt: str) -> str:
    """What the scripted server's default policy answers to ``prompt``."""
    return f"You said: {prompt}"


__all__ = [
    "MODEL",
    "PoolState",
    "ScriptedServer",
    "StallingServer",
    "Stopwatch",
    "Way",
    "assert_pool_released",
    "assert_pool_released_soon",
    "expected_echo",
    "open_descriptors",
    "pool_state",
    "read_timeout",
    "refused_url",
    "streamed_text",
    "unique_prompt",
    "wait_until",
]

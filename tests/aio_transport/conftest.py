"""Fixtures for the asyncio transport's tests: clients on it, and a leak check."""

from __future__ import annotations

import contextlib
import gc
import socket
import warnings
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from aio_harness import MakeClient

from oaicompat._aio_transport import AioTransport


@pytest.fixture(autouse=True)
def no_leaked_sockets() -> Iterator[None]:
    """Fail the test when a socket or transport was left for the garbage collector.

    A ResourceWarning raised in a finalizer goes to ``sys.unraisablehook``, which
    pytest only reports; recording the warnings here makes a leak fail the test.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        yield
        gc.collect()
    leaks = [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]
    assert not leaks, f"leaked resources: {leaks}"


@pytest.fixture
async def make_client() -> AsyncIterator[MakeClient]:
    """``make_client(max_connections=..., timeout=...)``: an httpx client on `AioTransport`."""
    made: list[httpx.AsyncClient] = []

    def make(timeout: float | httpx.Timeout = 5.0, **limits: float | None) -> httpx.AsyncClient:
        transport = AioTransport(httpx.Limits(**limits))  # type: ignore[arg-type]
        client = httpx.AsyncClient(transport=transport, timeout=timeout)
        made.append(client)
        return client

    yield make
    for client in made:
        await client.aclose()


@pytest.fixture
def unanswered_port() -> Iterator[int]:
    """A loopback port whose listen queue is full, so a new connection never completes."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(3):
        filler = socket.socket()
        filler.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            filler.connect(("127.0.0.1", port))
        fillers.append(filler)
    yield port
    for filler in fillers:
        filler.close()
    listener.close()

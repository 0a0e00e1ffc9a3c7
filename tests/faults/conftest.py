"""Fixtures for the fault-injection suite: one scripted server per module, leak checks."""

from __future__ import annotations

import gc
import warnings
from collections.abc import AsyncIterator, Iterator

import pytest
from faults_harness import ScriptedServer, Way


@pytest.fixture(scope="module")
def shared_server() -> Iterator[ScriptedServer]:
    with ScriptedServer() as server:
        yield server


@pytest.fixture
def server(shared_server: ScriptedServer) -> ScriptedServer:
    """The module's scripted server, with nothing queued and no requests recorded."""
    shared_server.clear()
    return shared_server


@pytest.fixture(params=["sync", "async"])
async def way(request: pytest.FixtureRequest) -> AsyncIterator[Way]:
    harness = Way(is_async=request.param == "async")
    yield harness
    await harness.close()


@pytest.fixture(scope="session", autouse=True)
def _quick_garbage_collection() -> Iterator[None]:
    """Move everything alive before the first test out of the collector's sight.

    Every test ends with a full collection (see `no_leaked_sockets`); with
    LangChain and LlamaIndex loaded that costs a tenth of a second each time,
    mostly spent re-scanning module-level objects that can never be garbage.
    """
    gc.collect()
    gc.freeze()
    yield
    gc.unfreeze()


@pytest.fixture(autouse=True)
def no_leaked_sockets(_quick_garbage_collection: None) -> Iterator[None]:
    """Fail the test when a socket or transport was left for the garbage collector.

    A ResourceWarning raised in a finalizer never reaches the test (Python hands
    it to ``sys.unraisablehook``, which pytest only reports), so the filter in
    pyproject alone cannot fail a test for it; recording the warnings here can.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        yield
        gc.collect()
    leaks = [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]
    assert not leaks, f"leaked resources: {leaks}"

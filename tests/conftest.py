"""Fixtures shared across the test folders."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest


@pytest.fixture
def owned_event_loop() -> Iterator[None]:
    """A current event loop that the test closes.

    LlamaIndex's sync calls run coroutines on ``asyncio.get_event_loop()``, which
    creates a loop that nobody closes; they get this one instead, so no unclosed
    loop is left for a later test's garbage collection to warn about.
    """
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    yield
    asyncio.set_event_loop(None)
    loop.close()

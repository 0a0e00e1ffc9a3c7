"""Fixtures: an adapter wired to recorded answers, and an instrumentation event log."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from li_helpers import MODEL, EventLog, Recorder
from llama_index.core.instrumentation import get_dispatcher

from oaicompat.llama_index import OpenAICompatible


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def make_llm(recorder: Recorder) -> Iterator[Callable[..., OpenAICompatible]]:
    """``make_llm(**fields)``: an adapter whose sync and async clients both reach ``recorder``."""
    transport = httpx.MockTransport(recorder)
    sync_http = httpx.Client(transport=transport)
    async_http = httpx.AsyncClient(transport=transport)

    def make(**fields: Any) -> OpenAICompatible:
        fields.setdefault("model", MODEL)
        fields.setdefault("base_url", "http://llm.test:8080")
        fields.setdefault("context_window", 8192)
        return OpenAICompatible(http_client=sync_http, async_http_client=async_http, **fields)

    yield make
    sync_http.close()


@pytest.fixture
def event_log() -> Iterator[EventLog]:
    handler = EventLog()
    dispatcher = get_dispatcher()
    dispatcher.add_event_handler(handler)
    yield handler
    dispatcher.event_handlers.remove(handler)

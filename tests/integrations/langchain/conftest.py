"""Fixtures for the LangChain adapter tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from lc_scripted import ScriptedEndpoint


@pytest.fixture
def endpoint() -> Iterator[ScriptedEndpoint]:
    scripted = ScriptedEndpoint()
    yield scripted
    for model in scripted.models:
        model.close()
        if model.http_client is not None:
            model.http_client.close()

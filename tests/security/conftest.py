"""Fixtures for the secrets and transport-safety suite."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from oaicompat.testing import ScriptedServer


@pytest.fixture(scope="module")
def shared_server() -> Iterator[ScriptedServer]:
    with ScriptedServer() as server:
        yield server


@pytest.fixture
def server(shared_server: ScriptedServer) -> ScriptedServer:
    """The module's scripted server, with nothing queued and no requests recorded."""
    shared_server.clear()
    return shared_server


@pytest.fixture(autouse=True)
def _no_keys_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # Only the key a test sets may be found; a developer's own must not be sent anywhere.
    for name in ("OAICOMPAT_API_KEY", "OPENAI_API_KEY", "AZURE_OPENAI_API_KEY"):
        monkeypatch.delenv(name, raising=False)

"""pytest fixtures for the scripted server.

Registered as a ``pytest11`` plugin when oaicompat is installed; without
that, enable it with ``pytest_plugins = ["oaicompat.testing.pytest_plugin"]``
in a ``conftest.py``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from oaicompat.testing.server import ScriptedServer

__all__ = ["scripted_server"]


@pytest.fixture
def scripted_server() -> Iterator[ScriptedServer]:
    """A started :class:`ScriptedServer`, stopped after the test."""
    with ScriptedServer() as server:
        yield server

"""pytest fixtures for the scripted server.

Installed oaicompat registers this module as a ``pytest11`` plugin, so the
``scripted_server`` fixture is simply there. Where plugins are not autoloaded
(``PYTEST_DISABLE_PLUGIN_AUTOLOAD``), add
``pytest_plugins = ["oaicompat.testing.pytest_plugin"]`` to the root
``conftest.py``; the entry point carries the module's own name so that both
ways together register the plugin once.
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

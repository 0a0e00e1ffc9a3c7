"""Fixtures for the scripted server's own tests: the exported fixture and a plain httpx client."""

from __future__ import annotations

import ssl
from collections.abc import Iterator

import httpx
import pytest

from oaicompat.testing import ScriptedServer
from oaicompat.testing.pytest_plugin import scripted_server  # noqa: F401

# Building an SSL context costs more than starting the server; share one.
_SSL_CONTEXT = ssl.create_default_context()


@pytest.fixture
def client(scripted_server: ScriptedServer) -> Iterator[httpx.Client]:  # noqa: F811
    with httpx.Client(base_url=scripted_server.base_url, timeout=10.0, verify=_SSL_CONTEXT) as http:
        yield http

"""Fixtures for the command-line tests: a clean environment and no real local servers."""

from __future__ import annotations

import pytest
from cli_helpers import Result, Run

from oaicompat import cli
from oaicompat._cli import servers, target
from oaicompat.discovery import ServerInfo

OAICOMPAT_ENV = (
    "OAICOMPAT_BASE_URL",
    "OAICOMPAT_MODEL",
    "OAICOMPAT_PROFILE",
    "OAICOMPAT_API_KEY",
    "OPENAI_API_KEY",
    "NO_COLOR",
)


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # A developer's own settings must not change what these tests see.
    for name in OAICOMPAT_ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(autouse=True)
def _owned_event_loop(owned_event_loop: None) -> None:
    """The demo's LlamaIndex section runs through LlamaIndex's sync helpers (see the fixture)."""


@pytest.fixture
def local_servers(monkeypatch: pytest.MonkeyPatch) -> list[ServerInfo]:
    """What "looking for local servers" finds: nothing unless a test adds to the list.

    Replaces the port scan, so a server running on the test machine changes nothing.
    """
    found: list[ServerInfo] = []

    def detect(timeout: float = 0.3) -> list[ServerInfo]:
        return list(found)

    monkeypatch.setattr(target, "detect_local_servers", detect)
    monkeypatch.setattr(servers, "detect_local_servers", detect)
    return found


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str], local_servers: list[ServerInfo]) -> Run:
    """Runs ``oaicompat ARGS...`` in-process and returns its exit code and output."""

    def run_cli(*argv: str) -> Result:
        code = cli.main(list(argv))
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run_cli

"""The command's pieces on their own: error lines, history, the built-in server's pace."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest

from oaicompat import APIConnectionError, AuthenticationError, ContextLengthError, StreamError
from oaicompat._cli import chat
from oaicompat._cli.console import Console, describe_error
from oaicompat._cli.target import _BuiltinPolicy
from oaicompat.testing import RecordedRequest, Reply


def _request(body: dict[str, object]) -> RecordedRequest:
    return RecordedRequest("POST", "/v1/chat/completions", "", {}, b"", body)


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (
            AuthenticationError("401 Unauthorized: bad key", status_code=401),
            "AuthenticationError: 401 Unauthorized: bad key "
            "(pass --api-key or set OAICOMPAT_API_KEY)",
        ),
        (
            APIConnectionError("cannot connect to http://h/v1"),
            "APIConnectionError: cannot connect to http://h/v1 "
            "(is the server running? check --base-url or OAICOMPAT_BASE_URL)",
        ),
        (
            ContextLengthError("400 Bad Request: prompt is too long", status_code=400),
            "ContextLengthError: 400 Bad Request: prompt is too long",
        ),
        (StreamError("stream cut short"), "StreamError: stream cut short"),
        (ValueError("unknown server profile 'olama'"), "unknown server profile 'olama'"),
        (RuntimeError("boom"), "RuntimeError: boom"),
    ],
)
def test_describe_error(error: BaseException, expected: str) -> None:
    assert describe_error(error) == expected


def test_console_dims_asides_only_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.delenv("NO_COLOR", raising=False)
    terminal, piped = Terminal(), io.StringIO()
    Console(out=piped, err=terminal).note("usage")
    Console(out=terminal, err=piped).aside("usage")
    assert terminal.getvalue() == "\x1b[2musage\x1b[0m\n"
    assert piped.getvalue() == "usage"

    monkeypatch.setenv("NO_COLOR", "1")
    plain = Terminal()
    Console(out=plain, err=plain).aside("usage")
    assert plain.getvalue() == "usage"


def test_builtin_server_paces_its_words_only_for_people() -> None:
    body = {"messages": [{"role": "user", "content": "hi"}]}
    paced = _BuiltinPolicy(0.01)(_request(body))
    unpaced = _BuiltinPolicy(0.0)(_request(body))
    assert isinstance(paced, Reply)
    assert isinstance(unpaced, Reply)
    assert paced.chunk_delay == 0.01
    assert unpaced.chunk_delay == 0.0
    assert paced.text == unpaced.text == "You said: hi"


def test_history_is_kept_across_sessions_at_a_terminal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    readline = pytest.importorskip("readline")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    readline.clear_history()
    with chat._history(enabled=True):
        readline.add_history("what did I ask?")
    saved = tmp_path / "oaicompat" / "chat_history"
    assert "what did I ask?" in saved.read_text(encoding="utf-8")

    readline.clear_history()
    with chat._history(enabled=True):
        assert readline.get_history_item(readline.get_current_history_length()) == (
            "what did I ask?"
        )
    readline.clear_history()


def test_no_history_file_without_a_terminal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    with chat._history(enabled=False):
        pass
    assert not (tmp_path / "oaicompat").exists()


def test_import_oaicompat_does_not_import_the_cli_or_display() -> None:
    import subprocess

    code = (
        "import sys, oaicompat; "
        "print(sorted(m for m in sys.modules if m.split('.')[:2] in (['oaicompat', 'cli'], "
        "['oaicompat', '_cli'], ['oaicompat', 'display'], ['oaicompat', 'testing'], ['IPython'])))"
    )
    completed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert completed.stdout.strip() == "[]"


def test_timeout_flag_bounds_answers_but_not_connecting() -> None:
    from oaicompat._cli.target import Target

    with Target("http://127.0.0.1:9/v1", "m", None, timeout=900.0).client() as client:
        assert client.timeout.read == 900.0
        assert client.timeout.connect == 10.0
    with Target("http://127.0.0.1:9/v1", "m", None).client() as client:
        assert client.timeout.read == 300.0

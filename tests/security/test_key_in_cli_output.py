"""The ``oaicompat`` command never prints the key, even with ``--debug`` and an echoing server."""

from __future__ import annotations

import pytest
from secrets_harness import ECHOES, KEY, STREAM_ECHOES, echo

from oaicompat import cli
from oaicompat.testing import ScriptedServer

FAULTS = {
    **{name: ECHOES[name] for name in ("400-json-nested", "500-html-page", "200-not-json")},
    **{name: STREAM_ECHOES[name] for name in ("error-event", "malformed-event")},
}
CASES = [(name, True) for name in FAULTS] + [
    (name, False) for name in FAULTS if name not in STREAM_ECHOES
]


@pytest.mark.parametrize("key_from", ["flag", "environment"])
@pytest.mark.parametrize(
    ("fault", "streamed"), CASES, ids=[f"{n}-{'stream' if s else 'no-stream'}" for n, s in CASES]
)
def test_failed_chat_output_does_not_show_the_key(
    server: ScriptedServer,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    fault: str,
    streamed: bool,
    key_from: str,
) -> None:
    server.enqueue(echo(FAULTS[fault]), times=3)
    argv = ["--debug", "chat", "hi", "--base-url", server.base_url, "--model", "scripted-model"]
    if key_from == "flag":
        argv += ["--api-key", KEY]
    else:
        monkeypatch.setenv("OAICOMPAT_API_KEY", KEY)
    if not streamed:
        argv.append("--no-stream")
    code = cli.main(argv)
    shown = capsys.readouterr()
    assert server.chat_requests[0].headers["authorization"] == f"Bearer {KEY}"
    assert code == 1
    assert shown.err.strip(), "the failure should have been reported"
    assert KEY not in shown.out + shown.err

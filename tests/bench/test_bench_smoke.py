"""The benchmark harness still works: server, workers, checks and report.

Not a timed test: nothing here asserts a speed. It runs the smallest mode
with two clients and checks that real figures come out, and that a client
which loses data, or cannot be imported, is reported as such.
"""

from __future__ import annotations

import http.client
import json
import socket
import sys
from pathlib import Path
from typing import Any

import pytest

# bench/ is a top-level directory of the repository, not an installed package.
ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import clients, payloads, run, worker  # noqa: E402
from bench.clients import ClientSpec  # noqa: E402
from bench.clients.base import BenchClient  # noqa: E402
from bench.scenarios import Scenario, scenarios  # noqa: E402

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def server() -> Any:
    with run.bench_server(prebuild=[3]) as bench_server:
        yield bench_server


def _read_chunked_stream(port: int, n_tokens: int) -> list[bytes]:
    """The HTTP chunks of one streamed answer, read off a raw socket."""
    body = json.dumps({"model": payloads.model_name(n_tokens), "stream": True}).encode()
    request = (
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
        b"content-length: %d\r\n\r\n%s" % (len(body), body)
    )
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        received = b""
        while not received.endswith(b"\r\n0\r\n\r\n"):
            data = sock.recv(65536)
            assert data, "connection closed before the last chunk"
            received += data
    head, _, rest = received.partition(b"\r\n\r\n")
    assert b"transfer-encoding: chunked" in head.lower()
    chunks: list[bytes] = []
    while True:
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            return chunks
        chunks.append(rest[:size])
        assert rest[size : size + 2] == b"\r\n"
        rest = rest[size + 2 :]


def test_server_sends_one_http_chunk_per_sse_event(server: run.BenchServer) -> None:
    chunks = _read_chunked_stream(server.port, 5)
    assert all(chunk.startswith(b"data: ") and chunk.endswith(b"\n\n") for chunk in chunks)
    assert all(chunk.count(b"data: ") == 1 for chunk in chunks)
    assert chunks[-1] == b"data: [DONE]\n\n"
    texts = [
        json.loads(chunk[6:])["choices"][0]["delta"].get("content")
        for chunk in chunks[:-1]
        if json.loads(chunk[6:])["choices"]
    ]
    assert "".join(t for t in texts if t) == payloads.expected_text(5)
    usage = json.loads(chunks[-2][6:])["usage"]
    assert usage["completion_tokens"] == 5


def test_server_keeps_the_connection_for_the_next_request(server: run.BenchServer) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        for n_tokens in (2, 7):
            body = json.dumps({"model": payloads.model_name(n_tokens), "messages": []})
            connection.request("POST", "/v1/chat/completions", body=body)
            answer = json.loads(connection.getresponse().read())
            assert answer["choices"][0]["message"]["content"] == payloads.expected_text(n_tokens)
        connection.request("POST", "/v1/chat/completions", body=json.dumps({"model": "gpt"}))
        assert connection.getresponse().status == 404
    finally:
        connection.close()


class _DropsOneChunk(BenchClient):
    """A client that would look fast by losing data."""

    def stream(self) -> tuple[str, int]:
        n_tokens = payloads.tokens_for(self.model) or 0
        text = "".join(payloads.token(i) for i in range(n_tokens) if i != 1)
        return text, n_tokens - 1

    def chat(self) -> str:
        return payloads.expected_text(payloads.tokens_for(self.model) or 0)[:-1]


class _LossySpec(ClientSpec):
    def load(self) -> type[BenchClient]:
        return _DropsOneChunk


@pytest.mark.parametrize("kind", ["stream", "sequential"])
def test_a_client_that_loses_data_is_failed_not_measured(
    monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    spec = _LossySpec("lossy", "unused:Unused", "x", has_sync=True, has_async=False)
    monkeypatch.setitem(clients.BY_NAME, "lossy", spec)
    scenario = Scenario(kind, kind, tokens=6, requests=2)  # type: ignore[arg-type]
    result = worker.run("lossy", scenario, "http://127.0.0.1:1/v1")
    assert result["status"] == "failed"
    assert "differs" in result["reason"] or "chunks" in result["reason"]


def test_a_client_that_cannot_be_imported_is_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = ClientSpec("ghost", "no_such_wrapper:Ghost", "ghost", has_sync=True, has_async=False)
    monkeypatch.setitem(clients.BY_NAME, "ghost", spec)
    result = worker.run("ghost", Scenario("stream", "stream", tokens=3), "http://127.0.0.1:1/v1")
    assert result["status"] == "unavailable"
    assert "no_such_wrapper" in result["reason"]


def test_small_run_reports_figures_for_each_client(tmp_path: Path) -> None:
    names = ["httpx-async", "oaicompat-async"]
    assert run.main(["--small", "--clients", ",".join(names), "--out", str(tmp_path)]) == 0

    document = json.loads((tmp_path / "latest.json").read_text())
    for scenario in scenarios(small=True):
        measured = document["scenarios"][scenario.name]["clients"]
        assert sorted(measured) == names
        for summary in measured.values():
            assert summary["status"] == "ok", summary
            assert summary["cpu_s"] > 0
            assert summary["peak_rss_mb"] > 0
        assert measured["httpx-async"]["vs_floor"]["cpu"] == pytest.approx(1.0)
        ours = measured["oaicompat-async"]
        assert ours["vs_floor"]["cpu"] == pytest.approx(
            ours["cpu_s"] / measured["httpx-async"]["cpu_s"]
        )
    for result in document["runs"]:
        scenario = next(s for s in scenarios(small=True) if s.name == result["scenario"])
        expected_chunks = 0 if scenario.kind == "sequential" else scenario.units
        assert (result["requests"], result["chunks"]) == (scenario.requests, expected_chunks)
    assert document["imports"]["oaicompat"]["median_cpu_s"] > 0

    table = (tmp_path / "latest.md").read_text()
    assert "| httpx-async | async | ok |" in table
    assert "| oaicompat-async | async | ok |" in table
    assert "python -m bench.run --small" in table

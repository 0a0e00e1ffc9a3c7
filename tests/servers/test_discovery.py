"""Discovery flows against recorded answers of each server kind, sync and async."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from oaicompat import discovery
from oaicompat._probes import Flow, Probe, resolve_url, run_async, run_sync
from oaicompat.discovery import (
    ServerInfo,
    adetect_local_servers,
    detect_local_servers,
    health_flow,
    list_models_flow,
    preflight_flow,
    server_info_flow,
)
from oaicompat.errors import (
    APIConnectionError,
    APITimeoutError,
    AuthenticationError,
    NotFoundError,
    ResponseParseError,
)

from .recorded import GROQ_MODELS, LLAMACPP, OLLAMA, SERVER_KINDS, Recorder, Routes

BASE = "http://server.test/v1"

Runner = Callable[..., Any]


@pytest.fixture(params=["sync", "async"])
def run(request: pytest.FixtureRequest) -> Runner:
    """Drive a flow against a handler (a route table or a function) with either driver."""

    def runner(flow: Flow[Any], handler: Any, base_url: str = BASE, **kwargs: Any) -> Any:
        if isinstance(handler, dict):
            handler = Recorder(handler)
        transport = httpx.MockTransport(handler)
        if request.param == "sync":
            with httpx.Client(transport=transport) as http:
                return run_sync(flow, http, base_url, **kwargs)

        async def go() -> Any:
            async with httpx.AsyncClient(transport=transport) as http:
                return await run_async(flow, http, base_url, **kwargs)

        return asyncio.run(go())

    return runner


EXPECTED = {
    # kind: (model asked for, version, context window, model the window is of)
    "ollama": ("llama3.1", "0.9.6", 8192, "llama3.1:latest"),
    "llamacpp": (None, "b6550-1d0125bc", 2048, "tiny-llama"),
    "vllm": ("Qwen/Qwen2.5-7B-Instruct", "0.8.5", 32768, "Qwen/Qwen2.5-7B-Instruct"),
    "lmstudio": ("meta-llama-3.1-8b-instruct", None, 4096, "meta-llama-3.1-8b-instruct"),
    "tgi": (None, "3.0.1", 8192, "meta-llama/Llama-3.1-8B-Instruct"),
    "sglang": (None, None, 131072, "meta-llama/Llama-3.1-8B-Instruct"),
    "llamacpp_python": ("anything", None, None, "tiny-llama"),
}


@pytest.mark.parametrize("kind", sorted(EXPECTED))
def test_server_info_identifies_each_server_kind(run: Runner, kind: str) -> None:
    model, version, context, target = EXPECTED[kind]
    recorder = Recorder(SERVER_KINDS[kind])
    info = run(server_info_flow(BASE, model), recorder)
    assert isinstance(info, ServerInfo)
    assert info.kind == kind
    assert info.profile.name == kind
    assert info.version == version
    assert info.context_window == context
    assert info.model == target
    listed = SERVER_KINDS[kind][("GET", "/v1/models")][1]["data"]
    assert info.models == tuple(entry["id"] for entry in listed)
    assert info.base_url == BASE
    assert "models" in info.raw


def test_ollama_context_window_comes_from_api_show_for_the_served_name(run: Runner) -> None:
    recorder = Recorder(OLLAMA)
    run(server_info_flow(BASE, "llama3.1"), recorder)
    show = [r for r in recorder.requests if r.url.path == "/api/show"]
    assert len(show) == 1
    assert json.loads(show[0].content) == {"model": "llama3.1:latest"}


def test_ollama_without_num_ctx_reports_the_models_trained_length(run: Runner) -> None:
    routes = dict(OLLAMA)
    status, show = routes[("POST", "/api/show")]
    routes[("POST", "/api/show")] = (status, {**show, "parameters": 'stop "<|eot_id|>"'})
    info = run(server_info_flow(BASE, "llama3.1"), routes)
    assert info.context_window == 131072


def test_lmstudio_window_of_an_unloaded_model_is_its_maximum(run: Runner) -> None:
    info = run(server_info_flow(BASE, None), SERVER_KINDS["lmstudio"])
    assert (info.model, info.context_window) == ("qwen2-vl-7b-instruct", 32768)


def test_hosted_service_is_known_by_its_host_without_native_probes(run: Runner) -> None:
    recorder = Recorder({("GET", "/openai/v1/models"): (200, GROQ_MODELS)})
    groq = "https://api.groq.com/openai/v1"
    info = run(server_info_flow(groq), recorder, base_url=groq)
    assert (info.kind, info.context_window) == ("groq", 131072)
    assert recorder.paths == ["/openai/v1/models"]


def test_unknown_server_is_generic(run: Runner) -> None:
    routes: Routes = {("GET", "/v1/models"): (200, {"data": [{"id": "m", "owned_by": "x"}]})}
    info = run(server_info_flow(BASE), routes)
    assert (info.kind, info.version, info.context_window) == ("generic", None, None)


def test_server_behind_a_path_prefix_is_probed_under_the_prefix(run: Runner) -> None:
    routes = {(method, "/ollama" + path): answer for (method, path), answer in OLLAMA.items()}
    base = "http://server.test/ollama/v1"
    info = run(server_info_flow(base, "qwen3:0.6b"), routes, base_url=base)
    assert (info.kind, info.context_window) == ("ollama", 8192)


def test_list_models(run: Runner) -> None:
    assert run(list_models_flow(), LLAMACPP) == ["tiny-llama"]


def test_list_models_falls_back_to_ollamas_native_list(run: Runner) -> None:
    routes = {key: value for key, value in OLLAMA.items() if key != ("GET", "/v1/models")}
    assert run(list_models_flow(), routes) == ["llama3.1:latest"]


@pytest.mark.parametrize(
    ("model", "served"),
    [
        ("llama3.1", "llama3.1:latest"),
        ("LLAMA3.1:latest", "llama3.1:latest"),
        ("qwen3:0.6b", "qwen3:0.6b"),
    ],
)
def test_preflight_matches_ollama_names(run: Runner, model: str, served: str) -> None:
    assert run(preflight_flow(model, BASE), OLLAMA) == served


def test_preflight_lists_available_models_when_the_model_is_not_served(run: Runner) -> None:
    with pytest.raises(NotFoundError) as caught:
        run(preflight_flow("mistral", BASE), OLLAMA)
    message = str(caught.value)
    assert "'mistral'" in message
    assert "llama3.1:latest, qwen3:0.6b" in message
    assert caught.value.status_code == 404


def test_preflight_accepts_any_name_on_a_single_model_llama_server(run: Runner) -> None:
    assert run(preflight_flow("gpt-4o", BASE), LLAMACPP) == "tiny-llama"


def test_preflight_is_strict_on_vllm(run: Runner) -> None:
    with pytest.raises(NotFoundError, match=r"Qwen/Qwen2\.5-7B-Instruct"):
        run(preflight_flow("Qwen/Qwen2.5-72B-Instruct", BASE), SERVER_KINDS["vllm"])


@pytest.mark.parametrize(
    ("status", "healthy"), [(200, True), (401, True), (403, True), (404, False), (503, False)]
)
def test_health_counts_auth_errors_as_reachable(run: Runner, status: int, healthy: bool) -> None:
    routes: Routes = {("GET", "/v1/models"): (status, {"error": {"message": "x"}})}
    assert run(health_flow(), routes) is healthy


def test_health_is_false_when_nothing_answers(run: Runner) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    assert run(health_flow(), refuse) is False


# Bad input -------------------------------------------------------------------------


def test_html_page_says_to_check_base_url(run: Runner) -> None:
    page = b"<html><head><title>Welcome to nginx!</title></head><body>...</body></html>"
    routes: Routes = {("GET", "/v1/models"): (200, page)}
    with pytest.raises(ResponseParseError) as caught:
        run(list_models_flow(), routes)
    assert "Welcome to nginx!" in str(caught.value)
    assert "check base_url" in str(caught.value)


def test_404_on_models_says_this_is_not_an_openai_api_root(run: Runner) -> None:
    with pytest.raises(NotFoundError) as caught:
        run(server_info_flow(BASE), {})
    message = str(caught.value)
    assert "http://server.test/v1/models" in message
    assert "check base_url" in message
    assert "/v1" in message


def test_wrong_key_is_an_authentication_error(run: Runner) -> None:
    routes: Routes = {
        ("GET", "/v1/models"): (
            401,
            {"error": {"message": "Incorrect API key provided", "type": "invalid_request_error"}},
        )
    }
    with pytest.raises(AuthenticationError, match="Incorrect API key provided"):
        run(list_models_flow(), routes)


def test_connect_timeout_says_what_to_check(run: Runner) -> None:
    def drop(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectTimeout("timed out", request=request)

    with pytest.raises(APITimeoutError) as caught:
        run(list_models_flow(), drop, timeout=httpx.Timeout(5.0, connect=0.2))
    assert "0.2s" in str(caught.value)
    assert "host" in str(caught.value)


def _unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_nothing_listening_fails_fast_with_a_hint(mode: str) -> None:
    base = f"http://127.0.0.1:{_unused_port()}/v1"
    started = time.perf_counter()

    def list_sync() -> None:
        with httpx.Client() as http:
            run_sync(list_models_flow(), http, base, timeout=2.0)

    async def list_async() -> None:
        async with httpx.AsyncClient() as http:
            await run_async(list_models_flow(), http, base, timeout=2.0)

    with pytest.raises(APIConnectionError) as caught:
        list_sync() if mode == "sync" else asyncio.run(list_async())
    assert time.perf_counter() - started < 2.0
    assert "cannot connect" in str(caught.value)
    assert "host and port" in str(caught.value)


@pytest.mark.parametrize(
    ("base", "probe", "url"),
    [
        ("http://h:11434/v1", Probe("GET", "models"), "http://h:11434/v1/models"),
        (
            "http://h:11434/v1/",
            Probe("GET", "api/version", from_root=True),
            "http://h:11434/api/version",
        ),
        ("http://h/x/v1", Probe("GET", "props", from_root=True), "http://h/x/props"),
        ("http://h:8080", Probe("GET", "props", from_root=True), "http://h:8080/props"),
    ],
)
def test_resolve_url(base: str, probe: Probe, url: str) -> None:
    assert resolve_url(base, probe) == url


# Local detection -------------------------------------------------------------------


class _FakeOllama(BaseHTTPRequestHandler):
    def _answer(self) -> None:
        found = OLLAMA.get((self.command, self.path))
        status, payload = found if found else (404, {"error": "not found"})
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self._answer()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self._answer()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def fake_ollama() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeOllama)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def only_unused_ports(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, tuple[str, ...]]]:
    """The default local ports, moved to ports nothing listens on."""
    candidates = [
        (f"http://127.0.0.1:{_unused_port()}/v1", names)
        for _, names in discovery._local_candidates()
    ]
    monkeypatch.setattr(discovery, "_local_candidates", lambda: list(candidates))
    return candidates


def test_default_candidates_cover_every_local_preset() -> None:
    urls = dict(discovery._local_candidates())
    assert urls["http://127.0.0.1:11434/v1"] == ("ollama",)
    assert urls["http://127.0.0.1:8000/v1"] == ("vllm", "llamacpp_python")
    assert {"lmstudio", "sglang", "litellm", "llamacpp", "tgi"} <= {
        name for names in urls.values() for name in names
    }


def test_detect_returns_nothing_fast_when_nothing_listens(
    only_unused_ports: list[tuple[str, tuple[str, ...]]],
) -> None:
    started = time.perf_counter()
    assert detect_local_servers() == []
    assert time.perf_counter() - started < 0.6


async def test_adetect_returns_nothing_fast_when_nothing_listens(
    only_unused_ports: list[tuple[str, tuple[str, ...]]],
) -> None:
    started = time.perf_counter()
    assert await adetect_local_servers() == []
    assert time.perf_counter() - started < 0.6


async def test_detect_works_inside_a_running_event_loop(
    monkeypatch: pytest.MonkeyPatch, fake_ollama: str
) -> None:
    # What a notebook cell does: call the sync function while a loop is running.
    monkeypatch.setattr(discovery, "_local_candidates", lambda: [(fake_ollama, ("ollama",))])
    found = detect_local_servers()
    assert [(info.kind, info.base_url, info.context_window) for info in found] == [
        ("ollama", fake_ollama, 8192)
    ]


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_detect_finds_a_server_among_empty_ports(
    monkeypatch: pytest.MonkeyPatch,
    only_unused_ports: list[tuple[str, tuple[str, ...]]],
    fake_ollama: str,
    mode: str,
) -> None:
    monkeypatch.setattr(
        discovery, "_local_candidates", lambda: [*only_unused_ports, (fake_ollama, ("ollama",))]
    )
    found = detect_local_servers() if mode == "sync" else asyncio.run(adetect_local_servers())
    assert len(found) == 1
    info = found[0]
    assert (info.kind, info.version, info.models) == (
        "ollama",
        "0.9.6",
        ("llama3.1:latest", "qwen3:0.6b"),
    )

"""The scripted server as an HTTP server: lifecycle, routes, recording, queueing, concurrency."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from scripted_helpers import CHAT, chat_body, raw_exchange, stream, stream_chunks

from oaicompat.testing import (
    CHAT_PATH,
    RawReply,
    RecordedRequest,
    Reply,
    ScriptedServer,
    service_unavailable,
)


def test_context_manager_binds_a_loopback_port_and_releases_it() -> None:
    with ScriptedServer() as server:
        assert server.url == f"http://127.0.0.1:{server.port}"
        assert repr(server) == f"<ScriptedServer {server.url} model='scripted-model'>"
        assert server.base_url == server.url + "/v1"
        assert httpx.get(server.url + "/health").json() == {"status": "ok"}
        port = server.port
    assert "stopped" in repr(server)
    with pytest.raises(RuntimeError, match="not running"):
        _ = server.url
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/health")


def test_start_is_quick_and_stop_is_idempotent() -> None:
    began = time.perf_counter()
    server = ScriptedServer().start()
    assert server.start() is server
    assert time.perf_counter() - began < 2.0
    server.stop()
    server.stop()


def test_stop_ends_streams_that_are_still_running() -> None:
    server = ScriptedServer().start()
    server.enqueue(Reply(text="slow words here", chunk_delay=30.0))
    with (
        httpx.Client(base_url=server.base_url, timeout=10.0) as http,
        http.stream("POST", CHAT, json=chat_body(stream=True)) as response,
    ):
        assert response.status_code == 200
        began = time.perf_counter()
        server.stop()
        with pytest.raises(httpx.HTTPError):
            response.read()
    assert time.perf_counter() - began < 5.0


def test_models_route_lists_the_configured_model_and_window() -> None:
    with ScriptedServer(model="tiny", context_window=2048) as server:
        listing = httpx.get(server.base_url + "/models").json()
    assert listing["object"] == "list"
    assert [model["id"] for model in listing["data"]] == ["tiny"]
    assert listing["data"][0]["meta"]["n_ctx_train"] == 2048


def test_llamacpp_and_ollama_discovery_routes(client: httpx.Client, scripted_server) -> None:
    props = client.get(scripted_server.url + "/props").json()
    assert props["default_generation_settings"]["n_ctx"] == scripted_server.context_window
    tags = client.get(scripted_server.url + "/api/tags").json()
    assert tags["models"][0]["name"] == scripted_server.model
    assert "version" in client.get(scripted_server.url + "/api/version").json()
    show = client.post(scripted_server.url + "/api/show", json={"model": scripted_server.model})
    assert show.json()["parameters"].split() == ["num_ctx", str(scripted_server.context_window)]


def test_imitate_limits_the_discovery_routes() -> None:
    with ScriptedServer(imitate=("ollama",)) as server:
        assert httpx.get(server.url + "/props").status_code == 404
        assert httpx.get(server.url + "/api/version").status_code == 200
    with ScriptedServer(imitate=()) as server:
        assert httpx.get(server.url + "/api/tags").status_code == 404
        assert httpx.get(server.base_url + "/models").status_code == 200


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/v1/nowhere"), ("POST", "/v1/models"), ("GET", "/v1/chat/completions")],
)
def test_unknown_routes_are_404_json(
    client: httpx.Client, scripted_server: ScriptedServer, method: str, path: str
) -> None:
    response = client.request(method, scripted_server.url + path)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/json"
    assert path in response.json()["error"]["message"]


def test_requests_are_recorded_with_headers_and_parsed_body(
    client: httpx.Client, scripted_server: ScriptedServer
) -> None:
    body = chat_body("record me", temperature=0.5)
    client.post(CHAT + "?api-version=1", json=body, headers={"Authorization": "Bearer sk-x"})
    client.get("/models")
    first, second = scripted_server.requests
    assert isinstance(first, RecordedRequest)
    assert (first.method, first.path, first.query) == ("POST", CHAT_PATH, "api-version=1")
    assert first.headers["authorization"] == "Bearer sk-x"
    assert first.json == body
    assert (second.method, second.path, second.json) == ("GET", "/v1/models", None)
    assert scripted_server.chat_requests == [first]
    scripted_server.clear()
    assert scripted_server.requests == []


def test_chunked_request_bodies_are_read(
    client: httpx.Client, scripted_server: ScriptedServer
) -> None:
    payload = b'{"messages": [{"role": "user", "content": "chunked"}]}'
    response = client.post(CHAT, content=iter([payload[:10], payload[10:]]))
    assert response.json()["choices"][0]["message"]["content"] == "You said: chunked"
    assert "chunked" in scripted_server.requests[0].headers["transfer-encoding"]


def test_keep_alive_serves_many_requests_on_one_connection(
    client: httpx.Client, scripted_server: ScriptedServer
) -> None:
    peers = set()
    for index in range(3):
        response = client.post(CHAT, json=chat_body(f"n{index}"))
        assert response.json()["choices"][0]["message"]["content"] == f"You said: n{index}"
        with client.stream("POST", CHAT, json=chat_body(stream=True)) as streamed:
            streamed.read()
            peers.add(streamed.extensions["network_stream"].get_extra_info("client_addr"))
    assert len(peers) == 1


def test_connection_close_is_honoured(scripted_server: ScriptedServer) -> None:
    request = b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    received = raw_exchange(scripted_server.port, request)
    assert received.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"Connection: close" in received
    assert received.endswith(b'{"status":"ok"}')


def test_garbage_request_line_gets_400(scripted_server: ScriptedServer) -> None:
    received = raw_exchange(scripted_server.port, b"NONSENSE\r\n\r\n")
    assert received.startswith(b"HTTP/1.1 400")
    assert b"Connection: close" in received


def test_queue_is_first_in_first_out_then_falls_back_to_the_policy(
    client: httpx.Client, scripted_server: ScriptedServer
) -> None:
    scripted_server.enqueue(Reply(text="first"), Reply(text="second"))
    scripted_server.enqueue(service_unavailable(), times=2)
    assert scripted_server.pending() == 4
    contents = [client.post(CHAT, json=chat_body("x")) for _ in range(5)]
    assert [r.status_code for r in contents] == [200, 200, 503, 503, 200]
    assert contents[0].json()["choices"][0]["message"]["content"] == "first"
    assert contents[1].json()["choices"][0]["message"]["content"] == "second"
    assert contents[4].json()["choices"][0]["message"]["content"] == "You said: x"
    assert scripted_server.pending() == 0


def test_script_replaces_the_queue(client: httpx.Client, scripted_server: ScriptedServer) -> None:
    scripted_server.enqueue(Reply(text="dropped"))
    scripted_server.script(Reply(text="kept"))
    assert client.post(CHAT, json=chat_body()).json()["choices"][0]["message"]["content"] == "kept"


def test_a_callable_reply_sees_the_request(
    client: httpx.Client, scripted_server: ScriptedServer
) -> None:
    scripted_server.enqueue(lambda request: Reply(text=request.headers["x-marker"]))
    response = client.post(CHAT, json=chat_body(), headers={"X-Marker": "seen"})
    assert response.json()["choices"][0]["message"]["content"] == "seen"


def test_discovery_routes_take_queued_raw_replies(
    client: httpx.Client, scripted_server: ScriptedServer
) -> None:
    scripted_server.enqueue(service_unavailable(), path="/v1/models")
    assert client.get("/models").status_code == 503
    assert client.get("/models").status_code == 200
    with pytest.raises(TypeError):
        scripted_server.enqueue(Reply(text="x"), path="/v1/models")


def test_a_custom_policy_answers_when_the_queue_is_empty() -> None:
    def policy(request: RecordedRequest) -> RawReply:
        return RawReply(418, {"teapot": request.json["model"]})

    with ScriptedServer(policy=policy) as server:
        response = httpx.post(server.base_url + CHAT, json=chat_body())
    assert (response.status_code, response.json()) == (418, {"teapot": "scripted-model"})


def test_the_requested_model_is_echoed_and_defaults_to_the_server_model(
    client: httpx.Client,
) -> None:
    named = client.post(CHAT, json=chat_body(model="other-model")).json()
    unnamed = client.post(CHAT, json={"messages": [{"role": "user", "content": "hi"}]}).json()
    assert named["model"] == "other-model"
    assert unnamed["model"] == "scripted-model"


async def test_two_hundred_concurrent_streams_complete(scripted_server: ScriptedServer) -> None:
    texts = [f"stream number {index} says hello" for index in range(200)]
    limits = httpx.Limits(max_connections=200)
    async with httpx.AsyncClient(
        base_url=scripted_server.base_url, limits=limits, timeout=30.0
    ) as http:

        async def one(text: str) -> str:
            body = {**chat_body(text), "stream": True}
            async with http.stream("POST", CHAT, json=body) as response:
                raw = await response.aread()
            chunks = stream_chunks(raw)
            assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
            return "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)

        answers = await asyncio.gather(*(one(text) for text in texts))
    assert answers == [f"You said: {text}" for text in texts]
    assert len(scripted_server.chat_requests) == 200


def test_the_server_does_not_print(capfd: pytest.CaptureFixture[str]) -> None:
    with ScriptedServer() as server, httpx.Client(base_url=server.base_url) as http:
        server.enqueue(Reply(text="cut", drop_after=1))
        with pytest.raises(httpx.HTTPError):
            stream(http, chat_body())
        http.post(CHAT, content=b"not json")
    captured = capfd.readouterr()
    assert (captured.out, captured.err) == ("", "")


def test_a_failing_reply_factory_answers_500_and_is_kept(
    client: httpx.Client, scripted_server: ScriptedServer
) -> None:
    def broken(request: RecordedRequest) -> Reply:
        raise KeyError("no such field")

    scripted_server.enqueue(broken)
    scripted_server.enqueue(Reply(text="x", extra={"unserializable": object()}))
    first = client.post(CHAT, json=chat_body())
    second = client.post(CHAT, json=chat_body())
    assert (first.status_code, second.status_code) == (500, 500)
    assert "no such field" in first.json()["error"]["message"]
    assert [type(error) for error in scripted_server.errors] == [KeyError, TypeError]
    assert client.post(CHAT, json=chat_body()).status_code == 200

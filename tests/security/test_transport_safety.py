"""TLS stays verified, a key sent in clear text is flagged, redirects never carry the key away.

Only loopback traffic here: plain-http hosts elsewhere are answered by an
``httpx.MockTransport`` inside the process, redirects go between two scripted
servers on 127.0.0.1 (different ports are different origins).
"""

from __future__ import annotations

import itertools
import json
import logging
import ssl
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from secrets_harness import KEY

from oaicompat import APIStatusError, AsyncClient, Client
from oaicompat._transport import is_loopback_host
from oaicompat.testing import RawReply, ScriptedServer

# TLS ------------------------------------------------------------------------------------


def ssl_context_of(client: Client | AsyncClient) -> ssl.SSLContext:
    """The SSL context of the pool that would carry the client's chat requests."""
    transport = client._http._transport_for_url(client._chat_url)
    context: ssl.SSLContext = transport._pool._ssl_context  # type: ignore[attr-defined]
    return context


def assert_verifies(context: ssl.SSLContext) -> None:
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname is True


async def test_tls_is_verified_by_default() -> None:
    sync_client = Client("https://llm.example.test/v1", "m", api_key=KEY)
    async_client = AsyncClient("https://llm.example.test/v1", "m", api_key=KEY)
    hosted = Client.for_server("openai", "gpt-4o-mini", api_key=KEY)
    try:
        for client in (sync_client, async_client, hosted):
            assert_verifies(ssl_context_of(client))
    finally:
        sync_client.close()
        hosted.close()
        await async_client.aclose()


async def test_tls_is_verified_by_default_in_the_adapters() -> None:
    from oaicompat.langchain import ChatOpenAICompatible
    from oaicompat.llama_index import OpenAICompatible

    chat_model = ChatOpenAICompatible(model="m", base_url="https://llm.example.test", api_key=KEY)
    llm = OpenAICompatible(
        model="m", base_url="https://llm.example.test", api_key=KEY, context_window=4096
    )
    try:
        for client in (
            chat_model.client,
            chat_model.async_client,
            llm._get_client(),
            llm._get_aclient(),
        ):
            assert_verifies(ssl_context_of(client))
    finally:
        await chat_model.aclose()
        await llm.aclose()


# A key over plain http -------------------------------------------------------------------

_hosts = itertools.count(1)


def fresh_host() -> str:
    """A host no earlier test used: the warning is given once per origin and process."""
    return f"gpu-box-{next(_hosts)}.internal"


def fake_server(request: httpx.Request) -> httpx.Response:
    """Answers like an OpenAI-compatible server, inside the process."""
    if request.url.path.endswith("/models"):
        return httpx.Response(200, json={"object": "list", "data": [{"id": "m"}]})
    body = json.loads(request.content)
    if body.get("stream"):
        chunk = {"choices": [{"index": 0, "delta": {"content": "ok"}, "finish_reason": "stop"}]}
        events = f"data: {json.dumps(chunk)}\n\ndata: [DONE]\n\n"
        return httpx.Response(
            200, content=events.encode(), headers={"content-type": "text/event-stream"}
        )
    message = {"role": "assistant", "content": "ok"}
    choice = {"index": 0, "message": message, "finish_reason": "stop"}
    return httpx.Response(200, json={"id": "x", "choices": [choice]})


@pytest.fixture(params=["sync", "async"])
async def make_client(request: pytest.FixtureRequest) -> AsyncIterator[Any]:
    """``make_client(base_url, **kwargs)``: a client whose traffic never leaves the process."""
    is_async = request.param == "async"
    transport = httpx.MockTransport(fake_server)
    http = httpx.AsyncClient(transport=transport) if is_async else httpx.Client(transport=transport)
    cls = AsyncClient if is_async else Client

    def make(base_url: str, **kwargs: Any) -> Client | AsyncClient:
        return cls(base_url, "m", http_client=http, **kwargs)

    yield make
    if isinstance(http, httpx.AsyncClient):
        await http.aclose()
    else:
        http.close()


async def use(client: Client | AsyncClient) -> None:
    """A chat, a stream, a model listing and another chat."""
    if isinstance(client, AsyncClient):
        await client.chat("Hi")
        async with client.stream("Hi") as stream:
            await stream.final()
        await client.list_models()
        await client.chat("Hi")
        return
    client.chat("Hi")
    with client.stream("Hi") as sync_stream:
        sync_stream.final()
    client.list_models()
    client.chat("Hi")


def clear_text_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.name == "oaicompat" and "plain http://" in record.getMessage()
    ]


@pytest.mark.parametrize("host_kind", ["name", "lan-ip"])
async def test_key_over_plain_http_to_another_machine_warns_once(
    make_client: Any, caplog: pytest.LogCaptureFixture, host_kind: str
) -> None:
    caplog.set_level(logging.WARNING, logger="oaicompat")
    host = fresh_host() if host_kind == "name" else f"192.168.7.{next(_hosts) % 250 + 1}"
    port = 8000 + next(_hosts)
    client = make_client(f"http://{host}:{port}/v1", api_key=KEY)
    await use(client)
    await use(make_client(f"http://{host}:{port}", api_key=KEY))
    warnings = clear_text_warnings(caplog)
    assert len(warnings) == 1
    assert host in warnings[0]
    assert "https://" in warnings[0]
    assert KEY not in caplog.text


@pytest.mark.parametrize(
    "base_url",
    [
        "https://{host}/v1",
        "http://127.0.0.1:{port}/v1",
        "http://127.0.0.53:{port}/v1",
        "http://localhost:{port}/v1",
        "http://[::1]:{port}/v1",
        "http://ollama.localhost:{port}/v1",
    ],
)
async def test_no_warning_over_tls_or_on_loopback(
    make_client: Any, caplog: pytest.LogCaptureFixture, base_url: str
) -> None:
    caplog.set_level(logging.WARNING, logger="oaicompat")
    client = make_client(base_url.format(host=fresh_host(), port=9000 + next(_hosts)), api_key=KEY)
    await use(client)
    assert clear_text_warnings(caplog) == []


async def test_no_warning_without_a_key(make_client: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="oaicompat")
    await use(make_client(f"http://{fresh_host()}:8000/v1"))
    assert clear_text_warnings(caplog) == []


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("localhost", True),
        ("LOCALHOST.", True),
        ("api.localhost", True),
        ("127.0.0.1", True),
        ("127.255.0.9", True),
        ("::1", True),
        ("[::1]", True),
        ("::ffff:127.0.0.1", True),
        ("0.0.0.0", False),
        ("10.0.0.5", False),
        ("192.168.1.2", False),
        ("localhost.example.com", False),
        ("example.com", False),
        ("::", False),
    ],
)
def test_what_counts_as_loopback(host: str, loopback: bool) -> None:
    assert is_loopback_host(host) is loopback


# Redirects ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def elsewhere() -> Iterator[ScriptedServer]:
    """Another origin (another port) that a redirect points to."""
    with ScriptedServer() as other:
        yield other


@pytest.fixture
def redirecting(server: ScriptedServer, elsewhere: ScriptedServer) -> ScriptedServer:
    elsewhere.clear()
    return server


def redirect_to(target: str, status: int = 307) -> RawReply:
    return RawReply(status, b"", headers={"Location": target})


async def chat_once(client: Client | AsyncClient) -> None:
    if isinstance(client, AsyncClient):
        await client.chat("Hi")
    else:
        client.chat("Hi")


async def close(*closables: Client | AsyncClient | httpx.Client | httpx.AsyncClient) -> None:
    for closable in closables:
        if isinstance(closable, (AsyncClient, httpx.AsyncClient)):
            await closable.aclose()
        else:
            closable.close()


@pytest.mark.parametrize("status", [301, 302, 307, 308])
@pytest.mark.parametrize("profile", ["generic", "azure"])
@pytest.mark.parametrize("pool", ["owned", "injected-follows-redirects"])
@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
async def test_redirects_to_another_origin_are_not_followed(
    redirecting: ScriptedServer,
    elsewhere: ScriptedServer,
    status: int,
    profile: str,
    pool: str,
    is_async: bool,
) -> None:
    target = elsewhere.base_url.replace("127.0.0.1", "localhost") + "/chat/completions"
    redirecting.enqueue(redirect_to(target, status), times=2)
    http: httpx.Client | httpx.AsyncClient | None = None
    if pool != "owned":
        # A client of the user's own that follows redirects: still not for requests with the key.
        http = (
            httpx.AsyncClient(follow_redirects=True)
            if is_async
            else httpx.Client(follow_redirects=True)
        )
    cls = AsyncClient if is_async else Client
    client = cls(redirecting.base_url, "m", api_key=KEY, profile=profile, http_client=http)
    try:
        with pytest.raises(APIStatusError, match="not following the redirect") as caught:
            await chat_once(client)
    finally:
        await close(client, *([http] if http is not None else []))
    assert caught.value.status_code == status
    assert target in str(caught.value)
    sent = redirecting.chat_requests[0].headers
    assert KEY in (sent.get("authorization", "") + sent.get("api-key", ""))
    assert elsewhere.requests == []


async def test_streams_and_discovery_do_not_follow_redirects_either(
    redirecting: ScriptedServer, elsewhere: ScriptedServer
) -> None:
    redirecting.enqueue(redirect_to(elsewhere.base_url + "/chat/completions"))
    redirecting.enqueue(redirect_to(elsewhere.base_url + "/models"), path="/v1/models")
    with httpx.Client(follow_redirects=True) as http:
        client = Client(redirecting.base_url, "m", api_key=KEY, http_client=http)
        with pytest.raises(APIStatusError, match="not following"), client.stream("Hi"):
            pass
        with pytest.raises(APIStatusError):
            client.list_models()
    assert len(redirecting.requests) == 2
    assert elsewhere.requests == []

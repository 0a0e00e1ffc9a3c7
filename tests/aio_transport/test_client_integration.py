"""Which AsyncClients use the asyncio transport, and the client's behaviour on top of it."""

from __future__ import annotations

import asyncio
import gc
import socket
import warnings
from collections.abc import Iterator

import httpx
import pytest
from aio_harness import Peer, RawServer, chunk, chunked_head

from oaicompat import APIConnectionError, APITimeoutError, AsyncClient, Client, StreamError
from oaicompat._aio_transport import OPT_OUT_ENV, AioTransport
from oaicompat.testing import Reply, ScriptedServer


@pytest.fixture(scope="module")
def server() -> Iterator[ScriptedServer]:
    with ScriptedServer() as scripted:
        yield scripted


@pytest.fixture(autouse=True)
def _plain_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        OPT_OUT_ENV,
        "HTTP_PROXY",
        "http_proxy",
        "ALL_PROXY",
        "all_proxy",
        "NO_PROXY",
        "no_proxy",
    ):
        monkeypatch.delenv(name, raising=False)


def transport_for(client: AsyncClient | Client, url: str) -> object:
    # httpx picks a mounted transport per URL; this asks it which one it would use.
    return client._http._transport_for_url(httpx.URL(url))


async def test_an_owned_async_client_serves_http_through_aio_transport(
    server: ScriptedServer,
) -> None:
    async with AsyncClient(server.base_url, "scripted-model") as client:
        transport = transport_for(client, server.base_url)
        assert isinstance(transport, AioTransport)
        assert (await client.chat("hello")).content == "You said: hello"
        async with client.stream("again") as stream:
            assert (await stream.final()).content == "You said: again"
        assert len(transport.idle_connections) == 1
        assert not isinstance(transport_for(client, "https://api.example.com/v1"), AioTransport)


async def test_an_injected_http_client_is_left_alone(server: ScriptedServer) -> None:
    async with httpx.AsyncClient() as http:
        client = AsyncClient(server.base_url, "scripted-model", http_client=http)
        assert not isinstance(transport_for(client, server.base_url), AioTransport)
        assert (await client.chat("hi")).content == "You said: hi"


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        (OPT_OUT_ENV, "1", False),
        (OPT_OUT_ENV, "0", True),
        ("HTTP_PROXY", "http://proxy.invalid:3128", False),
        ("ALL_PROXY", "http://proxy.invalid:3128", False),
    ],
)
async def test_environment_opt_out_and_proxies(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, expected: bool
) -> None:
    monkeypatch.setenv(variable, value)
    async with AsyncClient("http://127.0.0.1:9/v1", "m") as client:
        assert isinstance(transport_for(client, client.base_url), AioTransport) is expected


@pytest.mark.parametrize(
    "no_proxy", ["127.0.0.1,localhost", "localhost, 127.0.0.1", ".local,127.0.0.1,::1"]
)
async def test_no_proxy_hosts_still_get_aio_transport(
    monkeypatch: pytest.MonkeyPatch, server: ScriptedServer, no_proxy: str
) -> None:
    # httpx mounts its default transport for every NO_PROXY host, more specific than http://.
    monkeypatch.setenv("NO_PROXY", no_proxy)
    async with AsyncClient(server.base_url, "scripted-model") as client:
        transport = transport_for(client, server.base_url)
        assert isinstance(transport, AioTransport)
        assert (await client.chat("hi")).content == "You said: hi"
        assert len(transport.idle_connections) == 1


async def test_http2_and_sync_clients_keep_httpx_transport() -> None:
    async with AsyncClient("http://127.0.0.1:9/v1", "m", http2=True) as client:
        assert not isinstance(transport_for(client, client.base_url), AioTransport)
    with Client("http://127.0.0.1:9/v1", "m") as sync_client:
        assert not isinstance(transport_for(sync_client, sync_client.base_url), AioTransport)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_transport_failures_map_onto_the_error_tree() -> None:
    async def stalls(peer: Peer) -> None:
        await peer.read_request()
        await peer.send(chunked_head({"Content-Type": "text/event-stream"}))
        await peer.send(chunk(b'data: {"choices":[{"index":0,"delta":{"content":"Hel"}}]}\n\n'))
        await asyncio.sleep(30)

    async with AsyncClient(f"http://127.0.0.1:{_free_port()}/v1", "m", max_retries=0) as client:
        with pytest.raises(APIConnectionError, match="cannot connect"):
            await client.chat("hi")
    async with RawServer(stalls) as raw:
        timeout = httpx.Timeout(5.0, read=0.2)
        async with AsyncClient(raw.url, "m", max_retries=0, timeout=timeout) as client:
            with pytest.raises(APITimeoutError, match="read timeout"):
                await client.chat("hi")
            with pytest.raises(StreamError) as caught:
                async with client.stream("hi") as stream:
                    await stream.final()
            assert caught.value.partial is not None
            assert caught.value.partial.content == "Hel"


def test_sockets_are_closed_when_each_asyncio_run_ends(server: ScriptedServer) -> None:
    # A notebook runs every cell with asyncio.run(); the pool of one loop must not
    # outlive it as sockets that only the garbage collector closes.
    server.enqueue(Reply(text="first"), Reply(text="second"))
    client = AsyncClient(server.base_url, "scripted-model")

    async def ask() -> str:
        return (await client.chat("Hi")).content

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        assert asyncio.run(ask()) == "first"
        assert asyncio.run(ask()) == "second"
        asyncio.run(client.aclose())
        gc.collect()
    assert [w for w in caught if issubclass(w.category, ResourceWarning)] == []

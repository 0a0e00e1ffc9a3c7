"""The API key never shows: not in clients, streams, answers, errors of any kind, nor logs.

Servers here echo the key back in every way real ones do by accident (error
messages, nested JSON, HTML pages, plain text, response headers, stream error
events, broken stream events); the error the caller gets must not carry it
anywhere: message, attributes, traceback or pickle.
"""

from __future__ import annotations

import logging
import pickle
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from secrets_harness import ECHOES, KEY, STREAM_ECHOES, echo, key_locations

from oaicompat import AsyncClient, AuthenticationError, Client, OAICompatError
from oaicompat.testing import Reply, ScriptedServer

LOGGERS = ("", "oaicompat", "httpx", "httpcore", "hpack", "asyncio")


@pytest.fixture
def all_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Every record at DEBUG and above, from us and from the HTTP stack."""
    previous = {name: logging.getLogger(name).level for name in LOGGERS}
    for name in LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name)
    yield caplog
    for name, level in previous.items():
        logging.getLogger(name).setLevel(level)


def _httpcore_response_headers(record: logging.LogRecord) -> bool:
    # httpcore's DEBUG trace prints response headers verbatim; a server that echoes the
    # key in a response header shows it there, out of this library's reach.
    return record.name.startswith("httpcore") and "receive_response_headers" in record.msg


def assert_logs_clean(logs: pytest.LogCaptureFixture) -> None:
    assert logs.records, "nothing was logged: the log check would prove nothing"
    for record in logs.records:
        if _httpcore_response_headers(record):
            continue
        rendered = logging.Formatter("%(message)s").format(record)
        assert KEY not in rendered, f"key in a log record from {record.name}: {rendered}"
        assert KEY not in repr(record.args), f"key in a log record's args ({record.name})"


@pytest.fixture(params=["sync", "async"])
async def client(request: pytest.FixtureRequest, server: ScriptedServer) -> AsyncIterator[Any]:
    cls = AsyncClient if request.param == "async" else Client
    made = cls(server.base_url, "scripted-model", api_key=KEY, max_retries=1, sleep=lambda s: None)
    yield made
    if isinstance(made, AsyncClient):
        await made.aclose()
    else:
        made.close()


async def chat(client: Client | AsyncClient) -> Any:
    if isinstance(client, AsyncClient):
        return await client.chat("Hi")
    return client.chat("Hi")


async def stream(client: Client | AsyncClient) -> Any:
    """The stream object and its final answer, read to the end inside ``with``."""
    if isinstance(client, AsyncClient):
        async with client.stream("Hi") as astream:
            async for _ in astream:
                pass
            return astream, await astream.final()
    with client.stream("Hi") as sync_stream:
        for _ in sync_stream:
            pass
        return sync_stream, sync_stream.final()


async def list_models(client: Client | AsyncClient) -> Any:
    if isinstance(client, AsyncClient):
        return await client.list_models()
    return client.list_models()


async def server_info(client: Client | AsyncClient) -> Any:
    if isinstance(client, AsyncClient):
        return await client.server_info()
    return client.server_info()


def test_the_key_is_sent(server: ScriptedServer) -> None:
    # Everything below would pass trivially if the key never reached the server.
    with Client(server.base_url, "scripted-model", api_key=KEY) as client:
        client.chat("Hi")
    assert server.chat_requests[0].headers["authorization"] == f"Bearer {KEY}"


async def test_clients_streams_and_answers_do_not_show_it(
    client: Client | AsyncClient, server: ScriptedServer, all_logs: pytest.LogCaptureFixture
) -> None:
    answer = await chat(client)
    opened, final = await stream(client)
    for name, value in {
        "client": client,
        "vars(client)": vars(client),
        "stream": opened,
        "answer": answer,
        "streamed answer": final,
    }.items():
        assert key_locations(value, name) == []
    assert KEY not in str(vars(client))
    assert KEY not in str(client.profile)
    assert_logs_clean(all_logs)


def test_clients_cannot_be_pickled_with_their_key() -> None:
    for cls in (Client, AsyncClient):
        client = cls("http://127.0.0.1:9/v1", "m", api_key=KEY)
        try:
            with pytest.raises(TypeError, match="cannot be pickled"):
                pickle.dumps(client)
        finally:
            if isinstance(client, Client):
                client.close()


@pytest.mark.parametrize("streamed", [False, True], ids=["chat", "stream"])
@pytest.mark.parametrize("fault", list(ECHOES))
async def test_errors_echoing_the_key_do_not_carry_it(
    client: Client | AsyncClient,
    server: ScriptedServer,
    all_logs: pytest.LogCaptureFixture,
    fault: str,
    streamed: bool,
) -> None:
    server.enqueue(echo(ECHOES[fault]), times=2)
    with pytest.raises(OAICompatError) as caught:
        await (stream(client) if streamed else chat(client))
    error = caught.value
    assert server.chat_requests[0].headers["authorization"] == f"Bearer {KEY}"
    assert key_locations(error, "error") == []
    assert_logs_clean(all_logs)


async def test_the_rest_of_an_echoed_message_stays_readable(
    client: Client | AsyncClient, server: ScriptedServer
) -> None:
    server.enqueue(echo(ECHOES["401-json-message"]))
    with pytest.raises(OAICompatError) as caught:
        await chat(client)
    assert str(caught.value) == "401 Unauthorized: Incorrect API key provided: Bearer ***"


@pytest.mark.parametrize("fault", list(STREAM_ECHOES))
async def test_stream_errors_echoing_the_key_do_not_carry_it(
    client: Client | AsyncClient,
    server: ScriptedServer,
    all_logs: pytest.LogCaptureFixture,
    fault: str,
) -> None:
    server.enqueue(echo(STREAM_ECHOES[fault]))
    with pytest.raises(OAICompatError) as caught:
        await stream(client)
    assert key_locations(caught.value, "error") == []
    assert_logs_clean(all_logs)


@pytest.mark.parametrize("fault", ["401-json-message", "500-html-page", "403-header"])
async def test_discovery_errors_echoing_the_key_do_not_carry_it(
    client: Client | AsyncClient,
    server: ScriptedServer,
    all_logs: pytest.LogCaptureFixture,
    fault: str,
) -> None:
    server.enqueue(echo(ECHOES[fault]), times=3, path="/v1/models")
    with pytest.raises(OAICompatError) as caught:
        await list_models(client)
    assert server.requests[0].headers["authorization"] == f"Bearer {KEY}"
    assert key_locations(caught.value, "error") == []
    assert_logs_clean(all_logs)


async def test_server_info_does_not_carry_an_echoed_key(
    client: Client | AsyncClient, server: ScriptedServer, all_logs: pytest.LogCaptureFixture
) -> None:
    for path in ("/v1/models", "/props", "/api/tags", "/api/version", "/health"):
        server.enqueue(echo(ECHOES["401-json-message"]), times=3, path=path)
    with pytest.raises(AuthenticationError) as caught:
        await server_info(client)
    assert "Bearer ***" in str(caught.value)
    assert key_locations(caught.value, "error") == []
    assert_logs_clean(all_logs)


async def test_retries_and_fallbacks_log_without_the_key(
    client: Client | AsyncClient, server: ScriptedServer, all_logs: pytest.LogCaptureFixture
) -> None:
    server.enqueue(echo(ECHOES["429-echo"]))
    server.enqueue(Reply(text="after the retry"))
    assert (await chat(client)).content == "after the retry"
    assert any("retrying" in record.getMessage() for record in all_logs.records)
    assert any("***" in record.getMessage() for record in all_logs.records)
    assert_logs_clean(all_logs)


async def test_azure_style_key_header_is_kept_out_too(
    server: ScriptedServer, all_logs: pytest.LogCaptureFixture
) -> None:
    server.enqueue(echo(ECHOES["400-json-nested"]))
    with Client(server.base_url, "scripted-model", api_key=KEY, profile="azure") as client:
        with pytest.raises(OAICompatError) as caught:
            client.chat("Hi")
        assert key_locations(client, "client") == []
    assert server.chat_requests[0].headers["api-key"] == KEY
    assert key_locations(caught.value, "error") == []
    assert_logs_clean(all_logs)

"""Faults on demand: error statuses, broken streams, stalls, odd framing, compression."""

from __future__ import annotations

import gzip
import itertools
import json
import time
import zlib

import httpx
import pytest
from scripted_helpers import (
    CHAT,
    chat_body,
    raw_chat_request,
    raw_exchange,
    sse_data,
    stream,
    stream_chunks,
)

from oaicompat.errors import (
    AuthenticationError,
    BadRequestError,
    ContextLengthError,
    InternalServerError,
    NotFoundError,
    RateLimitError,
    error_from_payload,
    error_from_status,
)
from oaicompat.testing import (
    Disconnect,
    RawReply,
    Reply,
    ScriptedServer,
    context_length_exceeded,
    error_in_200,
    html_error,
    invalid_api_key,
    model_not_found,
    rate_limited,
    server_error,
    service_unavailable,
    validation_error,
)


@pytest.mark.parametrize(
    ("reply", "status", "error_class"),
    [
        (rate_limited(retry_after=2), 429, RateLimitError),
        (invalid_api_key(), 401, AuthenticationError),
        (model_not_found("ghost"), 404, NotFoundError),
        (context_length_exceeded(4096, 5000), 400, ContextLengthError),
        (validation_error(), 422, BadRequestError),
        (server_error(), 500, InternalServerError),
        (service_unavailable(retry_after=1), 503, InternalServerError),
        (html_error(502), 502, InternalServerError),
    ],
)
@pytest.mark.parametrize("stream_it", [False, True])
def test_error_statuses_read_as_the_errors_they_imitate(
    client: httpx.Client,
    scripted_server: ScriptedServer,
    reply: RawReply,
    status: int,
    error_class: type[Exception],
    stream_it: bool,
) -> None:
    scripted_server.enqueue(reply)
    response = client.post(CHAT, json=chat_body(stream=stream_it))
    assert response.status_code == status
    error = error_from_status(status, dict(response.headers), response.content)
    assert type(error) is error_class


def test_rate_limit_headers(client: httpx.Client, scripted_server: ScriptedServer) -> None:
    scripted_server.enqueue(rate_limited(retry_after=1.5, retry_after_ms=1500))
    response = client.post(CHAT, json=chat_body())
    assert response.headers["retry-after"] == "1.5"
    assert response.headers["retry-after-ms"] == "1500"
    assert response.json()["error"]["code"] == "rate_limit_exceeded"


def test_html_error_page(client: httpx.Client, scripted_server: ScriptedServer) -> None:
    scripted_server.enqueue(html_error(502, "502 Bad Gateway"))
    response = client.post(CHAT, json=chat_body())
    assert response.headers["content-type"] == "text/html"
    assert b"<title>502 Bad Gateway</title>" in response.content


def test_context_length_wording(client: httpx.Client, scripted_server: ScriptedServer) -> None:
    scripted_server.enqueue(context_length_exceeded(limit=100, requested=150))
    error = client.post(CHAT, json=chat_body()).json()["error"]
    assert error["code"] == "context_length_exceeded"
    assert "maximum context length is 100 tokens" in error["message"]
    assert "resulted in 150 tokens" in error["message"]


def test_error_object_in_a_200(client: httpx.Client, scripted_server: ScriptedServer) -> None:
    scripted_server.enqueue(error_in_200("model crashed"))
    response = client.post(CHAT, json=chat_body())
    assert response.status_code == 200
    assert type(error_from_payload(500, response.json())) is InternalServerError
    assert response.json()["error"]["message"] == "model crashed"


def test_fail_twice_then_succeed(client: httpx.Client, scripted_server: ScriptedServer) -> None:
    scripted_server.enqueue(service_unavailable(), times=2)
    statuses = [client.post(CHAT, json=chat_body()).status_code for _ in range(3)]
    assert statuses == [503, 503, 200]


def test_error_event_inside_a_200_stream(
    client: httpx.Client, scripted_server: ScriptedServer
) -> None:
    error = {"message": "out of memory", "type": "server_error", "code": 500}
    scripted_server.enqueue(Reply(text="alpha beta gamma", error_after=2, error=error))
    response, raw = stream(client, chat_body())
    assert response.status_code == 200
    payloads = [json.loads(data) for data in sse_data(raw)]
    assert payloads[-1] == {"error": error}
    assert payloads[1]["choices"][0]["delta"]["content"] == "alpha"
    assert len(payloads) == 3
    assert b"[DONE]" not in raw


def test_connection_dropped_mid_stream(
    client: httpx.Client, scripted_server: ScriptedServer
) -> None:
    scripted_server.enqueue(Reply(text="one two three four", drop_after=3))
    received: list[bytes] = []
    with client.stream("POST", CHAT, json=chat_body(stream=True)) as response:
        assert response.status_code == 200
        with pytest.raises(httpx.RemoteProtocolError):
            received.extend(response.iter_raw())
    chunks = stream_chunks(b"".join(received))
    assert [chunk["choices"][0]["delta"].get("content") for chunk in chunks] == [
        "",
        "one",
        " two",
    ]
    assert client.post(CHAT, json=chat_body("again")).status_code == 200


def test_connection_dropped_mid_body(client: httpx.Client, scripted_server: ScriptedServer) -> None:
    scripted_server.enqueue(Reply(text="never whole", drop_after=0))
    with pytest.raises(httpx.RemoteProtocolError):
        client.post(CHAT, json=chat_body())


def test_reset_before_headers(scripted_server: ScriptedServer) -> None:
    scripted_server.enqueue(Disconnect())
    with pytest.raises(ConnectionResetError):
        raw_exchange(scripted_server.port, raw_chat_request(chat_body()))


def test_reset_reads_as_a_connection_error_in_httpx(scripted_server: ScriptedServer) -> None:
    scripted_server.enqueue(Disconnect())
    with (
        httpx.Client(base_url=scripted_server.base_url) as http,
        pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)),
    ):
        http.post(CHAT, json=chat_body())


def test_delay_before_first_byte(scripted_server: ScriptedServer) -> None:
    scripted_server.enqueue(Reply(text="late", first_byte_delay=2.0))
    with httpx.Client(base_url=scripted_server.base_url, timeout=0.3) as http:
        began = time.perf_counter()
        with pytest.raises(httpx.ReadTimeout):
            http.post(CHAT, json=chat_body())
        assert time.perf_counter() - began < 1.5
    scripted_server.enqueue(Reply(text="late", first_byte_delay=0.3))
    with httpx.Client(base_url=scripted_server.base_url, timeout=5.0) as http:
        began = time.perf_counter()
        http.post(CHAT, json=chat_body())
        assert time.perf_counter() - began >= 0.3


def test_delay_between_chunks(scripted_server: ScriptedServer) -> None:
    scripted_server.enqueue(Reply(text="a b c", chunk_delay=0.1))
    arrivals = []
    with (
        httpx.Client(base_url=scripted_server.base_url, timeout=5.0) as http,
        http.stream("POST", CHAT, json=chat_body(stream=True)) as response,
    ):
        for _ in response.iter_raw():
            arrivals.append(time.perf_counter())
    assert len(arrivals) >= 6
    gaps = [later - earlier for earlier, later in itertools.pairwise(arrivals)]
    assert min(gaps) >= 0.08


def test_stall_between_chunks_trips_a_read_timeout(scripted_server: ScriptedServer) -> None:
    scripted_server.enqueue(Reply(text="a b", chunk_delay=3.0))
    with (
        httpx.Client(base_url=scripted_server.base_url, timeout=0.3) as http,
        http.stream("POST", CHAT, json=chat_body(stream=True)) as response,
    ):
        assert response.status_code == 200
        with pytest.raises(httpx.ReadTimeout):
            response.read()


def test_one_malformed_chunk(client: httpx.Client, scripted_server: ScriptedServer) -> None:
    scripted_server.enqueue(Reply(text="x y", malformed_at=2))
    datas = sse_data(stream(client, chat_body())[1])
    assert datas[-1] == b"[DONE]"
    broken = []
    for data in datas[:-1]:
        try:
            json.loads(data)
        except ValueError:
            broken.append(data)
    assert len(broken) == 1
    assert datas.index(broken[0]) == 2
    assert broken[0].startswith(b'{"id":')


def test_keep_alive_comments(client: httpx.Client, scripted_server: ScriptedServer) -> None:
    scripted_server.enqueue(Reply(text="a b c d", keepalive=2))
    raw = stream(client, chat_body())[1]
    lines = raw.split(b"\n")
    assert len(stream_chunks(raw)) == 6  # role, four words, finish
    assert lines.count(b": keep-alive") == 3  # before chunks 0, 2 and 4


@pytest.mark.parametrize("eol", ["\r\n", "\r"])
def test_line_endings(client: httpx.Client, scripted_server: ScriptedServer, eol: str) -> None:
    scripted_server.enqueue(Reply(text="hello there", line_ending=eol))  # type: ignore[arg-type]
    raw = stream(client, chat_body())[1]
    assert raw.endswith(b"data: [DONE]" + eol.encode() * 2)
    assert b"\n" not in raw.replace(b"\r\n", b"") if eol == "\r\n" else b"\n" not in raw
    assert "".join(
        c["choices"][0]["delta"].get("content", "") for c in stream_chunks(raw)[:-1]
    ) == ("hello there")


def test_stream_without_done(client: httpx.Client, scripted_server: ScriptedServer) -> None:
    scripted_server.enqueue(Reply(text="end", done=False))
    _, raw = stream(client, chat_body())
    assert b"[DONE]" not in raw
    assert stream_chunks(raw)[-1]["choices"][0]["finish_reason"] == "stop"


def test_gzip_body(client: httpx.Client, scripted_server: ScriptedServer) -> None:
    scripted_server.enqueue(Reply(text="squeezed", gzip=True))
    with client.stream("POST", CHAT, json=chat_body()) as response:
        compressed = b"".join(response.iter_raw())
    assert response.headers["content-encoding"] == "gzip"
    body = json.loads(gzip.decompress(compressed))
    assert body["choices"][0]["message"]["content"] == "squeezed"


def test_gzip_stream_decodes_event_by_event(
    client: httpx.Client, scripted_server: ScriptedServer
) -> None:
    scripted_server.enqueue(Reply(text="one two three", gzip=True))
    decompressor = zlib.decompressobj(wbits=31)
    pieces = []
    with client.stream("POST", CHAT, json=chat_body(stream=True)) as response:
        assert response.headers["content-encoding"] == "gzip"
        for raw in response.iter_raw():
            pieces.append(decompressor.decompress(raw))
    assert all(piece.endswith(b"\n\n") for piece in pieces if piece)
    text = "".join(
        c["choices"][0]["delta"].get("content", "") for c in stream_chunks(b"".join(pieces))[:-1]
    )
    assert text == "one two three"
    assert client.post(CHAT, json=chat_body()).status_code == 200


def test_raw_reply_gzip_and_content_type(
    client: httpx.Client, scripted_server: ScriptedServer
) -> None:
    scripted_server.enqueue(RawReply(body="plain words", gzip=True))
    response = client.post(CHAT, json=chat_body())
    assert response.headers["content-type"].startswith("text/plain")
    assert response.text == "plain words"


def test_unusual_status_on_a_stream(client: httpx.Client, scripted_server: ScriptedServer) -> None:
    scripted_server.enqueue(Reply(text="partial", status=206, headers={"X-Extra": "1"}))
    response, raw = stream(client, chat_body())
    assert (response.status_code, response.headers["x-extra"]) == (206, "1")
    assert stream_chunks(raw)

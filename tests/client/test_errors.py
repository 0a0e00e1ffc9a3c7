"""Every failure reaches the caller as one typed error carrying the server's own words."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest
from client_harness import (
    Mode,
    ScriptedServer,
    completion,
    json_reply,
    raw_reply,
    sse_reply,
    text_stream_events,
)

from oaicompat import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ContextLengthError,
    InternalServerError,
    NotFoundError,
    OAICompatError,
    PermissionDeniedError,
    RateLimitError,
    ResponseParseError,
)

KEY = "sk-secret-do-not-leak-42"

OPENAI_CONTEXT = {
    "error": {
        "message": "This model's maximum context length is 128000 tokens. However, your "
        "messages resulted in 130000 tokens. Please reduce the length of the messages.",
        "type": "invalid_request_error",
        "param": "messages",
        "code": "context_length_exceeded",
    }
}
VLLM_CONTEXT = {
    "object": "error",
    "message": "This model's maximum context length is 4096 tokens. However, you requested "
    "5000 tokens (4900 in the messages, 100 in the completion).",
    "type": "BadRequestError",
    "param": None,
    "code": 400,
}
LLAMACPP_CONTEXT = {
    "error": {
        "code": 400,
        "message": "the request exceeds the available context size, try increasing it",
        "type": "exceed_context_size_error",
        "n_prompt_tokens": 5000,
        "n_ctx": 4096,
    }
}
TGI_CONTEXT = {
    "error": "Input validation error: `inputs` tokens + `max_new_tokens` must be <= 4096. "
    "Given: 4000 `inputs` tokens and 200 `max_new_tokens`",
    "error_type": "validation",
}


def openai_error(message: str, kind: str = "invalid_request_error") -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": None, "code": None}}


STATUS_CASES = [
    pytest.param(
        400, openai_error("Unrecognized request argument: foo"), BadRequestError, "foo", id="400"
    ),
    pytest.param(400, OPENAI_CONTEXT, ContextLengthError, "maximum context", id="400-openai-ctx"),
    pytest.param(400, VLLM_CONTEXT, ContextLengthError, "4096 tokens", id="400-vllm-ctx"),
    pytest.param(400, LLAMACPP_CONTEXT, ContextLengthError, "context size", id="400-llamacpp-ctx"),
    pytest.param(422, TGI_CONTEXT, ContextLengthError, "max_new_tokens", id="422-tgi-ctx"),
    pytest.param(
        422, {"detail": [{"msg": "field required"}]}, BadRequestError, "field required", id="422"
    ),
    pytest.param(401, openai_error("Incorrect API key provided"), AuthenticationError, "API key"),
    pytest.param(403, openai_error("Not allowed"), PermissionDeniedError, "Not allowed"),
    pytest.param(
        404, openai_error('model "nope" not found, try pulling it first'), NotFoundError, "nope"
    ),
    pytest.param(429, openai_error("Rate limit reached"), RateLimitError, "Rate limit"),
    pytest.param(500, {"error": "llama runner crashed"}, InternalServerError, "runner crashed"),
    pytest.param(503, {"detail": "Service Unavailable"}, InternalServerError, "Unavailable"),
]


@pytest.mark.parametrize(("status", "payload", "error_class", "words"), STATUS_CASES)
async def test_status_codes_map_to_typed_errors(
    mode: Mode, status: int, payload: dict[str, Any], error_class: type[APIStatusError], words: str
) -> None:
    headers = {"x-request-id": "req-abc"}
    server = ScriptedServer(json_reply(payload, status, headers))
    client = mode.client(server, max_retries=0)
    with pytest.raises(error_class) as caught:
        await mode.chat(client)
    error = caught.value
    assert type(error) is error_class
    assert error.status_code == status
    assert words in str(error)
    assert str(status) in str(error)
    assert error.request_id == "req-abc"
    assert error.body == payload
    assert server.calls == 1


@pytest.mark.parametrize(("status", "payload", "error_class", "words"), STATUS_CASES)
async def test_status_errors_raise_when_a_stream_opens(
    mode: Mode, status: int, payload: dict[str, Any], error_class: type[APIStatusError], words: str
) -> None:
    server = ScriptedServer(json_reply(payload, status))
    stream = mode.client(server, max_retries=0).stream("Hi")
    with pytest.raises(error_class, match=words):
        await mode.enter(stream)


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [({"retry-after": "7"}, 7.0), ({"retry-after-ms": "1500"}, 1.5)],
)
async def test_rate_limit_carries_retry_after(
    mode: Mode, headers: dict[str, str], seconds: float
) -> None:
    server = ScriptedServer(json_reply(openai_error("slow down"), 429, headers))
    with pytest.raises(RateLimitError) as caught:
        await mode.chat(mode.client(server, max_retries=0))
    assert caught.value.retry_after == seconds


async def test_html_error_page_message_is_its_title(mode: Mode) -> None:
    page = b"<html><head><title>502 Bad Gateway</title></head><body><h1>nginx</h1></body></html>"
    server = ScriptedServer(raw_reply(page, 502))
    with pytest.raises(InternalServerError) as caught:
        await mode.chat(mode.client(server, max_retries=0))
    assert "502 Bad Gateway" in str(caught.value)
    assert "<title>" not in str(caught.value)


async def test_200_with_an_html_body_is_a_parse_error(mode: Mode) -> None:
    page = b"<!doctype html><html><head><title>Sign in - Corp Proxy</title></head></html>"
    server = ScriptedServer(raw_reply(page, 200))
    with pytest.raises(ResponseParseError) as caught:
        await mode.chat(mode.client(server))
    assert "Sign in - Corp Proxy" in str(caught.value)
    assert "text/html" in str(caught.value)
    assert caught.value.status_code == 200
    assert server.calls == 1


async def test_200_with_invalid_json_is_a_parse_error(mode: Mode) -> None:
    server = ScriptedServer(raw_reply(b'{"choices": [', 200, "application/json"))
    with pytest.raises(ResponseParseError, match="expected a JSON chat completion"):
        await mode.chat(mode.client(server))


async def test_200_json_that_is_not_a_completion_is_a_parse_error(mode: Mode) -> None:
    server = ScriptedServer(json_reply({"object": "list", "data": []}))
    with pytest.raises(ResponseParseError, match="no choices"):
        await mode.chat(mode.client(server))


async def test_200_carrying_an_error_object_is_a_typed_error(mode: Mode) -> None:
    server = ScriptedServer(json_reply({"error": {"message": "model overloaded", "code": 503}}))
    with pytest.raises(APIStatusError, match="model overloaded"):
        await mode.chat(mode.client(server, max_retries=0))


async def test_body_larger_than_the_limit_is_refused(mode: Mode) -> None:
    big = completion("x" * 5000)
    server = ScriptedServer(json_reply(big))
    with pytest.raises(ResponseParseError, match="max_response_bytes"):
        await mode.chat(mode.client(server, max_response_bytes=1000))
    response = await mode.chat(mode.client(server, max_response_bytes=10_000))
    assert response.content == "x" * 5000


TRANSPORT_FAILURES = [
    pytest.param(httpx.ConnectError("[Errno 111] Connection refused"), APIConnectionError, id="c"),
    pytest.param(httpx.ConnectTimeout("timed out"), APITimeoutError, id="connect-timeout"),
    pytest.param(httpx.ReadTimeout("timed out"), APITimeoutError, id="read-timeout"),
    pytest.param(httpx.WriteTimeout("timed out"), APITimeoutError, id="write-timeout"),
    pytest.param(httpx.PoolTimeout("timed out"), APITimeoutError, id="pool-timeout"),
    pytest.param(httpx.ReadError("connection reset"), APIConnectionError, id="read-error"),
    pytest.param(httpx.RemoteProtocolError("peer closed"), APIConnectionError, id="protocol"),
    pytest.param(httpx.UnsupportedProtocol("no"), APIConnectionError, id="unsupported"),
    pytest.param(httpx.ProxyError("proxy said no"), APIConnectionError, id="proxy"),
]


@pytest.mark.parametrize(("failure", "error_class"), TRANSPORT_FAILURES)
async def test_transport_failures_are_mapped(
    mode: Mode, failure: Exception, error_class: type[OAICompatError]
) -> None:
    server = ScriptedServer(failure)
    with pytest.raises(error_class) as caught:
        await mode.chat(mode.client(server, max_retries=0))
    assert type(caught.value) is error_class
    assert caught.value.__cause__ is failure
    assert "testserver" in str(caught.value)


@pytest.mark.parametrize(("failure", "error_class"), TRANSPORT_FAILURES)
async def test_transport_failures_are_mapped_when_a_stream_opens(
    mode: Mode, failure: Exception, error_class: type[OAICompatError]
) -> None:
    server = ScriptedServer(failure)
    stream = mode.client(server, max_retries=0).stream("Hi")
    with pytest.raises(error_class):
        await mode.iterate(stream)


async def test_connection_refused_on_a_real_socket(mode: Mode) -> None:
    # Port 9 (discard) on loopback has nothing listening in a test environment.
    client = mode.client_class("http://127.0.0.1:9", "m", max_retries=0, timeout=5)
    try:
        with pytest.raises(APIConnectionError, match=r"127\.0\.0\.1:9"):
            await mode.chat(client)
    finally:
        await mode.close(client)


async def test_body_dropped_mid_read_is_a_connection_error(mode: Mode) -> None:
    reply = sse_reply([b'{"id": "x", "choi'], error=httpx.RemoteProtocolError("peer closed"))
    server = ScriptedServer(reply)
    with pytest.raises(APIConnectionError, match="peer closed"):
        await mode.chat(mode.client(server, max_retries=0))


async def test_key_never_in_error_messages_or_logs(
    mode: Mode, caplog: pytest.LogCaptureFixture
) -> None:
    echo = openai_error(f"Incorrect API key provided: {KEY}. Find your key at ...")
    server = ScriptedServer(json_reply({"error": "busy"}, 503), json_reply(echo, 401))
    client = mode.client(server, api_key=KEY)
    with (
        caplog.at_level(logging.DEBUG, logger="oaicompat"),
        pytest.raises(AuthenticationError) as caught,
    ):
        await mode.chat(client)
    error = caught.value
    assert server.calls == 2
    assert "Incorrect API key provided" in str(error)
    for text in (str(error), repr(error), error.message, str(error.server_message), caplog.text):
        assert KEY not in text
    assert "retrying" in caplog.text


async def test_stream_after_success_keeps_working(mode: Mode) -> None:
    # A failed call leaves the client usable: the pool is not poisoned.
    server = ScriptedServer(
        json_reply(openai_error("bad"), 400), sse_reply(text_stream_events(["ok"]))
    )
    client = mode.client(server)
    with pytest.raises(BadRequestError):
        await mode.chat(client)
    _, final = await mode.stream_all(client)
    assert final.content == "ok"

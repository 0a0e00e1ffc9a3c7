"""Error answers over real sockets: 429 storms, 5xx then success, proxies' HTML, errors in a 200."""

from __future__ import annotations

import dataclasses
import json

import pytest
from faults_harness import ScriptedServer, Stopwatch, Way, assert_pool_released

from oaicompat import (
    BadRequestError,
    InternalServerError,
    PermissionDeniedError,
    RateLimitError,
    ResponseParseError,
    RetryPolicy,
)
from oaicompat.testing import (
    RawReply,
    Reply,
    error_in_200,
    html_error,
    rate_limited,
    server_error,
    service_unavailable,
)

SLACK = 1.5


both_calls = pytest.mark.parametrize("streamed", [False, True], ids=["chat", "stream"])


# 429 storms ----------------------------------------------------------------------------


@both_calls
async def test_rate_limit_storm_waits_what_the_server_says_then_succeeds(
    way: Way, server: ScriptedServer, streamed: bool
) -> None:
    server.enqueue(rate_limited(retry_after=1.5), times=3)
    server.enqueue(Reply(text="finally"))
    client = way.client(server.base_url, max_retries=3)
    assert await way.answer(client, streamed=streamed) == "finally"
    assert way.delays == [1.5, 1.5, 1.5]
    assert len(server.chat_requests) == 4


async def test_rate_limit_in_milliseconds_is_honoured(way: Way, server: ScriptedServer) -> None:
    server.enqueue(rate_limited(retry_after=None, retry_after_ms=250))
    server.enqueue(Reply(text="after 250 ms"))
    client = way.client(server.base_url)
    assert (await way.chat(client)).content == "after 250 ms"
    assert way.delays == [0.25]


@both_calls
async def test_rate_limit_storm_gives_up_after_max_retries(
    way: Way, server: ScriptedServer, streamed: bool
) -> None:
    server.enqueue(rate_limited(retry_after=2), times=50)
    client = way.client(server.base_url, max_retries=4)
    with pytest.raises(RateLimitError) as caught:
        await way.answer(client, streamed=streamed)
    assert caught.value.status_code == 429
    assert caught.value.retry_after == 2.0
    assert "Rate limit reached" in str(caught.value)
    assert len(server.chat_requests) == 5
    assert way.delays == [2.0] * 4
    assert_pool_released(client)


async def test_rate_limit_storm_with_real_waits(way: Way, server: ScriptedServer) -> None:
    server.enqueue(rate_limited(retry_after=0.2), times=2)
    server.enqueue(Reply(text="waited for real"))
    client = way.client(server.base_url, real_sleep=True, max_retries=2)
    with Stopwatch() as clock:
        assert (await way.chat(client)).content == "waited for real"
    assert 0.4 <= clock.elapsed < 0.4 + SLACK


async def test_rate_limit_storm_total_time_is_bounded(way: Way, server: ScriptedServer) -> None:
    # A server asking for an hour gets the policy's cap, not an hour.
    server.enqueue(rate_limited(retry_after=3600), times=10)
    policy = RetryPolicy(max_retries=3, max_retry_after=0.05)
    client = way.client(server.base_url, real_sleep=True, retry_policy=policy)
    with Stopwatch() as clock, pytest.raises(RateLimitError):
        await way.chat(client)
    assert len(server.chat_requests) == 4
    assert 3 * 0.05 <= clock.elapsed < 3 * 0.05 + SLACK


# 5xx, then success -------------------------------------------------------------------


@both_calls
@pytest.mark.parametrize("status", [500, 502, 503])
async def test_server_error_then_success(
    way: Way, server: ScriptedServer, streamed: bool, status: int
) -> None:
    server.enqueue(server_error(status, f"upstream said {status}"), times=2)
    server.enqueue(Reply(text="recovered"))
    client = way.client(server.base_url, max_retries=2)
    assert await way.answer(client, streamed=streamed) == "recovered"
    assert len(way.delays) == 2
    assert len(server.chat_requests) == 3
    assert_pool_released(client)


async def test_model_loading_503_waits_its_retry_after(way: Way, server: ScriptedServer) -> None:
    server.enqueue(service_unavailable(retry_after=4))
    server.enqueue(Reply(text="model loaded"))
    client = way.client(server.base_url)
    assert (await way.chat(client)).content == "model loaded"
    assert way.delays == [4.0]


async def test_persistent_server_error_is_reported_with_the_servers_words(
    way: Way, server: ScriptedServer
) -> None:
    server.enqueue(server_error(500, "CUDA out of memory"), times=3)
    client = way.client(server.base_url, max_retries=2)
    with pytest.raises(InternalServerError, match="CUDA out of memory") as caught:
        await way.chat(client)
    assert caught.value.status_code == 500
    assert len(server.chat_requests) == 3


# Proxies' HTML pages -----------------------------------------------------------------


@both_calls
async def test_html_bad_gateway_from_a_proxy_is_retried(
    way: Way, server: ScriptedServer, streamed: bool
) -> None:
    server.enqueue(html_error(502, "502 Bad Gateway"))
    server.enqueue(Reply(text="through the proxy"))
    client = way.client(server.base_url)
    assert await way.answer(client, streamed=streamed) == "through the proxy"
    assert len(way.delays) == 1


@both_calls
async def test_html_error_page_reads_as_its_title(
    way: Way, server: ScriptedServer, streamed: bool
) -> None:
    server.enqueue(html_error(504, "504 Gateway Time-out"), times=2)
    client = way.client(server.base_url, max_retries=1)
    with pytest.raises(InternalServerError) as caught:
        await way.answer(client, streamed=streamed)
    message = str(caught.value)
    assert "504 Gateway Time-out" in message
    assert "<" not in message
    assert caught.value.status_code == 504


async def test_html_forbidden_from_a_proxy_is_not_retried(way: Way, server: ScriptedServer) -> None:
    server.enqueue(html_error(403, "403 Forbidden"), times=3)
    client = way.client(server.base_url, max_retries=2)
    with pytest.raises(PermissionDeniedError, match="403 Forbidden"):
        await way.chat(client)
    assert len(server.chat_requests) == 1
    assert way.delays == []


@both_calls
async def test_html_page_with_status_200_is_a_parse_error(
    way: Way, server: ScriptedServer, streamed: bool
) -> None:
    # A captive portal or a misconfigured proxy answering 200 with its own page.
    page = html_error(200, "Sign in to the network")
    server.enqueue(dataclasses.replace(page, status=200))
    client = way.client(server.base_url)
    with pytest.raises(ResponseParseError, match="Sign in to the network") as caught:
        await way.answer(client, streamed=streamed)
    assert "text/html" in str(caught.value)
    assert caught.value.status_code == 200
    assert_pool_released(client)


# An error object inside a 200 ---------------------------------------------------------


@both_calls
async def test_error_object_in_a_200_is_a_typed_error(
    way: Way, server: ScriptedServer, streamed: bool
) -> None:
    server.enqueue(error_in_200("invalid stop sequence", code=400))
    client = way.client(server.base_url, max_retries=2)
    with pytest.raises(BadRequestError, match="invalid stop sequence") as caught:
        await way.answer(client, streamed=streamed)
    assert caught.value.status_code == 400
    assert len(server.chat_requests) == 1


@both_calls
async def test_server_error_object_in_a_200_is_retried(
    way: Way, server: ScriptedServer, streamed: bool
) -> None:
    server.enqueue(error_in_200("upstream model failed", code=500))
    server.enqueue(Reply(text="second try"))
    client = way.client(server.base_url)
    assert await way.answer(client, streamed=streamed) == "second try"
    assert len(way.delays) == 1


# Some servers (and proxies) send the JSON document under another content type.
MISLABELLED = pytest.mark.parametrize(
    "content_type", ["text/event-stream", "text/plain", ""], ids=["sse", "text", "none"]
)


def mislabelled(document: dict[str, object], content_type: str) -> RawReply:
    body = b"\n \r\n" + json.dumps(document).encode()
    headers = {} if content_type else {"Content-Type": ""}
    return RawReply(200, body, content_type=content_type or None, headers=headers)


@MISLABELLED
async def test_stream_answered_by_an_error_document_of_another_content_type_is_retried(
    way: Way, server: ScriptedServer, content_type: str
) -> None:
    server.enqueue(mislabelled(error_in_200("worker restarting", code=503).body, content_type))
    server.enqueue(Reply(text="second try"))
    client = way.client(server.base_url)
    assert await way.answer(client, streamed=True) == "second try"
    assert len(server.chat_requests) == 2
    assert len(way.delays) == 1
    assert_pool_released(client)


@MISLABELLED
async def test_stream_answered_by_a_refusal_document_of_another_content_type_is_typed(
    way: Way, server: ScriptedServer, content_type: str
) -> None:
    server.enqueue(mislabelled(error_in_200("invalid stop sequence", code=400).body, content_type))
    client = way.client(server.base_url, max_retries=2)
    with pytest.raises(BadRequestError, match="invalid stop sequence"):
        await way.answer(client, streamed=True)
    assert len(server.chat_requests) == 1
    assert_pool_released(client)


@MISLABELLED
async def test_stream_answered_by_a_completion_of_another_content_type_is_one_chunk(
    way: Way, server: ScriptedServer, content_type: str
) -> None:
    completion = {
        "id": "cmpl-1",
        "object": "chat.completion",
        "model": "m",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "all at once"},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7},
    }
    server.enqueue(mislabelled(completion, content_type))
    client = way.client(server.base_url)
    chunks, final = await way.stream_all(client)
    assert [chunk.content for chunk in chunks] == ["all at once"]
    assert final.content == "all at once"
    assert final.usage is not None
    assert final.usage.total_tokens == 7
    assert_pool_released(client)


async def test_error_string_in_a_200(way: Way, server: ScriptedServer) -> None:
    server.enqueue(RawReply(200, {"error": "model is not loaded"}))
    client = way.client(server.base_url, max_retries=0)
    with pytest.raises(InternalServerError, match="model is not loaded"):
        await way.chat(client)

"""Retries: which failures, how many, how long between them, and never after a stream started."""

from __future__ import annotations

import email.utils
import logging
import time
from typing import Any

import httpx
import pytest
from client_harness import (
    Mode,
    ScriptedServer,
    completion,
    json_reply,
    sse_reply,
    text_stream_events,
)

from oaicompat import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    ContextLengthError,
    InternalServerError,
    RateLimitError,
    RetryPolicy,
    StreamError,
)
from oaicompat.errors import error_from_status

NO_JITTER = RetryPolicy(random=lambda: 0.0)


def failing(status: int, headers: dict[str, str] | None = None) -> Any:
    return json_reply({"error": {"message": f"failure {status}"}}, status, headers)


OK = json_reply(completion("recovered"))


@pytest.mark.parametrize("status", [408, 409, 429, 500, 502, 503, 504])
async def test_retryable_status_is_retried(mode: Mode, status: int) -> None:
    server = ScriptedServer(failing(status), OK)
    response = await mode.chat(mode.client(server))
    assert response.content == "recovered"
    assert server.calls == 2
    assert len(mode.delays) == 1


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
async def test_other_4xx_are_never_retried(mode: Mode, status: int) -> None:
    server = ScriptedServer(failing(status), OK)
    with pytest.raises(APIStatusError):
        await mode.chat(mode.client(server, max_retries=5))
    assert server.calls == 1
    assert mode.delays == []


async def test_gives_up_after_max_retries_with_growing_delays(mode: Mode) -> None:
    server = ScriptedServer(failing(500))
    with pytest.raises(InternalServerError, match="failure 500"):
        await mode.chat(mode.client(server, retry_policy=NO_JITTER))
    assert server.calls == 3
    assert mode.delays == [0.5, 1.0]


async def test_max_retries_argument(mode: Mode) -> None:
    server = ScriptedServer(failing(503))
    with pytest.raises(InternalServerError):
        await mode.chat(mode.client(server, max_retries=4))
    assert server.calls == 5
    assert len(mode.delays) == 4
    server = ScriptedServer(failing(503))
    mode.delays.clear()
    with pytest.raises(InternalServerError):
        await mode.chat(mode.client(server, max_retries=0))
    assert server.calls == 1
    assert mode.delays == []


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after": "3"}, 3.0),
        ({"retry-after-ms": "1500"}, 1.5),
        ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),
        ({"retry-after": "3600"}, 60.0),
    ],
)
async def test_retry_after_is_honoured_and_capped(
    mode: Mode, headers: dict[str, str], expected: float
) -> None:
    server = ScriptedServer(failing(429, headers), OK)
    await mode.chat(mode.client(server))
    assert mode.delays == [expected]


async def test_retry_after_as_an_http_date(mode: Mode) -> None:
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    server = ScriptedServer(failing(503, {"retry-after": when}), OK)
    await mode.chat(mode.client(server))
    assert len(mode.delays) == 1
    assert 25.0 <= mode.delays[0] <= 30.0


@pytest.mark.parametrize(
    "failure",
    [httpx.ConnectError("refused"), httpx.ReadTimeout("slow"), httpx.RemoteProtocolError("eof")],
)
async def test_connection_failures_are_retried(mode: Mode, failure: Exception) -> None:
    server = ScriptedServer(failure, failure, OK)
    response = await mode.chat(mode.client(server))
    assert response.content == "recovered"
    assert server.calls == 3


async def test_timeouts_give_up_as_timeouts(mode: Mode) -> None:
    server = ScriptedServer(httpx.ReadTimeout("slow"))
    with pytest.raises(APITimeoutError):
        await mode.chat(mode.client(server, max_retries=1))
    assert server.calls == 2


async def test_context_overflow_reported_as_500_is_not_retried(mode: Mode) -> None:
    # llama-cpp-python reports an overlong prompt as a 500; retrying cannot help.
    payload = {"error": {"message": "Requested tokens (5000) exceed context window of 2048"}}
    server = ScriptedServer(json_reply(payload, 500), OK)
    with pytest.raises(ContextLengthError):
        await mode.chat(mode.client(server))
    assert server.calls == 1


async def test_stream_is_retried_while_opening(mode: Mode) -> None:
    server = ScriptedServer(
        failing(503), httpx.ConnectError("refused"), sse_reply(text_stream_events(["ok"]))
    )
    _, final = await mode.stream_all(mode.client(server))
    assert final.content == "ok"
    assert server.calls == 3
    assert len(mode.delays) == 2


async def test_stream_is_not_retried_after_its_first_byte(mode: Mode) -> None:
    events = text_stream_events(["one ", "two"], done=False)[:3]
    server = ScriptedServer(
        sse_reply(events, error=httpx.RemoteProtocolError("peer closed")),
        sse_reply(text_stream_events(["never sent"])),
    )
    with pytest.raises(StreamError):
        await mode.stream_all(mode.client(server, max_retries=5))
    assert server.calls == 1
    assert mode.delays == []


async def test_async_sleep_may_be_a_coroutine_function() -> None:
    from client_harness import Mode as Harness

    harness = Harness(is_async=True)
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    server = ScriptedServer(failing(502), OK)
    try:
        client = harness.client(server, sleep=sleep, retry_policy=NO_JITTER)
        await harness.chat(client)
    finally:
        await harness.cleanup()
    assert slept == [0.5]


async def test_each_retry_is_logged(mode: Mode, caplog: pytest.LogCaptureFixture) -> None:
    server = ScriptedServer(failing(500), failing(502), OK)
    with caplog.at_level(logging.INFO, logger="oaicompat"):
        await mode.chat(mode.client(server))
    retries = [record for record in caplog.records if "retrying" in record.getMessage()]
    assert len(retries) == 2
    assert all(record.levelno == logging.WARNING for record in retries)
    assert "InternalServerError" in retries[0].getMessage()
    assert "retry 2 of 2" in retries[1].getMessage()


# The policy on its own ----------------------------------------------------------


def status_error(status: int, **headers: str) -> APIStatusError:
    return error_from_status(status, headers, b'{"error": "x"}')


def test_backoff_doubles_up_to_the_cap() -> None:
    policy = RetryPolicy(initial_delay=1.0, max_delay=5.0, random=lambda: 0.0)
    assert [policy.backoff(n) for n in range(5)] == [1.0, 2.0, 4.0, 5.0, 5.0]
    assert policy.backoff(10_000) == 5.0


def test_jitter_shortens_within_its_fraction() -> None:
    assert RetryPolicy(initial_delay=2.0, jitter=0.25, random=lambda: 0.999).backoff(0) == (
        pytest.approx(2.0 * (1 - 0.25 * 0.999))
    )
    delays = {RetryPolicy(initial_delay=2.0).backoff(0) for _ in range(50)}
    assert all(1.5 <= delay <= 2.0 for delay in delays)
    assert len(delays) > 1


def test_policy_decisions() -> None:
    policy = RetryPolicy(max_retries=2, random=lambda: 0.0)
    assert policy.delay_before_retry(APIConnectionError("x"), 0) == 0.5
    assert policy.delay_before_retry(APIConnectionError("x"), 2) is None
    assert policy.delay_before_retry(status_error(400), 0) is None
    assert policy.delay_before_retry(status_error(429, **{"retry-after": "2"}), 0) == 2.0
    assert policy.delay_before_retry(StreamError("cut"), 0) is None
    overloaded = error_from_status(529, {}, b'{"error": {"type": "overloaded_error"}}')
    assert isinstance(overloaded, RateLimitError)
    assert policy.is_retryable(overloaded)
    assert not RetryPolicy(retry_statuses=frozenset({503})).is_retryable(status_error(500))


@pytest.mark.parametrize(
    "kwargs",
    [{"max_retries": -1}, {"initial_delay": -1.0}, {"jitter": 1.5}, {"max_retry_after": -2.0}],
)
def test_policy_rejects_nonsense(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r">= 0|between"):
        RetryPolicy(**kwargs)

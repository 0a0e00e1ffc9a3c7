"""``complete()`` and ``stream_complete()``: the legacy ``/completions`` endpoint, sync and async.

Same client machinery as chat (auth, retries, refusals, errors, timeouts), a
different URL and body, and answers whose text sits in ``choices[0].text``.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx
import pytest
from client_harness import (
    BASE_URL,
    CHAT_URL,
    Mode,
    ScriptedServer,
    completion,
    json_reply,
    sse_event,
    sse_reply,
)

from oaicompat import (
    PRESETS,
    APIConnectionError,
    APITimeoutError,
    AsyncClient,
    BadRequestError,
    ChatChunk,
    ChatResponse,
    ContextLengthError,
    InternalServerError,
    NotFoundError,
    RetryPolicy,
    StreamError,
)

COMPLETIONS_URL = BASE_URL + "/completions"
USAGE = {"prompt_tokens": 4, "completion_tokens": 3, "total_tokens": 7}


def text_completion(
    text: str = " there was a cat", *, finish_reason: str = "stop", usage: Any = USAGE
) -> dict[str, Any]:
    """A text_completion body as OpenAI's legacy endpoint sends it."""
    body: dict[str, Any] = {
        "id": "cmpl-123",
        "object": "text_completion",
        "created": 1700000000,
        "model": "test-model",
        "choices": [{"index": 0, "text": text, "logprobs": None, "finish_reason": finish_reason}],
    }
    if usage is not None:
        body["usage"] = usage
    return body


def text_events(pieces: list[str], *, usage: dict[str, Any] | None = USAGE) -> list[bytes]:
    """A streamed text completion: one event per piece, a finish event, usage, [DONE]."""
    events = [sse_event(text_completion(piece, usage=None)) for piece in pieces]
    finish = text_completion("", usage=None)
    finish["choices"][0]["finish_reason"] = "length"
    events.append(sse_event(finish))
    if usage is not None:
        tail = text_completion("", usage=usage)
        tail["choices"] = []
        events.append(sse_event(tail))
    return [*events, b"data: [DONE]\n\n"]


async def complete(client: Any, prompt: str = "Once upon a time", **kw: Any) -> Any:
    if isinstance(client, AsyncClient):
        return await client.complete(prompt, **kw)
    return client.complete(prompt, **kw)


async def stream_complete(
    client: Any, prompt: str = "Once upon a time", **kw: Any
) -> tuple[list[ChatChunk], ChatResponse]:
    if isinstance(client, AsyncClient):
        async with client.stream_complete(prompt, **kw) as astream:
            chunks = [chunk async for chunk in astream]
        return chunks, await astream.final()
    with client.stream_complete(prompt, **kw) as stream:
        chunks = list(stream)
    return chunks, stream.final()


def failing(status: int, message: str = "failure", **error: Any) -> Any:
    return json_reply({"error": {"message": message, **error}}, status)


# Whole answers ---------------------------------------------------------------


async def test_complete_posts_the_prompt_to_the_completions_endpoint(mode: Mode) -> None:
    server = ScriptedServer(json_reply(text_completion()))
    client = mode.client(server, api_key="sk-test", temperature=0.3)
    response = await complete(client, max_tokens=16)

    request = server.requests[0]
    assert request.method == "POST"
    assert str(request.url) == COMPLETIONS_URL
    assert request.headers["authorization"] == "Bearer sk-test"
    assert request.headers["accept"] == "application/json"
    assert server.body() == {
        "model": "test-model",
        "prompt": "Once upon a time",
        "temperature": 0.3,
        "max_tokens": 16,
    }
    assert response.content == " there was a cat"
    assert response.finish_reason == "stop"
    assert response.id == "cmpl-123"
    assert response.usage is not None
    assert (response.usage.input_tokens, response.usage.output_tokens) == (4, 3)
    assert response.latency_s is not None
    assert response.latency_s >= 0


async def test_chat_and_complete_share_a_client_but_not_a_url(mode: Mode) -> None:
    server = ScriptedServer(json_reply(completion("chat answer")))
    client = mode.client(server)
    await mode.chat(client, "Hi")
    server.script = [json_reply(text_completion("text answer"))]
    answer = await complete(client)
    assert [str(request.url) for request in server.requests] == [CHAT_URL, COMPLETIONS_URL]
    assert answer.content == "text answer"
    assert "messages" not in server.body()


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/v1/engines/complete", "http://testserver:8000/v1/v1/engines/complete"),
        ("http://other:1234/gen", "http://other:1234/gen"),
    ],
)
async def test_completions_path_overrides_the_endpoint(
    mode: Mode, path: str, expected: str
) -> None:
    server = ScriptedServer(json_reply(text_completion()))
    client = mode.client(server, completions_path=path, chat_path="/elsewhere")
    await complete(client)
    assert str(server.requests[0].url) == expected


async def test_profile_quirks_apply(mode: Mode) -> None:
    server = ScriptedServer(json_reply(text_completion()))
    # OpenAI's chat spelling is max_completion_tokens; the legacy endpoint only takes max_tokens.
    client = mode.client(server, profile="openai", api_key="sk-test", max_completion_tokens=50)
    await complete(client, seed=7, model="gpt-3.5-turbo-instruct")
    sent = server.body()
    assert sent["max_tokens"] == 50
    assert "max_completion_tokens" not in sent
    assert sent["model"] == "gpt-3.5-turbo-instruct"
    assert sent["seed"] == 7

    server = ScriptedServer(json_reply(text_completion()))
    no_seed = PRESETS["openai"].without_param("seed")
    await complete(mode.client(server, profile=no_seed, api_key="sk-test"), seed=7, temperature=0.5)
    assert "seed" not in server.body()
    assert server.body()["temperature"] == 0.5


async def test_azure_auth_and_api_version_reach_the_completions_url(mode: Mode) -> None:
    server = ScriptedServer(json_reply(text_completion()))
    client = mode.client(
        server,
        base_url="https://res.openai.azure.com/openai/deployments/instruct",
        profile="azure",
        api_key="azure-key",
    )
    await complete(client)
    request = server.requests[0]
    assert request.url.path == "/openai/deployments/instruct/completions"
    assert request.url.params["api-version"] == "2024-10-21"
    assert request.headers["api-key"] == "azure-key"
    assert "authorization" not in request.headers


# Streams -----------------------------------------------------------------------


async def test_stream_complete_yields_text_deltas_and_usage(mode: Mode) -> None:
    server = ScriptedServer(sse_reply(text_events([" there", " was", " a"])))
    client = mode.client(server, max_tokens=3)
    chunks, final = await stream_complete(client)

    request = server.requests[0]
    assert str(request.url) == COMPLETIONS_URL
    assert request.headers["accept"] == "text/event-stream"
    assert server.body() == {
        "model": "test-model",
        "prompt": "Once upon a time",
        "max_tokens": 3,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    assert [chunk.content for chunk in chunks if chunk.content] == [" there", " was", " a"]
    assert final.content == " there was a"
    assert final.finish_reason == "length"
    assert final.usage is not None
    assert final.usage.total_tokens == 7
    assert final.raw["object"] == "text_completion"
    assert final.time_to_first_token_s is not None


async def test_stream_usage_is_not_asked_of_servers_without_stream_options(mode: Mode) -> None:
    server = ScriptedServer(sse_reply(text_events(["hi"], usage=None)))
    client = mode.client(server, profile="llamacpp_python")
    _, final = await stream_complete(client)
    assert "stream_options" not in server.body()
    assert final.content == "hi"
    assert final.usage is None


async def test_server_that_ignores_stream_answers_with_one_document(mode: Mode) -> None:
    server = ScriptedServer(json_reply(text_completion("whole")))
    chunks, final = await stream_complete(mode.client(server))
    assert [chunk.content for chunk in chunks] == ["whole"]
    assert final.content == "whole"
    assert final.usage is not None


async def test_error_mid_stream_keeps_the_partial_text(mode: Mode) -> None:
    events = [*text_events(["half", " way"])[:2], sse_event({"error": {"message": "boom"}})]
    server = ScriptedServer(sse_reply(events))
    with pytest.raises(StreamError, match="boom") as caught:
        await stream_complete(mode.client(server))
    assert caught.value.partial is not None
    assert caught.value.partial.content == "half way"
    assert server.calls == 1  # never retried once the stream has started


async def test_dropped_stream_is_a_stream_error(mode: Mode) -> None:
    server = ScriptedServer(
        sse_reply(text_events(["a", "b"])[:2], error=httpx.RemoteProtocolError("peer closed"))
    )
    with pytest.raises(StreamError, match="peer closed") as caught:
        await stream_complete(mode.client(server))
    assert caught.value.partial is not None
    assert caught.value.partial.content == "ab"


# Errors ------------------------------------------------------------------------


async def test_a_chat_only_server_is_a_not_found_error(mode: Mode) -> None:
    server = ScriptedServer(failing(404, "Invalid URL (POST /v1/completions)"))
    with pytest.raises(NotFoundError, match="Invalid URL"):
        await complete(mode.client(server, max_retries=3))
    assert server.calls == 1


async def test_context_overflow_is_typed(mode: Mode) -> None:
    server = ScriptedServer(
        failing(
            400,
            "This model's maximum context length is 4097 tokens, however you requested 5000",
            code="context_length_exceeded",
        )
    )
    with pytest.raises(ContextLengthError):
        await complete(mode.client(server))


async def test_connection_errors_name_the_completions_url(mode: Mode) -> None:
    server = ScriptedServer(httpx.ConnectError("refused"))
    with pytest.raises(APIConnectionError, match=f"cannot connect to {COMPLETIONS_URL}"):
        await complete(mode.client(server, max_retries=0))


async def test_timeouts_are_typed_and_retried(mode: Mode) -> None:
    server = ScriptedServer(httpx.ReadTimeout("slow"))
    with pytest.raises(APITimeoutError, match=f"read timeout talking to {COMPLETIONS_URL}"):
        await complete(mode.client(server, max_retries=1))
    assert server.calls == 2


async def test_timeout_setting_reaches_the_request(mode: Mode) -> None:
    server = ScriptedServer(json_reply(text_completion()))
    await complete(mode.client(server, timeout=7.5))
    assert server.requests[0].extensions["timeout"]["read"] == 7.5


# Retries and refusals --------------------------------------------------------


async def test_server_errors_are_retried_on_the_same_endpoint(
    mode: Mode, caplog: pytest.LogCaptureFixture
) -> None:
    server = ScriptedServer(failing(503), failing(500), json_reply(text_completion("ok")))
    client = mode.client(server, retry_policy=RetryPolicy(random=lambda: 0.0))
    with caplog.at_level(logging.WARNING, logger="oaicompat"):
        response = await complete(client)
    assert response.content == "ok"
    assert [str(request.url) for request in server.requests] == [COMPLETIONS_URL] * 3
    assert mode.delays == [0.5, 1.0]
    retries = [r.getMessage() for r in caplog.records if "retrying" in r.getMessage()]
    assert len(retries) == 2
    assert all(f"POST {COMPLETIONS_URL}" in message for message in retries)


async def test_gives_up_after_max_retries(mode: Mode) -> None:
    server = ScriptedServer(failing(500))
    with pytest.raises(InternalServerError):
        await complete(mode.client(server, max_retries=2))
    assert server.calls == 3


async def test_stream_is_retried_before_its_first_byte(mode: Mode) -> None:
    server = ScriptedServer(failing(503), sse_reply(text_events(["again"])))
    _, final = await stream_complete(mode.client(server))
    assert final.content == "again"
    assert server.calls == 2
    assert all(str(request.url) == COMPLETIONS_URL for request in server.requests)
    assert all(json.loads(request.content)["stream"] is True for request in server.requests)


async def test_a_refused_parameter_is_dropped_and_remembered(mode: Mode) -> None:
    refusal = failing(400, "Unsupported parameter: 'logit_bias'", param="logit_bias")
    server = ScriptedServer(refusal, json_reply(text_completion("ok")))
    client = mode.client(server, logit_bias={"50256": -100})
    assert (await complete(client)).content == "ok"
    assert "logit_bias" in server.body(0)
    assert "logit_bias" not in server.body(1)
    assert server.body(1)["prompt"] == "Once upon a time"
    assert str(server.requests[1].url) == COMPLETIONS_URL
    assert "logit_bias" in client.profile.unsupported_params


async def test_a_refused_prompt_is_raised_not_dropped(mode: Mode) -> None:
    server = ScriptedServer(
        failing(400, "'prompt' is not supported by this model", param="prompt"),
        json_reply(text_completion()),
    )
    with pytest.raises(BadRequestError, match="prompt"):
        await complete(mode.client(server))
    assert server.calls == 1


def test_sync_and_async_expose_the_same_completion_names() -> None:
    from oaicompat import Client

    for name in ("complete", "stream_complete"):
        assert callable(getattr(Client, name))
        assert callable(getattr(AsyncClient, name))

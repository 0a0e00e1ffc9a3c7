"""The core client against a real C++ ``llama-server`` running the tiny random model.

The text is noise, so every assertion is about protocol facts the server controls:
types, token counts (checked against the server's own tokenizer), finish reasons,
stop sequences, grammar-enforced JSON, errors and concurrency.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import jsonschema
import pytest
from live_servers import CONTEXT_SIZE, LiveServer

from oaicompat import (
    AsyncClient,
    ChatResponse,
    Client,
    ContextLengthError,
    NotFoundError,
)

pytestmark = pytest.mark.live

MESSAGES = [{"role": "user", "content": "tell me about the city"}]
GREEDY: dict[str, Any] = {"temperature": 0, "seed": 0}

CITY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 12},
        "population": {"type": "integer", "minimum": 0, "maximum": 100000},
        "capital": {"type": "boolean"},
        "kind": {"enum": ["town", "city", "village"]},
    },
    "required": ["name", "population", "capital", "kind"],
    "additionalProperties": False,
}


@pytest.fixture
def client(llama_server: LiveServer) -> Iterator[Client]:
    with Client(
        llama_server.base_url, llama_server.model, profile="llamacpp", timeout=60, max_retries=0
    ) as client:
        yield client


@pytest.fixture
async def aclient(llama_server: LiveServer) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(
        llama_server.base_url, llama_server.model, profile="llamacpp", timeout=60, max_retries=0
    ) as aclient:
        yield aclient


def prompt_token_count(server: LiveServer, messages: list[dict[str, Any]]) -> int:
    """How many tokens the server's own template and tokenizer make of ``messages``."""
    with httpx.Client(base_url=server.root_url, timeout=30) as http:
        prompt = http.post("/apply-template", json={"messages": messages}).json()["prompt"]
        tokens = http.post(
            "/tokenize", json={"content": prompt, "add_special": True, "parse_special": True}
        ).json()["tokens"]
    return len(tokens)


def assert_complete_answer(answer: ChatResponse, *, max_tokens: int) -> None:
    assert isinstance(answer.content, str)
    assert answer.content
    assert answer.tool_calls == []
    assert answer.finish_reason == "length"
    assert answer.model == "tiny-llama"
    assert answer.id
    assert answer.usage is not None
    assert answer.usage.output_tokens == max_tokens
    assert answer.usage.input_tokens > 0
    assert answer.usage.total_tokens == answer.usage.input_tokens + max_tokens


def test_chat_answers_with_text_and_usage(client: Client) -> None:
    answer = client.chat(MESSAGES, max_tokens=8, **GREEDY)

    assert_complete_answer(answer, max_tokens=8)
    assert answer.latency_s is not None
    assert answer.latency_s > 0


def test_usage_matches_the_servers_own_counts(client: Client, llama_server: LiveServer) -> None:
    messages = [{"role": "user", "content": "count the tokens of this prompt, please"}]
    answer = client.chat(messages, max_tokens=6, **GREEDY)

    assert answer.usage is not None
    assert answer.usage.input_tokens == prompt_token_count(llama_server, messages)
    timings = answer.raw["timings"]
    assert answer.usage.input_tokens == timings["prompt_n"] + timings["cache_n"]
    assert answer.usage.output_tokens == timings["predicted_n"] == 6
    assert answer.usage.cached_input_tokens == timings["cache_n"]


def test_stream_assembles_the_same_answer_as_chat(client: Client) -> None:
    whole = client.chat(MESSAGES, max_tokens=12, **GREEDY)

    with client.stream(MESSAGES, max_tokens=12, **GREEDY) as stream:
        chunks = list(stream)
        streamed = stream.final()

    assert_complete_answer(streamed, max_tokens=12)
    assert streamed.content == "".join(chunk.content for chunk in chunks)
    assert len([c for c in chunks if c.content]) > 1, "the text should arrive in pieces"
    assert streamed.content == whole.content
    assert streamed.finish_reason == whole.finish_reason
    assert streamed.usage is not None
    assert whole.usage is not None
    assert streamed.usage.input_tokens == whole.usage.input_tokens
    assert [c.usage for c in chunks if c.usage is not None], "usage must come in the stream"
    assert streamed.time_to_first_token_s is not None
    assert streamed.latency_s is not None
    assert 0 < streamed.time_to_first_token_s <= streamed.latency_s


def test_stop_sequence_ends_the_answer_before_it(client: Client) -> None:
    # Greedy decoding is deterministic, so a piece of the free answer is a stop
    # sequence the constrained answer is known to reach.
    free = client.chat(MESSAGES, max_tokens=24, **GREEDY).content
    stop = free[len(free) // 2 : len(free) // 2 + 3]
    expected = free[: free.index(stop)]

    answer = client.chat(MESSAGES, max_tokens=24, stop=[stop], **GREEDY)

    assert answer.finish_reason == "stop"
    assert answer.content == expected
    assert answer.usage is not None
    assert answer.usage.output_tokens < 24


def test_default_params_of_the_client_apply(llama_server: LiveServer) -> None:
    with Client(
        llama_server.base_url, llama_server.model, profile="llamacpp", max_tokens=3, **GREEDY
    ) as client:
        answer = client.chat(MESSAGES)
        overridden = client.chat(MESSAGES, max_tokens=5)

    assert answer.usage is not None
    assert answer.usage.output_tokens == 3
    assert overridden.usage is not None
    assert overridden.usage.output_tokens == 5


@pytest.mark.parametrize("max_tokens", [1, 7])
def test_max_tokens_ends_with_length_in_stream_and_chat(client: Client, max_tokens: int) -> None:
    answer = client.chat(MESSAGES, max_tokens=max_tokens, **GREEDY)
    with client.stream(MESSAGES, max_tokens=max_tokens, **GREEDY) as stream:
        streamed = stream.final()

    for result in (answer, streamed):
        assert result.finish_reason == "length"
        assert result.usage is not None
        assert result.usage.output_tokens == max_tokens


def test_json_schema_response_format_is_enforced(client: Client) -> None:
    response_format = {
        "type": "json_schema",
        "json_schema": {"name": "city", "strict": True, "schema": CITY_SCHEMA},
    }
    answer = client.chat(
        [{"role": "user", "content": "describe a city as JSON"}],
        response_format=response_format,
        max_tokens=400,
        **GREEDY,
    )

    assert answer.finish_reason == "stop", "the grammar must close the object"
    value = json.loads(answer.content)
    jsonschema.validate(value, CITY_SCHEMA)
    assert set(value) == {"name", "population", "capital", "kind"}
    assert answer.parsed == value


def test_json_schema_holds_in_a_stream(client: Client) -> None:
    with client.stream(
        [{"role": "user", "content": "describe a city as JSON"}],
        response_format=CITY_SCHEMA,
        max_tokens=400,
        **GREEDY,
    ) as stream:
        answer = stream.final()

    jsonschema.validate(json.loads(answer.content), CITY_SCHEMA)
    assert answer.parsed == json.loads(answer.content)


def test_discovery_reports_the_context_window(client: Client, llama_server: LiveServer) -> None:
    props = httpx.get(llama_server.root_url + "/props", timeout=10).json()
    assert props["default_generation_settings"]["n_ctx"] == CONTEXT_SIZE

    info = client.server_info()

    assert info.kind == "llamacpp"
    assert info.context_window == CONTEXT_SIZE
    assert llama_server.model in info.models
    assert client.list_models() == [llama_server.model]
    assert client.health() is True


def test_unknown_route_is_not_found(llama_server: LiveServer) -> None:
    with (
        Client(
            llama_server.base_url,
            llama_server.model,
            profile="llamacpp",
            chat_path="/no/such/route",
            max_retries=0,
        ) as client,
        pytest.raises(NotFoundError) as caught,
    ):
        client.chat(MESSAGES, max_tokens=1)

    assert caught.value.status_code == 404


def too_long_prompt() -> list[dict[str, Any]]:
    # Each repetition is at least two tokens, so this is well past the context.
    return [{"role": "user", "content": "hello world " * CONTEXT_SIZE}]


def test_too_long_prompt_is_a_context_length_error(client: Client) -> None:
    with pytest.raises(ContextLengthError) as caught:
        client.chat(too_long_prompt(), max_tokens=1)

    assert caught.value.status_code == 400
    assert str(CONTEXT_SIZE) in str(caught.value), "the server's own message is kept"


def test_too_long_prompt_in_a_stream_is_a_context_length_error(client: Client) -> None:
    with pytest.raises(ContextLengthError), client.stream(too_long_prompt(), max_tokens=1) as s:
        s.final()


async def test_async_chat_and_stream(aclient: AsyncClient) -> None:
    answer = await aclient.chat(MESSAGES, max_tokens=6, **GREEDY)
    async with aclient.stream(MESSAGES, max_tokens=6, **GREEDY) as stream:
        pieces = [chunk.content async for chunk in stream]
        streamed = await stream.final()

    assert_complete_answer(answer, max_tokens=6)
    assert_complete_answer(streamed, max_tokens=6)
    assert streamed.content == "".join(pieces) == answer.content


async def test_async_too_long_prompt_is_a_context_length_error(aclient: AsyncClient) -> None:
    with pytest.raises(ContextLengthError):
        await aclient.chat(too_long_prompt(), max_tokens=1)


async def test_twenty_concurrent_streams_on_one_async_client(aclient: AsyncClient) -> None:
    async def one_stream(index: int) -> tuple[ChatResponse, int]:
        messages = [{"role": "user", "content": f"stream number {index}"}]
        pieces = 0
        async with aclient.stream(messages, max_tokens=16, **GREEDY) as stream:
            async for chunk in stream:
                pieces += bool(chunk.content)
            return await stream.final(), pieces

    results = await asyncio.wait_for(asyncio.gather(*(one_stream(i) for i in range(20))), 240)

    assert len({answer.id for answer, _ in results}) == 20
    for answer, pieces in results:
        assert_complete_answer(answer, max_tokens=16)
        assert pieces > 1

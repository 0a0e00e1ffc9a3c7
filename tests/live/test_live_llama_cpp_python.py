"""The core client against ``python -m llama_cpp.server`` (llama-cpp-python) on the tiny model.

Run with ``chatml-function-calling``, this server turns a named ``tool_choice`` into a
grammar, so even random weights produce a real tool call whose arguments fit the schema.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import jsonschema
import pytest
from live_servers import LiveServer

from oaicompat import AsyncClient, Client, ToolCall

pytestmark = pytest.mark.live

WEATHER_PARAMETERS: dict[str, Any] = {
    "type": "object",
    "properties": {
        "city": {"type": "string", "enum": ["Paris", "Lima", "Oslo"]},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        "days": {"type": "integer"},
    },
    "required": ["city", "unit", "days"],
}
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather forecast for a city.",
        "parameters": WEATHER_PARAMETERS,
    },
}
FORCE_WEATHER = {"type": "function", "function": {"name": "get_weather"}}
CITY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 12},
        "population": {"type": "integer"},
        "capital": {"type": "boolean"},
        "kind": {"enum": ["town", "city", "village"]},
    },
    "required": ["name", "population", "capital", "kind"],
}
MESSAGES = [{"role": "user", "content": "What is the weather in Paris?"}]
GREEDY: dict[str, Any] = {"temperature": 0, "seed": 0}


@pytest.fixture
def client(llama_cpp_python_server: LiveServer) -> Iterator[Client]:
    server = llama_cpp_python_server
    with Client(
        server.base_url, server.model, profile="llamacpp_python", timeout=120, max_retries=0
    ) as client:
        yield client


@pytest.fixture
async def aclient(llama_cpp_python_server: LiveServer) -> AsyncIterator[AsyncClient]:
    server = llama_cpp_python_server
    async with AsyncClient(
        server.base_url, server.model, profile="llamacpp_python", timeout=120, max_retries=0
    ) as aclient:
        yield aclient


def assert_valid_weather_call(calls: list[ToolCall]) -> None:
    assert len(calls) == 1
    call = calls[0]
    assert call.name == "get_weather"
    assert call.error is None, call.arguments_text
    assert isinstance(call.id, str)
    assert call.id
    jsonschema.validate(call.arguments, WEATHER_PARAMETERS)


def test_forced_named_tool_call_has_schema_valid_arguments(client: Client) -> None:
    answer = client.chat(
        MESSAGES, tools=[WEATHER_TOOL], tool_choice=FORCE_WEATHER, max_tokens=200, **GREEDY
    )

    assert_valid_weather_call(answer.tool_calls)
    assert answer.finish_reason == "tool_calls"
    assert answer.usage is not None
    assert answer.usage.input_tokens > 0
    assert answer.usage.output_tokens > 0


async def test_forced_named_tool_call_async(aclient: AsyncClient) -> None:
    answer = await aclient.chat(
        MESSAGES, tools=[WEATHER_TOOL], tool_choice=FORCE_WEATHER, max_tokens=200, **GREEDY
    )

    assert_valid_weather_call(answer.tool_calls)


def test_plain_chat_counts_tokens(client: Client) -> None:
    answer = client.chat(MESSAGES, max_tokens=5, **GREEDY)

    assert isinstance(answer.content, str)
    assert answer.tool_calls == []
    assert answer.finish_reason == "length"
    assert answer.usage is not None
    assert answer.usage.output_tokens == 5
    assert answer.usage.total_tokens == answer.usage.input_tokens + 5


def test_stream_text_equals_chat_text(client: Client) -> None:
    whole = client.chat(MESSAGES, max_tokens=8, **GREEDY)
    with client.stream(MESSAGES, max_tokens=8, **GREEDY) as stream:
        pieces = [chunk.content for chunk in stream]
        streamed = stream.final()

    assert streamed.content == "".join(pieces) == whole.content
    assert streamed.finish_reason == "length"


def test_forced_tool_call_streams_in_fragments(client: Client) -> None:
    with client.stream(
        MESSAGES, tools=[WEATHER_TOOL], tool_choice=FORCE_WEATHER, max_tokens=200, **GREEDY
    ) as stream:
        chunks = list(stream)
        answer = stream.final()

    assert_valid_weather_call(answer.tool_calls)
    fragments = [d.arguments for c in chunks for d in c.tool_call_deltas if d.arguments]
    assert len(fragments) > 1, "the arguments should arrive in pieces"
    assert "".join(fragments) == answer.tool_calls[0].arguments_text
    assert answer.finish_reason == "tool_calls"


def test_structured_output_follows_the_schema(client: Client) -> None:
    # This server answers a json_schema response_format with a 500; the client must
    # pick a method it supports (its profile says which) and still return the value.
    answer = client.chat(
        [{"role": "user", "content": "describe a city as JSON"}],
        response_format=CITY_SCHEMA,
        max_tokens=300,
        **GREEDY,
    )

    jsonschema.validate(answer.parsed, CITY_SCHEMA)

"""The default policy, over HTTP: a deterministic model that follows the request."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from scripted_helpers import CHAT, chat_body, merged_tool_calls, stream, stream_chunks

from oaicompat.testing import ScriptedServer

jsonschema = pytest.importorskip("jsonschema")


def tool(name: str, properties: dict[str, Any], required: list[str] | None = None) -> Any:
    parameters = {"type": "object", "properties": properties, "required": required or []}
    return {
        "type": "function",
        "function": {"name": name, "description": name, "parameters": parameters},
    }


MAGIC = tool(
    "magic_function",
    {"input": {"type": "integer", "exclusiveMinimum": -1000, "exclusiveMaximum": 1000}},
    ["input"],
)
WEATHER = tool(
    "get_weather",
    {"location": {"type": "string"}, "unit": {"type": "string", "enum": ["c", "f"]}},
    ["location"],
)
ADDER = tool("my_adder_tool", {"a": {"type": "integer"}, "b": {"type": "integer"}}, ["a", "b"])
NO_ARGS = {
    "type": "function",
    "function": {"name": "ping", "parameters": {"type": "object", "properties": {}}},
}
SCHEMAS = {
    t["function"]["name"]: t["function"]["parameters"] for t in (MAGIC, WEATHER, ADDER, NO_ARGS)
}


def message(client: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post(CHAT, json=body)
    assert response.status_code == 200, response.text
    choice = response.json()["choices"][0]
    return {**choice["message"], "finish_reason": choice["finish_reason"]}


def called(client: httpx.Client, body: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The calls made, checked against their tool's schema, identically streamed and not."""
    plain = message(client, body).get("tool_calls") or []
    calls = [(c["function"]["name"], json.loads(c["function"]["arguments"])) for c in plain]
    chunks = stream_chunks(stream(client, body)[1])
    merged = merged_tool_calls(chunks)
    assert [(m["name"], json.loads(m["arguments"])) for _, m in sorted(merged.items())] == calls
    for name, arguments in calls:
        jsonschema.validate(arguments, SCHEMAS[name])
    return calls


def test_echoes_the_last_user_text(client: httpx.Client) -> None:
    reply = message(client, chat_body("how are you"))
    assert (reply["content"], reply["finish_reason"]) == ("You said: how are you", "stop")


def test_text_parts_and_images_in_content(client: httpx.Client) -> None:
    content = [
        {"type": "text", "text": "Describe"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
        {"type": "text", "text": "this image"},
    ]
    body = {"messages": [{"role": "user", "content": content}]}
    assert message(client, body)["content"] == "You said: Describe\nthis image"


def test_a_conversation_without_user_text_still_gets_an_answer(client: httpx.Client) -> None:
    body = {"messages": [{"role": "system", "content": "be brief"}]}
    assert message(client, body)["content"]


def test_stop_sequences_cut_the_answer(client: httpx.Client) -> None:
    reply = message(client, chat_body("tell me about you and me", stop=["and"]))
    assert (reply["content"], reply["finish_reason"]) == ("You said: tell me about you ", "stop")
    assert message(client, chat_body("x you y", stop="you"))["content"] == "You said: x "


@pytest.mark.parametrize("field", ["max_tokens", "max_completion_tokens"])
def test_max_tokens_cuts_with_finish_reason_length(client: httpx.Client, field: str) -> None:
    body = chat_body("one two three four five", **{field: 4})
    reply = message(client, body)
    assert (reply["content"], reply["finish_reason"]) == ("You said: one", "length")
    assert client.post(CHAT, json=body).json()["usage"]["completion_tokens"] == 4
    chunks = stream_chunks(stream(client, body)[1])
    assert chunks[-1]["choices"][0]["finish_reason"] == "length"


def test_required_tool_choice_calls_the_first_tool_with_prompt_numbers(
    client: httpx.Client,
) -> None:
    for choice in ("required", "any"):
        body = chat_body("What is magic_function(3)?", tools=[MAGIC, WEATHER], tool_choice=choice)
        assert called(client, body) == [("magic_function", {"input": 3})]
        assert message(client, body)["finish_reason"] == "tool_calls"


def test_required_tool_choice_prefers_the_tool_the_user_names(client: httpx.Client) -> None:
    body = chat_body("Hello! Check get_weather", tools=[MAGIC, WEATHER], tool_choice="required")
    assert [name for name, _ in called(client, body)] == ["get_weather"]


def test_named_tool_choice(client: httpx.Client) -> None:
    choice = {"type": "function", "function": {"name": "get_weather"}}
    body = chat_body("Hello!", tools=[MAGIC, WEATHER], tool_choice=choice)
    assert [name for name, _ in called(client, body)] == ["get_weather"]


def test_tool_without_arguments(client: httpx.Client) -> None:
    body = chat_body("ping please", tools=[NO_ARGS], tool_choice="required")
    assert called(client, body) == [("ping", {})]


def test_auto_calls_a_tool_named_in_the_message(client: httpx.Client) -> None:
    body = chat_body("What is magic_function(5)? Use the tool.", tools=[MAGIC])
    assert called(client, body) == [("magic_function", {"input": 5})]


def test_auto_calls_a_tool_whose_name_fits_the_question(client: httpx.Client) -> None:
    body = chat_body(
        "What is the weather in San Francisco, CA?", tools=[MAGIC, WEATHER], tool_choice="auto"
    )
    calls = called(client, body)
    assert [name for name, _ in calls] == ["get_weather"]
    assert calls[0][1]["location"] == "San Francisco, CA"


def test_auto_answers_in_text_when_no_tool_fits(client: httpx.Client) -> None:
    reply = message(client, chat_body("hello there", tools=[MAGIC, WEATHER]))
    assert reply["content"] == "You said: hello there"
    assert "tool_calls" not in reply


def test_tool_choice_none_never_calls(client: httpx.Client) -> None:
    body = chat_body("Use magic_function(3)", tools=[MAGIC], tool_choice="none")
    assert "tool_calls" not in message(client, body)


def test_several_named_tools_are_called_in_parallel(client: httpx.Client) -> None:
    text = "Call my_adder_tool with 2 and 3, then get_weather for 'Oslo'"
    calls = called(client, chat_body(text, tools=[WEATHER, ADDER]))
    assert calls == [
        ("my_adder_tool", {"a": 2, "b": 3}),
        ("get_weather", {"location": "Oslo", "unit": "c"}),
    ]
    single = chat_body(text, tools=[WEATHER, ADDER], parallel_tool_calls=False)
    assert [name for name, _ in called(client, single)] == ["my_adder_tool"]


def test_after_a_tool_result_it_answers_with_the_result(client: httpx.Client) -> None:
    messages = [
        {"role": "user", "content": "What is 1 + 2"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "abc123",
                    "type": "function",
                    "function": {"name": "my_adder_tool", "arguments": '{"a": 1, "b": 2}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "abc123", "content": '{"result": 3}'},
    ]
    reply = message(client, {"messages": messages, "tools": [ADDER]})
    assert reply["content"] == 'The my_adder_tool tool returned: {"result": 3}'
    assert "tool_calls" not in reply


def test_json_schema_response_format(client: httpx.Client) -> None:
    schema = {
        "type": "object",
        "properties": {
            "setup": {"type": "string", "description": "question to set up a joke"},
            "punchline": {"anyOf": [{"type": "string"}, {"type": "null"}]},
            "rating": {"type": "integer", "minimum": 1, "maximum": 5},
        },
        "required": ["setup", "punchline", "rating"],
        "additionalProperties": False,
    }
    response_format = {"type": "json_schema", "json_schema": {"name": "Joke", "schema": schema}}
    body = chat_body("Tell me a joke about cats, rate it 4", response_format=response_format)
    value = json.loads(message(client, body)["content"])
    jsonschema.validate(value, schema)
    assert value["rating"] == 4
    chunks = stream_chunks(stream(client, body)[1])
    assert len(chunks) > 4
    streamed = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert json.loads(streamed) == value


def test_json_object_uses_the_keys_the_prompt_asks_for(client: httpx.Client) -> None:
    text = "Tell me a joke. Return a JSON with 'setup' and 'punchline' keys."
    body = chat_body(text, response_format={"type": "json_object"})
    assert set(json.loads(message(client, body)["content"])) == {"setup", "punchline"}
    plain = chat_body("anything", response_format={"type": "json_object"})
    assert isinstance(json.loads(message(client, plain)["content"]), dict)


def test_json_object_follows_a_schema_written_in_the_prompt(client: httpx.Client) -> None:
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string"}, "pop": {"type": "integer"}},
    }
    system = f"Answer in JSON matching this schema: {json.dumps(schema)}"
    body = {
        "messages": [
            {"role": "system", "content": system},
            {"role": "user", "content": "In Oslo live 700000"},
        ],
        "response_format": {"type": "json_object"},
    }
    assert json.loads(message(client, body)["content"]) == {"city": "Oslo", "pop": 700000}


def test_prompt_longer_than_the_context_window_is_refused() -> None:
    with ScriptedServer(context_window=50) as server:
        response = httpx.post(server.base_url + CHAT, json=chat_body("word " * 60))
        fits = httpx.post(server.base_url + CHAT, json=chat_body("word " * 10))
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "context_length_exceeded"
    assert "maximum context length is 50 tokens" in response.json()["error"]["message"]
    assert fits.status_code == 200


@pytest.mark.parametrize(
    "content", [b"not json", b"[1, 2]", b'{"messages": []}', b'{"messages": ["x"]}', b"{}"]
)
def test_malformed_bodies_get_400(client: httpx.Client, content: bytes) -> None:
    response = client.post(CHAT, content=content, headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"

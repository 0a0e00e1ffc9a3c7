"""Structured output: specs, method choice, request shapes, parsing; then through the clients."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
from pydantic import BaseModel

from oaicompat.errors import ResponseParseError
from oaicompat.profiles import ServerProfile, get_profile
from oaicompat.structured import (
    StructuredOutputError,
    StructuredSpec,
    apply_method,
    choose_method,
    method_in_body,
    next_method,
    parse_structured,
    resolve_spec,
    spec_from_body,
)
from oaicompat.types import ChatResponse, ToolCall

from .harness import Both, Script, completion, ok, sse, tool_call


class Event(BaseModel):
    """A calendar event."""

    city: str
    people: int


SCHEMA = Event.model_json_schema()
BODY: dict[str, Any] = {"model": "m", "messages": [{"role": "user", "content": "Plan it"}]}


def test_resolve_spec_from_a_model_class() -> None:
    spec = resolve_spec(Event)
    assert spec is not None
    assert (spec.name, spec.model, spec.schema) == ("Event", Event, SCHEMA)


def test_resolve_spec_from_a_json_schema() -> None:
    spec = resolve_spec({"title": "my event!", "type": "object", "properties": {}})
    assert spec is not None
    assert (spec.name, spec.model) == ("my_event_", None)


def test_resolve_spec_from_openai_response_formats() -> None:
    wrapped = {
        "type": "json_schema",
        "json_schema": {"name": "ev", "schema": SCHEMA, "strict": True},
    }
    spec = resolve_spec(wrapped)
    assert spec == StructuredSpec(name="ev", schema=SCHEMA, strict=True)
    plain = resolve_spec({"type": "json_object"})
    assert plain is not None
    assert plain.schema is None
    assert resolve_spec({"type": "text"}) is None


@pytest.mark.parametrize(
    ("value", "error"),
    [("json", TypeError), ({"type": "json_schema", "json_schema": {"name": "x"}}, ValueError)],
)
def test_resolve_spec_rejects_what_it_cannot_use(value: Any, error: type[Exception]) -> None:
    with pytest.raises(error):
        resolve_spec(value)


@pytest.mark.parametrize(
    ("profile", "method"),
    [
        ("generic", "json_schema"),
        ("openai", "json_schema"),
        ("ollama", "json_schema"),
        ("vllm", "json_schema"),
        ("llamacpp", "json_schema"),
        ("lmstudio", "json_schema"),
        ("llamacpp_python", "json_object"),
        ("tgi", "json_object"),
        ("deepseek", "json_object"),
        ("mistral", "json_schema"),
    ],
)
def test_auto_picks_from_the_profile(profile: str, method: str) -> None:
    spec = resolve_spec(Event)
    assert spec is not None
    assert choose_method("auto", spec, get_profile(profile)) == method


def test_auto_goes_down_the_order_when_the_profile_cannot() -> None:
    spec = resolve_spec(Event)
    assert spec is not None
    no_schema = ServerProfile(supports_json_schema=False)
    assert choose_method("auto", spec, no_schema) == "tool"
    assert choose_method("auto", spec, no_schema, user_tools=True) == "json_object"
    no_tools = ServerProfile(supports_json_schema=False, supports_tools=False)
    assert choose_method("auto", spec, no_tools) == "json_object"
    unforced = ServerProfile(
        supports_json_schema=False,
        supports_named_tool_choice=False,
        supports_tool_choice_required=False,
    )
    assert choose_method("auto", spec, unforced) == "json_object"
    assert choose_method("auto", StructuredSpec("r", None), ServerProfile()) == "json_object"


def test_explicit_method_is_honoured_and_checked() -> None:
    spec = resolve_spec(Event)
    assert spec is not None
    assert choose_method("json_schema", spec, get_profile("deepseek")) == "json_schema"
    with pytest.raises(ValueError, match="own tools"):
        choose_method("tool", spec, ServerProfile(), user_tools=True)
    with pytest.raises(ValueError, match="unknown structured_method"):
        choose_method("grammar", spec, ServerProfile())  # type: ignore[arg-type]


def test_next_method_retries_tool_with_required_before_leaving_it() -> None:
    spec = resolve_spec(Event)
    assert spec is not None
    profile = ServerProfile(supports_json_schema=False, supports_named_tool_choice=False)
    assert next_method("tool", spec, profile) == "tool"
    profile = ServerProfile(supports_json_schema=False, supports_tool_choice=False)
    assert next_method("tool", spec, profile) == "json_object"


def test_json_schema_request() -> None:
    spec = resolve_spec(Event)
    assert spec is not None
    body = apply_method(BODY, spec, "json_schema", ServerProfile())
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "Event", "schema": SCHEMA},
    }
    assert body["messages"] == BODY["messages"]
    assert method_in_body(body) == "json_schema"


def test_tool_request_forces_the_call_by_name_or_by_required() -> None:
    spec = resolve_spec(Event)
    assert spec is not None
    named = apply_method(BODY, spec, "tool", ServerProfile())
    assert named["tools"][0]["function"]["name"] == "Event"
    assert named["tools"][0]["function"]["parameters"] == SCHEMA
    assert named["tool_choice"] == {"type": "function", "function": {"name": "Event"}}
    required = apply_method(BODY, spec, "tool", get_profile("llamacpp"))
    assert required["tool_choice"] == "required"
    assert method_in_body(named) == method_in_body(required) == "tool"
    assert spec_from_body(named) == StructuredSpec("Event", SCHEMA)


@pytest.mark.parametrize(
    ("profile", "response_format"),
    [
        ("generic", {"type": "json_object"}),
        ("llamacpp", {"type": "json_object", "schema": SCHEMA}),
        ("tgi", {"type": "json_object", "value": SCHEMA}),
    ],
)
def test_json_object_request_carries_schema_where_the_server_enforces_it(
    profile: str, response_format: dict[str, Any]
) -> None:
    spec = resolve_spec(Event)
    assert spec is not None
    body = apply_method(BODY, spec, "json_object", get_profile(profile))
    assert body["response_format"] == response_format
    instruction = body["messages"][0]
    assert instruction["role"] == "system"
    assert "JSON" in instruction["content"]
    assert '"people"' in instruction["content"]
    assert body["messages"][1:] == BODY["messages"]
    assert spec_from_body(body) == StructuredSpec("Event", SCHEMA)


def test_json_object_instruction_joins_an_existing_system_message_once() -> None:
    spec = resolve_spec(Event)
    assert spec is not None
    body = {**BODY, "messages": [{"role": "system", "content": "Be brief."}, *BODY["messages"]]}
    once = apply_method(body, spec, "json_object", ServerProfile())
    twice = apply_method(once, spec, "json_object", ServerProfile())
    assert len(twice["messages"]) == 2
    assert twice["messages"][0]["content"].startswith("Be brief.\n\n")
    assert twice["messages"][0]["content"].count("Respond with one JSON object") == 1


def test_switching_method_keeps_the_callers_tools() -> None:
    spec = resolve_spec(Event)
    assert spec is not None
    user_tool = {"type": "function", "function": {"name": "lookup", "parameters": {}}}
    body = apply_method({**BODY, "tools": [user_tool]}, spec, "tool", ServerProfile())
    assert len(body["tools"]) == 2
    moved = apply_method(body, spec, "json_object", ServerProfile())
    assert moved["tools"] == [user_tool]
    assert "tool_choice" not in moved


def answer(content: str = "", **kwargs: Any) -> ChatResponse:
    return ChatResponse(
        content=content, finish_reason=kwargs.pop("finish_reason", "stop"), **kwargs
    )


@pytest.mark.parametrize(
    "content", ['{"city": "Oslo", "people": 3}', '```json\n{"city": "Oslo", "people": 3}\n```']
)
def test_parse_content_into_the_model(content: str) -> None:
    spec = resolve_spec(Event)
    assert spec is not None
    assert parse_structured(answer(content), spec, "json_schema") == Event(city="Oslo", people=3)


def test_parse_tool_arguments() -> None:
    spec = resolve_spec(Event)
    assert spec is not None
    call = ToolCall(id="1", name="Event", arguments={"city": "Oslo", "people": 3})
    assert parse_structured(answer(tool_calls=[call]), spec, "tool") == Event(city="Oslo", people=3)


@pytest.mark.parametrize("method", ["json_schema", "json_object", "tool"])
def test_a_turn_calling_the_users_tools_is_not_judged(method: Any) -> None:
    # Agents send their tools with a response format and loop until the model answers.
    spec = resolve_spec(Event)
    assert spec is not None
    call = ToolCall(id="1", name="get_weather", arguments={"city": "Oslo"})
    assert parse_structured(answer(tool_calls=[call]), spec, method) is None


@pytest.mark.parametrize(
    ("response", "method", "reason"),
    [
        (answer('{"city": "Os', finish_reason="length"), "json_schema", "cut off"),
        (answer("Sure! Here it is."), "json_object", "not valid JSON"),
        (answer(""), "json_schema", "empty"),
        (answer('{"city": "Oslo", "people": "many"}'), "json_schema", "does not validate as Event"),
        (answer(), "tool", "did not call"),
        (
            answer(tool_calls=[ToolCall("1", "Event", {}, '{"city":', error="invalid JSON")]),
            "tool",
            "not a JSON object",
        ),
    ],
)
def test_parse_failures_are_structured_output_errors(
    response: ChatResponse, method: Any, reason: str
) -> None:
    spec = resolve_spec(Event)
    assert spec is not None
    with pytest.raises(StructuredOutputError, match=reason) as caught:
        parse_structured(response, spec, method)
    assert isinstance(caught.value, ResponseParseError)
    assert caught.value.response is response


def test_plain_schema_gets_a_top_level_check_only() -> None:
    spec = resolve_spec({"type": "object", "required": ["a"], "properties": {"a": {}}})
    assert spec is not None
    assert parse_structured(answer('{"a": "anything"}'), spec, "json_schema") == {"a": "anything"}
    with pytest.raises(StructuredOutputError, match="missing required keys: a"):
        parse_structured(answer('{"b": 1}'), spec, "json_schema")
    with pytest.raises(StructuredOutputError, match="expected a JSON object"):
        parse_structured(answer("[1]"), spec, "json_schema")


def test_import_oaicompat_does_not_import_pydantic() -> None:
    code = (
        "import sys, oaicompat, oaicompat.structured, oaicompat.discovery;"
        "oaicompat.structured.resolve_spec({'type': 'object'});"
        "assert 'pydantic' not in sys.modules, 'pydantic imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# Through the clients ------------------------------------------------------------------

OSLO = '{"city": "Oslo", "people": 3}'


def _reply_for(method: str, streaming: bool) -> Any:
    if method == "tool":
        payload = completion(
            None, tool_calls=[tool_call("Event", OSLO)], finish_reason="tool_calls"
        )
    else:
        payload = completion(OSLO)
    return sse(payload) if streaming else ok(payload)


@pytest.mark.parametrize("streaming", [False, True], ids=["chat", "stream"])
@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("method", ["json_schema", "tool", "json_object"])
async def test_each_method_through_the_client(method: str, is_async: bool, streaming: bool) -> None:
    script = Script(_reply_for(method, streaming))
    both = Both(is_async, script, None)
    send = both.stream if streaming else both.chat
    result = await send("Plan it", response_format=Event, structured_method=method)
    assert result.parsed == Event(city="Oslo", people=3)
    assert method_in_body(script.body(0)) == method


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
async def test_auto_uses_the_profiles_method(is_async: bool) -> None:
    script = Script(ok(completion(OSLO)))
    both = Both(is_async, script, "deepseek", api_key="k")
    result = await both.chat("Plan it", response_format=SCHEMA)
    assert result.parsed == {"city": "Oslo", "people": 3}
    sent = script.body(0)
    assert sent["response_format"] == {"type": "json_object"}
    assert "json" in sent["messages"][0]["content"].lower()


@pytest.mark.parametrize("streaming", [False, True], ids=["chat", "stream"])
@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
async def test_invalid_answer_raises_structured_output_error(
    is_async: bool, streaming: bool
) -> None:
    payload = completion('{"city": "Oslo"}')
    script = Script(sse(payload) if streaming else ok(payload))
    both = Both(is_async, script, None, max_retries=2)
    send = both.stream if streaming else both.chat
    with pytest.raises(StructuredOutputError, match="people"):
        await send("Plan it", response_format=Event)
    assert len(script.requests) == 1


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
async def test_cut_off_answer_raises(is_async: bool) -> None:
    script = Script(ok(completion('{"city": "Os', finish_reason="length")))
    both = Both(is_async, script, None)
    with pytest.raises(StructuredOutputError, match="max_tokens"):
        await both.chat("Plan it", response_format=Event, max_tokens=5)


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
async def test_text_response_format_passes_through(is_async: bool) -> None:
    script = Script(ok(completion("plain")))
    both = Both(is_async, script, None)
    result = await both.chat("hi", response_format={"type": "text"})
    assert (result.content, result.parsed) == ("plain", None)
    assert script.body(0)["response_format"] == {"type": "text"}

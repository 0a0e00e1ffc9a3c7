"""ChatOpenAICompatible end to end over an exact wire script (see conftest.py)."""

from __future__ import annotations

import copy
import pickle
from typing import Any
from uuid import UUID

import pytest
from langchain_core.callbacks import AsyncCallbackHandler, BaseCallbackHandler
from langchain_core.exceptions import (
    ContextOverflowError,
    ModelAuthenticationError,
    ModelInvalidRequestError,
    ModelNotFoundError,
    ModelRateLimitError,
    OutputParserException,
)
from langchain_core.load import dumpd, load
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    HumanMessage,
    ToolMessage,
)
from langchain_core.tools import tool
from lc_scripted import MODEL, Call, ScriptedEndpoint, status_reply, text_reply, tool_reply
from pydantic import BaseModel

import oaicompat
from oaicompat.langchain import ChatOpenAICompatible
from oaicompat.structured import StructuredOutputError
from oaicompat.types import ChatResponse

# -- usage and metadata ---------------------------------------------------------------


def _stream_sum(chunks: list[AIMessageChunk]) -> AIMessageChunk:
    total = chunks[0]
    for chunk in chunks[1:]:
        total = total + chunk
    return total


@pytest.mark.parametrize("usage_on_every_chunk", [False, True])
def test_streamed_usage_is_counted_once(
    endpoint: ScriptedEndpoint, usage_on_every_chunk: bool
) -> None:
    endpoint.queue(
        text_reply(
            ["Hel", "lo", " there"], usage=(12, 3), usage_on_every_chunk=usage_on_every_chunk
        )
    )
    chunks = list(endpoint.model().stream("hi"))
    with_usage = [chunk for chunk in chunks if chunk.usage_metadata]
    assert len(with_usage) == 1
    assert with_usage[0] is chunks[-1]
    total = _stream_sum(chunks)
    assert total.content == "Hello there"
    assert total.usage_metadata == {"input_tokens": 12, "output_tokens": 3, "total_tokens": 15}
    assert total.response_metadata["model_name"] == MODEL
    assert total.response_metadata["finish_reason"] == "stop"
    assert total.response_metadata["model_provider"] == "oaicompat"
    assert chunks[-1].chunk_position == "last"
    assert endpoint.requests[0]["stream"] is True


def test_invoke_with_streaming_true_aggregates_the_stream(endpoint: ScriptedEndpoint) -> None:
    endpoint.queue(text_reply(["a", "b", "c"], usage=(5, 3)))
    message = endpoint.model(streaming=True).invoke("hi")
    assert endpoint.requests[0]["stream"] is True
    assert message.content == "abc"
    assert message.usage_metadata == {"input_tokens": 5, "output_tokens": 3, "total_tokens": 8}
    assert message.response_metadata["finish_reason"] == "stop"


async def test_async_invoke_and_stream_match_sync(endpoint: ScriptedEndpoint) -> None:
    endpoint.queue(text_reply(["x", "y"], usage=(4, 2)))
    model = endpoint.model()
    invoked = await model.ainvoke("hi")
    chunks = [chunk async for chunk in model.astream("hi")]
    streamed = _stream_sum(chunks)
    assert invoked.content == streamed.content == "xy"
    assert invoked.usage_metadata == streamed.usage_metadata
    assert chunks[-1].chunk_position == "last"
    await model.aclose()


# -- reasoning --------------------------------------------------------------------------


def test_reasoning_surfaces_in_content_blocks_invoked_and_streamed(
    endpoint: ScriptedEndpoint,
) -> None:
    endpoint.queue(text_reply(["42"], reasoning=["six ", "times seven"]))
    model = endpoint.model()
    invoked = model.invoke("answer?")
    streamed = _stream_sum(list(model.stream("answer?")))
    for message in (invoked, streamed):
        assert message.additional_kwargs["reasoning_content"] == "six times seven"
        assert message.content_blocks == [
            {"type": "reasoning", "reasoning": "six times seven"},
            {"type": "text", "text": "42"},
        ]


# -- tools ------------------------------------------------------------------------------


@tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"sunny in {city}"


@tool
def get_time(zone: str) -> str:
    """The time in a time zone."""
    return f"noon in {zone}"


@pytest.mark.parametrize("repeat_id_and_name", [False, True])
def test_parallel_tool_calls_stream_and_merge(
    endpoint: ScriptedEndpoint, repeat_id_and_name: bool
) -> None:
    calls = [
        Call("call_a", "get_weather", '{"city": "Oslo"}', pieces=3),
        Call("call_b", "get_time", '{"zone": "UTC"}', pieces=2),
    ]
    endpoint.queue(tool_reply(calls, repeat_id_and_name=repeat_id_and_name))
    bound = endpoint.model().bind_tools([get_weather, get_time])
    chunks = list(bound.stream("weather and time?"))
    for chunk in chunks:
        assert isinstance(chunk, AIMessageChunk)
        for part in chunk.tool_call_chunks:
            assert isinstance(part["index"], int)
    first_parts = [part for chunk in chunks for part in chunk.tool_call_chunks if part["id"]]
    assert [(part["id"], part["name"]) for part in first_parts] == [
        ("call_a", "get_weather"),
        ("call_b", "get_time"),
    ]
    total = _stream_sum(chunks)  # type: ignore[arg-type]
    assert total.tool_calls == [
        {"name": "get_weather", "args": {"city": "Oslo"}, "id": "call_a", "type": "tool_call"},
        {"name": "get_time", "args": {"zone": "UTC"}, "id": "call_b", "type": "tool_call"},
    ]
    sent = endpoint.requests[0]
    assert [entry["function"]["name"] for entry in sent["tools"]] == ["get_weather", "get_time"]


def test_malformed_tool_arguments_are_invalid_tool_calls(endpoint: ScriptedEndpoint) -> None:
    endpoint.queue(tool_reply([Call("call_x", "get_weather", '{"city": ')]))
    message = endpoint.model().bind_tools([get_weather]).invoke("weather?")
    assert isinstance(message, AIMessage)
    assert message.tool_calls == []
    assert message.invalid_tool_calls[0]["id"] == "call_x"
    assert message.invalid_tool_calls[0]["args"] == '{"city": '


def test_bind_tools_sends_tool_choice_and_parallel_flag(endpoint: ScriptedEndpoint) -> None:
    endpoint.queue(tool_reply([Call("c", "get_time", '{"zone": "CET"}')]))
    model = endpoint.model()
    model.bind_tools([get_weather, get_time], tool_choice="get_time").invoke("time?")
    model.bind_tools([get_weather], tool_choice="any", parallel_tool_calls=False).invoke("w?")
    assert endpoint.requests[0]["tool_choice"] == {
        "type": "function",
        "function": {"name": "get_time"},
    }
    assert endpoint.requests[1]["tool_choice"] == "required"
    assert endpoint.requests[1]["parallel_tool_calls"] is False


def test_agent_loop_with_two_tool_rounds(endpoint: ScriptedEndpoint) -> None:
    endpoint.queue(
        tool_reply([Call("call_1", "get_weather", '{"city": "Lima"}')]),
        tool_reply([Call("call_2", "get_time", '{"zone": "PET"}')]),
        text_reply(["Sunny, and it is noon."]),
    )
    tools = {"get_weather": get_weather, "get_time": get_time}
    agent = endpoint.model().bind_tools(list(tools.values()))
    history: list[BaseMessage] = [HumanMessage("Weather and time in Lima?")]
    for _ in range(5):
        reply = agent.invoke(history)
        history.append(reply)
        if not reply.tool_calls:
            break
        history.extend(tools[call["name"]].invoke(call) for call in reply.tool_calls)
    assert history[-1].content == "Sunny, and it is noon."
    assert [type(message).__name__ for message in history] == [
        "HumanMessage",
        "AIMessage",
        "ToolMessage",
        "AIMessage",
        "ToolMessage",
        "AIMessage",
    ]
    third_request = endpoint.requests[2]["messages"]
    assert [message["role"] for message in third_request] == [
        "user",
        "assistant",
        "tool",
        "assistant",
        "tool",
    ]
    assert third_request[1]["tool_calls"][0]["id"] == "call_1"
    assert third_request[2] == {
        "role": "tool",
        "tool_call_id": "call_1",
        "content": "sunny in Lima",
    }
    assert third_request[4]["tool_call_id"] == "call_2"
    assert third_request[4]["content"] == "noon in PET"


# -- callbacks --------------------------------------------------------------------------


class TokenRecorder(BaseCallbackHandler):
    def __init__(self) -> None:
        self.tokens: list[str] = []

    def on_llm_new_token(self, token: str, **kwargs: Any) -> None:
        self.tokens.append(token)


class AsyncTokenRecorder(AsyncCallbackHandler):
    def __init__(self) -> None:
        self.tokens: list[str] = []

    async def on_llm_new_token(self, token: str, *, run_id: UUID, **kwargs: Any) -> None:
        self.tokens.append(token)


def test_callbacks_fire_once_per_token_when_streaming(endpoint: ScriptedEndpoint) -> None:
    endpoint.queue(text_reply(["one", " two", " three"]))
    recorder = TokenRecorder()
    chunks = list(endpoint.model().stream("count", config={"callbacks": [recorder]}))
    assert recorder.tokens == [chunk.content for chunk in chunks]
    assert recorder.tokens == ["one", " two", " three", ""]


def test_callbacks_fire_once_per_token_when_invoke_streams(endpoint: ScriptedEndpoint) -> None:
    endpoint.queue(text_reply(["one", " two", " three"]))
    recorder = TokenRecorder()
    message = endpoint.model(streaming=True).invoke("count", config={"callbacks": [recorder]})
    assert message.content == "one two three"
    assert recorder.tokens == ["one", " two", " three", ""]


async def test_async_callbacks_fire_once_per_token(endpoint: ScriptedEndpoint) -> None:
    endpoint.queue(text_reply(["one", " two"]))
    recorder = AsyncTokenRecorder()
    model = endpoint.model(streaming=True)
    message = await model.ainvoke("count", config={"callbacks": [recorder]})
    assert message.content == "one two"
    assert recorder.tokens == ["one", " two", ""]
    streamed = TokenRecorder()
    chunks = [chunk async for chunk in model.astream("count", config={"callbacks": [streamed]})]
    assert streamed.tokens == [chunk.content for chunk in chunks]
    await model.aclose()


def test_no_token_callbacks_without_streaming(endpoint: ScriptedEndpoint) -> None:
    endpoint.queue(text_reply(["whole"]))
    recorder = TokenRecorder()
    endpoint.model().invoke("hi", config={"callbacks": [recorder]})
    assert recorder.tokens == []
    assert "stream" not in endpoint.requests[0] or endpoint.requests[0]["stream"] is False


# -- errors -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "message", "ours", "theirs"),
    [
        (429, "slow down", oaicompat.RateLimitError, ModelRateLimitError),
        (401, "bad key", oaicompat.AuthenticationError, ModelAuthenticationError),
        (404, "no such model", oaicompat.NotFoundError, ModelNotFoundError),
        (400, "bad parameter", oaicompat.BadRequestError, ModelInvalidRequestError),
        (
            400,
            "This model's maximum context length is 2048 tokens",
            oaicompat.ContextLengthError,
            ContextOverflowError,
        ),
    ],
)
@pytest.mark.parametrize("call", ["invoke", "stream"])
def test_errors_map_to_langchain_types(
    endpoint: ScriptedEndpoint, status: int, message: str, ours: type, theirs: type, call: str
) -> None:
    endpoint.queue(status_reply(status, message))
    model = endpoint.model()
    run = model.invoke if call == "invoke" else lambda text: list(model.stream(text))
    with pytest.raises(theirs) as caught:
        run("hi")
    assert isinstance(caught.value, ours)
    assert caught.value.status_code == status  # type: ignore[attr-defined]
    assert message in str(caught.value)


async def test_async_errors_map_to_langchain_types(endpoint: ScriptedEndpoint) -> None:
    endpoint.queue(status_reply(429, "busy", {"retry-after": "1"}))
    model = endpoint.model()
    with pytest.raises(ModelRateLimitError) as caught:
        await model.ainvoke("hi")
    assert isinstance(caught.value, oaicompat.RateLimitError)
    assert caught.value.retry_after == 1.0
    with pytest.raises(ModelRateLimitError):
        async for _ in model.astream("hi"):
            pass
    await model.aclose()


def test_with_retry_retries_on_langchains_rate_limit_type(endpoint: ScriptedEndpoint) -> None:
    endpoint.queue(status_reply(429, "busy"), text_reply(["finally"]))
    retrying = endpoint.model().with_retry(
        retry_if_exception_type=(ModelRateLimitError,),
        wait_exponential_jitter=False,
        stop_after_attempt=2,
    )
    assert retrying.invoke("hi").content == "finally"
    assert len(endpoint.requests) == 2


# -- request shape ----------------------------------------------------------------------


def test_request_carries_fields_and_per_call_overrides(endpoint: ScriptedEndpoint) -> None:
    endpoint.queue(text_reply(["ok"]))
    model = endpoint.model(
        temperature=0.2,
        max_tokens=50,
        top_p=0.9,
        seed=7,
        stop=["END"],
        model_kwargs={"frequency_penalty": 0.5},
        extra_body={"top_k": 20},
        api_key="sk-test",
    )
    model.invoke("hi", stop=["STOP"], model="other-model", temperature=0.7)
    sent = endpoint.requests[0]
    assert sent["model"] == "other-model"
    assert sent["temperature"] == 0.7
    assert sent["max_tokens"] == 50
    assert sent["top_p"] == 0.9
    assert sent["seed"] == 7
    assert sent["stop"] == ["STOP"]
    assert sent["frequency_penalty"] == 0.5
    assert sent["top_k"] == 20
    assert sent["messages"] == [{"role": "user", "content": "hi"}]
    assert endpoint.headers[0]["authorization"] == "Bearer sk-test"


def test_no_key_means_no_authorization_header(
    endpoint: ScriptedEndpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OAICOMPAT_API_KEY", raising=False)
    endpoint.queue(text_reply(["ok"]))
    model = endpoint.model()
    model.invoke("hi")
    assert model.api_key is None
    assert "authorization" not in endpoint.headers[0]


def test_model_name_in_metadata_follows_a_per_call_override(endpoint: ScriptedEndpoint) -> None:
    def echo_model(body: dict[str, Any]) -> Any:
        response = text_reply(["ok"])(body)
        if not body.get("stream"):
            payload = response.json()
            payload["model"] = body["model"]
            return type(response)(200, json=payload)
        return response

    endpoint.queue(echo_model)
    message = endpoint.model().invoke("hi", model="override-model")
    assert message.response_metadata["model_name"] == "override-model"


# -- structured output ------------------------------------------------------------------


class Person(BaseModel):
    """A person."""

    name: str
    age: int


def test_structured_output_json_schema_request_and_parse(endpoint: ScriptedEndpoint) -> None:
    endpoint.queue(text_reply(['{"name": "Ada", ', '"age": 36}']))
    structured = endpoint.model().with_structured_output(Person, method="json_schema")
    assert structured.invoke("who?") == Person(name="Ada", age=36)
    response_format = endpoint.requests[0]["response_format"]
    assert response_format["type"] == "json_schema"
    assert response_format["json_schema"]["name"] == "Person"
    assert set(response_format["json_schema"]["schema"]["properties"]) == {"name", "age"}


def test_structured_output_function_calling(endpoint: ScriptedEndpoint) -> None:
    endpoint.queue(tool_reply([Call("c", "Person", '{"name": "Bo", "age": 5}')]))
    structured = endpoint.model().with_structured_output(Person, method="function_calling")
    assert structured.invoke("who?") == Person(name="Bo", age=5)
    sent = endpoint.requests[0]
    assert sent["tool_choice"] == {"type": "function", "function": {"name": "Person"}}
    streamed = list(structured.stream("who?"))
    assert streamed[-1] == Person(name="Bo", age=5)


def test_structured_output_json_mode_with_dict_schema(endpoint: ScriptedEndpoint) -> None:
    endpoint.queue(text_reply(['{"name": "Cy", "age": 9}']))
    structured = endpoint.model().with_structured_output(
        Person.model_json_schema(), method="json_mode"
    )
    assert structured.invoke("who?") == {"name": "Cy", "age": 9}
    assert endpoint.requests[0]["response_format"]["type"] == "json_object"


def test_structured_output_include_raw_keeps_the_parsing_error(endpoint: ScriptedEndpoint) -> None:
    endpoint.queue(text_reply(["not json at all"]))
    structured = endpoint.model().with_structured_output(
        Person, method="json_mode", include_raw=True
    )
    result = structured.invoke("who?")
    assert isinstance(result["raw"], AIMessage)
    assert result["raw"].content == "not json at all"
    assert result["parsed"] is None
    assert result["parsing_error"] is not None


def test_structured_output_default_method_comes_from_the_profile(
    endpoint: ScriptedEndpoint,
) -> None:
    endpoint.queue(tool_reply([Call("c", "Person", '{"name": "Di", "age": 1}')]))
    model = endpoint.model(profile=oaicompat.ServerProfile(structured_output_method="tool"))
    assert model.with_structured_output(Person).invoke("who?") == Person(name="Di", age=1)
    assert "tools" in endpoint.requests[0]


# -- construction, profile, serialization -----------------------------------------------


def test_profile_name_selects_the_server_preset_and_fills_the_model_profile() -> None:
    model = ChatOpenAICompatible(model="llama3.1", profile="ollama")
    assert model.server_profile == "ollama"
    assert model.profile is not None
    assert model.profile["tool_calling"] is True
    assert model.profile["structured_output"] is oaicompat.PRESETS["ollama"].supports_json_schema
    assert model.client.base_url.startswith("http://localhost:11434")
    model.close()


def test_a_fixed_context_window_becomes_max_input_tokens() -> None:
    profile = oaicompat.ServerProfile(context_window=8192, supports_json_schema=False)
    model = ChatOpenAICompatible(model="m", base_url="http://h/v1", profile=profile)
    assert model.profile is not None
    assert model.profile["max_input_tokens"] == 8192
    assert model.profile["structured_output"] is False


def test_base_url_is_required_without_a_profile_default() -> None:
    with pytest.raises(ValueError, match="base_url"):
        ChatOpenAICompatible(model="m")


@pytest.mark.filterwarnings("ignore::langchain_core._api.beta_decorator.LangChainBetaWarning")
def test_api_key_stays_out_of_repr_and_serialization() -> None:
    model = ChatOpenAICompatible(model="m", base_url="http://h/v1", api_key="sk-secret-value")
    assert "sk-secret-value" not in repr(model)
    dumped = dumpd(model)
    assert "sk-secret-value" not in str(dumped)
    assert dumped["kwargs"]["api_key"] == {"lc": 1, "type": "secret", "id": ["OAICOMPAT_API_KEY"]}
    revived = load(
        dumped,
        allowed_objects=[ChatOpenAICompatible],
        valid_namespaces=["oaicompat"],
        secrets_map={"OAICOMPAT_API_KEY": "sk-secret-value"},
    )
    assert isinstance(revived, ChatOpenAICompatible)
    assert revived.api_key is not None
    assert revived.api_key.get_secret_value() == "sk-secret-value"
    assert revived.asdict() == model.asdict()


def test_api_key_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OAICOMPAT_API_KEY", "sk-from-env")
    model = ChatOpenAICompatible(model="m", base_url="http://h/v1")
    assert model.api_key is not None
    assert model.api_key.get_secret_value() == "sk-from-env"


def test_ls_params_honour_per_call_model() -> None:
    model = ChatOpenAICompatible(
        model="m", base_url="http://h/v1", temperature=0.1, max_tokens=9, stop=["x"]
    )
    assert model._get_ls_params(model="n") == {
        "ls_provider": "oaicompat",
        "ls_model_name": "n",
        "ls_model_type": "chat",
        "ls_temperature": 0.1,
        "ls_max_tokens": 9,
        "ls_stop": ["x"],
    }


def test_tool_messages_with_error_status_and_list_content_are_sent(
    endpoint: ScriptedEndpoint,
) -> None:
    endpoint.queue(text_reply(["noted"]))
    history: list[BaseMessage] = [
        HumanMessage("add"),
        AIMessage("", tool_calls=[{"name": "add", "args": {"a": 1}, "id": "t1"}]),
        ToolMessage(
            [{"type": "text", "text": "Error: b missing"}], tool_call_id="t1", status="error"
        ),
    ]
    endpoint.model().invoke(history)
    assert endpoint.requests[0]["messages"][2] == {
        "role": "tool",
        "tool_call_id": "t1",
        "content": "Error: b missing",
    }


def test_an_answer_the_core_rejected_reaches_include_raw(
    endpoint: ScriptedEndpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = endpoint.model()
    rejected = ChatResponse(content='{"name": "Ada"}', finish_reason="stop", model=MODEL)

    def reject(*args: Any, **kwargs: Any) -> ChatResponse:
        raise StructuredOutputError("missing required keys: age", response=rejected)

    monkeypatch.setattr(model.client, "chat", reject)
    with_raw = model.with_structured_output(Person, method="json_schema", include_raw=True)
    result = with_raw.invoke("who?")
    assert result["raw"].content == '{"name": "Ada"}'
    assert result["parsed"] is None
    assert "missing required keys: age" in str(result["parsing_error"])
    with pytest.raises(OutputParserException, match="missing required keys: age"):
        model.with_structured_output(Person, method="json_schema").invoke("who?")


def test_a_rejection_without_the_answer_is_raised(
    endpoint: ScriptedEndpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = endpoint.model()

    def reject(*args: Any, **kwargs: Any) -> ChatResponse:
        raise StructuredOutputError("no answer to judge")

    monkeypatch.setattr(model.client, "chat", reject)
    with pytest.raises(StructuredOutputError, match="no answer to judge"):
        model.invoke("who?")


def test_the_core_parsed_value_is_the_structured_output(
    endpoint: ScriptedEndpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = endpoint.model()
    answer = ChatResponse(content="", parsed={"name": "Eve", "age": 3}, finish_reason="stop")
    monkeypatch.setattr(model.client, "chat", lambda *args, **kwargs: answer)
    structured = model.with_structured_output(Person, method="json_schema")
    assert structured.invoke("who?") == Person(name="Eve", age=3)


def test_send_reasoning_puts_earlier_reasoning_in_the_request(endpoint: ScriptedEndpoint) -> None:
    endpoint.queue(text_reply(["ok"]))
    history: list[BaseMessage] = [
        HumanMessage("q"),
        AIMessage("a", additional_kwargs={"reasoning_content": "because"}),
        HumanMessage("and?"),
    ]
    endpoint.model().invoke(history)
    endpoint.model(send_reasoning=True).invoke(history)
    assert "reasoning_content" not in endpoint.requests[0]["messages"][1]
    assert endpoint.requests[1]["messages"][1]["reasoning_content"] == "because"


def test_a_streamed_answer_the_core_rejected_reaches_include_raw(
    endpoint: ScriptedEndpoint,
) -> None:
    endpoint.queue(text_reply(['{"name": ', '"Ada"}']))
    structured = endpoint.model(streaming=True).with_structured_output(
        Person, method="json_schema", include_raw=True
    )
    result = structured.invoke("who?")
    assert endpoint.requests[0]["stream"] is True
    assert result["raw"].content == '{"name": "Ada"}'
    assert result["parsed"] is None
    assert "age" in str(result["parsing_error"])


def test_streamed_structured_output_ends_with_the_whole_object(endpoint: ScriptedEndpoint) -> None:
    endpoint.queue(text_reply(['{"name": "Ada", ', '"age": 36}']))
    structured = endpoint.model().with_structured_output(Person.model_json_schema())
    outputs = list(structured.stream("who?"))
    assert outputs[-1] == {"name": "Ada", "age": 36}
    assert all(set(output) <= {"name", "age"} for output in outputs)


def test_json_mode_with_a_schema_tells_the_model_the_shape(endpoint: ScriptedEndpoint) -> None:
    endpoint.queue(text_reply(['{"name": "Cy", "age": 9}']))
    endpoint.model().with_structured_output(Person, method="json_mode").invoke("who?")
    sent = endpoint.requests[0]
    assert sent["response_format"]["type"] == "json_object"
    assert any("age" in str(message["content"]) for message in sent["messages"][:-1])


def test_tools_with_a_response_format_as_create_agent_binds_them(
    endpoint: ScriptedEndpoint,
) -> None:
    """``create_agent``'s provider strategy: tools plus a json_schema for the final answer."""
    endpoint.queue(
        tool_reply([Call("call_1", "get_weather", '{"city": "Oslo"}')]),
        text_reply(['{"name": "Oslo", "age": 1000}']),
    )
    response_format = {
        "type": "json_schema",
        "json_schema": {"name": "Person", "schema": Person.model_json_schema(), "strict": True},
    }
    agent = endpoint.model().bind_tools([get_weather], response_format=response_format, strict=True)
    history: list[BaseMessage] = [HumanMessage("weather, then a person")]
    first = agent.invoke(history)
    assert [call["name"] for call in first.tool_calls] == ["get_weather"]
    assert first.additional_kwargs == {}  # a tool round is no failed structured answer
    history += [first, get_weather.invoke(first.tool_calls[0])]
    final = agent.invoke(history)
    assert final.tool_calls == []
    assert final.content == '{"name": "Oslo", "age": 1000}'
    assert final.additional_kwargs["parsed"] == {"name": "Oslo", "age": 1000}
    sent = endpoint.requests[0]
    assert sent["response_format"]["type"] == "json_schema"
    assert sent["tools"][0]["function"]["strict"] is True


def test_copies_build_their_own_clients() -> None:
    model = ChatOpenAICompatible(model="m", base_url="http://first/v1")
    first_client = model.client
    moved = model.model_copy(update={"base_url": "http://second/v1"})
    assert moved.client is not first_client
    assert moved.client.base_url.startswith("http://second")
    assert model.client is first_client
    for clone in (copy.deepcopy(model), pickle.loads(pickle.dumps(model))):
        assert clone.client is not first_client
        assert clone.client.base_url.startswith("http://first")
        clone.close()
    moved.close()
    model.close()

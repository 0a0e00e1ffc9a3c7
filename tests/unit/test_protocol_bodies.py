"""Request bodies out, response bodies in: build_body, parse_response and their helpers."""

from __future__ import annotations

from typing import Any

import pytest

from oaicompat.errors import (
    ContextLengthError,
    InternalServerError,
    RateLimitError,
    ResponseParseError,
)
from oaicompat.profiles import PRESETS, ServerProfile
from oaicompat.protocol import build_body, normalize_finish_reason, parse_response, split_content

GENERIC = PRESETS["generic"]
MESSAGES = [{"role": "user", "content": "hi"}]


def body(
    server: ServerProfile = GENERIC,
    *,
    stream: bool = False,
    defaults: dict[str, Any] | None = None,
    **kwargs: Any,
) -> dict[str, Any]:
    options = {
        key: kwargs.pop(key)
        for key in ("tools", "tool_choice", "parallel_tool_calls", "response_format")
        if key in kwargs
    }
    return build_body(
        model="m",
        messages=MESSAGES,
        profile=server,
        defaults=defaults or {},
        stream=stream,
        params=kwargs,
        **options,
    )


def test_minimal_body_sends_nothing_unset() -> None:
    sent = body(tools=None, tool_choice=None, parallel_tool_calls=None, response_format=None)
    assert sent == {"model": "m", "messages": MESSAGES}


def test_none_params_are_not_sent_and_unset_defaults() -> None:
    sent = body(defaults={"temperature": 0.2, "seed": 1}, temperature=None, top_p=None)
    assert sent == {"model": "m", "messages": MESSAGES, "seed": 1}


def test_params_override_defaults() -> None:
    sent = body(defaults={"temperature": 0.2, "stop": ["\n"]}, temperature=0.9)
    assert sent["temperature"] == 0.9
    assert sent["stop"] == ["\n"]


def test_messages_are_copied() -> None:
    sent = body()
    assert sent["messages"] == MESSAGES
    assert sent["messages"] is not MESSAGES


@pytest.mark.parametrize(
    ("server", "given", "sent_as"),
    [
        ("openai", "max_tokens", "max_completion_tokens"),
        ("openai", "max_completion_tokens", "max_completion_tokens"),
        ("groq", "max_tokens", "max_completion_tokens"),
        ("generic", "max_completion_tokens", "max_tokens"),
        ("ollama", "max_completion_tokens", "max_tokens"),
        ("vllm", "max_tokens", "max_tokens"),
    ],
)
def test_max_tokens_spelled_per_profile(server: str, given: str, sent_as: str) -> None:
    sent = body(PRESETS[server], **{given: 64})
    assert sent[sent_as] == 64
    other = "max_tokens" if sent_as == "max_completion_tokens" else "max_completion_tokens"
    assert other not in sent


@pytest.mark.parametrize("server", ["openai", "generic"])
@pytest.mark.parametrize("default_name", ["max_tokens", "max_completion_tokens"])
@pytest.mark.parametrize("param_name", ["max_tokens", "max_completion_tokens"])
def test_per_call_limit_beats_default_under_either_name(
    server: str, default_name: str, param_name: str
) -> None:
    sent = body(PRESETS[server], defaults={default_name: 1000}, **{param_name: 50})
    assert sent[PRESETS[server].max_tokens_param] == 50


def test_per_call_none_unsets_a_default_limit_under_the_other_name() -> None:
    sent = body(PRESETS["openai"], defaults={"max_completion_tokens": 1000}, max_tokens=None)
    assert "max_completion_tokens" not in sent
    assert "max_tokens" not in sent


def test_stream_asks_for_usage_by_default() -> None:
    sent = body(stream=True)
    assert sent["stream"] is True
    assert sent["stream_options"] == {"include_usage": True}


@pytest.mark.parametrize("server", ["mistral", "llamacpp_python", "fireworks"])
def test_no_stream_options_for_servers_that_refuse_them(server: str) -> None:
    sent = body(PRESETS[server], stream=True)
    assert sent["stream"] is True
    assert "stream_options" not in sent


def test_stream_usage_can_be_turned_off_in_the_profile() -> None:
    sent = body(ServerProfile(stream_usage=False), stream=True)
    assert "stream_options" not in sent


def test_users_stream_options_are_respected_and_merged() -> None:
    assert body(stream=True, stream_options={"include_usage": False})["stream_options"] == {
        "include_usage": False
    }
    merged = body(stream=True, stream_options={"continuous_usage_stats": True})
    assert merged["stream_options"] == {"continuous_usage_stats": True, "include_usage": True}


def test_non_stream_body_drops_stream_keys() -> None:
    sent = body(defaults={"stream": True, "stream_options": {"include_usage": True}})
    assert "stream" not in sent
    assert "stream_options" not in sent


def test_unsupported_params_are_dropped() -> None:
    sent = body(PRESETS["groq"], logprobs=True, top_logprobs=3, logit_bias={"1": 2}, seed=7)
    assert sent == {"model": "m", "messages": MESSAGES, "seed": 7}


def test_runtime_refused_param_is_dropped() -> None:
    sent = body(GENERIC.without_param("seed"), seed=3, temperature=0.1)
    assert "seed" not in sent
    assert sent["temperature"] == 0.1


def test_tool_shorthand_is_wrapped_and_full_tools_pass() -> None:
    full = {"type": "function", "function": {"name": "b", "parameters": {"type": "object"}}}
    sent = body(tools=[{"name": "a", "parameters": {"type": "object"}}, full])
    assert sent["tools"] == [
        {"type": "function", "function": {"name": "a", "parameters": {"type": "object"}}},
        full,
    ]


def test_empty_tool_list_is_not_sent() -> None:
    assert "tools" not in body(tools=[])


@pytest.mark.parametrize(
    ("choice", "sent"),
    [
        ("auto", "auto"),
        ("none", "none"),
        ("required", "required"),
        ("get_weather", {"type": "function", "function": {"name": "get_weather"}}),
        (
            {"type": "function", "function": {"name": "x"}},
            {"type": "function", "function": {"name": "x"}},
        ),
    ],
)
def test_tool_choice(choice: Any, sent: Any) -> None:
    assert body(tool_choice=choice)["tool_choice"] == sent


def test_parallel_tool_calls_only_where_supported() -> None:
    assert body(parallel_tool_calls=False)["parallel_tool_calls"] is False
    assert "parallel_tool_calls" not in body(PRESETS["ollama"], parallel_tool_calls=False)


def test_response_format_is_passed() -> None:
    schema = {"type": "json_schema", "json_schema": {"name": "x", "schema": {}}}
    assert body(response_format=schema)["response_format"] == schema


@pytest.mark.parametrize(
    ("given", "normalized"),
    [
        ("stop", "stop"),
        ("eos_token", "stop"),
        ("eos", "stop"),
        ("stop_sequence", "stop"),
        ("end_turn", "stop"),
        ("length", "length"),
        ("model_length", "length"),
        ("max_tokens", "length"),
        ("content_filter", "content_filter"),
        ("tool_calls", "tool_calls"),
        ("function_call", "function_call"),
        ("error", "error"),
        ("recitation", "recitation"),
        (None, None),
        ("", None),
        (3, "3"),
    ],
)
def test_finish_reason_normalization(given: Any, normalized: str | None) -> None:
    assert normalize_finish_reason(given) == normalized


@pytest.mark.parametrize(
    ("content", "text", "reasoning"),
    [
        (None, "", None),
        ("plain", "plain", None),
        ([{"type": "text", "text": "a"}, {"type": "text", "text": "b"}], "ab", None),
        (["a", {"type": "text", "text": "b"}], "ab", None),
        (
            [{"type": "image_url", "image_url": {"url": "x"}}, {"type": "text", "text": "t"}],
            "t",
            None,
        ),
        (
            [
                {"type": "thinking", "thinking": [{"type": "text", "text": "hm"}]},
                {"type": "text", "text": "ok"},
            ],
            "ok",
            "hm",
        ),
        ([{"type": "thinking", "thinking": "plain thought"}], "", "plain thought"),
        ([], "", None),
        ([{"type": "text", "text": None}, 5, None], "", None),
    ],
)
def test_split_content(content: Any, text: str, reasoning: str | None) -> None:
    assert split_content(content) == (text, reasoning)


def completion(message: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"id": "x", "model": "m", "choices": [{"index": 0, "message": message, **extra}]}


def test_null_content_is_empty_text() -> None:
    response = parse_response(completion({"content": None}, finish_reason="stop"), GENERIC)
    assert response.content == ""
    assert response.reasoning is None
    assert response.usage is None


@pytest.mark.parametrize("field", ["reasoning_content", "reasoning", "reasoning_text"])
def test_reasoning_fields(field: str) -> None:
    response = parse_response(completion({"content": "a", field: "why"}), GENERIC)
    assert response.reasoning == "why"


def test_profile_picks_reasoning_fields() -> None:
    server = ServerProfile(reasoning_fields=("reasoning",))
    response = parse_response(completion({"content": "a", "reasoning_content": "x"}), server)
    assert response.reasoning is None


def test_finish_reason_not_invented_from_tool_calls() -> None:
    message = {"tool_calls": [{"id": "c", "function": {"name": "f", "arguments": "{}"}}]}
    response = parse_response(completion(message, finish_reason=None), GENERIC)
    assert len(response.tool_calls) == 1
    assert response.finish_reason is None


def test_legacy_text_choice() -> None:
    data = {"choices": [{"index": 0, "text": "completion text", "finish_reason": "length"}]}
    response = parse_response(data, GENERIC)
    assert (response.content, response.finish_reason) == ("completion text", "length")


def test_raw_and_metadata_kept() -> None:
    data = completion({"content": "a"}, finish_reason="eos_token")
    data["system_fingerprint"] = "fp_1"
    response = parse_response(data, GENERIC)
    assert response.raw == data
    assert (response.id, response.model, response.system_fingerprint) == ("x", "m", "fp_1")


def test_to_message_round_trip() -> None:
    message = {
        "content": "a",
        "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": "{}"}}],
    }
    history = parse_response(completion(message), GENERIC).to_message()
    assert history["role"] == "assistant"
    assert history["tool_calls"][0]["id"] == "c"
    assert parse_response(completion(history), GENERIC).tool_calls[0].name == "f"


@pytest.mark.parametrize(
    "data",
    [
        None,
        [],
        "text",
        {},
        {"choices": []},
        {"choices": None},
        {"object": "list", "data": []},
        {"choices": [None]},
        {"choices": ["x"]},
        {"choices": {"0": {}}},
    ],
)
def test_not_a_chat_completion(data: Any) -> None:
    with pytest.raises(ResponseParseError):
        parse_response(data, GENERIC)


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        ({"message": "Rate limit reached", "code": 429}, RateLimitError),
        ({"message": "Rate limit reached", "code": "429"}, RateLimitError),
        (
            {"message": "This model's maximum context length is 8192 tokens", "code": 400},
            ContextLengthError,
        ),
        ({"message": "upstream failed"}, InternalServerError),
        ({"message": "odd code", "code": "²"}, InternalServerError),
        ("plain error string", InternalServerError),
    ],
)
def test_error_object_in_a_200_body(error: Any, expected: type[Exception]) -> None:
    with pytest.raises(expected) as caught:
        parse_response({"error": error}, GENERIC)
    message = error["message"] if isinstance(error, dict) else error
    assert message in str(caught.value)

"""Refused parameters: the planner on real servers' wordings, then the client path.

The error bodies are the servers' own, as reported in their issue trackers
(vLLM, Mistral, OpenAI, DeepSeek, LM Studio, llama.cpp, llama-cpp-python,
TGI, Fireworks, Ollama).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

import pytest

from oaicompat.errors import APIStatusError, BadRequestError, InternalServerError, error_from_status
from oaicompat.fallback import conform_body, explain_fallback, plan_fallback, refused_params
from oaicompat.profiles import ServerProfile, get_profile
from oaicompat.structured import apply_method, method_in_body, resolve_spec

from .harness import Both, Script, completion, ok, refuse, sse, tool_call

MESSAGES = [{"role": "user", "content": "hi"}]
BASE_BODY: dict[str, Any] = {"model": "m", "messages": MESSAGES}
SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "people": {"type": "integer"}},
    "required": ["city", "people"],
}
TOOLS = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]


def error(status: int, payload: Any) -> APIStatusError:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return error_from_status(status, {}, body)


def structured(method: Any, profile: ServerProfile | None = None) -> dict[str, Any]:
    return apply_method(BASE_BODY, resolve_spec(SCHEMA), method, profile or get_profile(None))


OPENAI_MAX_TOKENS = {
    "error": {
        "message": "Unsupported parameter: 'max_tokens' is not supported with this model. "
        "Use 'max_completion_tokens' instead.",
        "type": "invalid_request_error",
        "param": "max_tokens",
        "code": "unsupported_parameter",
    }
}
OPENAI_PARALLEL = {
    "error": {
        "message": "Unsupported parameter: 'parallel_tool_calls' is not supported with this model.",
        "type": "invalid_request_error",
        "param": "parallel_tool_calls",
        "code": "unsupported_parameter",
    }
}
OPENAI_TEMPERATURE = {
    "error": {
        "message": "Unsupported value: 'temperature' does not support 0.7 with this model. "
        "Only the default (1) value is supported.",
        "type": "invalid_request_error",
        "param": "temperature",
        "code": "unsupported_value",
    }
}


def mistral_extra(*loc: Any, value: Any = True) -> dict[str, Any]:
    return {
        "object": "error",
        "message": {
            "detail": [
                {
                    "type": "extra_forbidden",
                    "loc": ["body", *loc],
                    "msg": "Extra inputs are not permitted",
                    "input": value,
                }
            ]
        },
        "type": "invalid_request_error",
        "param": None,
        "code": None,
    }


def vllm_extra(param: str, value: Any) -> dict[str, Any]:
    return {
        "object": "error",
        "message": f"[{{'type': 'extra_forbidden', 'loc': ('body', '{param}'), "
        f"'msg': 'Extra inputs are not permitted', 'input': {value!r}}}]",
        "type": "BadRequestError",
        "param": None,
        "code": 400,
    }


VLLM_REQUIRED = {
    "object": "error",
    "message": '`tool_choice` must either be a named tool, "auto", or "none".',
    "type": "BadRequestError",
    "param": None,
    "code": 400,
}
FIREWORKS_STREAM_OPTIONS = {
    "error": {
        "object": "error",
        "type": "invalid_request_error",
        "message": "Extra inputs are not permitted, field: 'stream_options'",
    }
}
LMSTUDIO_JSON_OBJECT = {"error": "'response_format.type' must be 'json_schema' or 'text'"}
DEEPSEEK_JSON_SCHEMA = {
    "error": {
        "message": "This response_format type is unavailable now",
        "type": "invalid_request_error",
        "param": None,
        "code": "invalid_request_error",
    }
}
DEEPSEEK_JSON_SCHEMA_422 = (
    b"Failed to deserialize the JSON body into the target type: response_format: "
    b"response_format.type `json_schema` is unavailable now at line 1 column 1193"
)
TGI_JSON_OBJECT = (
    b"Failed to deserialize the JSON body into the target type: response_format: "
    b"missing field `value` at line 1 column 168"
)
LLAMACPP_JSON_SCHEMA = {
    "error": {
        "code": 500,
        "message": 'response_format type must be one of "text" or "json_object", but got: '
        "json_schema",
        "type": "server_error",
    }
}
# llama-cpp-python 0.3.36's route handler turns the request-validation error into a 500
# (recorded from `python -m llama_cpp.server`).
LLAMA_CPP_PYTHON_JSON_SCHEMA = {
    "error": {
        "message": "1 validation error:\n  {'type': 'literal_error', 'loc': ('body', "
        "'response_format', 'type'), 'msg': \"Input should be 'text' or 'json_object'\", "
        "'input': 'json_schema', 'ctx': {'expected': \"'text' or 'json_object'\"}}\n\n"
        '  File "llama_cpp/server/app.py", line 376, in create_chat_completion\n'
        "    POST /v1/chat/completions",
        "type": "internal_server_error",
        "param": None,
        "code": None,
    }
}


@dataclass
class Case:
    status: int
    payload: Any
    body: dict[str, Any]
    refused: set[str]
    expect: dict[str, Any] = field(default_factory=dict)
    """Keys the new body must have, with their values."""
    gone: set[str] = field(default_factory=set)
    profile: ServerProfile = field(default_factory=ServerProfile)
    learns: bool = True
    """Whether the profile changes (not when it already knew the server's spelling)."""


CASES: dict[str, Case] = {
    "openai max_tokens": Case(
        400,
        OPENAI_MAX_TOKENS,
        {**BASE_BODY, "max_tokens": 5},
        {"max_tokens"},
        {"max_completion_tokens": 5},
        {"max_tokens"},
    ),
    "openai parallel_tool_calls": Case(
        400,
        OPENAI_PARALLEL,
        {**BASE_BODY, "tools": TOOLS, "parallel_tool_calls": False},
        {"parallel_tool_calls"},
        {"tools": TOOLS},
        {"parallel_tool_calls"},
    ),
    "openai temperature value": Case(
        400,
        OPENAI_TEMPERATURE,
        {**BASE_BODY, "temperature": 0.7},
        {"temperature"},
        {},
        {"temperature"},
    ),
    "mistral stream_options": Case(
        422,
        mistral_extra("stream_options", "include_usage"),
        {**BASE_BODY, "stream": True, "stream_options": {"include_usage": True}},
        {"stream_options"},
        {"stream": True},
        {"stream_options"},
    ),
    "mistral max_completion_tokens": Case(
        422,
        mistral_extra("max_completion_tokens", value=32000),
        {**BASE_BODY, "max_completion_tokens": 32000},
        {"max_completion_tokens"},
        {"max_tokens": 32000},
        {"max_completion_tokens"},
        ServerProfile(max_tokens_param="max_completion_tokens"),
    ),
    "mistral seed, preset knows random_seed": Case(
        422,
        mistral_extra("seed", value=7),
        {**BASE_BODY, "seed": 7},
        {"seed"},
        {"random_seed": 7},
        {"seed"},
        get_profile("mistral"),
        learns=False,
    ),
    "mistral seed, generic profile": Case(
        422, mistral_extra("seed", value=7), {**BASE_BODY, "seed": 7}, {"seed"}, {}, {"seed"}
    ),
    "vllm stream_options": Case(
        400,
        vllm_extra("stream_options", {}),
        {**BASE_BODY, "stream": True, "stream_options": {"include_usage": True}},
        {"stream_options"},
        {},
        {"stream_options"},
    ),
    "vllm max_completion_tokens": Case(
        400,
        vllm_extra("max_completion_tokens", 64),
        {**BASE_BODY, "max_completion_tokens": 64},
        {"max_completion_tokens"},
        {"max_tokens": 64},
        {"max_completion_tokens"},
    ),
    "vllm tool_choice required": Case(
        400,
        VLLM_REQUIRED,
        {**BASE_BODY, "tools": TOOLS * 2, "tool_choice": "required"},
        {"tool_choice"},
        {"tool_choice": "auto"},
    ),
    "fireworks stream_options": Case(
        400,
        FIREWORKS_STREAM_OPTIONS,
        {**BASE_BODY, "stream": True, "stream_options": {"include_usage": True}},
        {"stream_options"},
        {},
        {"stream_options"},
    ),
    "lmstudio json_object": Case(
        400,
        LMSTUDIO_JSON_OBJECT,
        structured("json_object"),
        {"response_format"},
        {
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "response", "schema": SCHEMA},
            }
        },
    ),
    "deepseek json_schema": Case(
        400,
        DEEPSEEK_JSON_SCHEMA,
        structured("json_schema"),
        {"response_format"},
        {"tool_choice": {"type": "function", "function": {"name": "response"}}},
        {"response_format"},
    ),
    "deepseek json_schema (422)": Case(
        422,
        DEEPSEEK_JSON_SCHEMA_422,
        structured("json_schema"),
        {"response_format"},
        {"tool_choice": {"type": "function", "function": {"name": "response"}}},
        {"response_format"},
    ),
    "tgi json_object without value": Case(
        422,
        TGI_JSON_OBJECT,
        structured("json_object"),
        {"response_format"},
        {
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "response", "schema": SCHEMA},
            }
        },
    ),
    "llama.cpp json_schema (500)": Case(
        500,
        LLAMACPP_JSON_SCHEMA,
        structured("json_schema"),
        {"response_format"},
        {"tool_choice": {"type": "function", "function": {"name": "response"}}},
        {"response_format"},
    ),
    "llama-cpp-python json_schema (500)": Case(
        500,
        LLAMA_CPP_PYTHON_JSON_SCHEMA,
        structured("json_schema"),
        {"response_format"},
        {"tool_choice": {"type": "function", "function": {"name": "response"}}},
        {"response_format"},
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_refusal_is_planned_around(name: str) -> None:
    case = CASES[name]
    failure = error(case.status, case.payload)
    assert refused_params(failure, case.body) == case.refused
    plan = plan_fallback(failure, case.body, case.profile)
    assert plan is not None
    new_body, profile = plan
    for key, value in case.expect.items():
        assert new_body[key] == value, key
    assert not case.gone & set(new_body)
    assert new_body["messages"][-1] == MESSAGES[-1]
    # The request that follows, built with what the profile learned, stays clear.
    assert conform_body(new_body, profile) == new_body
    assert (profile != case.profile) is case.learns
    assert explain_fallback(case.body, new_body) != "request changed"


@pytest.mark.parametrize(
    ("status", "payload", "body"),
    [
        # Ollama: the model is missing, nothing to do with a parameter.
        (
            404,
            {
                "error": {
                    "message": 'model "llama3" not found, try pulling it first',
                    "type": "api_error",
                    "param": None,
                    "code": None,
                }
            },
            {**BASE_BODY, "stream_options": {"include_usage": True}, "stream": True},
        ),
        # vLLM: a context overflow is not a refused parameter.
        (
            400,
            {
                "object": "error",
                "message": "This model's maximum context length is 2048 tokens. However, you "
                "requested 4096 tokens (3000 in the messages, 1096 in the completion). Please "
                "reduce the length of the messages or completion.",
                "type": "BadRequestError",
                "param": None,
                "code": 400,
            },
            {**BASE_BODY, "max_tokens": 1096},
        ),
        # A value out of range is the caller's mistake.
        (
            400,
            {"object": "error", "message": "temperature must be in [0, 2], got 5.0.", "code": 400},
            {**BASE_BODY, "temperature": 5.0},
        ),
        # vLLM started without tool parsing: a server setting, not a parameter to drop.
        (
            400,
            {
                "object": "error",
                "message": '"auto" tool choice requires --enable-auto-tool-choice and '
                "--tool-call-parser to be set",
                "type": "BadRequestError",
                "code": 400,
            },
            {**BASE_BODY, "tools": TOOLS, "tool_choice": "auto"},
        ),
        # Old vLLM without tools at all: dropping the tools would change the request.
        (
            400,
            vllm_extra("tools", []),
            {**BASE_BODY, "tools": TOOLS},
        ),
        # OpenAI strict schema problems are the schema's, not the server's.
        (
            400,
            {
                "error": {
                    "message": "Invalid schema for response_format 'response': In context=(), "
                    "'additionalProperties' is required to be supplied and to be false.",
                    "type": "invalid_request_error",
                    "param": "response_format",
                    "code": None,
                }
            },
            structured("json_schema"),
        ),
        # A 500 that is just a crash.
        (
            500,
            {"error": {"message": "CUDA error: out of memory", "type": "server_error"}},
            {**BASE_BODY, "seed": 1},
        ),
    ],
)
def test_errors_that_are_not_about_a_parameter_are_left_alone(
    status: int, payload: Any, body: dict[str, Any]
) -> None:
    assert plan_fallback(error(status, payload), body, ServerProfile()) is None


def test_a_refused_spelling_is_not_switched_back_and_forth() -> None:
    body = {**BASE_BODY, "max_tokens": 5}
    first = plan_fallback(error(400, OPENAI_MAX_TOKENS), body, ServerProfile())
    assert first is not None
    second_body, profile = first
    second = plan_fallback(
        error(422, mistral_extra("max_completion_tokens", value=5)), second_body, profile
    )
    assert second is not None
    final_body, final_profile = second
    assert "max_tokens" not in final_body
    assert "max_completion_tokens" not in final_body
    assert {"max_tokens", "max_completion_tokens"} <= final_profile.unsupported_params


def test_structured_fallback_walks_json_schema_tool_json_object() -> None:
    body = structured("json_schema")
    profile = ServerProfile()
    plan = plan_fallback(error(400, DEEPSEEK_JSON_SCHEMA), body, profile)
    assert plan is not None
    body, profile = plan
    assert method_in_body(body) == "tool"
    refused_named = {
        "object": "error",
        "message": "[{'type': 'extra_forbidden', 'loc': ('body', 'tool_choice'), "
        "'msg': 'Extra inputs are not permitted', 'input': {}}]",
    }
    plan = plan_fallback(error(400, refused_named), body, profile)
    assert plan is not None
    body, profile = plan
    assert method_in_body(body) == "json_object"
    assert body["response_format"] == {"type": "json_object"}
    assert "tools" not in body
    assert "JSON schema" in body["messages"][0]["content"]
    plan = plan_fallback(error(400, LMSTUDIO_JSON_OBJECT), body, profile)
    assert plan is not None
    body, profile = plan
    assert method_in_body(body) == "json_object"
    assert "response_format" not in body
    assert plan_fallback(error(400, LMSTUDIO_JSON_OBJECT), body, profile) is None


def test_named_tool_choice_refused_becomes_required_for_a_single_tool() -> None:
    body = {
        **BASE_BODY,
        "tools": TOOLS,
        "tool_choice": {"type": "function", "function": {"name": "lookup"}},
    }
    payload = {
        "error": {"message": "Invalid tool_choice: expected one of 'auto', 'none', 'required'"}
    }
    plan = plan_fallback(error(400, payload), body, ServerProfile())
    assert plan is not None
    new_body, profile = plan
    assert new_body["tool_choice"] == "required"
    assert not profile.supports_named_tool_choice
    two_tools = {**body, "tools": TOOLS * 2}
    assert conform_body(two_tools, profile)["tool_choice"] == "auto"


def test_conform_body_applies_aliases_and_learned_refusals() -> None:
    profile = ServerProfile(
        param_aliases=(("seed", "random_seed"),),
        supports_tool_choice_required=False,
        unsupported_params=frozenset({"logit_bias"}),
    )
    body = {**BASE_BODY, "seed": 3, "tool_choice": "required", "tools": TOOLS, "logit_bias": {}}
    assert conform_body(body, profile) == {
        **BASE_BODY,
        "random_seed": 3,
        "tool_choice": "auto",
        "tools": TOOLS,
    }


# The client path: first call refused, second succeeds, third sends no refused parameter.


@dataclass
class Scenario:
    refusal: Any
    call: dict[str, Any]
    refused_key: str
    stream: bool = False
    profile: Any = None


SCENARIOS: dict[str, Scenario] = {
    "stream_options": Scenario(
        refuse(422, mistral_extra("stream_options", "include_usage")),
        {},
        "stream_options",
        stream=True,
    ),
    "parallel_tool_calls": Scenario(
        refuse(400, OPENAI_PARALLEL),
        {"tools": TOOLS, "parallel_tool_calls": False},
        "parallel_tool_calls",
    ),
    "max_completion_tokens": Scenario(
        refuse(422, mistral_extra("max_completion_tokens", value=20)),
        {"max_tokens": 20},
        "max_completion_tokens",
        profile="openai",
    ),
    "max_tokens": Scenario(refuse(400, OPENAI_MAX_TOKENS), {"max_tokens": 20}, "max_tokens"),
    "seed": Scenario(refuse(422, mistral_extra("seed", value=1)), {"seed": 1}, "seed"),
    "tool_choice": Scenario(
        refuse(400, VLLM_REQUIRED), {"tools": TOOLS, "tool_choice": "required"}, "tool_choice"
    ),
    "response_format": Scenario(
        refuse(400, DEEPSEEK_JSON_SCHEMA),
        {
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "r", "schema": SCHEMA},
            }
        },
        "response_format",
    ),
}


def _answer(scenario: Scenario) -> Any:
    if scenario.refused_key == "response_format":
        answer = completion(None, tool_calls=[tool_call("r", '{"city": "Oslo", "people": 3}')])
    else:
        answer = completion("fine")
    return sse(answer) if scenario.stream else ok(answer)


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("name", sorted(SCENARIOS))
async def test_client_pays_for_a_refusal_once(
    name: str, is_async: bool, caplog: pytest.LogCaptureFixture
) -> None:
    scenario = SCENARIOS[name]
    script = Script(scenario.refusal, _answer(scenario))
    both = Both(is_async, script, scenario.profile)
    send = both.stream if scenario.stream else both.chat
    with caplog.at_level(logging.WARNING, logger="oaicompat"):
        first = await send(MESSAGES, **scenario.call)
        second = await send(MESSAGES, **scenario.call)
    assert len(script.requests) == 3
    refused, retried, later = script.bodies
    assert scenario.refused_key in refused
    assert (
        scenario.refused_key not in retried
        or retried[scenario.refused_key] != refused[scenario.refused_key]
    )
    assert later == retried
    assert first.content == second.content
    if name == "response_format":
        assert first.parsed == second.parsed == {"city": "Oslo", "people": 3}
    warnings = [
        r for r in caplog.records if r.levelno == logging.WARNING and "refused" in r.message
    ]
    assert len(warnings) == 1
    assert both.client.profile != get_profile(scenario.profile)


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
async def test_llama_cpp_python_500_is_absorbed_not_retried(is_async: bool) -> None:
    answer = completion(None, tool_calls=[tool_call("response", '{"city": "Oslo", "people": 3}')])
    script = Script(refuse(500, LLAMA_CPP_PYTHON_JSON_SCHEMA), ok(answer))
    both = Both(is_async, script, None, max_retries=2)
    result = await both.chat(MESSAGES, response_format=SCHEMA)
    assert result.parsed == {"city": "Oslo", "people": 3}
    assert [method_in_body(body) for body in script.bodies] == ["json_schema", "tool"]
    assert not both.client.profile.supports_json_schema


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
async def test_a_plain_bad_request_is_raised_after_one_request(is_async: bool) -> None:
    payload = {
        "error": {
            "message": "messages: at least one message is required",
            "type": "invalid_request_error",
        }
    }
    script = Script(refuse(400, payload))
    both = Both(is_async, script, None, max_retries=2)
    with pytest.raises(BadRequestError, match="at least one message"):
        await both.chat(MESSAGES, seed=1)
    assert len(script.requests) == 1


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
async def test_a_crash_500_is_still_retried_as_before(is_async: bool) -> None:
    crash = refuse(500, {"error": {"message": "CUDA error: out of memory"}})
    script = Script(crash)
    both = Both(is_async, script, None, max_retries=1, sleep=lambda seconds: None)
    with pytest.raises(InternalServerError):
        await both.chat(MESSAGES)
    assert len(script.requests) == 2

"""Property tests on decoded payloads: arbitrary JSON in every field a server fills in.

Whatever a server puts in a chunk, a response, a usage object or a tool call,
the core either normalizes it or raises one of oaicompat's own errors, and
what it returns keeps its promises (strings are strings, counts are not
negative, totals add up when the server gave none).
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from oaicompat.errors import (
    APIStatusError,
    OAICompatError,
    error_from_status,
    extract_server_message,
    parse_retry_after,
)
from oaicompat.profiles import ServerProfile
from oaicompat.protocol import StreamParser, normalize_finish_reason, parse_response, split_content
from oaicompat.tool_calls import ToolCallAccumulator, parse_arguments, parse_tool_calls
from oaicompat.types import ChatResponse, Usage
from oaicompat.usage import normalize_usage, usage_from_payload

SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
    | st.sampled_from(["", "12", " 7 ", "3.0", "-4", "1e3", "inf", "NaN", "²", "9" * 5000])
)
JSON = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
PROFILES = st.sampled_from(
    [
        ServerProfile(),
        ServerProfile(think_tags=True),
        ServerProfile(reasoning_fields=("reasoning",), think_tags=True),
    ]
)

USAGE_KEYS = [
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "input_tokens",
    "output_tokens",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
    "prompt_cache_hit_tokens",
    "prompt_eval_count",
    "eval_count",
    "prompt_tokens_details",
    "completion_tokens_details",
    "input_tokens_details",
]
COUNT = st.integers(min_value=-5, max_value=10**12) | SCALARS
DETAILS = (
    st.fixed_dictionaries({}, optional={"cached_tokens": COUNT, "reasoning_tokens": COUNT}) | JSON
)
USAGE = st.fixed_dictionaries(
    {},
    optional={key: (DETAILS if key.endswith("_details") else COUNT) for key in USAGE_KEYS},
)
TIMINGS = (
    st.fixed_dictionaries({}, optional={"prompt_n": COUNT, "cache_n": COUNT, "predicted_n": COUNT})
    | JSON
)

FUNCTION = st.fixed_dictionaries(
    {}, optional={"name": JSON | st.text(max_size=6), "arguments": JSON}
)
TOOL_CALL = st.fixed_dictionaries(
    {},
    optional={
        "index": st.integers(min_value=-1, max_value=3) | JSON,
        "id": st.sampled_from(["a", "b", 0, 1, ""]) | JSON,
        "type": JSON,
        "function": FUNCTION | JSON,
    },
)
DELTA = st.fixed_dictionaries(
    {},
    optional={
        "role": JSON,
        "content": JSON | st.text(max_size=10) | st.sampled_from(["<think>", "</think>", "<th"]),
        "reasoning_content": JSON,
        "reasoning": JSON,
        "tool_calls": st.lists(TOOL_CALL | JSON, max_size=3) | JSON,
        "function_call": FUNCTION | JSON,
    },
)
CHOICE = st.fixed_dictionaries(
    {},
    optional={
        "index": JSON,
        "delta": DELTA | JSON,
        "message": DELTA | JSON,
        "text": JSON,
        "finish_reason": st.sampled_from(["stop", "eos_token", "length", None]) | JSON,
    },
)
PAYLOAD = st.fixed_dictionaries(
    {},
    optional={
        "id": JSON,
        "model": JSON,
        "created": JSON,
        "system_fingerprint": JSON,
        "choices": st.lists(CHOICE | JSON, max_size=2) | JSON,
        "usage": USAGE | JSON,
        "x_groq": st.fixed_dictionaries({}, optional={"usage": USAGE | JSON}) | JSON,
        "timings": TIMINGS,
        "prompt_eval_count": COUNT,
        "eval_count": COUNT,
        "error": st.none() | JSON,
    },
)


def check_usage(usage: Usage | None, raw: Any = None) -> None:
    if usage is None:
        return
    for count in (usage.input_tokens, usage.output_tokens, usage.total_tokens):
        assert isinstance(count, int)
        assert not isinstance(count, bool)
        assert count >= 0
    for optional in (usage.cached_input_tokens, usage.reasoning_tokens):
        assert optional is None or (isinstance(optional, int) and optional >= 0)
    if isinstance(raw, dict) and "total_tokens" not in raw:
        assert usage.total_tokens == usage.input_tokens + usage.output_tokens


def check_response(response: ChatResponse) -> None:
    assert isinstance(response.content, str)
    assert response.reasoning is None or (
        isinstance(response.reasoning, str) and response.reasoning
    )
    assert response.finish_reason is None or isinstance(response.finish_reason, str)
    for attribute in (response.model, response.id, response.system_fingerprint):
        assert attribute is None or isinstance(attribute, str)
    for call in response.tool_calls:
        assert isinstance(call.id, str)
        assert call.id
        assert isinstance(call.name, str)
        assert isinstance(call.arguments, dict)
        assert isinstance(call.arguments_text, str)
        assert call.error is None or isinstance(call.error, str)
        call.to_openai_dict()
    check_usage(response.usage)
    response.to_message()


def to_sse(payloads: list[Any]) -> bytes:
    # allow_nan: the stdlib writes NaN/Infinity, which some servers' encoders do too.
    return b"".join(b"data: " + json.dumps(p).encode() + b"\n\n" for p in payloads)


@SETTINGS
@given(payloads=st.lists(PAYLOAD | JSON, min_size=1, max_size=5), profile=PROFILES)
def test_stream_parser_on_arbitrary_chunks(payloads: list[Any], profile: ServerProfile) -> None:
    parser = StreamParser(profile)
    try:
        chunks = parser.feed(to_sse(payloads))
        response = parser.finish()
    except OAICompatError as exc:
        partial = getattr(exc, "partial", None)
        if partial is not None:
            check_response(partial)
        return
    for chunk in chunks:
        assert isinstance(chunk.content, str)
        assert isinstance(chunk.reasoning, str)
        check_usage(chunk.usage)
        for delta in chunk.tool_call_deltas:
            assert 0 <= delta.index < len(response.tool_calls)
            assert isinstance(delta.arguments, str)
    check_response(response)
    assert response.content == "".join(chunk.content for chunk in chunks)


@SETTINGS
@given(data=PAYLOAD | JSON, profile=PROFILES)
def test_parse_response_on_arbitrary_bodies(data: Any, profile: ServerProfile) -> None:
    try:
        response = parse_response(data, profile)
    except OAICompatError:
        return
    check_response(response)


@SETTINGS
@given(raw=USAGE | JSON)
def test_normalize_usage_never_raises_and_never_goes_negative(raw: Any) -> None:
    check_usage(normalize_usage(raw), raw)


@SETTINGS
@given(payload=PAYLOAD)
def test_usage_from_payload_never_raises(payload: dict[str, Any]) -> None:
    usage = usage_from_payload(payload)
    check_usage(usage, payload.get("usage"))


@settings(max_examples=100, deadline=None)
@given(
    prompt=st.integers(min_value=0, max_value=10**9),
    completion=st.integers(min_value=0, max_value=10**9),
    as_string=st.booleans(),
)
def test_missing_total_is_always_the_sum(prompt: int, completion: int, as_string: bool) -> None:
    raw = {"prompt_tokens": str(prompt) if as_string else prompt, "completion_tokens": completion}
    usage = normalize_usage(raw)
    assert usage is not None
    assert (usage.input_tokens, usage.output_tokens) == (prompt, completion)
    assert usage.total_tokens == prompt + completion


@SETTINGS
@given(arguments=JSON | st.text(max_size=40))
def test_parse_arguments_never_raises(arguments: Any) -> None:
    parsed, text, error = parse_arguments(arguments)
    assert isinstance(parsed, dict)
    assert isinstance(text, str)
    assert error is None or (isinstance(error, str) and parsed == {})


@SETTINGS
@given(value=st.dictionaries(st.text(max_size=5), JSON, max_size=4))
def test_object_arguments_are_kept_with_their_text(value: dict[str, Any]) -> None:
    parsed, text, error = parse_arguments(value)
    assert error is None
    assert parsed.keys() == value.keys()
    assert text


@SETTINGS
@given(message=DELTA | JSON)
def test_parse_tool_calls_never_raises(message: Any) -> None:
    if not isinstance(message, dict):
        return
    for call in parse_tool_calls(message):
        assert isinstance(call.id, str)
        assert call.id
        assert isinstance(call.arguments, dict)


@SETTINGS
@given(deltas=st.lists(DELTA, max_size=6))
def test_accumulator_on_arbitrary_deltas(deltas: list[dict[str, Any]]) -> None:
    accumulator = ToolCallAccumulator()
    seen = []
    for delta in deltas:
        seen.extend(accumulator.add_delta(delta))
    calls = accumulator.calls()
    assert all(0 <= delta.index < len(calls) for delta in seen)
    announced = [delta.id for delta in seen if delta.id is not None]
    assert announced == [call.id for call in calls]
    for index, call in enumerate(calls):
        fragments = [d.arguments for d in seen if d.index == index]
        assert "".join(fragments) == call.arguments_text
        names = [d.name for d in seen if d.index == index and d.name is not None]
        assert names == [] or names[-1] == call.name


@SETTINGS
@given(content=JSON)
def test_split_content_never_raises(content: Any) -> None:
    text, reasoning = split_content(content)
    assert isinstance(text, str)
    assert reasoning is None or isinstance(reasoning, str)


@SETTINGS
@given(value=JSON)
def test_finish_reason_is_a_string_or_none(value: Any) -> None:
    result = normalize_finish_reason(value)
    assert result is None or (isinstance(result, str) and result)


HEADER_TEXT = st.text(alphabet=st.characters(codec="latin-1"), max_size=40)
DATES = st.sampled_from(
    [
        "Wed, 21 Oct 2015 07:28:00 GMT",
        "Mon, 32 Jan 2020 00:00:00 GMT",
        "Mon, 01 Jan 0001 00:00:00 +9999",
        "Fri, 31 Dec 9999 23:59:59 -0000",
        "1e309",
        "-inf",
        "nan",
    ]
)


@SETTINGS
@given(
    headers=st.dictionaries(
        st.sampled_from(["Retry-After", "retry-after-ms", "RETRY-AFTER", "x-request-id", "other"]),
        HEADER_TEXT | DATES,
        max_size=3,
    )
)
def test_retry_after_is_none_or_not_negative(headers: dict[str, str]) -> None:
    seconds = parse_retry_after(headers, now=1_700_000_000.0)
    assert seconds is None or seconds >= 0


BODIES = (
    st.binary(max_size=200)
    | JSON.map(lambda value: json.dumps(value).encode())
    | st.sampled_from([b"<html><title>", b"<title></title>", b'{"error": {}}', b"[]", b"null"])
)


@SETTINGS
@given(
    status=st.integers(min_value=400, max_value=599),
    body=BODIES,
    headers=st.dictionaries(
        st.sampled_from(["Retry-After", "x-request-id"]), HEADER_TEXT, max_size=2
    ),
)
def test_error_from_status_always_builds_a_typed_error(
    status: int, body: bytes, headers: dict[str, str]
) -> None:
    error = error_from_status(status, headers, body)
    assert isinstance(error, APIStatusError)
    assert error.status_code == status
    assert str(status) in str(error)
    assert error.retry_after is None or error.retry_after >= 0


@SETTINGS
@given(body=BODIES | st.text(max_size=100) | JSON)
def test_extract_server_message_is_short_text(body: Any) -> None:
    message = extract_server_message(body)
    assert isinstance(message, str)
    assert len(message) <= 500

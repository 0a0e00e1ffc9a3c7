"""Pure conversions between LangChain's types and ours: no client, no server."""

from __future__ import annotations

import json
from typing import Any

import pytest
from langchain_core.exceptions import (
    ContextOverflowError,
    ModelAPIError,
    ModelAuthenticationError,
    ModelConnectionError,
    ModelError,
    ModelInvalidRequestError,
    ModelNotFoundError,
    ModelPermissionDeniedError,
    ModelRateLimitError,
    ModelTimeoutError,
)
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    ChatMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.tools import tool
from pydantic import BaseModel, Field

from oaicompat import errors as core
from oaicompat._langchain.errors import convert_error, translated_errors
from oaicompat._langchain.messages import to_openai_message, to_openai_messages
from oaicompat._langchain.outputs import (
    PROVIDER,
    ChunkConverter,
    ai_message,
    chat_result,
    closing_chunk,
    usage_metadata,
)
from oaicompat._langchain.structured import default_method, parser_for, response_format_for
from oaicompat._langchain.tools import format_tools, normalize_tool_choice
from oaicompat.profiles import ServerProfile
from oaicompat.structured import StructuredOutputError
from oaicompat.types import ChatChunk, ChatResponse, ToolCall, ToolCallDelta, Usage

# -- messages in ----------------------------------------------------------------


def test_plain_roles_become_openai_roles() -> None:
    sent = to_openai_messages(
        [
            SystemMessage("be brief"),
            HumanMessage("hi", name="ann"),
            AIMessage("hello"),
            ChatMessage(role="developer", content="rules"),
        ]
    )
    assert sent == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "hi", "name": "ann"},
        {"role": "assistant", "content": "hello"},
        {"role": "developer", "content": "rules"},
    ]


def test_text_only_lists_are_joined_into_a_string() -> None:
    message = SystemMessage([{"type": "text", "text": "a"}, "b"])
    assert to_openai_message(message)["content"] == "ab"


def test_images_as_image_url_and_v1_blocks() -> None:
    message = HumanMessage(
        [
            {"type": "text", "text": "what is this?"},
            {"type": "image_url", "image_url": {"url": "https://x/cat.png"}},
            {"type": "image_url", "image_url": "https://x/dog.png"},
            {"type": "image", "base64": "AAAA", "mime_type": "image/png"},
            {"type": "image", "url": "https://x/cow.png"},
        ]
    )
    parts = to_openai_message(message)["content"]
    assert parts == [
        {"type": "text", "text": "what is this?"},
        {"type": "image_url", "image_url": {"url": "https://x/cat.png"}},
        {"type": "image_url", "image_url": {"url": "https://x/dog.png"}},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
        {"type": "image_url", "image_url": {"url": "https://x/cow.png"}},
    ]


def test_ai_message_with_tool_calls_and_reasoning() -> None:
    message = AIMessage(
        [
            {"type": "reasoning", "reasoning": "the user wants weather"},
            {"type": "text", "text": ""},
        ],
        additional_kwargs={"reasoning_content": "the user wants weather"},
        tool_calls=[{"name": "weather", "args": {"city": "Zürich"}, "id": "c1"}],
    )
    sent = to_openai_message(message)
    assert sent["role"] == "assistant"
    assert sent["content"] is None  # OpenAI's spelling of "no text" next to tool calls
    assert sent["tool_calls"] == [
        {
            "id": "c1",
            "type": "function",
            "function": {"name": "weather", "arguments": '{"city": "Zürich"}'},
        }
    ]
    assert "reasoning" not in json.dumps(sent)


def test_ai_message_anthropic_style_list_content_keeps_only_text() -> None:
    message = AIMessage(
        [
            {"type": "text", "text": "some text"},
            {"type": "tool_use", "id": "abc", "name": "add", "input": {"a": 1}},
        ],
        tool_calls=[{"name": "add", "args": {"a": 1}, "id": "abc"}],
    )
    sent = to_openai_message(message)
    assert sent["content"] == "some text"
    assert [call["id"] for call in sent["tool_calls"]] == ["abc"]


def test_invalid_tool_calls_are_replayed_verbatim() -> None:
    message = AIMessage(
        "",
        invalid_tool_calls=[{"name": "add", "args": '{"a": 1', "id": "bad", "error": "x"}],
    )
    assert to_openai_message(message)["tool_calls"] == [
        {"id": "bad", "type": "function", "function": {"name": "add", "arguments": '{"a": 1'}}
    ]


def test_legacy_additional_kwargs_tool_calls_are_used() -> None:
    raw = [{"id": "c9", "type": "function", "function": {"name": "f", "arguments": "{}"}}]
    message = AIMessage("", additional_kwargs={"tool_calls": raw})
    assert to_openai_message(message)["tool_calls"][0]["id"] == "c9"


def test_tool_messages_string_list_and_error_status() -> None:
    as_string = ToolMessage('{"result": 3}', tool_call_id="c1", name="add")
    as_list = ToolMessage([{"type": "text", "text": "3"}], tool_call_id="c2")
    failed = ToolMessage("Error: b missing", tool_call_id="c3", status="error")
    assert to_openai_messages([as_string, as_list, failed]) == [
        {"role": "tool", "tool_call_id": "c1", "content": '{"result": 3}'},
        {"role": "tool", "tool_call_id": "c2", "content": "3"},
        {"role": "tool", "tool_call_id": "c3", "content": "Error: b missing"},
    ]


# -- answers out ----------------------------------------------------------------


def _response(**overrides: Any) -> ChatResponse:
    fields: dict[str, Any] = {
        "content": "hi",
        "finish_reason": "stop",
        "model": "served-model",
        "id": "chatcmpl-1",
        "usage": Usage(10, 5, 15, cached_input_tokens=4, reasoning_tokens=2),
    }
    fields.update(overrides)
    return ChatResponse(**fields)


def test_usage_details_only_when_known() -> None:
    assert usage_metadata(Usage(3, 4, 7)) == {
        "input_tokens": 3,
        "output_tokens": 4,
        "total_tokens": 7,
    }
    full = usage_metadata(Usage(10, 5, 15, cached_input_tokens=0, reasoning_tokens=2))
    assert full["input_token_details"] == {"cache_read": 0}
    assert full["output_token_details"] == {"reasoning": 2}


def test_response_becomes_ai_message() -> None:
    message = ai_message(_response(reasoning="thought", latency_s=0.5), "asked-model")
    assert message.content == "hi"
    assert message.id == "chatcmpl-1"
    assert message.additional_kwargs == {"reasoning_content": "thought"}
    assert message.usage_metadata is not None
    assert message.usage_metadata["input_token_details"] == {"cache_read": 4}
    assert message.response_metadata == {
        "model_name": "served-model",
        "model_provider": PROVIDER,
        "finish_reason": "stop",
        "id": "chatcmpl-1",
        "latency_s": 0.5,
    }


def test_model_name_falls_back_to_the_requested_model() -> None:
    message = ai_message(_response(model=None), "asked-model")
    assert message.response_metadata["model_name"] == "asked-model"


def test_reasoning_surfaces_in_content_blocks() -> None:
    message = ai_message(_response(reasoning="step by step"), "m")
    assert message.content_blocks[0] == {"type": "reasoning", "reasoning": "step by step"}
    assert message.content_blocks[1]["type"] == "text"


def test_malformed_tool_arguments_become_invalid_tool_calls() -> None:
    calls = [
        ToolCall("c1", "add", {"a": 1}, '{"a": 1}'),
        ToolCall("c2", "add", {}, '{"a": ', error="Expecting value"),
    ]
    message = ai_message(_response(content="", tool_calls=calls), "m")
    assert message.tool_calls == [
        {"name": "add", "args": {"a": 1}, "id": "c1", "type": "tool_call"}
    ]
    assert message.invalid_tool_calls == [
        {
            "name": "add",
            "args": '{"a": ',
            "id": "c2",
            "error": "Expecting value",
            "type": "invalid_tool_call",
        }
    ]


def test_chat_result_carries_openai_token_usage_for_old_callbacks() -> None:
    result = chat_result(_response(system_fingerprint="fp"), "m")
    assert result.llm_output == {
        "model_name": "served-model",
        "token_usage": {
            "prompt_tokens": 10,
            "completion_tokens": 5,
            "total_tokens": 15,
            "prompt_tokens_details": {"cached_tokens": 4},
            "completion_tokens_details": {"reasoning_tokens": 2},
        },
        "system_fingerprint": "fp",
    }
    assert result.generations[0].generation_info == {"finish_reason": "stop"}


# -- stream chunks out ----------------------------------------------------------


def _sum(chunks: list[AIMessageChunk]) -> AIMessageChunk:
    total = chunks[0]
    for chunk in chunks[1:]:
        total = total + chunk
    return total


def test_chunks_without_deltas_are_skipped() -> None:
    converter = ChunkConverter()
    assert converter.convert(ChatChunk(finish_reason="stop")) is None
    assert converter.convert(ChatChunk(usage=Usage(1, 1, 2))) is None


def test_stream_sums_to_one_usage_and_one_metadata_set() -> None:
    converter = ChunkConverter()
    pieces = [ChatChunk(content=text, raw={"id": "chatcmpl-1"}) for text in ("Hel", "lo")]
    chunks = [converter.convert(piece) for piece in pieces]
    last = closing_chunk(_response(content="Hello", system_fingerprint="fp"), "m")
    messages = [chunk.message for chunk in chunks if chunk is not None] + [last.message]
    assert all(isinstance(message, AIMessageChunk) for message in messages)
    total = _sum(messages)  # type: ignore[arg-type]
    assert total.content == "Hello"
    assert total.usage_metadata == usage_metadata(Usage(10, 5, 15, 4, 2))
    assert total.response_metadata["model_name"] == "served-model"
    assert total.response_metadata["finish_reason"] == "stop"
    assert total.response_metadata["system_fingerprint"] == "fp"
    assert total.response_metadata["model_provider"] == PROVIDER
    assert total.chunk_position == "last"
    assert total.id == "chatcmpl-1"


def test_streamed_reasoning_surfaces_in_content_blocks() -> None:
    converter = ChunkConverter()
    pieces = [ChatChunk(reasoning="think "), ChatChunk(reasoning="hard"), ChatChunk(content="42")]
    messages = [converter.convert(piece).message for piece in pieces]  # type: ignore[union-attr]
    total = _sum([*messages, closing_chunk(_response(content="42"), "m").message])  # type: ignore[list-item]
    assert total.additional_kwargs["reasoning_content"] == "think hard"
    assert total.content_blocks == [
        {"type": "reasoning", "reasoning": "think hard"},
        {"type": "text", "text": "42"},
    ]


@pytest.mark.parametrize("repeat_id_and_name", [True, False])
def test_parallel_tool_call_deltas_merge_by_index(repeat_id_and_name: bool) -> None:
    def delta(index: int, call_id: str, name: str, arguments: str, first: bool) -> ToolCallDelta:
        if first or repeat_id_and_name:
            return ToolCallDelta(index, call_id, name, arguments)
        return ToolCallDelta(index, None, None, arguments)

    script = [
        [delta(0, "a", "weather", '{"ci', True), delta(1, "b", "time", "", True)],
        [delta(1, "b", "time", '{"tz": "UTC"}', False)],
        [delta(0, "a", "weather", 'ty": "Oslo"}', False)],
    ]
    converter = ChunkConverter()
    messages = [converter.convert(ChatChunk(tool_call_deltas=d)).message for d in script]  # type: ignore[union-attr]
    for message in messages:
        assert isinstance(message, AIMessageChunk)
        assert all(isinstance(part["index"], int) for part in message.tool_call_chunks)
    final = closing_chunk(_response(content="", finish_reason="tool_calls"), "m")
    total = _sum([*messages, final.message])  # type: ignore[list-item]
    assert total.tool_calls == [
        {"name": "weather", "args": {"city": "Oslo"}, "id": "a", "type": "tool_call"},
        {"name": "time", "args": {"tz": "UTC"}, "id": "b", "type": "tool_call"},
    ]


def test_tool_calls_without_ids_get_stable_non_empty_ids() -> None:
    converter = ChunkConverter()
    first = converter.convert(ChatChunk(tool_call_deltas=[ToolCallDelta(0, None, "f", "{")]))
    second = converter.convert(ChatChunk(tool_call_deltas=[ToolCallDelta(0, None, None, "}")]))
    assert first is not None
    assert second is not None
    assert isinstance(first.message, AIMessageChunk)
    assert isinstance(second.message, AIMessageChunk)
    total = first.message + second.message
    assert total.tool_calls[0]["id"]
    assert total.tool_calls[0]["name"] == "f"


def test_malformed_streamed_arguments_land_in_invalid_tool_calls() -> None:
    converter = ChunkConverter()
    chunk = converter.convert(ChatChunk(tool_call_deltas=[ToolCallDelta(0, "c", "f", "[1, 2]")]))
    assert chunk is not None
    assert isinstance(chunk.message, AIMessageChunk)
    assert chunk.message.tool_calls == []
    assert chunk.message.invalid_tool_calls[0]["args"] == "[1, 2]"


# -- tools ------------------------------------------------------------------------


class Weather(BaseModel):
    """Weather in a city."""

    city: str = Field(description="city name")


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def multiply(a: int, b: int) -> int:
    """Multiply two integers."""
    return a * b


def test_format_tools_accepts_every_langchain_tool_shape() -> None:
    raw = {"type": "function", "function": {"name": "raw", "parameters": {"type": "object"}}}
    names = [tool["function"]["name"] for tool in format_tools([add, multiply, Weather, raw])]
    assert names == ["add", "multiply", "Weather", "raw"]
    strict = format_tools([Weather], strict=True)[0]["function"]
    assert strict["strict"] is True
    assert strict["parameters"]["additionalProperties"] is False


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (None, None),
        (False, None),
        ("auto", "auto"),
        ("none", "none"),
        ("any", "required"),
        ("required", "required"),
        (True, "required"),
        ("add", {"type": "function", "function": {"name": "add"}}),
        (
            {"type": "function", "function": {"name": "x"}},
            {"type": "function", "function": {"name": "x"}},
        ),
    ],
)
def test_tool_choice_spellings(given: Any, expected: Any) -> None:
    assert normalize_tool_choice(given, format_tools([add])) == expected


def test_unknown_tool_choice_names_the_bound_tools() -> None:
    with pytest.raises(ValueError, match="add"):
        normalize_tool_choice("subtract", format_tools([add]))


# -- structured output helpers ----------------------------------------------------


def test_default_method_follows_the_server_profile() -> None:
    assert default_method(ServerProfile()) == "json_schema"
    assert default_method(ServerProfile(structured_output_method="tool")) == "function_calling"
    assert default_method(ServerProfile(structured_output_method="json_object")) == "json_mode"


def test_response_format_for_pydantic_and_dicts() -> None:
    built = response_format_for(Weather, strict=True)
    assert built["type"] == "json_schema"
    assert built["json_schema"]["name"] == "Weather"
    assert built["json_schema"]["strict"] is True
    assert built["json_schema"]["schema"]["properties"]["city"]["type"] == "string"
    given = {"type": "json_schema", "json_schema": {"name": "x", "schema": {}}}
    assert response_format_for(given, strict=None) is given
    assert response_format_for({"name": "x", "schema": {}}, strict=None) == given


def test_structured_parsers_prefer_the_core_parsed_value() -> None:
    from langchain_core.outputs import ChatGeneration

    with_parsed = ChatGeneration(
        message=AIMessage("not json", additional_kwargs={"parsed": {"city": "Oslo"}})
    )
    from_text = ChatGeneration(message=AIMessage('{"city": "Rome"}'))
    pydantic_parser = parser_for(Weather, "json_schema")
    assert pydantic_parser.parse_result([with_parsed]) == Weather(city="Oslo")
    assert pydantic_parser.parse_result([from_text]) == Weather(city="Rome")
    dict_parser = parser_for({"title": "W", "type": "object"}, "json_mode")
    assert dict_parser.parse_result([with_parsed]) == {"city": "Oslo"}
    assert dict_parser.parse_result([from_text]) == {"city": "Rome"}


# -- errors -------------------------------------------------------------------------


def _status_error(status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> Any:
    return core.error_from_status(status, headers or {}, body)


@pytest.mark.parametrize(
    ("error", "ours", "theirs"),
    [
        (_status_error(400, b"bad field"), core.BadRequestError, ModelInvalidRequestError),
        (
            _status_error(400, b'{"error": {"message": "maximum context length is 2048"}}'),
            core.ContextLengthError,
            ContextOverflowError,
        ),
        (_status_error(401), core.AuthenticationError, ModelAuthenticationError),
        (_status_error(403), core.PermissionDeniedError, ModelPermissionDeniedError),
        (_status_error(404), core.NotFoundError, ModelNotFoundError),
        (
            _status_error(429, headers={"retry-after": "2"}),
            core.RateLimitError,
            ModelRateLimitError,
        ),
        (_status_error(503), core.InternalServerError, ModelAPIError),
        (core.APIConnectionError("refused"), core.APIConnectionError, ModelConnectionError),
        (core.APITimeoutError("slow"), core.APITimeoutError, ModelTimeoutError),
        (
            core.ResponseParseError("expected a JSON chat completion", status_code=200),
            core.ResponseParseError,
            ModelAPIError,
        ),
    ],
)
def test_errors_are_both_ours_and_langchains(error: Any, ours: type, theirs: type) -> None:
    with pytest.raises(theirs) as caught, translated_errors():
        raise error
    converted = caught.value
    assert isinstance(converted, ours)
    assert converted.__cause__ is error
    assert str(converted) == str(error)
    assert converted.__dict__.items() >= error.__dict__.items()
    assert converted.is_retryable is error.retryable  # type: ignore[attr-defined]


def test_context_overflow_is_also_an_invalid_request() -> None:
    error = _status_error(400, b"prompt is too long")
    converted = convert_error(error)
    assert isinstance(converted, ModelInvalidRequestError)
    assert isinstance(converted, ContextOverflowError)


def test_rate_limit_keeps_retry_after() -> None:
    converted = convert_error(_status_error(429, headers={"retry-after": "7"}))
    assert isinstance(converted, core.RateLimitError)
    assert converted.retry_after == 7.0


def test_stream_error_is_a_retryable_model_api_error_that_keeps_its_partial_answer() -> None:
    partial = ChatResponse(content="one two")
    error = core.StreamError("cut short", partial=partial, payload={"error": "gone"})
    with pytest.raises(core.StreamError) as caught, translated_errors():
        raise error
    converted = caught.value
    assert isinstance(converted, ModelAPIError)
    assert converted.__cause__ is error
    assert str(converted) == str(error)
    assert converted.partial is partial
    assert converted.payload == {"error": "gone"}
    # The core never resends a started stream; LangChain resending the whole call may help.
    assert error.retryable is False
    assert converted.is_retryable is True  # type: ignore[attr-defined]


def test_errors_without_a_langchain_type_pass_through_unchanged() -> None:
    # A structured answer that does not parse is the output parser's to judge.
    error = StructuredOutputError("not JSON", response=ChatResponse(content="nope"))
    with pytest.raises(StructuredOutputError) as caught, translated_errors():
        raise error
    assert caught.value is error
    assert not isinstance(caught.value, ModelError)


def test_reasoning_is_sent_back_only_when_asked() -> None:
    kept = AIMessage("4", additional_kwargs={"reasoning_content": "2+2"})
    from_blocks = AIMessage([{"type": "reasoning", "reasoning": "think"}, "ok"])
    assert "reasoning_content" not in to_openai_message(kept)
    assert to_openai_message(kept, send_reasoning=True)["reasoning_content"] == "2+2"
    sent = to_openai_message(from_blocks, send_reasoning=True)
    assert sent["reasoning_content"] == "think"
    assert sent["content"] == "ok"
    assert "reasoning_content" not in to_openai_message(AIMessage("x"), send_reasoning=True)

"""Pure conversions between LlamaIndex types and the core's normalized types."""

from __future__ import annotations

import base64
import json

import pytest
from llama_index.core.base.llms.types import (
    CacheControl,
    CachePoint,
    ChatMessage,
    ChatResponse,
    DocumentBlock,
    ImageBlock,
    MessageRole,
    TextBlock,
    ThinkingBlock,
    ToolCallBlock,
)
from llama_index.core.callbacks.token_counting import get_tokens_from_response
from openai.types.chat.chat_completion_chunk import ChoiceDeltaToolCall, ChoiceDeltaToolCallFunction
from pydantic import BaseModel

from oaicompat._llama_index.messages import to_message_dict, to_message_dicts
from oaicompat._llama_index.responses import (
    PARSED_KEY,
    StreamFolder,
    raw_with_usage,
    to_chat_response,
    usage_kwargs,
)
from oaicompat._llama_index.structured import PartialStructured, parsed_value, structured_kwargs
from oaicompat._llama_index.tools import (
    build_history,
    keep_first_tool_call,
    resolve_tool_choice,
    tool_selections,
)
from oaicompat.types import ChatChunk, ToolCall, ToolCallDelta, Usage
from oaicompat.types import ChatResponse as CoreResponse

PNG_1PX = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)


# ----- messages in -----


def test_text_message_becomes_plain_string_and_blocks_join_with_newline() -> None:
    message = ChatMessage(role="user", blocks=[TextBlock(text="a"), TextBlock(text="b")])
    assert to_message_dict(message) == {"role": "user", "content": "a\nb"}


def test_system_and_chatbot_roles() -> None:
    dicts = to_message_dicts(
        [ChatMessage(role="system", content="rules"), ChatMessage(role="chatbot", content="hi")]
    )
    assert [d["role"] for d in dicts] == ["system", "assistant"]


def test_image_url_block_becomes_image_part_in_order() -> None:
    message = ChatMessage(
        role="user",
        blocks=[
            TextBlock(text="what is this?"),
            ImageBlock(url="https://example.com/cat.png", detail="low"),
        ],
    )
    assert to_message_dict(message)["content"] == [
        {"type": "text", "text": "what is this?"},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png", "detail": "low"}},
    ]


def test_image_bytes_become_data_url() -> None:
    message = ChatMessage(role="user", blocks=[ImageBlock(image=PNG_1PX)])
    (part,) = to_message_dict(message)["content"]
    url = part["image_url"]["url"]
    assert url.startswith("data:image/png;base64,")
    assert base64.b64decode(url.split(",", 1)[1]) == PNG_1PX


def test_assistant_tool_calls_from_blocks_with_dict_and_text_arguments() -> None:
    message = ChatMessage(
        role="assistant",
        blocks=[
            TextBlock(text=""),
            ToolCallBlock(tool_call_id="c1", tool_name="add", tool_kwargs={"a": 1, "b": 2}),
            ToolCallBlock(tool_call_id="c2", tool_name="noop", tool_kwargs=""),
        ],
    )
    out = to_message_dict(message)
    assert out["content"] == ""
    first, second = out["tool_calls"]
    assert first["id"] == "c1"
    assert first["function"]["name"] == "add"
    assert json.loads(first["function"]["arguments"]) == {"a": 1, "b": 2}
    assert second["function"]["arguments"] == "{}"


def test_legacy_tool_calls_in_additional_kwargs_dicts_and_sdk_objects() -> None:
    sdk_call = ChoiceDeltaToolCall(
        index=0,
        id="c9",
        type="function",
        function=ChoiceDeltaToolCallFunction(name="lookup", arguments='{"q": "x"}'),
    )
    dict_call = {"id": 7, "function": {"name": "other", "arguments": {"k": 1}}}
    message = ChatMessage(
        role="assistant", content="", additional_kwargs={"tool_calls": [sdk_call, dict_call]}
    )
    calls = to_message_dict(message)["tool_calls"]
    assert [c["id"] for c in calls] == ["c9", "7"]
    assert calls[0]["function"] == {"name": "lookup", "arguments": '{"q": "x"}'}
    assert json.loads(calls[1]["function"]["arguments"]) == {"k": 1}


def test_tool_result_message_keeps_tool_call_id() -> None:
    message = ChatMessage(
        role=MessageRole.TOOL, content="42", additional_kwargs={"tool_call_id": "c1"}
    )
    assert to_message_dict(message) == {"role": "tool", "content": "42", "tool_call_id": "c1"}


def test_thinking_is_dropped_unless_asked_for() -> None:
    message = ChatMessage(
        role="assistant", blocks=[ThinkingBlock(content="hmm"), TextBlock(text="answer")]
    )
    assert to_message_dict(message) == {"role": "assistant", "content": "answer"}
    with_reasoning = to_message_dict(message, send_reasoning=True)
    assert with_reasoning["reasoning_content"] == "hmm"
    assert with_reasoning["content"] == "answer"


def test_cache_point_is_skipped_and_unsupported_block_raises() -> None:
    cached = ChatMessage(
        role="user",
        blocks=[TextBlock(text="x"), CachePoint(cache_control=CacheControl(type="ephemeral"))],
    )
    assert to_message_dict(cached)["content"] == "x"
    document = ChatMessage(role="user", blocks=[DocumentBlock(data=b"%PDF-1.4", title="d")])
    with pytest.raises(ValueError, match="DocumentBlock"):
        to_message_dict(document)


# ----- answers out -----


def _usage(**overrides: int | None) -> Usage:
    values: dict[str, int | None] = {
        "input_tokens": 11,
        "output_tokens": 7,
        "total_tokens": 18,
        "cached_input_tokens": 3,
        "reasoning_tokens": 2,
    }
    values.update(overrides)
    return Usage(**values)  # type: ignore[arg-type]


def test_usage_kwargs_names_and_optional_counts() -> None:
    assert usage_kwargs(_usage()) == {
        "prompt_tokens": 11,
        "completion_tokens": 7,
        "total_tokens": 18,
        "cached_tokens": 3,
        "reasoning_tokens": 2,
    }
    assert "cached_tokens" not in usage_kwargs(_usage(cached_input_tokens=None))
    assert usage_kwargs(None) == {}


def test_raw_with_usage_replaces_usage_without_touching_the_original() -> None:
    raw = {"id": "x", "usage": {"prompt_eval_count": 11}}
    out = raw_with_usage(raw, _usage())
    assert out["usage"]["prompt_tokens"] == 11
    assert out["id"] == "x"
    assert raw["usage"] == {"prompt_eval_count": 11}


def test_to_chat_response_carries_text_reasoning_tool_calls_and_usage() -> None:
    core = CoreResponse(
        content="done",
        reasoning="thought",
        tool_calls=[
            ToolCall(id="c1", name="add", arguments={"a": 1}, arguments_text='{"a": 1}'),
            ToolCall(id="c2", name="bad", arguments={}, arguments_text="{oops", error="bad json"),
        ],
        usage=_usage(),
        raw={"id": "r1", "usage": {"prompt_tokens": "11"}},
    )
    response = to_chat_response(core)
    assert response.message.role == MessageRole.ASSISTANT
    assert response.message.content == "done"
    thinking = [b for b in response.message.blocks if isinstance(b, ThinkingBlock)]
    assert thinking[0].content == "thought"
    assert thinking[0].num_tokens == 2
    calls = [b for b in response.message.blocks if isinstance(b, ToolCallBlock)]
    assert [(c.tool_call_id, c.tool_name, c.tool_kwargs) for c in calls] == [
        ("c1", "add", {"a": 1}),
        ("c2", "bad", "{oops"),
    ]
    # Mirrored OpenAI-style for LlamaIndex code that reads the legacy key.
    mirrored = response.message.additional_kwargs["tool_calls"]
    assert [(c["id"], c["function"]["arguments"]) for c in mirrored] == [
        ("c1", '{"a":1}'),
        ("c2", "{oops"),
    ]
    assert response.additional_kwargs["prompt_tokens"] == 11
    assert get_tokens_from_response(response) == (11, 7)


def test_empty_answer_still_has_string_content() -> None:
    response = to_chat_response(CoreResponse(content=""))
    assert response.message.content == ""
    assert get_tokens_from_response(response) == (0, 0)


def test_parsed_value_travels_in_additional_kwargs() -> None:
    class Pet(BaseModel):
        name: str

    response = to_chat_response(CoreResponse(content='{"name": "Rex"}', parsed=Pet(name="Rex")))
    assert response.additional_kwargs[PARSED_KEY] == Pet(name="Rex")
    assert parsed_value(response, Pet) == Pet(name="Rex")


# ----- streaming -----


def _chunk(content: str = "", reasoning: str = "", **kwargs: object) -> ChatChunk:
    return ChatChunk(content=content, reasoning=reasoning, **kwargs)  # type: ignore[arg-type]


def test_stream_folder_is_cumulative_with_deltas_and_skips_empty_chunks() -> None:
    folder = StreamFolder()
    assert folder.add(_chunk(raw={"choices": [{"delta": {"role": "assistant"}}]})) is None
    first = folder.add(_chunk("Hel", raw={"n": 1}))
    second = folder.add(_chunk("lo"))
    assert first is not None
    assert second is not None
    assert (first.delta, first.message.content) == ("Hel", "Hel")
    assert (second.delta, second.message.content) == ("lo", "Hello")
    assert first.raw == {"n": 1}
    assert folder.add(_chunk(finish_reason="stop")) is None
    assert folder.add(_chunk(usage=_usage())) is None


def test_stream_folder_reasoning_goes_to_thinking_block_and_thinking_delta() -> None:
    folder = StreamFolder()
    first = folder.add(_chunk(reasoning="let me "))
    second = folder.add(_chunk(reasoning="think"))
    third = folder.add(_chunk("ok"))
    assert first is not None
    assert second is not None
    assert third is not None
    assert first.additional_kwargs["thinking_delta"] == "let me "
    assert "thinking_delta" not in third.additional_kwargs
    thinking = [b for b in second.message.blocks if isinstance(b, ThinkingBlock)]
    assert thinking[0].content == "let me think"
    assert third.message.content == "ok"


def test_stream_folder_tool_calls_by_index_without_concatenating_ids_or_names() -> None:
    folder = StreamFolder()
    folder.add(_chunk(tool_call_deltas=[ToolCallDelta(0, "c1", "add", '{"a"')]))
    folder.add(_chunk(tool_call_deltas=[ToolCallDelta(0, "c1", "add", ": 1")]))
    mid = folder.add(
        _chunk(
            tool_call_deltas=[
                ToolCallDelta(0, None, None, ', "b": 2}'),
                ToolCallDelta(1, "c2", "neg", ""),
            ]
        )
    )
    assert mid is not None
    calls = [b for b in mid.message.blocks if isinstance(b, ToolCallBlock)]
    assert [(c.tool_call_id, c.tool_name, c.tool_kwargs) for c in calls] == [
        ("c1", "add", '{"a": 1, "b": 2}'),
        ("c2", "neg", ""),
    ]


def test_stream_folder_finish_is_the_whole_answer_with_empty_delta() -> None:
    folder = StreamFolder()
    folder.add(_chunk("Hi"))
    final = folder.finish(
        CoreResponse(
            content="Hi",
            tool_calls=[ToolCall(id="c1", name="f", arguments={"x": 1}, arguments_text='{"x":1}')],
            usage=_usage(),
            raw={"id": "s"},
        )
    )
    assert final.delta == ""
    assert final.message.content == "Hi"
    assert final.raw["usage"]["completion_tokens"] == 7
    assert final.additional_kwargs["total_tokens"] == 18
    assert get_tokens_from_response(final) == (11, 7)


# ----- tools -----


def test_resolve_tool_choice() -> None:
    assert resolve_tool_choice(None, tool_required=False) is None
    assert resolve_tool_choice(None, tool_required=True) == "required"
    assert resolve_tool_choice("auto", tool_required=True) == "auto"
    assert resolve_tool_choice("add", tool_required=False) == {
        "type": "function",
        "function": {"name": "add"},
    }
    explicit = {"type": "function", "function": {"name": "x"}}
    assert resolve_tool_choice(explicit, tool_required=False) is explicit


def test_build_history_does_not_mutate_the_callers_list() -> None:
    history = [ChatMessage(role="user", content="earlier")]
    messages = build_history("now", history)
    assert len(history) == 1
    assert [m.content for m in messages] == ["earlier", "now"]
    assert build_history(None, None) == []


def _response_with(*blocks: object, **message_kwargs: object) -> ChatResponse:
    return ChatResponse(
        message=ChatMessage(role="assistant", blocks=list(blocks), **message_kwargs)  # type: ignore[arg-type]
    )


def test_tool_selections_tolerate_partial_json() -> None:
    response = _response_with(
        TextBlock(text=""),
        ToolCallBlock(tool_call_id="c1", tool_name="add", tool_kwargs='{"a": 1, "b": 2'),
        ToolCallBlock(tool_call_id=None, tool_name="f", tool_kwargs='{"s": "unterminated'),
        ToolCallBlock(tool_call_id="c3", tool_name="g", tool_kwargs="not json at all"),
    )
    selections = tool_selections(response, error_on_no_tool_call=False)
    assert [(s.tool_id, s.tool_name) for s in selections] == [("c1", "add"), ("", "f"), ("c3", "g")]
    assert selections[0].tool_kwargs == {"a": 1, "b": 2}
    # LlamaIndex's lenient parser keeps the key of a cut-off string value.
    assert list(selections[1].tool_kwargs) == ["s"]
    assert selections[2].tool_kwargs == {}


def test_tool_selections_none_found() -> None:
    response = _response_with(TextBlock(text="plain answer"))
    assert tool_selections(response, error_on_no_tool_call=False) == []
    with pytest.raises(ValueError, match="tool call"):
        tool_selections(response, error_on_no_tool_call=True)


def test_tool_selections_from_legacy_additional_kwargs() -> None:
    response = _response_with(
        TextBlock(text=""),
        additional_kwargs={
            "tool_calls": [{"id": "c1", "function": {"name": "add", "arguments": '{"a": 5}'}}]
        },
    )
    (selection,) = tool_selections(response, error_on_no_tool_call=True)
    assert (selection.tool_id, selection.tool_name, selection.tool_kwargs) == (
        "c1",
        "add",
        {"a": 5},
    )


def test_keep_first_tool_call() -> None:
    response = _response_with(
        TextBlock(text="x"),
        ToolCallBlock(tool_call_id="c1", tool_name="a"),
        ToolCallBlock(tool_call_id="c2", tool_name="b"),
    )
    keep_first_tool_call(response)
    assert [type(b).__name__ for b in response.message.blocks] == ["TextBlock", "ToolCallBlock"]
    assert response.message.blocks[1].tool_call_id == "c1"  # type: ignore[union-attr]


# ----- structured output -----


class Person(BaseModel):
    name: str
    age: int


def test_structured_kwargs_forward_options_and_drop_tool_choice() -> None:
    kwargs = structured_kwargs(Person, "auto", {"tool_choice": "required", "temperature": 0})
    assert kwargs == {"temperature": 0, "response_format": Person, "structured_method": "auto"}
    chosen = structured_kwargs(Person, "auto", {"structured_method": "tool"})
    assert chosen["structured_method"] == "tool"


def test_parsed_value_validates_dicts_and_reports_missing_values() -> None:
    dict_response = to_chat_response(CoreResponse(parsed={"name": "Ann", "age": 3}))
    assert parsed_value(dict_response, Person) == Person(name="Ann", age=3)
    with pytest.raises(ValueError, match="Person"):
        parsed_value(to_chat_response(CoreResponse(content="nope")), Person)


def test_partial_structured_grows_then_ends_with_the_core_value() -> None:
    state = PartialStructured(Person)
    folder = StreamFolder()
    partials = []
    for piece in ['{"name": "Bo', 'b", "ag', 'e": 4', "0}"]:
        response = folder.add(_chunk(piece))
        assert response is not None
        partials.append(state.update(response))
    assert partials[0].name == "Bo"  # type: ignore[union-attr]
    assert partials[-1].age == 40  # type: ignore[union-attr]
    final = state.update(
        folder.finish(CoreResponse(content="{}", parsed=Person(name="Bob", age=40)))
    )
    assert final == Person(name="Bob", age=40)


def test_partial_structured_reads_tool_call_arguments_when_there_is_no_text() -> None:
    state = PartialStructured(Person)
    folder = StreamFolder()
    response = folder.add(
        _chunk(tool_call_deltas=[ToolCallDelta(0, "c", "Person", '{"name": "Al"')])
    )
    assert response is not None
    assert state.update(response).name == "Al"  # type: ignore[union-attr]

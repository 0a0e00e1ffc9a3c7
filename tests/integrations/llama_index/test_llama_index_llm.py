"""OpenAICompatible on recorded server answers: the call grid, events, usage, tools, thinking."""

from __future__ import annotations

import copy
import json
import logging
import pickle
from collections.abc import Callable

import httpx
import pytest
from li_helpers import (
    MODEL,
    CallbackLog,
    EventLog,
    Recorder,
    chunk,
    completion,
    sse,
    usage_chunk,
    words,
)
from llama_index.core.base.llms.types import (
    ChatMessage,
    ChatResponse,
    CompletionResponse,
    ImageBlock,
    TextBlock,
    ThinkingBlock,
    ToolCallBlock,
)
from llama_index.core.callbacks import CallbackManager, TokenCountingHandler
from llama_index.core.constants import DEFAULT_CONTEXT_WINDOW
from llama_index.core.prompts import PromptTemplate
from llama_index.core.tools import FunctionTool
from pydantic import BaseModel

from oaicompat.errors import BadRequestError, InternalServerError
from oaicompat.llama_index import OpenAICompatible
from oaicompat.profiles import ServerProfile
from oaicompat.structured import StructuredOutputError

MakeLLM = Callable[..., OpenAICompatible]

# What llama.cpp's server sends for "Hello": a role chunk, text pieces, the
# finish chunk, then the usage chunk with no choices.
HELLO_STREAM = sse(
    chunk({"role": "assistant", "content": None}),
    chunk({"content": "Hel"}),
    chunk({"content": "lo"}),
    chunk({}, finish_reason="stop"),
    usage_chunk(12, 5, prompt_tokens_details={"cached_tokens": 4}),
)
HELLO_JSON = completion(
    {"role": "assistant", "content": "Hello"},
    usage={"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17},
)


def _add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def _neg(x: int) -> int:
    """Negate an integer."""
    return -x


ADD = FunctionTool.from_defaults(fn=_add, name="add")
NEG = FunctionTool.from_defaults(fn=_neg, name="neg")

Final = ChatResponse | CompletionResponse


async def _run(llm: OpenAICompatible, kind: str, mode: str, stream: bool) -> list[Final]:
    """Every response one call of the grid produced (one, or each streamed step)."""
    messages = [ChatMessage(role="user", content="Say hello")]
    prompt = "Say hello"
    if kind == "chat":
        if mode == "sync":
            return list(llm.stream_chat(messages)) if stream else [llm.chat(messages)]
        if stream:
            return [r async for r in await llm.astream_chat(messages)]
        return [await llm.achat(messages)]
    if mode == "sync":
        return list(llm.stream_complete(prompt)) if stream else [llm.complete(prompt)]
    if stream:
        return [r async for r in await llm.astream_complete(prompt)]
    return [await llm.acomplete(prompt)]


def _text(response: Final) -> str:
    if isinstance(response, ChatResponse):
        return response.message.content or ""
    return response.text


GRID = [
    (kind, mode, stream)
    for kind in ("chat", "complete")
    for mode in ("sync", "async")
    for stream in (False, True)
]


@pytest.mark.parametrize(("kind", "mode", "stream"), GRID)
async def test_call_grid(
    make_llm: MakeLLM,
    recorder: Recorder,
    event_log: EventLog,
    kind: str,
    mode: str,
    stream: bool,
) -> None:
    callbacks = CallbackLog()
    counter = TokenCountingHandler(tokenizer=words)
    llm = make_llm(callback_manager=CallbackManager([callbacks, counter]))
    recorder.add(HELLO_STREAM if stream else HELLO_JSON)

    responses = await _run(llm, kind, mode, stream)

    final = responses[-1]
    assert _text(final) == "Hello"
    if stream:
        assert "".join(r.delta or "" for r in responses) == "Hello"
        assert [_text(r) for r in responses[:2]] == ["Hel", "Hello"]
    assert final.additional_kwargs["prompt_tokens"] == 12
    assert final.additional_kwargs["completion_tokens"] == 5
    assert final.raw["usage"]["total_tokens"] == 17
    if stream:
        assert final.additional_kwargs["cached_tokens"] == 4

    (body,) = recorder.bodies
    assert body["model"] == MODEL
    assert body["messages"] == [{"role": "user", "content": "Say hello"}]
    assert bool(body.get("stream")) is stream
    if stream:
        assert body["stream_options"] == {"include_usage": True}
    assert "temperature" not in body
    assert "max_tokens" not in body

    # One LLM callback event, closed with the final response; usage counted as reported.
    assert [phase for phase, _ in callbacks.events] == ["start", "end"]
    start_payload, end_payload = callbacks.events[0][1], callbacks.events[1][1]
    assert start_payload["serialized"]["model_name"] == MODEL
    assert "api_key" not in json.dumps(start_payload["serialized"])
    ended_with = end_payload.get("response") or end_payload.get("completion")
    assert _text(ended_with) == "Hello"
    assert counter.prompt_llm_token_count == 12
    assert counter.completion_llm_token_count == 5

    prefix = "LLMChat" if kind == "chat" else "LLMCompletion"
    names = [n for n in event_log.names() if n.startswith(prefix)]
    expected = [f"{prefix}StartEvent"]
    if stream:
        expected += [f"{prefix}InProgressEvent"] * len(responses)
    expected.append(f"{prefix}EndEvent")
    assert names == expected


def test_stream_methods_return_real_generators(make_llm: MakeLLM, recorder: Recorder) -> None:
    llm = make_llm()
    recorder.add(HELLO_STREAM, HELLO_STREAM)
    chat_stream = llm.stream_chat([ChatMessage(role="user", content="hi")])
    complete_stream = llm.stream_complete("hi")
    assert hasattr(chat_stream, "send")
    assert hasattr(complete_stream, "send")
    assert recorder.requests == []  # nothing is sent before the first step
    assert [r.delta for r in chat_stream][-1] == ""
    assert "".join(r.delta or "" for r in complete_stream) == "Hello"


def test_options_and_additional_kwargs_reach_the_body(
    make_llm: MakeLLM, recorder: Recorder
) -> None:
    llm = make_llm(temperature=0.2, max_tokens=64, additional_kwargs={"top_k": 20, "seed": 7})
    recorder.add(HELLO_JSON, HELLO_JSON)
    llm.chat([ChatMessage(role="user", content="x")], seed=9, stop=["\n"])
    body = recorder.bodies[0]
    assert body["temperature"] == 0.2
    assert body["max_tokens"] == 64
    assert body["top_k"] == 20
    assert body["seed"] == 9  # a call's own option wins over the defaults
    assert body["stop"] == ["\n"]


def test_no_key_in_dumps_repr_or_payload() -> None:
    llm = OpenAICompatible(
        model="m",
        base_url="https://user:pw@api.example.com/v1?key=abc",
        api_key="sk-secret-123",
        default_headers={"X-Api-Key": "hdr-secret"},
        context_window=4096,
    )
    for text in (
        json.dumps(llm.to_dict()),
        llm.to_json(),
        repr(llm),
        str(llm),
        json.dumps(llm.to_payload()),
    ):
        assert "sk-secret-123" not in text
        assert "hdr-secret" not in text
    payload = llm.to_payload()
    assert payload["base_url"] == "https://api.example.com/v1"
    assert payload["class_name"] == "OpenAICompatible"
    data = llm.to_dict()
    assert data["class_name"] == "OpenAICompatible"
    assert data["model"] == "m"
    restored = OpenAICompatible.from_dict(data)
    assert restored.model == "m"
    assert restored.api_key is None


def test_profile_round_trips_through_to_dict() -> None:
    named = OpenAICompatible(model="m", profile="ollama")
    assert named.to_dict()["profile"] == "ollama"
    custom = ServerProfile(
        name="mine", supports_tools=False, unsupported_params=frozenset({"seed"})
    )
    llm = OpenAICompatible(model="m", base_url="http://h", profile=custom)
    restored = OpenAICompatible.from_json(llm.to_json())
    assert restored.profile == custom
    assert restored.metadata.is_function_calling_model is False


def test_metadata_defaults_are_chat_first_and_tool_calling(make_llm: MakeLLM) -> None:
    metadata = make_llm(model="any/odd:name@v2").metadata
    assert metadata.is_chat_model is True
    assert metadata.is_function_calling_model is True
    assert metadata.model_name == "any/odd:name@v2"
    assert metadata.context_window == 8192
    assert metadata.num_output == -1
    assert make_llm(max_tokens=100).metadata.num_output == 100
    assert make_llm(is_function_calling_model=False).metadata.is_function_calling_model is False


def test_context_window_falls_back_with_a_warning_when_the_server_does_not_say(
    make_llm: MakeLLM, recorder: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    llm = make_llm(context_window=None)
    with caplog.at_level(logging.WARNING, logger="oaicompat.llama_index"):
        assert llm.metadata.context_window == DEFAULT_CONTEXT_WINDOW
        assert llm.metadata.context_window == DEFAULT_CONTEXT_WINDOW
    warnings = [r for r in caplog.records if "context window" in r.getMessage()]
    assert len(warnings) == 1  # asked once, remembered


def test_base_url_from_profile_or_required() -> None:
    assert OpenAICompatible(model="m", profile="ollama").to_payload()["base_url"] == (
        "http://localhost:11434/v1"
    )
    with pytest.raises(ValueError, match="base_url"):
        OpenAICompatible(model="m")


# ----- tools -----


def test_chat_with_tools_request_shape(make_llm: MakeLLM, recorder: Recorder) -> None:
    llm = make_llm()
    history = [ChatMessage(role="system", content="be brief")]
    recorder.add(HELLO_JSON, HELLO_JSON, HELLO_JSON)

    llm.chat_with_tools([ADD, NEG], user_msg="add 2 and 3", chat_history=history)
    llm.chat_with_tools([ADD], user_msg="x", tool_required=True, allow_parallel_tool_calls=True)
    llm.chat_with_tools([ADD, NEG], user_msg="x", tool_choice="neg")

    first, second, third = recorder.bodies
    assert len(history) == 1  # the caller's history is not mutated
    assert [m["role"] for m in first["messages"]] == ["system", "user"]
    assert [t["function"]["name"] for t in first["tools"]] == ["add", "neg"]
    assert first["tools"][0]["function"]["parameters"]["properties"].keys() == {"a", "b"}
    assert "tool_choice" not in first
    assert first["parallel_tool_calls"] is False
    assert second["tool_choice"] == "required"
    assert second["parallel_tool_calls"] is True
    assert third["tool_choice"] == {"type": "function", "function": {"name": "neg"}}


def test_parallel_tool_calls_not_sent_where_the_profile_says_unsupported(
    make_llm: MakeLLM, recorder: Recorder
) -> None:
    llm = make_llm(profile=ServerProfile(name="x", supports_parallel_tool_calls=False))
    recorder.add(HELLO_JSON)
    llm.chat_with_tools([ADD], user_msg="x", allow_parallel_tool_calls=True)
    assert "parallel_tool_calls" not in recorder.bodies[0]


TWO_CALLS_JSON = completion(
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "add", "arguments": '{"a": 2, "b": 3}'},
            },
            {
                "id": "call_2",
                "type": "function",
                "function": {"name": "neg", "arguments": '{"x": 4}'},
            },
        ],
    },
    finish_reason="tool_calls",
)


def test_parallel_tool_calls_read_back_and_trimmed_when_not_allowed(
    make_llm: MakeLLM, recorder: Recorder
) -> None:
    llm = make_llm()
    recorder.add(TWO_CALLS_JSON, TWO_CALLS_JSON)
    both = llm.chat_with_tools([ADD, NEG], user_msg="x", allow_parallel_tool_calls=True)
    selections = llm.get_tool_calls_from_response(both)
    assert [(s.tool_id, s.tool_name, s.tool_kwargs) for s in selections] == [
        ("call_1", "add", {"a": 2, "b": 3}),
        ("call_2", "neg", {"x": 4}),
    ]
    assert both.message.content == ""
    one = llm.chat_with_tools([ADD, NEG], user_msg="x")
    assert [s.tool_name for s in llm.get_tool_calls_from_response(one)] == ["add"]


def test_predict_and_call_runs_the_tool(make_llm: MakeLLM, recorder: Recorder) -> None:
    recorder.add(
        completion(
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [
                    {
                        "id": "c",
                        "type": "function",
                        "function": {"name": "add", "arguments": '{"a": 20, "b": 22}'},
                    }
                ],
            }
        )
    )
    answer = make_llm().predict_and_call([ADD], user_msg="20 + 22?")
    assert answer.response == "42"


# Two calls streamed the way vLLM does: id and name on the first delta of each,
# arguments cut mid-token, and the second call's first delta in the same chunk
# as the first call's last fragment.
TOOL_STREAM = sse(
    chunk(
        {
            "role": "assistant",
            "tool_calls": [
                {
                    "index": 0,
                    "id": "call_a",
                    "type": "function",
                    "function": {"name": "add", "arguments": ""},
                }
            ],
        }
    ),
    chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"a": 2'}}]}),
    chunk(
        {
            "tool_calls": [
                {"index": 0, "function": {"arguments": ', "b": 3}'}},
                {
                    "index": 1,
                    "id": "call_b",
                    "type": "function",
                    "function": {"name": "neg", "arguments": '{"x"'},
                },
            ]
        }
    ),
    chunk({"tool_calls": [{"index": 1, "function": {"arguments": ": 4}"}}]}),
    chunk({}, finish_reason="tool_calls"),
    usage_chunk(30, 12),
)


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_streamed_tool_calls_partial_then_complete(
    make_llm: MakeLLM, recorder: Recorder, mode: str
) -> None:
    llm = make_llm()
    recorder.add(TOOL_STREAM)
    if mode == "sync":
        responses = list(
            llm.stream_chat_with_tools([ADD, NEG], user_msg="x", allow_parallel_tool_calls=True)
        )
    else:
        stream = await llm.astream_chat_with_tools(
            [ADD, NEG], user_msg="x", allow_parallel_tool_calls=True
        )
        responses = [r async for r in stream]

    # Agents read every chunk; a cut-off argument must never raise.
    seen = [llm.get_tool_calls_from_response(r, error_on_no_tool_call=False) for r in responses]
    assert seen[1][0].tool_kwargs == {"a": 2}
    assert [s.tool_name for s in seen[2]] == ["add", "neg"]

    final = responses[-1]
    blocks = [b for b in final.message.blocks if isinstance(b, ToolCallBlock)]
    assert [(b.tool_call_id, b.tool_name, b.tool_kwargs) for b in blocks] == [
        ("call_a", "add", {"a": 2, "b": 3}),
        ("call_b", "neg", {"x": 4}),
    ]
    assert final.additional_kwargs["prompt_tokens"] == 30


def test_tool_results_and_assistant_tool_calls_are_sent_back(
    make_llm: MakeLLM, recorder: Recorder
) -> None:
    recorder.add(TWO_CALLS_JSON, HELLO_JSON)
    llm = make_llm()
    first = llm.chat_with_tools([ADD, NEG], user_msg="x", allow_parallel_tool_calls=True)
    history = [
        ChatMessage(role="user", content="x"),
        first.message,
        ChatMessage(role="tool", content="5", additional_kwargs={"tool_call_id": "call_1"}),
        ChatMessage(role="tool", content="-4", additional_kwargs={"tool_call_id": "call_2"}),
    ]
    llm.chat(history)
    sent = recorder.bodies[1]["messages"]
    assert sent[1]["role"] == "assistant"
    assert [c["id"] for c in sent[1]["tool_calls"]] == ["call_1", "call_2"]
    assert json.loads(sent[1]["tool_calls"][0]["function"]["arguments"]) == {"a": 2, "b": 3}
    assert sent[2] == {"role": "tool", "content": "5", "tool_call_id": "call_1"}


# ----- reasoning, images, errors -----

THINKING_STREAM = sse(
    chunk({"role": "assistant", "reasoning_content": "The user"}),
    chunk({"reasoning_content": " greets."}),
    chunk({"content": "Hi!"}),
    chunk({}, finish_reason="stop"),
    usage_chunk(8, 20, completion_tokens_details={"reasoning_tokens": 15}),
)


def test_streamed_reasoning_becomes_thinking_block_and_thinking_delta(
    make_llm: MakeLLM, recorder: Recorder
) -> None:
    recorder.add(THINKING_STREAM)
    responses = list(make_llm().stream_chat([ChatMessage(role="user", content="hello")]))
    assert [r.additional_kwargs.get("thinking_delta") for r in responses[:3]] == [
        "The user",
        " greets.",
        None,
    ]
    final = responses[-1]
    (thinking,) = [b for b in final.message.blocks if isinstance(b, ThinkingBlock)]
    assert thinking.content == "The user greets."
    assert thinking.num_tokens == 15
    assert final.message.content == "Hi!"
    assert final.additional_kwargs["reasoning_tokens"] == 15


def test_reasoning_in_a_whole_answer_and_sent_back_on_request(
    make_llm: MakeLLM, recorder: Recorder
) -> None:
    recorder.add(
        completion({"role": "assistant", "content": "4", "reasoning_content": "2+2"}),
        HELLO_JSON,
        HELLO_JSON,
    )
    llm = make_llm(send_reasoning=True)
    answer = llm.chat([ChatMessage(role="user", content="2+2?")])
    assert [type(b) for b in answer.message.blocks] == [ThinkingBlock, TextBlock]
    llm.chat([ChatMessage(role="user", content="2+2?"), answer.message])
    assert recorder.bodies[1]["messages"][1] == {
        "role": "assistant",
        "content": "4",
        "reasoning_content": "2+2",
    }
    make_llm().chat([ChatMessage(role="user", content="2+2?"), answer.message])
    assert "reasoning_content" not in recorder.bodies[2]["messages"][1]


def test_image_blocks_are_sent_as_image_parts(make_llm: MakeLLM, recorder: Recorder) -> None:
    recorder.add(HELLO_JSON)
    message = ChatMessage(
        role="user",
        blocks=[TextBlock(text="Describe"), ImageBlock(url="https://example.com/a.png")],
    )
    make_llm().chat([message])
    assert recorder.bodies[0]["messages"][0]["content"][1] == {
        "type": "image_url",
        "image_url": {"url": "https://example.com/a.png"},
    }


def test_typed_errors_reach_the_caller_and_the_callback(
    make_llm: MakeLLM, recorder: Recorder
) -> None:
    callbacks = CallbackLog()
    llm = make_llm(callback_manager=CallbackManager([callbacks]))
    recorder.add(httpx.Response(400, json={"error": {"message": "bad 'messages' field"}}))
    with pytest.raises(BadRequestError, match="bad 'messages' field"):
        llm.chat([ChatMessage(role="user", content="x")])
    assert isinstance(callbacks.events[-1][1]["exception"], BadRequestError)


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_retries_happen_once_in_the_core(
    make_llm: MakeLLM, recorder: Recorder, mode: str
) -> None:
    unavailable = httpx.Response(503, json={"error": "busy"}, headers={"Retry-After": "0"})
    recorder.add(unavailable, unavailable, unavailable, unavailable)
    llm = make_llm(max_retries=1)
    messages = [ChatMessage(role="user", content="x")]
    if mode == "sync":
        with pytest.raises(InternalServerError):
            llm.chat(messages)
    else:
        with pytest.raises(InternalServerError):
            await llm.achat(messages)
    assert len(recorder.requests) == 2


async def test_stream_error_reaches_the_consumer_and_the_callback(
    make_llm: MakeLLM, recorder: Recorder
) -> None:
    callbacks = CallbackLog()
    llm = make_llm(callback_manager=CallbackManager([callbacks]), max_retries=0)
    recorder.add(httpx.Response(500, json={"error": {"message": "model crashed"}}))
    stream = await llm.astream_chat([ChatMessage(role="user", content="x")])
    with pytest.raises(InternalServerError, match="model crashed"):
        [r async for r in stream]
    assert "exception" in callbacks.events[-1][1]


def test_unknown_model_names_are_fine(make_llm: MakeLLM, recorder: Recorder) -> None:
    recorder.add(HELLO_JSON)
    llm = make_llm(model="my-finetune-Q4_K_M.gguf")
    assert llm.complete("x").text == "Hello"
    assert recorder.bodies[0]["model"] == "my-finetune-Q4_K_M.gguf"


# ----- copies, mutation, pickling -----


def test_copies_build_their_own_clients_and_share_injected_http(
    make_llm: MakeLLM, recorder: Recorder
) -> None:
    llm = make_llm()
    recorder.add(HELLO_JSON, HELLO_JSON, HELLO_JSON, HELLO_JSON)
    llm.chat([ChatMessage(role="user", content="x")])
    for copied in (llm.model_copy(update={"model": "other"}), copy.deepcopy(llm)):
        copied.chat([ChatMessage(role="user", content="x")])
    assert [body["model"] for body in recorder.bodies] == [MODEL, "other", MODEL]
    llm.close()  # closing the original leaves the copies working
    llm.model = "renamed"  # a changed setting rebuilds the client
    llm.chat([ChatMessage(role="user", content="x")])
    assert recorder.bodies[-1]["model"] == "renamed"


def test_an_adapter_with_open_clients_pickles(make_llm: MakeLLM, recorder: Recorder) -> None:
    llm = make_llm(api_key="sk-test")
    recorder.add(HELLO_JSON)
    llm.chat([ChatMessage(role="user", content="x")])  # clients and pools now exist
    restored = pickle.loads(pickle.dumps(llm))
    assert (restored.model, restored.api_key, restored.context_window) == (MODEL, "sk-test", 8192)
    assert restored._connections.sync_client is None  # builds its own on first use


# ----- structured output errors -----


class Pet(BaseModel):
    name: str


def test_an_answer_that_is_not_the_structure_raises_the_cores_error(
    make_llm: MakeLLM, recorder: Recorder
) -> None:
    recorder.add(completion({"role": "assistant", "content": "Sorry, I cannot do JSON."}))
    with pytest.raises(StructuredOutputError):
        make_llm().structured_predict(Pet, PromptTemplate("Name a pet."))
    (body,) = recorder.bodies
    assert body["response_format"]["type"] == "json_schema"

"""Each server's streamed and non-streamed wire format, replayed through the pure core.

The transcripts in ``transcripts/`` follow each server's documented format and
source (field names, where usage and reasoning appear, how tool calls are cut).
The expected values below are read off the transcripts by hand.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from transcript_data import (
    byte_by_byte,
    call_view,
    chunk_view,
    json_body,
    profile,
    replay,
    response_view,
    sse_bytes,
    transcript_names,
    with_line_ends,
)

from oaicompat.errors import StreamError
from oaicompat.protocol import StreamParser, parse_response
from oaicompat.types import Usage


@dataclass
class Expected:
    server: str
    content: str
    reasoning: str | None
    finish_reason: str | None
    usage: Usage | None
    calls: list[tuple[str | None, str, dict[str, Any]]] = field(default_factory=list)
    """``(id, name, arguments)``; id None when the server sent none."""
    model: str | None = None


EXPECTED: dict[str, Expected] = {
    "openai_text": Expected(
        "openai",
        "Hello, world!",
        None,
        "stop",
        Usage(1250, 4, 1254, cached_input_tokens=1024, reasoning_tokens=0),
        model="gpt-4o-2024-08-06",
    ),
    "openai_parallel_tools": Expected(
        "openai",
        "",
        None,
        "tool_calls",
        Usage(310, 180, 490, cached_input_tokens=256, reasoning_tokens=128),
        [
            ("call_Wx8KcW2a", "get_weather", {"city": "Paris"}),
            ("call_Qb3Lm9Zt", "get_time", {"tz": "Europe/Paris"}),
        ],
        model="o4-mini-2025-04-16",
    ),
    "ollama_reasoning": Expected(
        "ollama", "2 + 2 = 4", "The user wants 2+2.", "stop", Usage(14, 21, 35), model="qwen3:8b"
    ),
    "ollama_tool": Expected(
        "ollama",
        "",
        None,
        "tool_calls",
        Usage(188, 41, 229),
        [
            ("call_hk81qg8b", "run_command", {"command": "ls -la"}),
            ("call_rk2xye1l", "run_command", {"command": "pwd"}),
        ],
    ),
    "int_tool_ids": Expected(
        "generic",
        "",
        None,
        "tool_calls",
        None,
        [("0", "add", {"a": 1, "b": 2}), ("1", "mul", {"a": 2, "b": 3})],
    ),
    "vllm_reasoning_tools": Expected(
        "vllm",
        "",
        "Need the weather tool.",
        "tool_calls",
        Usage(402, 49, 451),
        [("chatcmpl-tool-5c2e8a", "get_weather", {"city": "Oslo", "unit": "celsius"})],
        model="Qwen/Qwen3-8B",
    ),
    "vllm_continuous_usage": Expected("vllm", "Bonjour !", None, "length", Usage(17, 3, 20)),
    "llamacpp_reasoning_usage": Expected(
        "llamacpp", "Four.", "Two plus two.", "stop", Usage(24, 6, 30, cached_input_tokens=6)
    ),
    # No usage object at all: the counts come from llama.cpp's `timings`.
    "llamacpp_timings_only": Expected(
        "llamacpp", "ok then", None, "length", Usage(31, 3, 34, cached_input_tokens=12)
    ),
    "llamacpp_think_tags": Expected(
        "llamacpp",
        "Paris is the capital.",
        "The capital of France.",
        "stop",
        Usage(9, 19, 28, cached_input_tokens=0),
    ),
    "lmstudio_tools": Expected(
        "lmstudio",
        "Let me check.",
        None,
        "tool_calls",
        Usage(120, 33, 153),
        [("365174485", "get_delivery_date", {"order_id": "123"})],
    ),
    "lmstudio_reasoning": Expected("lmstudio", "Hi!", "Simple greeting.", "stop", None),
    "deepseek_reasoner": Expected(
        "deepseek",
        "9.9 is greater.",
        "9.11 vs 9.9: compare tenths.",
        "stop",
        Usage(84, 130, 214, cached_input_tokens=64, reasoning_tokens=118),
        model="deepseek-reasoner",
    ),
    "groq_reasoning": Expected(
        "groq", "Hello there.", "Greet back politely.", "stop", Usage(18, 27, 45)
    ),
    "openrouter_reasoning": Expected(
        "openrouter",
        "Autumn moon rises",
        "User asks for a haiku.",
        "stop",
        Usage(12, 57, 69, cached_input_tokens=0, reasoning_tokens=44),
    ),
    "mistral_magistral": Expected(
        "mistral", "The answer is 4.", "Okay, the user asks 2+2.", "stop", Usage(10, 50, 60)
    ),
    "tgi_eos": Expected("tgi", "Deep learning.", None, "stop", Usage(15, 3, 18)),
    "llamacpp_python_function_call": Expected(
        "llamacpp_python",
        "",
        None,
        "tool_calls",
        None,
        [("call__0_get_weather_cmpl-4b1f", "get_weather", {"city": "Rome"})],
    ),
    "legacy_function_call_only": Expected(
        "generic", "", None, "function_call", None, [(None, "lookup", {"q": "sse"})]
    ),
}

FAILING = {
    "llamacpp_stream_error": ("llamacpp", "Partial answer", "Failed to parse input at pos 12"),
    "openrouter_midstream_error": (
        "openrouter",
        "The first part",
        "Provider disconnected unexpectedly",
    ),
    "openai_stream_error": (
        "openai",
        "The question",
        "The server had an error while processing your request",
    ),
}

# Streams paired with the body the same server returns without streaming.
EQUIVALENT = [
    "openai_text",
    "openai_parallel_tools",
    "ollama_tool",
    "vllm_reasoning_tools",
    "llamacpp_think_tags",
    "deepseek_reasoner",
    "groq_reasoning",
    "mistral_magistral",
    "tgi_eos",
    "llamacpp_python_function_call",
]


def _server_ids(name: str) -> bool:
    return all(call_id is not None for call_id, _, _ in EXPECTED[name].calls)


def test_every_transcript_has_expectations() -> None:
    assert set(transcript_names()) == set(EXPECTED) | set(FAILING)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_stream_final_response(name: str) -> None:
    expected = EXPECTED[name]
    _, response = replay([sse_bytes(name)], profile(expected.server))
    assert response.content == expected.content
    assert response.reasoning == expected.reasoning
    assert response.finish_reason == expected.finish_reason
    assert response.usage == expected.usage
    assert len(response.tool_calls) == len(expected.calls)
    for call, (call_id, name_, arguments) in zip(response.tool_calls, expected.calls, strict=True):
        assert isinstance(call.id, str)
        assert call.id
        if call_id is not None:
            assert call.id == call_id
        assert call.name == name_
        assert call.arguments == arguments
        assert call.error is None
    if expected.model is not None:
        assert response.model == expected.model


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_chunks_add_up_to_the_final_response(name: str) -> None:
    chunks, response = replay([sse_bytes(name)], profile(EXPECTED[name].server))
    assert "".join(chunk.content for chunk in chunks) == response.content
    assert ("".join(chunk.reasoning for chunk in chunks) or None) == response.reasoning
    arguments: dict[int, str] = {}
    names: dict[int, list[str]] = {}
    ids: dict[int, list[str]] = {}
    for chunk in chunks:
        for delta in chunk.tool_call_deltas:
            arguments[delta.index] = arguments.get(delta.index, "") + delta.arguments
            if delta.name is not None:
                names.setdefault(delta.index, []).append(delta.name)
            if delta.id is not None:
                ids.setdefault(delta.index, []).append(delta.id)
    assert sorted(arguments) == list(range(len(response.tool_calls)))
    for index, call in enumerate(response.tool_calls):
        assert call.arguments_text == arguments[index]
        # A call's id and name reach downstream code exactly once.
        assert names[index] == [call.name]
        assert ids[index] == [call.id]


@pytest.mark.parametrize("name", sorted(EXPECTED))
@pytest.mark.parametrize("ending", [b"\r\n", b"\r"], ids=["crlf", "cr"])
def test_line_endings_do_not_change_the_result(name: str, ending: bytes) -> None:
    server = profile(EXPECTED[name].server)
    keep_ids = _server_ids(name)
    chunks, response = replay([sse_bytes(name)], server)
    other_chunks, other = replay([with_line_ends(sse_bytes(name), ending)], server)
    assert chunk_view(other_chunks, keep_ids=keep_ids) == chunk_view(chunks, keep_ids=keep_ids)
    assert response_view(other, keep_ids=keep_ids) == response_view(response, keep_ids=keep_ids)


@pytest.mark.parametrize("name", sorted(EXPECTED))
@pytest.mark.parametrize("ending", [b"\n", b"\r\n", b"\r"], ids=["lf", "crlf", "cr"])
def test_byte_by_byte_equals_whole(name: str, ending: bytes) -> None:
    server = profile(EXPECTED[name].server)
    keep_ids = _server_ids(name)
    data = with_line_ends(sse_bytes(name), ending)
    chunks, response = replay([data], server)
    split_chunks, split = replay(byte_by_byte(data), server)
    assert chunk_view(split_chunks, keep_ids=keep_ids) == chunk_view(chunks, keep_ids=keep_ids)
    assert response_view(split, keep_ids=keep_ids) == response_view(response, keep_ids=keep_ids)


@pytest.mark.parametrize("name", ["openai_parallel_tools", "llamacpp_think_tags", "tgi_eos"])
def test_every_two_way_split_equals_whole(name: str) -> None:
    server = profile(EXPECTED[name].server)
    data = with_line_ends(sse_bytes(name), b"\r\n")
    whole_chunks, whole = replay([data], server)
    for cut in range(1, len(data)):
        chunks, response = replay([data[:cut], b"", data[cut:]], server)
        assert response_view(response) == response_view(whole), cut
        assert chunk_view(chunks) == chunk_view(whole_chunks), cut


@pytest.mark.parametrize("name", EQUIVALENT)
def test_stream_final_equals_non_streamed_body(name: str) -> None:
    server = profile(EXPECTED[name].server)
    _, streamed = replay([sse_bytes(name)], server)
    whole = parse_response(json_body(name), server)
    assert streamed.content == whole.content
    assert streamed.reasoning == whole.reasoning
    assert streamed.finish_reason == whole.finish_reason
    assert call_view(streamed) == call_view(whole)
    assert streamed.model == whole.model
    assert streamed.id == whole.id
    if name == "llamacpp_python_function_call":
        # llama-cpp-python ignores stream_options, so only its non-streamed body has usage.
        assert streamed.usage is None
        assert whole.usage == Usage(96, 9, 105)
    else:
        assert streamed.usage == whole.usage


def test_think_tags_left_alone_when_the_profile_does_not_split() -> None:
    _, streamed = replay([sse_bytes("llamacpp_think_tags")], profile("generic"))
    whole = parse_response(json_body("llamacpp_think_tags"), profile("generic"))
    text = "<think>\nThe capital of France.\n</think>\n\nParis is the capital."
    assert streamed.content == whole.content == text
    assert streamed.reasoning is None
    assert whole.reasoning is None


@pytest.mark.parametrize("name", sorted(FAILING))
def test_error_after_the_stream_started(name: str) -> None:
    server_name, partial_text, server_message = FAILING[name]
    parser = StreamParser(profile(server_name))
    received: list[str] = []

    def feed_all() -> None:
        for piece in byte_by_byte(sse_bytes(name)):
            received.extend(chunk.content for chunk in parser.feed(piece))

    with pytest.raises(StreamError) as caught:
        feed_all()
    error = caught.value
    assert server_message in str(error)
    assert "".join(received) == partial_text
    assert error.partial is not None
    assert error.partial.content == partial_text
    assert isinstance(error.payload, dict)
    assert "error" in error.payload


def test_openai_usage_only_on_the_usage_chunk() -> None:
    chunks, _ = replay([sse_bytes("openai_text")], profile("openai"))
    assert [chunk.usage is not None for chunk in chunks] == [False] * 5 + [True]
    assert chunks[-1].content == ""
    assert chunks[-1].finish_reason is None


def test_openai_parallel_tool_call_deltas() -> None:
    chunks, _ = replay([sse_bytes("openai_parallel_tools")], profile("openai"))
    deltas = [
        (delta.index, delta.id, delta.name, delta.arguments)
        for chunk in chunks
        for delta in chunk.tool_call_deltas
    ]
    assert deltas == [
        (0, "call_Wx8KcW2a", "get_weather", ""),
        (0, None, None, '{"ci'),
        (0, None, None, 'ty": "Par'),
        (0, None, None, 'is"}'),
        (1, "call_Qb3Lm9Zt", "get_time", ""),
        (1, None, None, '{"tz": '),
        (1, None, None, '"Europe/Paris"}'),
    ]


def test_ollama_whole_call_in_one_chunk() -> None:
    chunks, _ = replay([sse_bytes("ollama_tool")], profile("ollama"))
    assert [len(chunk.tool_call_deltas) for chunk in chunks] == [1, 1, 0, 0]
    first = chunks[0].tool_call_deltas[0]
    assert (first.index, first.id, first.name) == (0, "call_hk81qg8b", "run_command")
    assert first.arguments == '{"command":"ls -la"}'


def test_vllm_running_usage_on_every_chunk_and_the_last_wins() -> None:
    chunks, response = replay([sse_bytes("vllm_continuous_usage")], profile("vllm"))
    running = [chunk.usage for chunk in chunks]
    assert running == [
        Usage(17, 0, 17),
        Usage(17, 1, 18),
        Usage(17, 2, 19),
        Usage(17, 3, 20),
        Usage(17, 3, 20),
    ]
    assert response.usage == running[-1]


def test_llamacpp_timings_give_running_usage_until_the_usage_chunk() -> None:
    chunks, response = replay([sse_bytes("llamacpp_reasoning_usage")], profile("llamacpp"))
    outputs = [None if chunk.usage is None else chunk.usage.output_tokens for chunk in chunks]
    assert outputs == [None, 1, 2, 4, 5, None, 6]
    assert all(chunk.usage.input_tokens == 24 for chunk in chunks if chunk.usage is not None)
    assert response.usage is not None
    # The final usage object is preferred over the timings beside it.
    assert response.usage.raw is not None
    assert "prompt_tokens" in response.usage.raw


def test_groq_usage_only_on_the_last_chunk_under_x_groq() -> None:
    chunks, _ = replay([sse_bytes("groq_reasoning")], profile("groq"))
    assert [chunk.usage is not None for chunk in chunks] == [False] * 5 + [True]


def test_openrouter_comments_and_late_usage_chunk_keep_the_finish_reason() -> None:
    chunks, response = replay([sse_bytes("openrouter_reasoning")], profile("openrouter"))
    assert len(chunks) == 5
    assert chunks[-1].finish_reason is None
    assert chunks[-1].usage is not None
    assert response.finish_reason == "stop"


def test_llamacpp_python_repeated_id_and_name_are_one_call() -> None:
    chunks, response = replay(
        [sse_bytes("llamacpp_python_function_call")], profile("llamacpp_python")
    )
    assert len(response.tool_calls) == 1
    call = response.tool_calls[0]
    assert call.name == "get_weather"
    assert call.arguments_text == '{"city": "Rome"}'
    named = [d.name for chunk in chunks for d in chunk.tool_call_deltas if d.name]
    assert named == ["get_weather"]


def test_legacy_function_call_gets_a_stable_synthesized_id() -> None:
    chunks, response = replay([sse_bytes("legacy_function_call_only")], profile("generic"))
    call = response.tool_calls[0]
    assert call.id.startswith("call_")
    first_ids = [d.id for chunk in chunks for d in chunk.tool_call_deltas if d.id]
    assert first_ids == [call.id]


def test_tgi_data_lines_without_a_space_and_empty_id() -> None:
    _, response = replay([sse_bytes("tgi_eos")], profile("tgi"))
    assert response.id == ""
    assert response.raw["choices"][0]["finish_reason"] == "stop"


def test_non_streamed_bodies_keep_the_servers_finish_reason_in_raw() -> None:
    response = parse_response(json_body("tgi_eos"), profile("tgi"))
    assert response.finish_reason == "stop"
    assert response.raw["choices"][0]["finish_reason"] == "eos_token"


def test_llamacpp_python_non_streamed_prefers_tool_calls_over_function_call() -> None:
    response = parse_response(json_body("llamacpp_python_function_call"), profile("generic"))
    assert call_view(response) == [
        ("call__0_get_weather_cmpl-4b1f", "get_weather", {"city": "Rome"}, None)
    ]

"""Odd but valid streams over real sockets, and broken ones: nothing received is lost."""

from __future__ import annotations

import pytest
from faults_harness import ScriptedServer, Way, assert_pool_released, streamed_text

from oaicompat import ChatResponse, StreamError
from oaicompat.testing import Reply, ScriptedToolCall

TEXT = "The quick brown fox jumps over the lazy dog."


def same_answer(streamed: ChatResponse, chatted: ChatResponse) -> None:
    """Everything but the completion id (two requests, two completions) must match."""
    for name in ("content", "reasoning", "finish_reason", "model"):
        assert getattr(streamed, name) == getattr(chatted, name), name
    # Some usage styles stream bare totals and send the details only unstreamed.
    assert streamed.usage is not None
    assert chatted.usage is not None
    for name in ("input_tokens", "output_tokens", "total_tokens"):
        assert getattr(streamed.usage, name) == getattr(chatted.usage, name), name
    assert [(c.id, c.name, c.arguments) for c in streamed.tool_calls] == [
        (c.id, c.name, c.arguments) for c in chatted.tool_calls
    ]


@pytest.mark.parametrize("usage", ["openai", "llamacpp", "groq", "running"])
async def test_stream_without_done_finishes_with_everything(
    way: Way, server: ScriptedServer, usage: str
) -> None:
    reply = Reply(text=TEXT, done=False, usage=usage)  # type: ignore[arg-type]
    server.enqueue(reply, times=2)
    client = way.client(server.base_url)
    chatted = await way.chat(client)
    chunks, streamed = await way.stream_all(client)
    assert streamed_text(chunks) == TEXT
    same_answer(streamed, chatted)
    assert streamed.finish_reason == "stop"
    assert streamed.usage is not None
    assert streamed.usage.output_tokens > 0
    assert_pool_released(client)


async def test_gzip_encoded_body(way: Way, server: ScriptedServer) -> None:
    server.enqueue(Reply(text=TEXT, gzip=True))
    client = way.client(server.base_url)
    answer = await way.chat(client)
    assert answer.content == TEXT
    assert server.chat_requests[0].headers.get("accept-encoding")


async def test_gzip_encoded_stream_is_decoded_event_by_event(
    way: Way, server: ScriptedServer
) -> None:
    server.enqueue(Reply(text=TEXT, gzip=True, reasoning="thinking it over"))
    client = way.client(server.base_url)
    chunks, final = await way.stream_all(client)
    assert streamed_text(chunks) == TEXT
    assert final.content == TEXT
    assert final.reasoning == "thinking it over"
    # Decoded as it arrives, not buffered to the end: one chunk per word still.
    assert len([chunk for chunk in chunks if chunk.content]) == len(TEXT.split())


CALLS = [
    ScriptedToolCall("get_weather", {"city": "Oslo", "unit": "celsius"}, id="call_a"),
    ScriptedToolCall("get_time", {"zone": "Europe/Oslo"}, id="call_b"),
    ScriptedToolCall("search", {"query": "fjords", "limit": 3}, id="call_c"),
]


@pytest.mark.parametrize("order", ["duplicate", "out_of_order"])
@pytest.mark.parametrize("style", ["fragments", "whole"])
async def test_odd_tool_call_indices_give_the_same_calls_as_chat(
    way: Way, server: ScriptedServer, order: str, style: str
) -> None:
    reply = Reply(tool_calls=CALLS, tool_call_order=order, tool_call_style=style)  # type: ignore[arg-type]
    server.enqueue(reply, times=2)
    client = way.client(server.base_url)
    chatted = await way.chat(client)
    _, streamed = await way.stream_all(client)
    assert {call.id: (call.name, call.arguments) for call in streamed.tool_calls} == {
        call.id: (call.name, dict(call.arguments))
        for call in CALLS  # type: ignore[arg-type]
    }
    assert sorted(c.id for c in chatted.tool_calls) == sorted(c.id for c in streamed.tool_calls)
    assert streamed.finish_reason == "tool_calls"


async def test_error_event_inside_a_200_stream_keeps_the_partial_answer(
    way: Way, server: ScriptedServer
) -> None:
    error = {"message": "the GPU fell off the bus", "type": "server_error", "code": 500}
    server.enqueue(Reply(text=TEXT, error_after=4, error=error))
    client = way.client(server.base_url, max_retries=2)
    chunks: list = []
    with pytest.raises(StreamError, match="the GPU fell off the bus") as caught:
        await way.stream_collect(client, chunks)
    partial = caught.value.partial
    assert partial is not None
    assert partial.content == "The quick brown"
    assert streamed_text(chunks) == partial.content
    assert len(server.chat_requests) == 1
    assert_pool_released(client)


async def test_malformed_chunk_is_a_stream_error_not_a_silent_gap(
    way: Way, server: ScriptedServer
) -> None:
    server.enqueue(Reply(text=TEXT, malformed_at=3))
    client = way.client(server.base_url)
    chunks: list = []
    with pytest.raises(StreamError) as caught:
        await way.stream_collect(client, chunks)
    assert caught.value.partial is not None
    assert caught.value.partial.content == streamed_text(chunks)
    assert TEXT.startswith(caught.value.partial.content)
    assert_pool_released(client)


@pytest.mark.parametrize("line_ending", ["\n", "\r\n", "\r"], ids=["lf", "crlf", "cr"])
async def test_keepalive_comments_and_line_endings(
    way: Way, server: ScriptedServer, line_ending: str
) -> None:
    server.enqueue(Reply(text=TEXT, keepalive=2, line_ending=line_ending))  # type: ignore[arg-type]
    client = way.client(server.base_url)
    chunks, final = await way.stream_all(client)
    assert final.content == TEXT
    assert streamed_text(chunks) == TEXT

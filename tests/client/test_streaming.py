"""Streams: chunks, the final answer, timing, early exit, and failures after the first byte."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from client_harness import (
    Mode,
    ScriptedBody,
    ScriptedServer,
    chunk_payload,
    completion,
    json_reply,
    raw_reply,
    sse_event,
    sse_reply,
    text_stream_events,
)

from oaicompat import AuthenticationError, ChatResponse, ResponseParseError, StreamError

USAGE = {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15}


def same_answer(streamed: ChatResponse, whole: ChatResponse) -> None:
    assert streamed == whole  # compares content, reasoning, tool calls, usage, ids
    assert streamed.content == whole.content
    assert streamed.tool_calls == whole.tool_calls


async def test_chunks_and_final(mode: Mode) -> None:
    server = ScriptedServer(sse_reply(text_stream_events(["Hel", "lo", "!"], usage=USAGE)))
    chunks, final = await mode.stream_all(mode.client(server))
    assert "".join(chunk.content for chunk in chunks) == "Hello!"
    assert [chunk.finish_reason for chunk in chunks if chunk.finish_reason] == ["stop"]
    assert final.content == "Hello!"
    assert final.finish_reason == "stop"
    assert final.usage is not None
    assert (final.usage.input_tokens, final.usage.output_tokens) == (12, 3)
    assert final.id == "chatcmpl-123"


async def test_final_equals_chat_for_the_same_answer(mode: Mode) -> None:
    arguments = {"city": "Paris", "unit": "C"}
    whole = completion(
        "It is sunny.",
        reasoning="Need the weather.",
        tool_calls=[
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "weather", "arguments": json.dumps(arguments)},
            }
        ],
        finish_reason="tool_calls",
        usage=USAGE,
    )
    args_text = json.dumps(arguments)
    events = [
        sse_event(chunk_payload({"role": "assistant", "reasoning_content": "Need the "})),
        sse_event(chunk_payload({"reasoning_content": "weather."})),
        sse_event(chunk_payload({"content": "It is "})),
        sse_event(chunk_payload({"content": "sunny."})),
        sse_event(
            chunk_payload(
                {
                    "tool_calls": [
                        {
                            "index": 0,
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": "weather", "arguments": args_text[:9]},
                        }
                    ]
                }
            )
        ),
        sse_event(
            chunk_payload({"tool_calls": [{"index": 0, "function": {"arguments": args_text[9:]}}]})
        ),
        sse_event(chunk_payload({}, "tool_calls")),
        sse_event({**chunk_payload({}), "choices": [], "usage": USAGE}),
        b"data: [DONE]\n\n",
    ]
    server = ScriptedServer(json_reply(whole), sse_reply(events))
    client = mode.client(server)
    chatted = await mode.chat(client)
    _, streamed = await mode.stream_all(client)
    same_answer(streamed, chatted)
    assert streamed.tool_calls[0].arguments == arguments
    assert streamed.reasoning == "Need the weather."


async def test_final_without_iterating_reads_everything(mode: Mode) -> None:
    server = ScriptedServer(sse_reply(text_stream_events(["a", "b"], usage=USAGE)))
    stream = mode.client(server).stream("Hi")
    assert stream.response is None
    final = await mode.final(stream)
    assert final.content == "ab"
    assert stream.response is final
    assert await mode.final(stream) is final


async def test_stream_opens_lazily(mode: Mode) -> None:
    server = ScriptedServer(sse_reply(text_stream_events(["a"])))
    client = mode.client(server)
    stream = client.stream("Hi")
    assert server.calls == 0
    await mode.enter(stream)
    assert server.calls == 1
    await mode.close_stream(stream)


async def test_iterating_without_with_reads_to_the_end_and_closes(mode: Mode) -> None:
    bodies: list[ScriptedBody] = []
    server = ScriptedServer(sse_reply(text_stream_events(["x", "y"]), bodies=bodies))
    stream = mode.client(server).stream("Hi")
    first = await mode.next_chunk(stream)
    rest = await mode.iterate(stream)
    assert "".join(chunk.content for chunk in [first, *rest]) == "xy"
    assert bodies[0].closed
    assert stream.response is not None


async def test_leaving_the_block_early_closes_the_connection(mode: Mode) -> None:
    bodies: list[ScriptedBody] = []
    pieces = [f"w{n} " for n in range(50)]
    server = ScriptedServer(sse_reply(text_stream_events(pieces), bodies=bodies))
    chunks, stream = await mode.stream_take(mode.client(server), 3)
    assert len(chunks) == 3
    body = bodies[0]
    assert body.closed
    assert body.pulled < len(body.pieces)
    assert stream.closed
    with pytest.raises(StreamError, match="closed before it finished") as caught:
        await mode.final(stream)
    partial = caught.value.partial
    assert partial is not None
    assert partial.content == "".join(chunk.content for chunk in chunks)


async def test_close_before_opening_sends_nothing(mode: Mode) -> None:
    server = ScriptedServer(sse_reply(text_stream_events(["a"])))
    stream = mode.client(server).stream("Hi")
    await mode.close_stream(stream)
    with pytest.raises(StreamError, match="closed"):
        await mode.iterate(stream)
    assert server.calls == 0


@pytest.mark.parametrize(
    "drop",
    [
        httpx.RemoteProtocolError("peer closed connection without sending complete message body"),
        httpx.ReadError("connection reset by peer"),
        httpx.ReadTimeout("timed out"),
    ],
)
async def test_stream_dropped_midway_keeps_the_partial_answer(mode: Mode, drop: Exception) -> None:
    bodies: list[ScriptedBody] = []
    events = text_stream_events(["The answer ", "is "], done=False)[:-1]  # no finish event
    server = ScriptedServer(sse_reply(events, error=drop, bodies=bodies))
    client = mode.client(server)
    received: list[str] = []
    stream = client.stream("Hi")

    async def read_chunk_by_chunk() -> None:
        await mode.enter(stream)
        try:
            while True:
                received.append((await mode.next_chunk(stream)).content)
        finally:
            await mode.close_stream(stream)

    with pytest.raises(StreamError, match="stream cut short") as caught:
        await read_chunk_by_chunk()
    error = caught.value
    assert error.__cause__ is drop
    assert error.partial is not None
    assert error.partial.content == "The answer is "
    assert "".join(received) == "The answer is "
    assert error.partial.latency_s is not None
    assert bodies[0].closed
    with pytest.raises(StreamError) as again:
        await mode.final(stream)
    assert again.value is error


async def test_error_event_inside_a_200_stream(mode: Mode) -> None:
    bodies: list[ScriptedBody] = []
    events = [
        sse_event(chunk_payload({"content": "Partial"})),
        sse_event({"error": {"message": "CUDA out of memory", "type": "server_error"}}),
        sse_event(chunk_payload({"content": " never"})),
    ]
    server = ScriptedServer(sse_reply(events, bodies=bodies))
    with pytest.raises(StreamError, match="CUDA out of memory") as caught:
        await mode.stream_all(mode.client(server))
    assert caught.value.partial is not None
    assert caught.value.partial.content == "Partial"
    assert bodies[0].closed


async def test_malformed_chunk_is_a_stream_error(mode: Mode) -> None:
    events = [sse_event(chunk_payload({"content": "ok"})), b"data: {not json}\n\n"]
    server = ScriptedServer(sse_reply(events))
    with pytest.raises(StreamError, match="not valid JSON"):
        await mode.stream_all(mode.client(server))


async def test_stream_without_done_still_finishes(mode: Mode) -> None:
    server = ScriptedServer(sse_reply(text_stream_events(["no ", "done"], done=False)))
    _, final = await mode.stream_all(mode.client(server))
    assert final.content == "no done"
    assert final.finish_reason == "stop"


async def test_events_split_at_arbitrary_bytes(mode: Mode) -> None:
    whole = b"".join(text_stream_events(["caf\u00e9 ", "\u2603"], usage=USAGE))
    pieces = [whole[i : i + 7] for i in range(0, len(whole), 7)]
    server = ScriptedServer(sse_reply(pieces))
    chunks, final = await mode.stream_all(mode.client(server))
    assert final.content == "caf\u00e9 \u2603"
    assert "".join(chunk.content for chunk in chunks) == final.content


async def test_stream_body_already_read_by_the_transport(mode: Mode) -> None:
    # httpx reads a body given as bytes upfront (mock transports, caches); raw reads would fail.
    body = b"".join(text_stream_events(["pre", "read"]))
    server = ScriptedServer(raw_reply(body, 200, "text/event-stream"))
    _, final = await mode.stream_all(mode.client(server))
    assert final.content == "preread"


async def test_compressed_stream_is_decoded(mode: Mode) -> None:
    server = ScriptedServer(sse_reply(text_stream_events(["zip", "ped"]), gzipped=True))
    _, final = await mode.stream_all(mode.client(server))
    assert final.content == "zipped"


async def test_server_ignoring_stream_true_still_answers(mode: Mode) -> None:
    whole = completion("all at once", usage=USAGE)
    server = ScriptedServer(json_reply(whole))
    chunks, final = await mode.stream_all(mode.client(server))
    assert [chunk.content for chunk in chunks] == ["all at once"]
    assert final.content == "all at once"
    assert final.usage is not None
    assert final.usage.total_tokens == 15


async def test_html_page_answering_a_stream_is_a_parse_error(mode: Mode) -> None:
    page = b"<html><head><title>Access denied by proxy</title></head><body></body></html>"
    server = ScriptedServer(raw_reply(page, 200, "text/html; charset=utf-8"))
    with pytest.raises(ResponseParseError, match="Access denied by proxy"):
        await mode.stream_all(mode.client(server))


@pytest.mark.parametrize("body", [b"", b": keep-alive\n\n: keep-alive\n\n"])
async def test_stream_without_any_data_is_an_error(mode: Mode, body: bytes) -> None:
    server = ScriptedServer(sse_reply([body] if body else []))
    with pytest.raises(StreamError, match="without sending any data"):
        await mode.stream_all(mode.client(server))


async def test_stream_of_only_done_is_an_empty_answer(mode: Mode) -> None:
    server = ScriptedServer(sse_reply([b"data: [DONE]\n\n"]))
    _, final = await mode.stream_all(mode.client(server))
    assert final.content == ""


async def test_timing(mode: Mode) -> None:
    server = ScriptedServer(sse_reply(text_stream_events(["a", "b"], usage=USAGE)))
    _, final = await mode.stream_all(mode.client(server))
    assert final.latency_s is not None
    assert final.time_to_first_token_s is not None
    assert 0 <= final.time_to_first_token_s <= final.latency_s
    chatted = await mode.chat(mode.client(ScriptedServer(json_reply(completion()))))
    assert chatted.latency_s is not None
    assert chatted.latency_s > 0
    assert chatted.time_to_first_token_s is None


async def test_no_first_token_time_when_nothing_was_generated(mode: Mode) -> None:
    events = [
        sse_event(chunk_payload({"role": "assistant"})),
        sse_event(chunk_payload({}, "length")),
        b"data: [DONE]\n\n",
    ]
    server = ScriptedServer(sse_reply(events))
    _, final = await mode.stream_all(mode.client(server))
    assert final.time_to_first_token_s is None
    assert final.finish_reason == "length"


async def test_auth_failure_raises_on_entering(mode: Mode) -> None:
    server = ScriptedServer(json_reply({"error": {"message": "bad key"}}, 401))
    stream = mode.client(server).stream("Hi")
    with pytest.raises(AuthenticationError, match="bad key"):
        await mode.enter(stream)


async def test_many_streams_share_one_client(mode: Mode) -> None:
    server = ScriptedServer(sse_reply(text_stream_events(["same"])))
    client = mode.client(server)
    finals: list[Any] = []
    for _ in range(5):
        _, final = await mode.stream_all(client)
        finals.append(final.content)
    assert finals == ["same"] * 5

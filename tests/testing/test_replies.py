"""Each kind of scripted reply, streamed and not, as it appears on the wire."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from scripted_helpers import (
    CHAT,
    chat_body,
    joined,
    merged_tool_calls,
    raw_chat_request,
    raw_exchange,
    stream,
    stream_chunks,
    tool_call_deltas,
)

from oaicompat.testing import Reply, ScriptedServer, ScriptedToolCall, count_tokens

CALLS = (
    ScriptedToolCall("get_weather", {"location": "Paris"}),
    ScriptedToolCall("get_time", {"zone": "CET", "precise": True}),
)


def post(client: httpx.Client, server: ScriptedServer, reply: Reply, **body: Any) -> Any:
    server.enqueue(reply)
    response = client.post(CHAT, json=chat_body(**body))
    assert response.status_code == 200
    return response.json()


def streamed(
    client: httpx.Client, server: ScriptedServer, reply: Reply, **body: Any
) -> list[dict[str, Any]]:
    server.enqueue(reply)
    response, raw = stream(client, chat_body(**body))
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/event-stream"
    assert response.headers["transfer-encoding"] == "chunked"
    assert raw.endswith(b"data: [DONE]\n\n")
    return stream_chunks(raw)


def test_text_reply(client: httpx.Client, scripted_server: ScriptedServer) -> None:
    body = post(client, scripted_server, Reply("Hi there, friend."))
    assert body["object"] == "chat.completion"
    assert body["choices"][0]["message"] == {"role": "assistant", "content": "Hi there, friend."}
    assert body["choices"][0]["finish_reason"] == "stop"
    chunks = streamed(client, scripted_server, Reply(text="Hi there, friend."))
    assert {chunk["object"] for chunk in chunks} == {"chat.completion.chunk"}
    assert len({chunk["id"] for chunk in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert joined(chunks, "content") == "Hi there, friend."
    assert [c["choices"][0]["finish_reason"] for c in chunks][-1] == "stop"


def test_each_stream_event_is_one_http_chunk(scripted_server: ScriptedServer) -> None:
    scripted_server.enqueue(Reply(text="one two three"))
    raw = raw_exchange(scripted_server.port, raw_chat_request(chat_body(stream=True)))
    body = raw.split(b"\r\n\r\n", 1)[1]
    http_chunks = []
    while True:
        size_line, body = body.split(b"\r\n", 1)
        size = int(size_line, 16)
        if size == 0:
            break
        http_chunks.append(body[:size])
        body = body[size + 2 :]
    assert all(chunk.startswith(b"data: ") and chunk.endswith(b"\n\n") for chunk in http_chunks)
    assert http_chunks[-1] == b"data: [DONE]\n\n"
    assert len(http_chunks) == 1 + 3 + 1 + 1  # role, three words, finish, [DONE]


@pytest.mark.parametrize(
    ("size", "expected"),
    [(None, ["Hello", " big", " world"]), (4, ["Hell", "o bi", "g wo", "rld"])],
)
def test_chunk_size_sets_the_granularity(
    client: httpx.Client, scripted_server: ScriptedServer, size: int | None, expected: list[str]
) -> None:
    chunks = streamed(client, scripted_server, Reply(text="Hello big world", chunk_size=size))
    pieces = [c["choices"][0]["delta"]["content"] for c in chunks[1:-1]]
    assert pieces == expected


@pytest.mark.parametrize("field", ["reasoning_content", "reasoning"])
def test_reasoning_in_its_own_field(
    client: httpx.Client, scripted_server: ScriptedServer, field: str
) -> None:
    reply = Reply(text="42.", reasoning="Think it through.", reasoning_field=field)  # type: ignore[arg-type]
    message = post(client, scripted_server, reply)["choices"][0]["message"]
    assert (message["content"], message[field]) == ("42.", "Think it through.")
    chunks = streamed(client, scripted_server, reply)
    assert joined(chunks, field) == "Think it through."
    assert joined(chunks, "content") == "42."
    first_content = next(i for i, c in enumerate(chunks) if c["choices"][0]["delta"].get("content"))
    last_reasoning = max(i for i, c in enumerate(chunks) if c["choices"][0]["delta"].get(field))
    assert last_reasoning < first_content


def test_reasoning_as_think_tags(client: httpx.Client, scripted_server: ScriptedServer) -> None:
    reply = Reply(text="42.", reasoning="Hmm.", reasoning_field="think")
    message = post(client, scripted_server, reply)["choices"][0]["message"]
    assert message == {"role": "assistant", "content": "<think>\nHmm.\n</think>\n\n42."}
    assert joined(streamed(client, scripted_server, reply), "content") == message["content"]


def test_tool_calls_non_streamed(client: httpx.Client, scripted_server: ScriptedServer) -> None:
    body = post(client, scripted_server, Reply(tool_calls=CALLS))
    choice = body["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] is None
    calls = choice["message"]["tool_calls"]
    assert [(c["type"], c["function"]["name"]) for c in calls] == [
        ("function", "get_weather"),
        ("function", "get_time"),
    ]
    assert [json.loads(c["function"]["arguments"]) for c in calls] == [
        dict(call.arguments)
        for call in CALLS  # type: ignore[arg-type]
    ]
    assert len({c["id"] for c in calls}) == 2


def test_parallel_tool_calls_stream_in_fragments(
    client: httpx.Client, scripted_server: ScriptedServer
) -> None:
    chunks = streamed(client, scripted_server, Reply(tool_calls=CALLS, chunk_size=5))
    deltas = tool_call_deltas(chunks)
    assert len(deltas) > 4
    assert all(len(d["function"].get("arguments", "")) <= 5 for d in deltas)
    heads = [d for d in deltas if "id" in d]
    assert [(d["index"], d["function"]["name"]) for d in heads] == [
        (0, "get_weather"),
        (1, "get_time"),
    ]
    merged = merged_tool_calls(chunks)
    assert [json.loads(merged[i]["arguments"]) for i in (0, 1)] == [
        {"location": "Paris"},
        {"zone": "CET", "precise": True},
    ]
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


def test_whole_tool_calls_arrive_in_one_chunk(
    client: httpx.Client, scripted_server: ScriptedServer
) -> None:
    chunks = streamed(client, scripted_server, Reply(tool_calls=CALLS, tool_call_style="whole"))
    carrying = [c for c in chunks if c["choices"] and c["choices"][0]["delta"].get("tool_calls")]
    assert len(carrying) == 1
    calls = carrying[0]["choices"][0]["delta"]["tool_calls"]
    assert [json.loads(c["function"]["arguments"]) for c in calls][1] == {
        "zone": "CET",
        "precise": True,
    }
    assert [c["index"] for c in calls] == [0, 1]


def test_tool_calls_without_index_or_ids(
    client: httpx.Client, scripted_server: ScriptedServer
) -> None:
    reply = Reply(tool_calls=CALLS, tool_call_index=False, tool_call_ids=False)
    deltas = tool_call_deltas(streamed(client, scripted_server, reply))
    assert deltas
    assert not any("index" in d or "id" in d for d in deltas)


def test_duplicated_tool_call_indices(
    client: httpx.Client, scripted_server: ScriptedServer
) -> None:
    reply = Reply(tool_calls=CALLS, tool_call_order="duplicate")
    deltas = tool_call_deltas(streamed(client, scripted_server, reply))
    assert {d["index"] for d in deltas} == {0}
    assert len({d["id"] for d in deltas if "id" in d}) == 2


def test_out_of_order_tool_call_indices(
    client: httpx.Client, scripted_server: ScriptedServer
) -> None:
    reply = Reply(tool_calls=CALLS, tool_call_order="out_of_order")
    chunks = streamed(client, scripted_server, reply)
    assert tool_call_deltas(chunks)[0]["index"] == 1
    assert merged_tool_calls(chunks)[0]["name"] == "get_weather"


def test_string_arguments_are_sent_verbatim(
    client: httpx.Client, scripted_server: ScriptedServer
) -> None:
    reply = Reply(tool_calls=[ScriptedToolCall("f", '{"broken": ', id="call_fixed")])
    call = post(client, scripted_server, reply)["choices"][0]["message"]["tool_calls"][0]
    assert (call["id"], call["function"]["arguments"]) == ("call_fixed", '{"broken": ')


@pytest.mark.parametrize("reason", ["length", "content_filter", "eos_token"])
def test_finish_reason_is_as_scripted(
    client: httpx.Client, scripted_server: ScriptedServer, reason: str
) -> None:
    reply = Reply(text="cut", finish_reason=reason)
    assert post(client, scripted_server, reply)["choices"][0]["finish_reason"] == reason
    assert streamed(client, scripted_server, reply)[-1]["choices"][0]["finish_reason"] == reason


def test_n_choices(client: httpx.Client, scripted_server: ScriptedServer) -> None:
    reply = Reply(text="same answer")
    body = post(client, scripted_server, reply, n=3)
    assert [c["index"] for c in body["choices"]] == [0, 1, 2]
    assert body["usage"]["completion_tokens"] == 3 * count_tokens("same answer")
    chunks = streamed(client, scripted_server, reply, n=3)
    for index in range(3):
        text = "".join(
            c["choices"][0]["delta"].get("content", "")
            for c in chunks
            if c["choices"] and c["choices"][0]["index"] == index
        )
        assert text == "same answer"


def test_extra_fields_and_model_override(
    client: httpx.Client, scripted_server: ScriptedServer
) -> None:
    reply = Reply(text="x", model="served-model", extra={"provider": "scripted"})
    body = post(client, scripted_server, reply)
    assert (body["model"], body["provider"]) == ("served-model", "scripted")
    chunks = streamed(client, scripted_server, reply)
    assert {(c["model"], c["provider"]) for c in chunks} == {("served-model", "scripted")}

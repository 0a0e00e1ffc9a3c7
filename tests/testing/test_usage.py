"""Token counts in each server's style, consistent between streamed and plain answers."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from scripted_helpers import CHAT, chat_body, stream, stream_chunks

from oaicompat.testing import Reply, ScriptedServer, ScriptedToolCall, count_tokens

USAGE_ON = {"stream_options": {"include_usage": True}}
REPLY = Reply(
    text="The answer is 42.",
    reasoning="Six times seven.",
    tool_calls=[ScriptedToolCall("note", {"value": 42})],
    cached_tokens=2,
)


def plain(client: httpx.Client, server: ScriptedServer, reply: Reply) -> dict[str, Any]:
    server.enqueue(reply)
    return client.post(CHAT, json=chat_body("What is six times seven?")).json()


def streamed(
    client: httpx.Client, server: ScriptedServer, reply: Reply, **extra: Any
) -> list[dict[str, Any]]:
    server.enqueue(reply)
    return stream_chunks(stream(client, chat_body("What is six times seven?", **extra))[1])


def test_openai_usage_matches_between_stream_and_plain(
    client: httpx.Client, scripted_server: ScriptedServer
) -> None:
    usage = plain(client, scripted_server, REPLY)["usage"]
    assert usage["completion_tokens"] == count_tokens(
        "Six times seven. The answer is 42. note " + '{"value":42}'
    )
    assert usage["prompt_tokens"] > count_tokens("What is six times seven?")
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert usage["prompt_tokens_details"] == {"cached_tokens": 2}
    assert usage["completion_tokens_details"] == {
        "reasoning_tokens": count_tokens("Six times seven.")
    }

    chunks = streamed(client, scripted_server, REPLY, **USAGE_ON)
    tail = chunks[-1]
    assert tail["choices"] == []
    assert tail["usage"] == usage
    assert all(chunk["usage"] is None for chunk in chunks[:-1])


def test_openai_stream_has_no_usage_unless_asked(
    client: httpx.Client, scripted_server: ScriptedServer
) -> None:
    chunks = streamed(client, scripted_server, REPLY)
    assert all("usage" not in chunk and chunk["choices"] for chunk in chunks)


def test_prompt_tokens_grow_with_the_prompt(client: httpx.Client) -> None:
    short = client.post(CHAT, json=chat_body("hi")).json()["usage"]["prompt_tokens"]
    long = client.post(CHAT, json=chat_body("hi " * 50)).json()["usage"]["prompt_tokens"]
    assert long - short == 49


def test_llamacpp_usage_carries_timings(
    client: httpx.Client, scripted_server: ScriptedServer
) -> None:
    reply = Reply(text="a b c", usage="llamacpp", cached_tokens=3)
    body = plain(client, scripted_server, reply)
    prompt = body["usage"]["prompt_tokens"]
    assert body["timings"]["prompt_n"] + body["timings"]["cache_n"] == prompt
    assert body["timings"]["cache_n"] == 3
    assert body["timings"]["predicted_n"] == body["usage"]["completion_tokens"] == 3

    timings_only = streamed(client, scripted_server, reply)
    assert "usage" not in timings_only[-1]
    assert timings_only[-1]["timings"] == body["timings"]
    assert timings_only[-1]["choices"][0]["finish_reason"] == "stop"

    with_usage = streamed(client, scripted_server, reply, **USAGE_ON)
    assert with_usage[-1]["choices"] == []
    assert with_usage[-1]["usage"] == body["usage"]
    assert with_usage[-1]["timings"] == body["timings"]


def test_groq_usage_under_x_groq(client: httpx.Client, scripted_server: ScriptedServer) -> None:
    reply = Reply(text="a b c", usage="groq")
    body = plain(client, scripted_server, reply)
    chunks = streamed(client, scripted_server, reply)
    groq_usage = chunks[-1]["x_groq"]["usage"]
    assert groq_usage["completion_tokens"] == body["usage"]["completion_tokens"] == 3
    assert groq_usage["prompt_tokens"] == body["usage"]["prompt_tokens"]
    assert all("x_groq" not in chunk for chunk in chunks[:-1])


def test_running_totals_on_every_chunk(
    client: httpx.Client, scripted_server: ScriptedServer
) -> None:
    reply = Reply(text="one two three four five", reasoning="why not", usage="running")
    expected = plain(client, scripted_server, reply)["usage"]["completion_tokens"]
    chunks = streamed(client, scripted_server, reply)
    totals = [chunk["usage"]["completion_tokens"] for chunk in chunks]
    assert totals == sorted(totals)
    assert len(set(totals)) > 3
    assert totals[-1] == expected == 7
    assert {chunk["usage"]["prompt_tokens"] for chunk in chunks} == {
        chunks[0]["usage"]["prompt_tokens"]
    }


def test_no_usage_at_all(client: httpx.Client, scripted_server: ScriptedServer) -> None:
    reply = Reply(text="quiet", usage="none")
    assert "usage" not in plain(client, scripted_server, reply)
    chunks = streamed(client, scripted_server, reply, **USAGE_ON)
    assert all("usage" not in chunk for chunk in chunks)
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


@pytest.mark.parametrize("stream_it", [False, True])
def test_scripted_counts_override_the_count(
    client: httpx.Client, scripted_server: ScriptedServer, stream_it: bool
) -> None:
    reply = Reply(text="x", prompt_tokens=1000, completion_tokens=77)
    if stream_it:
        usage = streamed(client, scripted_server, reply, **USAGE_ON)[-1]["usage"]
    else:
        usage = plain(client, scripted_server, reply)["usage"]
    assert (usage["prompt_tokens"], usage["completion_tokens"], usage["total_tokens"]) == (
        1000,
        77,
        1077,
    )

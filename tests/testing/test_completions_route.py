"""The scripted server's legacy ``POST /v1/completions`` route, JSON and SSE."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from scripted_helpers import CHAT, chat_body, stream_chunks

from oaicompat import Client, StreamError
from oaicompat.testing import (
    COMPLETIONS_PATH,
    RawReply,
    Reply,
    ScriptedServer,
    count_tokens,
)

COMPLETIONS = "/completions"


def prompt_body(prompt: Any = "Once upon a time", **extra: Any) -> dict[str, Any]:
    return {"model": "scripted-model", "prompt": prompt, **extra}


def stream_text(client: httpx.Client, body: dict[str, Any]) -> list[dict[str, Any]]:
    with client.stream("POST", COMPLETIONS, json={**body, "stream": True}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        raw = response.read()
    assert raw.rstrip().endswith(b"data: [DONE]")
    return stream_chunks(raw)


def test_the_default_policy_answers_a_prompt(
    client: httpx.Client, scripted_server: ScriptedServer
) -> None:
    response = client.post(COMPLETIONS, json=prompt_body())
    assert response.status_code == 200
    answer = response.json()
    assert answer["object"] == "text_completion"
    assert answer["id"].startswith("cmpl-")
    assert answer["model"] == "scripted-model"
    [choice] = answer["choices"]
    assert "message" not in choice
    assert choice["text"] == "You said: Once upon a time"
    assert choice["finish_reason"] == "stop"
    usage = answer["usage"]
    assert usage["prompt_tokens"] == count_tokens("Once upon a time")
    assert usage["completion_tokens"] == count_tokens(choice["text"])
    [request] = scripted_server.requests
    assert (request.method, request.path) == ("POST", COMPLETIONS_PATH)
    assert request.json["prompt"] == "Once upon a time"


def test_max_tokens_and_stop_cut_the_text(client: httpx.Client) -> None:
    cut = client.post(COMPLETIONS, json=prompt_body(max_tokens=3)).json()["choices"][0]
    assert count_tokens(cut["text"]) == 3
    assert cut["finish_reason"] == "length"
    stopped = client.post(COMPLETIONS, json=prompt_body(stop=["upon"])).json()["choices"][0]
    assert stopped["text"] == "You said: Once "


def test_a_stream_sends_text_deltas_then_usage(client: httpx.Client) -> None:
    chunks = stream_text(client, prompt_body(stream_options={"include_usage": True}))
    assert {chunk["object"] for chunk in chunks} == {"text_completion"}
    texts = [choice["text"] for chunk in chunks for choice in chunk["choices"]]
    assert "".join(texts) == "You said: Once upon a time"
    assert len([text for text in texts if text]) > 1  # really streamed, word by word
    assert all("delta" not in choice for chunk in chunks for choice in chunk["choices"])
    finishes = [c["finish_reason"] for chunk in chunks for c in chunk["choices"]]
    assert finishes[-1] == "stop"
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["total_tokens"] == (
        count_tokens("Once upon a time") + count_tokens("You said: Once upon a time")
    )


def test_a_queued_reply_answers_the_route_in_both_shapes(
    client: httpx.Client, scripted_server: ScriptedServer
) -> None:
    reply = Reply(text="a cat sat", reasoning="think first", reasoning_field="think", chunk_size=4)
    scripted_server.enqueue(reply, times=2, path=COMPLETIONS_PATH)
    whole = client.post(COMPLETIONS, json=prompt_body()).json()
    assert whole["choices"][0]["text"] == "<think>\nthink first\n</think>\n\na cat sat"
    chunks = stream_text(client, prompt_body())
    texts = [choice["text"] for chunk in chunks for choice in chunk["choices"]]
    assert "".join(texts) == whole["choices"][0]["text"]
    assert max(len(text) for text in texts) == 4
    assert scripted_server.pending(COMPLETIONS_PATH) == 0


def test_queues_are_per_route(client: httpx.Client, scripted_server: ScriptedServer) -> None:
    scripted_server.enqueue(Reply(text="for chat only"))
    scripted_server.enqueue(Reply(text="for completions only"), path=COMPLETIONS_PATH)
    completion = client.post(COMPLETIONS, json=prompt_body()).json()
    chat = client.post(CHAT, json=chat_body()).json()
    assert completion["choices"][0]["text"] == "for completions only"
    assert chat["choices"][0]["message"]["content"] == "for chat only"


@pytest.mark.parametrize("prompt", [None, ["a", "b"], 3])
def test_a_prompt_that_is_not_text_is_refused(client: httpx.Client, prompt: Any) -> None:
    response = client.post(COMPLETIONS, json=prompt_body(prompt))
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "prompt"


def test_a_prompt_over_the_context_window_is_refused() -> None:
    with ScriptedServer(context_window=5) as server:
        response = httpx.post(
            server.base_url + COMPLETIONS, json=prompt_body("one two three four five six")
        )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "context_length_exceeded"


def test_a_reply_is_refused_for_routes_that_do_not_take_one() -> None:
    server = ScriptedServer()
    server.enqueue(Reply(text="fine"), path=COMPLETIONS_PATH)
    with pytest.raises(TypeError, match="use RawReply for /v1/models"):
        server.enqueue(Reply(text="no"), path="/v1/models")
    server.enqueue(RawReply(body={"data": []}), path="/v1/models")


def test_the_core_client_reads_both_shapes(scripted_server: ScriptedServer) -> None:
    with Client(scripted_server.base_url, "scripted-model") as client:
        whole = client.complete("Tell me", max_tokens=50)
        with client.stream_complete("Tell me", max_tokens=50) as stream:
            pieces = [chunk.content for chunk in stream]
        streamed = stream.final()
    assert whole.content == streamed.content == "You said: Tell me"
    assert "".join(pieces) == streamed.content
    assert whole.usage == streamed.usage
    assert streamed.usage is not None
    assert streamed.usage.input_tokens == count_tokens("Tell me")


def test_wire_faults_apply_to_the_legacy_stream(scripted_server: ScriptedServer) -> None:
    scripted_server.enqueue(Reply(text="one two three", error_after=2), path=COMPLETIONS_PATH)
    with (
        Client(scripted_server.base_url, "scripted-model", max_retries=0) as client,
        pytest.raises(StreamError) as caught,
    ):
        client.stream_complete("go").final()
    assert caught.value.partial is not None
    assert caught.value.partial.content == "one two"

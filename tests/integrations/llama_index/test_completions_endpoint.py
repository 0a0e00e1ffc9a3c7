"""``use_completions_endpoint=True``: LlamaIndex's four ``complete`` methods over the
legacy ``/v1/completions`` route of the scripted server (real HTTP)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from itertools import pairwise
from typing import Any

import pytest
from li_helpers import CallbackLog, EventLog, words
from llama_index.core.base.llms.types import ChatMessage, CompletionResponse
from llama_index.core.callbacks import CallbackManager, TokenCountingHandler

from oaicompat.llama_index import OpenAICompatible
from oaicompat.testing import (
    CHAT_PATH,
    COMPLETIONS_PATH,
    Reply,
    ScriptedServer,
    count_tokens,
    server_error,
)

PROMPT = "Once upon a time"
ANSWER = f"You said: {PROMPT}"


@pytest.fixture(scope="module")
def server() -> Iterator[ScriptedServer]:
    with ScriptedServer() as running:
        yield running


@pytest.fixture
async def make_llm(server: ScriptedServer) -> AsyncIterator[Any]:
    server.clear()
    made: list[OpenAICompatible] = []

    def make(**fields: Any) -> OpenAICompatible:
        fields.setdefault("use_completions_endpoint", True)
        llm = OpenAICompatible(
            model=server.model, base_url=server.base_url, context_window=8192, **fields
        )
        made.append(llm)
        return llm

    yield make
    for llm in made:
        await llm.aclose()


async def run(llm: OpenAICompatible, mode: str, stream: bool, **kw: Any) -> list[Any]:
    """Every response one call produced: one, or each streamed step."""
    if mode == "sync":
        return list(llm.stream_complete(PROMPT, **kw)) if stream else [llm.complete(PROMPT, **kw)]
    if stream:
        return [response async for response in await llm.astream_complete(PROMPT, **kw)]
    return [await llm.acomplete(PROMPT, **kw)]


def bodies(server: ScriptedServer, path: str = COMPLETIONS_PATH) -> list[dict[str, Any]]:
    return [request.json for request in server.requests if request.path == path]


GRID = [(mode, stream) for mode in ("sync", "async") for stream in (False, True)]


@pytest.mark.parametrize(("mode", "stream"), GRID)
async def test_every_complete_method_uses_the_completions_route(
    make_llm: Any, server: ScriptedServer, event_log: EventLog, mode: str, stream: bool
) -> None:
    callbacks = CallbackLog()
    counter = TokenCountingHandler(tokenizer=words)
    llm = make_llm(callback_manager=CallbackManager([callbacks, counter]), temperature=0.2)

    responses = await run(llm, mode, stream)

    assert all(isinstance(response, CompletionResponse) for response in responses)
    final = responses[-1]
    assert final.text == ANSWER
    if stream:
        assert len(responses) > 3  # word by word, then the whole answer
        assert "".join(response.delta or "" for response in responses) == ANSWER
        texts = [response.text for response in responses]
        assert all(later.startswith(earlier) for earlier, later in pairwise(texts))
        assert final.delta == ""

    # Usage as the server counted it, in raw and in additional_kwargs.
    prompt_tokens, answer_tokens = count_tokens(PROMPT), count_tokens(ANSWER)
    assert final.raw["usage"]["prompt_tokens"] == prompt_tokens
    assert final.raw["usage"]["completion_tokens"] == answer_tokens
    assert final.additional_kwargs["prompt_tokens"] == prompt_tokens
    assert final.additional_kwargs["completion_tokens"] == answer_tokens
    assert final.additional_kwargs["total_tokens"] == prompt_tokens + answer_tokens

    (body,) = bodies(server)
    assert bodies(server, CHAT_PATH) == []
    assert body["prompt"] == PROMPT
    assert "messages" not in body
    assert body["temperature"] == 0.2
    assert bool(body.get("stream")) is stream
    if stream:
        assert body["stream_options"] == {"include_usage": True}

    # One LLM callback event, closed with the final response, and counted.
    assert [phase for phase, _ in callbacks.events] == ["start", "end"]
    assert callbacks.events[0][1]["formatted_prompt"] == PROMPT
    assert callbacks.events[1][1]["completion"].text == ANSWER
    (counted,) = counter.llm_token_counts
    assert counted.prompt_token_count == prompt_tokens
    assert counted.completion_token_count == answer_tokens
    assert counter.total_llm_token_count == prompt_tokens + answer_tokens

    names = event_log.names()
    assert names[0] == "LLMCompletionStartEvent"
    assert names[-1] == "LLMCompletionEndEvent"
    assert ("LLMCompletionInProgressEvent" in names) is stream


@pytest.mark.parametrize(("mode", "stream"), GRID)
async def test_without_the_flag_complete_goes_through_chat(
    make_llm: Any, server: ScriptedServer, mode: str, stream: bool
) -> None:
    llm = make_llm(use_completions_endpoint=False)
    responses = await run(llm, mode, stream)
    assert responses[-1].text == ANSWER
    assert bodies(server) == []
    (body,) = bodies(server, CHAT_PATH)
    assert body["messages"] == [{"role": "user", "content": PROMPT}]


async def test_chat_keeps_the_chat_route_and_metadata_stays_chat(
    make_llm: Any, server: ScriptedServer
) -> None:
    llm = make_llm()
    assert llm.metadata.is_chat_model is True
    answer = await llm.achat([ChatMessage(role="user", content="Hi")])
    assert answer.message.content == "You said: Hi"
    assert len(bodies(server, CHAT_PATH)) == 1
    assert bodies(server) == []


def test_the_flag_is_serialized_and_the_key_is_not(make_llm: Any) -> None:
    llm = make_llm(api_key="sk-secret-value")
    dumped = llm.to_dict()
    assert dumped["use_completions_endpoint"] is True
    assert "sk-secret-value" not in json.dumps(dumped)
    restored = OpenAICompatible.from_dict(dumped)
    assert restored.use_completions_endpoint is True


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_an_unformatted_prompt_goes_through_completion_to_prompt(
    make_llm: Any, server: ScriptedServer, mode: str
) -> None:
    llm = make_llm(completion_to_prompt=lambda text: f"[INST] {text} [/INST]")
    await run(llm, mode, stream=False)
    await run(llm, mode, stream=True, formatted=True)
    first, second = bodies(server)
    assert first["prompt"] == f"[INST] {PROMPT} [/INST]"
    assert second["prompt"] == PROMPT


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_request_options_reach_the_body(
    make_llm: Any, server: ScriptedServer, mode: str
) -> None:
    llm = make_llm(max_tokens=3, additional_kwargs={"seed": 11, "stop": ["\n"]})
    (response,) = await run(llm, mode, stream=False, top_p=0.5)
    (body,) = bodies(server)
    assert body["max_tokens"] == 3
    assert (body["seed"], body["stop"], body["top_p"]) == (11, ["\n"], 0.5)
    assert count_tokens(response.text) == 3
    assert response.raw["choices"][0]["finish_reason"] == "length"


@pytest.mark.parametrize(("mode", "stream"), GRID)
async def test_the_core_retries_and_the_callback_sees_the_answer(
    make_llm: Any, server: ScriptedServer, mode: str, stream: bool
) -> None:
    callbacks = CallbackLog()
    server.enqueue(server_error(), path=COMPLETIONS_PATH)
    server.enqueue(Reply(text="second try"), path=COMPLETIONS_PATH)
    llm = make_llm(callback_manager=CallbackManager([callbacks]), max_retries=1)
    responses = await run(llm, mode, stream)
    assert responses[-1].text == "second try"
    assert len(bodies(server)) == 2
    assert [phase for phase, _ in callbacks.events] == ["start", "end"]


async def test_reasoning_deltas_are_flagged_while_streaming(
    make_llm: Any, server: ScriptedServer
) -> None:
    server.enqueue(
        Reply(text="the answer", reasoning="first think", reasoning_field="think"),
        path=COMPLETIONS_PATH,
    )
    llm = make_llm(profile="ollama")  # splits <think> out of the text
    responses = [response async for response in await llm.astream_complete(PROMPT)]
    thinking = "".join(r.additional_kwargs.get("thinking_delta", "") for r in responses)
    assert thinking.strip() == "first think"
    assert responses[-1].text == "the answer"

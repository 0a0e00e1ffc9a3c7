"""OpenAICompatible against real llama.cpp servers running a random-weight tiny model.

The model writes nonsense, so these tests assert protocol facts (usage, streaming
shape, the context window, grammar-constrained JSON, forced tool calls, what the
engines send) rather than answers. What needs a capable model is marked xfail.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterator
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from llama_index.core import Document, VectorStoreIndex
from llama_index.core.agent.workflow import FunctionAgent, ToolCallResult
from llama_index.core.base.llms.types import ChatMessage, ToolCallBlock
from llama_index.core.callbacks import CallbackManager, TokenCountingHandler
from llama_index.core.chat_engine import SimpleChatEngine
from llama_index.core.embeddings import MockEmbedding
from llama_index.core.prompts import PromptTemplate
from llama_index.core.tools import FunctionTool
from pydantic import BaseModel

from oaicompat.llama_index import OpenAICompatible

if TYPE_CHECKING:
    from conftest import LiveServer

pytestmark = pytest.mark.live

MAX_TOKENS = 12
FACT = "The capital of Freedonia is Fredville."


def _words(text: str) -> list[str]:
    return text.split()


class Sent:
    """Request bodies seen on the wire, through httpx event hooks."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []

    def record(self, request: httpx.Request) -> None:
        if request.url.path.endswith("/chat/completions"):
            self.bodies.append(json.loads(request.content))

    async def arecord(self, request: httpx.Request) -> None:
        self.record(request)


LLMFactory = Callable[..., OpenAICompatible]


@pytest.fixture
def sent() -> Sent:
    return Sent()


@pytest.fixture
def sync_http(sent: Sent) -> Iterator[httpx.Client]:
    with httpx.Client(event_hooks={"request": [sent.record]}, timeout=120) as client:
        yield client


@pytest.fixture
async def make_llm(sent: Sent, sync_http: httpx.Client) -> AsyncIterator[tuple[LLMFactory, Sent]]:
    """``make(server, **fields)``: an adapter on a live server whose requests are recorded."""
    async_http = httpx.AsyncClient(event_hooks={"request": [sent.arecord]}, timeout=120)
    made: list[OpenAICompatible] = []

    def make(server: LiveServer, **fields: Any) -> OpenAICompatible:
        fields.setdefault("max_tokens", MAX_TOKENS)
        fields.setdefault("temperature", 0)
        llm = OpenAICompatible(
            model=server.model,
            base_url=server.base_url,
            http_client=sync_http,
            async_http_client=async_http,
            **fields,
        )
        made.append(llm)
        return llm

    yield make, sent
    for llm in made:
        await llm.aclose()
    await async_http.aclose()


def _assert_real_usage(additional_kwargs: dict[str, Any]) -> None:
    assert additional_kwargs["prompt_tokens"] > 0
    assert 0 < additional_kwargs["completion_tokens"] <= MAX_TOKENS
    assert additional_kwargs["total_tokens"] == (
        additional_kwargs["prompt_tokens"] + additional_kwargs["completion_tokens"]
    )


async def test_chat_and_complete_report_real_usage(
    llama_server: LiveServer, make_llm: tuple[LLMFactory, Sent]
) -> None:
    make, _ = make_llm
    counter = TokenCountingHandler(tokenizer=_words)
    llm = make(llama_server, callback_manager=CallbackManager([counter]), context_window=2048)
    messages = [ChatMessage(role="user", content="Tell me a story.")]

    whole = llm.chat(messages)
    _assert_real_usage(whole.additional_kwargs)
    assert whole.raw["usage"]["prompt_tokens"] == whole.additional_kwargs["prompt_tokens"]

    streamed = list(llm.stream_chat(messages))
    final = streamed[-1]
    assert "".join(r.delta or "" for r in streamed) == final.message.content
    _assert_real_usage(final.additional_kwargs)

    astreamed = [r async for r in await llm.astream_chat(messages)]
    _assert_real_usage(astreamed[-1].additional_kwargs)
    completion = await llm.acomplete("Once upon a time")
    _assert_real_usage(completion.additional_kwargs)

    # The handler counted what the server reported, streams included.
    assert [e.completion_token_count for e in counter.llm_token_counts] == [
        whole.additional_kwargs["completion_tokens"],
        final.additional_kwargs["completion_tokens"],
        astreamed[-1].additional_kwargs["completion_tokens"],
        completion.additional_kwargs["completion_tokens"],
    ]


def test_context_window_comes_from_the_server(
    llama_server: LiveServer, make_llm: tuple[LLMFactory, Sent]
) -> None:
    from oaicompat.client import Client

    if not hasattr(Client, "server_info"):
        pytest.skip("the core's discovery (Client.server_info) has not landed")
    make, _ = make_llm
    assert make(llama_server).metadata.context_window == llama_server.context_size


@pytest.mark.parametrize("streaming", [False, True])
def test_query_engine_sends_the_retrieved_context(
    llama_server: LiveServer, make_llm: tuple[LLMFactory, Sent], streaming: bool
) -> None:
    make, sent = make_llm
    llm = make(llama_server, context_window=2048)
    index = VectorStoreIndex.from_documents(
        [Document(text=FACT), Document(text="Sylvania exports cheese.")],
        embed_model=MockEmbedding(embed_dim=8),
    )
    engine = index.as_query_engine(llm=llm, streaming=streaming, similarity_top_k=2)
    response = engine.query("What is the capital of Freedonia?")
    text = "".join(response.response_gen) if streaming else str(response)
    assert isinstance(text, str)
    (body,) = sent.bodies
    assert body.get("stream", False) is streaming
    assert FACT in json.dumps(body["messages"])


def test_simple_chat_engine_sends_history(
    llama_server: LiveServer, make_llm: tuple[LLMFactory, Sent]
) -> None:
    make, sent = make_llm
    engine = SimpleChatEngine.from_defaults(llm=make(llama_server, context_window=2048))
    first = engine.chat("My name is Ada.")
    engine.chat("What is my name?")
    roles = [m["role"] for m in sent.bodies[1]["messages"]]
    assert roles[-3:] == ["user", "assistant", "user"]
    assert sent.bodies[1]["messages"][-2]["content"] == str(first)


class Person(BaseModel):
    name: str
    age: int


def test_structured_predict_is_schema_valid(
    llama_server: LiveServer, make_llm: tuple[LLMFactory, Sent]
) -> None:
    make, _ = make_llm
    # Grammar-constrained JSON needs room to close the object.
    llm = make(llama_server, context_window=2048, max_tokens=200)
    person = llm.structured_predict(Person, PromptTemplate("Extract: {text}"), text="Al is 30.")
    assert isinstance(person, Person)


def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


ADD = FunctionTool.from_defaults(fn=add)


@pytest.mark.parametrize("stream", [False, True])
async def test_forced_tool_call_is_schema_valid(
    llama_cpp_python_server: LiveServer, make_llm: tuple[LLMFactory, Sent], stream: bool
) -> None:
    make, sent = make_llm
    llm = make(llama_cpp_python_server, context_window=2048, max_tokens=100)
    if stream:
        responses = [
            r
            async for r in await llm.astream_chat_with_tools(
                [ADD], user_msg="Add 2 and 3.", tool_choice="add"
            )
        ]
        # Every step must be readable by an agent, half-sent arguments included.
        for response in responses:
            llm.get_tool_calls_from_response(response, error_on_no_tool_call=False)
        response = responses[-1]
    else:
        response = await llm.achat_with_tools([ADD], user_msg="Add 2 and 3.", tool_choice="add")
    (block,) = [b for b in response.message.blocks if isinstance(b, ToolCallBlock)]
    (selection,) = llm.get_tool_calls_from_response(response)
    assert selection.tool_name == "add"
    assert selection.tool_id
    assert set(selection.tool_kwargs) == {"a", "b"}
    assert all(isinstance(value, int) for value in selection.tool_kwargs.values())
    assert sent.bodies[-1]["tool_choice"] == {"type": "function", "function": {"name": "add"}}
    assert block.tool_call_id == selection.tool_id


async def test_function_agent_runs_a_forced_tool_call(
    llama_cpp_python_server: LiveServer, make_llm: tuple[LLMFactory, Sent]
) -> None:
    make, sent = make_llm
    llm = make(llama_cpp_python_server, context_window=2048, max_tokens=100)
    agent = FunctionAgent(tools=[ADD], llm=llm, initial_tool_choice="add", streaming=False)
    handler = agent.run(user_msg="Add 2 and 3.")
    results = [
        event async for event in handler.stream_events() if isinstance(event, ToolCallResult)
    ]
    await handler
    assert results
    first = results[0]
    assert first.tool_name == "add"
    assert first.tool_output.content == str(add(**first.tool_kwargs))
    # The tool's result went back to the server under the call's id.
    tool_messages = [m for m in sent.bodies[1]["messages"] if m["role"] == "tool"]
    assert tool_messages[0]["tool_call_id"] == first.tool_id


@pytest.mark.xfail(
    reason="needs a capable model: choosing a second tool call and writing an answer "
    "from the results is up to the model, and these weights are random",
    strict=False,
)
async def test_function_agent_calls_a_tool_twice_then_answers(
    llama_cpp_python_server: LiveServer, make_llm: tuple[LLMFactory, Sent]
) -> None:
    make, _ = make_llm
    llm = make(llama_cpp_python_server, context_window=2048, max_tokens=100)
    agent = FunctionAgent(tools=[ADD], llm=llm, streaming=True)
    handler = agent.run(user_msg="What is 2 + 3, plus 4? Use the add tool for each step.")
    results = [
        event async for event in handler.stream_events() if isinstance(event, ToolCallResult)
    ]
    answer = await handler
    assert [r.tool_output.content for r in results] == ["5", "9"]
    assert "9" in str(answer)

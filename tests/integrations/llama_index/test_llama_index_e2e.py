"""End to end over real HTTP: LlamaIndex engines and agents against the scripted server."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from li_helpers import words
from llama_index.core import Document, VectorStoreIndex
from llama_index.core.agent.workflow import AgentStream, FunctionAgent, ToolCallResult
from llama_index.core.callbacks import CallbackManager, TokenCountingHandler
from llama_index.core.chat_engine import SimpleChatEngine
from llama_index.core.embeddings import MockEmbedding
from llama_index.core.llms import ChatMessage
from llama_index.core.prompts import PromptTemplate
from llama_index.core.tools import FunctionTool
from llama_index.core.types import PydanticProgramMode
from pydantic import BaseModel

from oaicompat.llama_index import OpenAICompatible
from oaicompat.testing import RecordedRequest, Reply, ScriptedServer, ScriptedToolCall

FACT = "The capital of Freedonia is Fredville."


@pytest.fixture(scope="module")
def server() -> Iterator[ScriptedServer]:
    with ScriptedServer() as running:
        yield running


@pytest.fixture
async def llm(server: ScriptedServer) -> AsyncIterator[OpenAICompatible]:
    server.clear()
    adapter = OpenAICompatible(model=server.model, base_url=server.base_url, context_window=8192)
    yield adapter
    await adapter.aclose()


def _chat_bodies(server: ScriptedServer) -> list[dict[str, Any]]:
    return [request.json for request in server.chat_requests]


def _index() -> VectorStoreIndex:
    documents = [
        Document(text=FACT),
        Document(text="Sylvania exports cheese and violins."),
    ]
    return VectorStoreIndex.from_documents(documents, embed_model=MockEmbedding(embed_dim=8))


def test_query_engine_answers_with_the_retrieved_context(
    llm: OpenAICompatible, server: ScriptedServer
) -> None:
    engine = _index().as_query_engine(llm=llm, similarity_top_k=2)
    response = engine.query("What is the capital of Freedonia?")
    # The scripted model echoes its prompt, so the answer shows what the engine sent.
    assert FACT in str(response)
    assert "What is the capital of Freedonia?" in str(response)
    (body,) = _chat_bodies(server)
    assert body.get("stream") is not True


def test_query_engine_streams(llm: OpenAICompatible, server: ScriptedServer) -> None:
    counter = TokenCountingHandler(tokenizer=words)
    engine = _index().as_query_engine(llm=llm, streaming=True, similarity_top_k=2)
    # The engine hands the LLM its own callback manager; observe the LLM after that.
    llm.callback_manager = CallbackManager([counter])
    response = engine.query("What is the capital of Freedonia?")
    pieces = list(response.response_gen)
    assert len(pieces) > 3  # word by word, not one lump
    assert FACT in "".join(pieces)
    (body,) = _chat_bodies(server)
    assert body["stream"] is True
    # Usage of the streamed call, as the server reported it.
    (event,) = counter.llm_token_counts
    assert event.prompt_token_count > 10
    assert event.completion_token_count > 10


async def test_query_engine_async(llm: OpenAICompatible) -> None:
    engine = _index().as_query_engine(llm=llm, similarity_top_k=2)
    response = await engine.aquery("What is the capital of Freedonia?")
    assert FACT in str(response)


def test_simple_chat_engine_keeps_history(llm: OpenAICompatible, server: ScriptedServer) -> None:
    engine = SimpleChatEngine.from_defaults(llm=llm, system_prompt="You are terse.")
    first = engine.chat("My name is Ada.")
    assert str(first) == "You said: My name is Ada."
    streamed = engine.stream_chat("What is my name?")
    assert "".join(streamed.response_gen) == "You said: What is my name?"
    second_request = _chat_bodies(server)[1]
    assert [m["role"] for m in second_request["messages"]] == [
        "system",
        "user",
        "assistant",
        "user",
    ]
    assert second_request["messages"][2]["content"] == "You said: My name is Ada."


def add(a: int, b: int) -> int:
    """Add two integers and return the sum."""
    return a + b


def _second_call(request: RecordedRequest) -> Reply:
    """The scripted model adds 4 to whatever the first call returned."""
    tool_result = request.json["messages"][-1]
    assert tool_result["role"] == "tool"
    return Reply(
        tool_calls=[ScriptedToolCall("add", {"a": int(tool_result["content"]), "b": 4}, "call_2")]
    )


@pytest.mark.parametrize("streaming", [True, False])
async def test_function_agent_calls_a_tool_twice_then_answers(
    llm: OpenAICompatible, server: ScriptedServer, streaming: bool
) -> None:
    server.enqueue(Reply(tool_calls=[ScriptedToolCall("add", {"a": 2, "b": 3}, "call_1")]))
    server.enqueue(_second_call)
    agent = FunctionAgent(
        tools=[FunctionTool.from_defaults(fn=add)],
        llm=llm,
        system_prompt="Use the add tool for arithmetic.",
        streaming=streaming,
    )
    handler = agent.run(user_msg="What is 2 + 3, plus 4?")
    tool_results: list[ToolCallResult] = []
    deltas: list[str] = []
    async for event in handler.stream_events():
        if isinstance(event, ToolCallResult):
            tool_results.append(event)
        elif isinstance(event, AgentStream):
            deltas.append(event.delta)
    result = await handler

    assert [(r.tool_id, r.tool_kwargs, r.tool_output.content) for r in tool_results] == [
        ("call_1", {"a": 2, "b": 3}, "5"),
        ("call_2", {"a": 5, "b": 4}, "9"),
    ]
    assert "9" in str(result)
    bodies = _chat_bodies(server)
    assert len(bodies) == 3
    assert all(body.get("stream", False) is streaming for body in bodies)
    last = bodies[-1]["messages"]
    assert [m["role"] for m in last[-4:]] == ["assistant", "tool", "assistant", "tool"]
    assert last[-4]["tool_calls"][0]["id"] == "call_1"
    assert last[-3] == {"role": "tool", "content": "5", "tool_call_id": "call_1"}
    if streaming:
        assert "9" in "".join(deltas)


class Person(BaseModel):
    """A person mentioned in the text."""

    name: str
    age: int


EXTRACT = PromptTemplate("Extract the person: {text}")


@pytest.mark.parametrize(
    ("fields", "asked_with"),
    [
        ({}, "response_format"),  # the core picks json_schema for this server
        ({"structured_output_method": "tool"}, "tools"),  # the core forces a tool call
        ({"pydantic_program_mode": PydanticProgramMode.FUNCTION}, "tools"),  # LlamaIndex's own
    ],
)
async def test_structured_predict_into_a_pydantic_model(
    server: ScriptedServer, fields: dict[str, Any], asked_with: str
) -> None:
    server.clear()
    llm = OpenAICompatible(
        model=server.model, base_url=server.base_url, context_window=8192, **fields
    )
    person = llm.structured_predict(Person, EXTRACT, text="Alice is 30 years old.")
    assert isinstance(person, Person)
    assert person.age == 30
    person = await llm.astructured_predict(Person, EXTRACT, text="Bob is 41.")
    assert person.age == 41

    partials = list(llm.stream_structured_predict(Person, EXTRACT, text="Dan is 52."))
    assert partials[-1] == Person(name=partials[-1].name, age=52)
    stream = await llm.astream_structured_predict(Person, EXTRACT, text="Eve is 63.")
    apartials = [partial async for partial in stream]
    assert isinstance(apartials[-1], Person)
    assert apartials[-1].age == 63

    bodies = _chat_bodies(server)
    assert len(bodies) == 4
    for body in bodies:
        assert '"age"' in json.dumps(body[asked_with])
    await llm.aclose()


async def test_structured_llm(llm: OpenAICompatible) -> None:
    structured = llm.as_structured_llm(Person)
    answer = structured.chat([ChatMessage(role="user", content="Carol is 25.")])
    assert isinstance(answer.raw, Person)
    assert answer.raw.age == 25
    assert Person.model_validate_json(answer.message.content or "") == answer.raw
    streamed = list(structured.stream_chat([ChatMessage(role="user", content="Carol is 25.")]))
    assert Person.model_validate_json(streamed[-1].message.content or "").age == 25


def test_discovered_context_window(server: ScriptedServer) -> None:
    from oaicompat.client import Client

    if not hasattr(Client, "server_info"):
        pytest.skip("the core's discovery (Client.server_info) has not landed")
    llm = OpenAICompatible(model=server.model, base_url=server.base_url)
    assert llm.metadata.context_window == server.context_window
    llm.close()

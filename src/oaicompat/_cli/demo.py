"""``oaicompat demo``: the core client, LangChain and LlamaIndex against one server.

Four short sections, each printing the streamed text, any tool calls and the
token usage: a streamed chat and a tool-calling round through the core client,
a LangChain chain, and a LlamaIndex query engine (with a mock embedding, so
no embedding model is needed). A section whose framework is not installed is
skipped with the install line; a section that fails prints one error line and
the demo goes on, then exits non-zero.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from oaicompat._cli.chat import AnswerPrinter, ChatOptions, answer, show_tool_calls, show_usage
from oaicompat._cli.console import Console, describe_error
from oaicompat._cli.target import Target
from oaicompat.display import format_usage
from oaicompat.errors import OAICompatError
from oaicompat.types import Message, Usage

QUESTION = "What is an OpenAI-compatible server?"
WEATHER_PROMPT = "What is the weather in Paris? Use the get_weather tool."
FACT = "The capital of Freedonia is Fredville. It lies on the river Fred."
FACT_QUESTION = "What is the capital of Freedonia?"
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The current weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string", "description": "The city's name"}},
            "required": ["city"],
        },
    },
}


class MissingExtra(Exception):
    """A framework the section needs is not installed."""


def get_weather(city: str = "somewhere") -> str:
    return f"Sunny and 21 degrees in {city}"


def core_stream(target: Target, console: Console) -> None:
    console.line(f"you: {QUESTION}")
    with target.client() as client:
        answer(client, [{"role": "user", "content": QUESTION}], ChatOptions(), console)


def core_tools(target: Target, console: Console) -> None:
    console.line(f"you: {WEATHER_PROMPT}")
    messages: list[Message] = [{"role": "user", "content": WEATHER_PROMPT}]
    with target.client() as client:
        first = client.chat(messages, tools=[WEATHER_TOOL])
        show_tool_calls(console, first)
        show_usage(console, first)
        if not first.tool_calls:
            console.note("The model answered without calling the tool:")
            printer = AnswerPrinter(console)
            printer.whole(first)
            printer.end(first)
            return
        messages.append(first.to_message())
        for call in first.tool_calls:
            city = call.arguments.get("city")
            result = get_weather(city) if isinstance(city, str) else get_weather()
            console.line(f"tool result: {result}")
            messages.append({"role": "tool", "tool_call_id": call.id, "content": result})
        answer(client, messages, ChatOptions(), console)


def _require(extra: str, module: str) -> None:
    try:
        __import__(module)
    except ImportError:
        raise MissingExtra(f'needs {module}: pip install "oaicompat[{extra}]"') from None


def langchain_chain(target: Target, console: Console) -> None:
    _require("langchain", "langchain_core")
    from langchain_core.prompts import ChatPromptTemplate
    from pydantic import SecretStr

    from oaicompat.langchain import ChatOpenAICompatible

    llm = ChatOpenAICompatible(
        model_name=target.model or "-",
        base_url=target.base_url,
        api_key=SecretStr(target.api_key) if target.api_key else None,
        server_profile=target.profile,
        request_timeout=target.timeout,
    )
    prompt = ChatPromptTemplate.from_messages(
        [("system", "Answer in one sentence."), ("human", "{question}")]
    )
    chain = prompt | llm
    console.line(f"chain: prompt | ChatOpenAICompatible; question: {QUESTION}")
    full: Any = None
    try:
        for chunk in chain.stream({"question": QUESTION}):
            console.write(chunk.text)
            full = chunk if full is None else full + chunk
    finally:
        llm.close()
    console.line()
    counts = full.usage_metadata if full is not None else None
    usage = None
    if counts:
        usage = Usage(counts["input_tokens"], counts["output_tokens"], counts["total_tokens"])
    console.note(f"[{format_usage(usage)}]")


def llama_index_query(target: Target, console: Console) -> None:
    _require("llama-index", "llama_index.core")
    from llama_index.core import Document, VectorStoreIndex
    from llama_index.core.callbacks import CallbackManager, TokenCountingHandler
    from llama_index.core.embeddings import MockEmbedding

    from oaicompat.llama_index import OpenAICompatible

    llm = OpenAICompatible(
        model=target.model or "-",
        base_url=target.base_url,
        api_key=target.api_key,
        profile=target.profile,
        timeout=target.timeout,
    )
    index = VectorStoreIndex.from_documents(
        [Document(text=FACT)], embed_model=MockEmbedding(embed_dim=8)
    )
    engine = index.as_query_engine(llm=llm, streaming=True)
    # The engine hands the LLM the global callback manager; count on one of our own.
    # The counts are the server's (the adapter reports them), the tokenizer only a fallback.
    counter = TokenCountingHandler(tokenizer=str.split)
    llm.callback_manager = CallbackManager([counter])
    console.line(f"document: {FACT}")
    console.line(f"query: {FACT_QUESTION}")
    try:
        streaming = engine.query(FACT_QUESTION)
        for text in streaming.response_gen:  # type: ignore[union-attr]
            console.write(text)
    finally:
        llm.close()
    console.line()
    usage = None
    if counter.llm_token_counts:
        usage = Usage(
            counter.prompt_llm_token_count,
            counter.completion_llm_token_count,
            counter.total_llm_token_count,
        )
    console.note(f"[{format_usage(usage)}]")


SECTIONS: tuple[tuple[str, Callable[[Target, Console], None]], ...] = (
    ("Core client: a streamed answer", core_stream),
    ("Core client: a tool-calling round", core_tools),
    ("LangChain: a chain, streamed", langchain_chain),
    ("LlamaIndex: a query engine over one document", llama_index_query),
)


def run_demo(target: Target, console: Console) -> int:
    console.note(f"Model {target.model} at {target.base_url}.")
    failed = 0
    for index, (title, section) in enumerate(SECTIONS):
        if index:
            console.line()
        console.line(f"== {title}")
        try:
            section(target, console)
        except MissingExtra as missing:
            console.note(f"skipped: {missing}")
        except OAICompatError as error:
            console.error(describe_error(error))
            failed += 1
    return 1 if failed else 0

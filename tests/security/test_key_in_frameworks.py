"""The key stays out of what LangChain and LlamaIndex serialize, trace and report.

Each adapter gets the key, really sends it, and then everything the framework
can produce about the model and its runs is searched: serialization, dumps,
reprs, callback arguments, tracer runs, streamed events, instrumentation
events and spans, errors (with a server echoing the key) and logs.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from secrets_harness import ECHOES, KEY, echo, key_locations

from oaicompat import OAICompatError
from oaicompat.testing import ScriptedServer


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    for name in ("", "oaicompat", "httpx", "langchain_core", "llama_index"):
        caplog.set_level(logging.DEBUG, logger=name)
    return caplog


def no_key_in_logs(logs: pytest.LogCaptureFixture) -> None:
    assert logs.records
    for record in logs.records:
        assert KEY not in logging.Formatter("%(message)s").format(record), record.name


def everything_in(value: Any) -> str:
    """``value`` rendered as fully as JSON allows, anything else by its repr."""
    return json.dumps(value, default=repr)


# LangChain -------------------------------------------------------------------------------

langchain_core = pytest.importorskip("langchain_core")

from langchain_core.callbacks import BaseCallbackHandler  # noqa: E402
from langchain_core.load import dumpd, dumps  # noqa: E402
from langchain_core.tracers.context import collect_runs  # noqa: E402
from pydantic import BaseModel  # noqa: E402

from oaicompat.langchain import ChatOpenAICompatible  # noqa: E402


class Answer(BaseModel):
    text: str


class EverythingHandler(BaseCallbackHandler):
    """Keeps a rendering of every callback LangChain makes, with all its arguments."""

    run_inline = True

    def __init__(self) -> None:
        self.seen: list[str] = []

    def _keep(self, name: str, *args: Any, **kwargs: Any) -> None:
        self.seen.append(f"{name} {everything_in([args, kwargs])}")

    def on_chat_model_start(self, *args: Any, **kwargs: Any) -> None:
        self._keep("on_chat_model_start", *args, **kwargs)

    def on_llm_new_token(self, *args: Any, **kwargs: Any) -> None:
        self._keep("on_llm_new_token", *args, **kwargs)

    def on_llm_end(self, *args: Any, **kwargs: Any) -> None:
        self._keep("on_llm_end", *args, **kwargs)

    def on_llm_error(self, *args: Any, **kwargs: Any) -> None:
        self._keep("on_llm_error", *args, **kwargs)

    def on_chain_start(self, *args: Any, **kwargs: Any) -> None:
        self._keep("on_chain_start", *args, **kwargs)

    def on_chain_end(self, *args: Any, **kwargs: Any) -> None:
        self._keep("on_chain_end", *args, **kwargs)


@pytest.fixture
def chat_model(server: ScriptedServer) -> Iterator[ChatOpenAICompatible]:
    llm = ChatOpenAICompatible(model="scripted-model", base_url=server.base_url, api_key=KEY)
    yield llm
    llm.close()


def test_langchain_serialization_and_reprs(chat_model: ChatOpenAICompatible) -> None:
    structured = chat_model.with_structured_output(Answer)
    tooled = chat_model.bind_tools([Answer])
    renderings = {
        "repr": repr(chat_model),
        "str": str(chat_model),
        "dumpd": everything_in(dumpd(chat_model)),
        "dumps": dumps(chat_model, pretty=True),
        "to_json": everything_in(chat_model.to_json()),
        "model_dump": everything_in(chat_model.model_dump()),
        "model_dump_json": chat_model.model_dump_json(),
        "identifying params": everything_in(chat_model._identifying_params),
        "ls params": everything_in(chat_model._get_ls_params()),
        "structured runnable": everything_in(dumpd(structured)) + repr(structured),
        "tool-bound runnable": everything_in(dumpd(tooled)) + repr(tooled),
    }
    assert [name for name, text in renderings.items() if KEY in text] == []
    # The secret is named, so that loading can fill it in from the environment.
    assert "OAICOMPAT_API_KEY" in renderings["dumpd"]


async def test_langchain_runs_callbacks_tracers_and_events(
    chat_model: ChatOpenAICompatible,
    server: ScriptedServer,
    debug_logs: pytest.LogCaptureFixture,
) -> None:
    handler = EverythingHandler()
    config: Any = {"callbacks": [handler]}
    with collect_runs() as runs:
        chat_model.invoke("Hi", config=config)
        list(chat_model.stream("Hi", config=config))
        await chat_model.ainvoke("Hi", config=config)
        chat_model.with_structured_output(Answer).invoke("Answer in JSON", config=config)
    events = [event async for event in chat_model.astream_events("Hi", version="v2")]
    assert all(r.headers["authorization"] == f"Bearer {KEY}" for r in server.chat_requests)
    assert len(server.chat_requests) == 5
    assert handler.seen
    assert [text for text in handler.seen if KEY in text] == []
    assert runs.traced_runs
    assert [run.name for run in runs.traced_runs if KEY in run.model_dump_json()] == []
    assert events
    assert KEY not in everything_in(events)
    no_key_in_logs(debug_logs)


@pytest.mark.parametrize("fault", ["401-json-message", "400-json-nested", "500-html-page"])
@pytest.mark.parametrize("streamed", [False, True], ids=["invoke", "stream"])
def test_langchain_errors_and_error_callbacks(
    chat_model: ChatOpenAICompatible,
    server: ScriptedServer,
    debug_logs: pytest.LogCaptureFixture,
    fault: str,
    streamed: bool,
) -> None:
    server.enqueue(echo(ECHOES[fault]), times=3)
    handler = EverythingHandler()
    config: Any = {"callbacks": [handler]}

    def run() -> None:
        if streamed:
            list(chat_model.stream("Hi", config=config))
        else:
            chat_model.invoke("Hi", config=config)

    with collect_runs() as runs, pytest.raises(OAICompatError) as caught:
        run()
    assert key_locations(caught.value, "error") == []
    assert any(text.startswith("on_llm_error") for text in handler.seen)
    assert [text for text in handler.seen if KEY in text] == []
    assert [run.name for run in runs.traced_runs if KEY in run.model_dump_json()] == []
    no_key_in_logs(debug_logs)


# LlamaIndex ------------------------------------------------------------------------------

pytest.importorskip("llama_index.core")

from llama_index.core.bridge.pydantic import Field  # noqa: E402
from llama_index.core.callbacks import CallbackManager, CBEventType  # noqa: E402
from llama_index.core.callbacks.base_handler import BaseCallbackHandler as LlamaHandler  # noqa: E402
from llama_index.core.instrumentation import get_dispatcher  # noqa: E402
from llama_index.core.instrumentation.event_handlers import BaseEventHandler  # noqa: E402
from llama_index.core.instrumentation.events import BaseEvent  # noqa: E402
from llama_index.core.instrumentation.span import SimpleSpan  # noqa: E402
from llama_index.core.instrumentation.span_handlers import BaseSpanHandler  # noqa: E402
from llama_index.core.llms import ChatMessage  # noqa: E402

from oaicompat.llama_index import OpenAICompatible  # noqa: E402


class EventTexts(BaseEventHandler):
    """Every instrumentation event, rendered in full."""

    texts: list[str] = Field(default_factory=list)

    @classmethod
    def class_name(cls) -> str:
        return "SecretsEventTexts"

    def handle(self, event: BaseEvent, **kwargs: Any) -> None:
        self.texts.append(f"{event.class_name()} {event.model_dump_json()} {event!r}")


class SpanTexts(BaseSpanHandler[SimpleSpan]):
    """The arguments, instance, result and error of every span, rendered."""

    texts: list[str] = Field(default_factory=list)

    @classmethod
    def class_name(cls) -> str:
        return "SecretsSpanTexts"

    def new_span(
        self,
        id_: str,
        bound_args: Any,
        instance: Any | None = None,
        parent_span_id: str | None = None,
        tags: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> SimpleSpan:
        self.texts.append(f"enter {id_} {bound_args!r} {instance!r} {tags!r}")
        return SimpleSpan(id_=id_, parent_id=parent_span_id)

    def prepare_to_exit_span(
        self, id_: str, bound_args: Any, instance: Any | None = None, result: Any = None, **kw: Any
    ) -> None:
        self.texts.append(f"exit {id_} {result!r}")

    def prepare_to_drop_span(
        self,
        id_: str,
        bound_args: Any,
        instance: Any | None = None,
        err: BaseException | None = None,
        **kwargs: Any,
    ) -> None:
        self.texts.append(f"drop {id_} {err!r} {err}")


class PayloadTexts(LlamaHandler):
    """Every callback event's payload, rendered."""

    def __init__(self) -> None:
        super().__init__(event_starts_to_ignore=[], event_ends_to_ignore=[])
        self.texts: list[str] = []

    def on_event_start(
        self,
        event_type: CBEventType,
        payload: dict[str, Any] | None = None,
        event_id: str = "",
        parent_id: str = "",
        **kwargs: Any,
    ) -> str:
        self.texts.append(f"start {event_type} {everything_in(payload)}")
        return event_id

    def on_event_end(
        self,
        event_type: CBEventType,
        payload: dict[str, Any] | None = None,
        event_id: str = "",
        **kwargs: Any,
    ) -> None:
        self.texts.append(f"end {event_type} {everything_in(payload)}")

    def start_trace(self, trace_id: str | None = None) -> None:
        pass

    def end_trace(
        self, trace_id: str | None = None, trace_map: dict[str, list[str]] | None = None
    ) -> None:
        pass


class Observed:
    def __init__(self) -> None:
        self.events = EventTexts()
        self.spans = SpanTexts()
        self.payloads = PayloadTexts()

    def texts(self) -> list[str]:
        return [*self.events.texts, *self.spans.texts, *self.payloads.texts]


@pytest.fixture
def observed() -> Iterator[Observed]:
    dispatcher = get_dispatcher()
    watched = Observed()
    dispatcher.add_event_handler(watched.events)
    dispatcher.add_span_handler(watched.spans)
    yield watched
    dispatcher.event_handlers.remove(watched.events)
    dispatcher.span_handlers.remove(watched.spans)


@pytest.fixture
async def llama_llm(server: ScriptedServer, observed: Observed) -> Any:
    llm = OpenAICompatible(
        model="scripted-model",
        base_url=server.base_url,
        api_key=KEY,
        context_window=8192,
        default_headers={"X-Team": "search"},
        callback_manager=CallbackManager([observed.payloads]),
    )
    yield llm
    await llm.aclose()


def test_llama_index_dumps_and_reprs(llama_llm: OpenAICompatible) -> None:
    renderings = {
        "repr": repr(llama_llm),
        "str": str(llama_llm),
        "to_dict": everything_in(llama_llm.to_dict()),
        "to_json": llama_llm.to_json(),
        "to_payload": everything_in(llama_llm.to_payload()),
        "model_dump": everything_in(llama_llm.model_dump()),
        "model_dump_json": llama_llm.model_dump_json(),
        "metadata": repr(llama_llm.metadata),
    }
    assert [name for name, text in renderings.items() if KEY in text] == []


HELLO = [ChatMessage(role="user", content="Hi")]


async def test_llama_index_runs_instrumentation_and_callbacks(
    llama_llm: OpenAICompatible,
    server: ScriptedServer,
    observed: Observed,
    debug_logs: pytest.LogCaptureFixture,
) -> None:
    llama_llm.chat(HELLO)
    list(llama_llm.stream_chat(HELLO))
    await llama_llm.achat(HELLO)
    [response async for response in await llama_llm.astream_chat(HELLO)]
    llama_llm.complete("Hi")
    assert len(server.chat_requests) == 5
    assert all(r.headers["authorization"] == f"Bearer {KEY}" for r in server.chat_requests)
    assert observed.events.texts
    assert observed.spans.texts
    assert observed.payloads.texts
    assert [text for text in observed.texts() if KEY in text] == []
    no_key_in_logs(debug_logs)


@pytest.mark.parametrize("fault", ["401-json-message", "400-json-nested", "500-html-page"])
@pytest.mark.parametrize("streamed", [False, True], ids=["chat", "stream_chat"])
def test_llama_index_errors_events_and_callbacks(
    llama_llm: OpenAICompatible,
    server: ScriptedServer,
    observed: Observed,
    debug_logs: pytest.LogCaptureFixture,
    fault: str,
    streamed: bool,
) -> None:
    server.enqueue(echo(ECHOES[fault]), times=3)

    def run() -> None:
        if streamed:
            list(llama_llm.stream_chat(HELLO))
        else:
            llama_llm.chat(HELLO)

    with pytest.raises(OAICompatError) as caught:
        run()
    assert key_locations(caught.value, "error") == []
    texts = observed.texts()
    assert any(str(caught.value) in text for text in texts), "the error was not observed"
    assert [text for text in texts if KEY in text] == []
    no_key_in_logs(debug_logs)

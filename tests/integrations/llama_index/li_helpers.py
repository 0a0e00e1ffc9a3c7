"""Recorded server answers for httpx.MockTransport, and LlamaIndex observers."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
from llama_index.core.bridge.pydantic import Field
from llama_index.core.callbacks.base_handler import BaseCallbackHandler
from llama_index.core.callbacks.schema import CBEventType
from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from llama_index.core.instrumentation.events import BaseEvent

MODEL = "qwen2.5:0.5b-instruct"


def words(text: str) -> list[str]:
    """A cheap tokenizer for token counters: counts must come from the server's usage anyway."""
    return text.split()


def sse(*events: dict[str, Any], done: bool = True) -> bytes:
    """A text/event-stream body as servers send it."""
    lines = [f"data: {json.dumps(event)}\n\n" for event in events]
    if done:
        lines.append("data: [DONE]\n\n")
    return "".join(lines).encode()


def chunk(delta: dict[str, Any], finish_reason: str | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "model": MODEL,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
        **extra,
    }


def usage_chunk(prompt: int, completion: int, **details: Any) -> dict[str, Any]:
    usage = {"prompt_tokens": prompt, "completion_tokens": completion}
    usage["total_tokens"] = prompt + completion
    usage.update(details)
    return {"id": "chatcmpl-1", "object": "chat.completion.chunk", "choices": [], "usage": usage}


def completion(
    message: dict[str, Any], usage: dict[str, Any] | None = None, finish_reason: str = "stop"
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": "chatcmpl-2",
        "object": "chat.completion",
        "model": MODEL,
        "choices": [{"index": 0, "message": message, "finish_reason": finish_reason}],
    }
    if usage is not None:
        body["usage"] = usage
    return body


Answer = httpx.Response | Callable[[httpx.Request], httpx.Response]


class Recorder:
    """Answers requests from a queue and keeps every request it saw.

    A queued ``bytes`` is an SSE stream, a dict a JSON answer; when the queue
    is empty the server answers 404 (what a route it does not have gets).
    """

    def __init__(self) -> None:
        self.queue: list[Answer] = []
        self.requests: list[httpx.Request] = []

    def add(self, *answers: bytes | dict[str, Any] | httpx.Response) -> None:
        for answer in answers:
            if isinstance(answer, bytes):
                answer = httpx.Response(
                    200, content=answer, headers={"content-type": "text/event-stream"}
                )
            elif isinstance(answer, dict):
                answer = httpx.Response(200, json=answer)
            self.queue.append(answer)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if not self.queue or not request.url.path.endswith("/chat/completions"):
            return httpx.Response(404, json={"error": {"message": "not found"}})
        answer = self.queue.pop(0)
        return answer(request) if callable(answer) else answer

    @property
    def bodies(self) -> list[dict[str, Any]]:
        return [
            json.loads(request.content)
            for request in self.requests
            if request.url.path.endswith("/chat/completions")
        ]


class CallbackLog(BaseCallbackHandler):
    """Every LLM callback event, as (phase, payload)."""

    def __init__(self) -> None:
        super().__init__(event_starts_to_ignore=[], event_ends_to_ignore=[])
        self.events: list[tuple[str, dict[str, Any]]] = []

    def on_event_start(
        self,
        event_type: CBEventType,
        payload: dict[str, Any] | None = None,
        event_id: str = "",
        parent_id: str = "",
        **kwargs: Any,
    ) -> str:
        if event_type == CBEventType.LLM:
            self.events.append(("start", dict(payload or {})))
        return event_id

    def on_event_end(
        self,
        event_type: CBEventType,
        payload: dict[str, Any] | None = None,
        event_id: str = "",
        **kwargs: Any,
    ) -> None:
        if event_type == CBEventType.LLM:
            self.events.append(("end", dict(payload or {})))

    def start_trace(self, trace_id: str | None = None) -> None:
        pass

    def end_trace(
        self, trace_id: str | None = None, trace_map: dict[str, list[str]] | None = None
    ) -> None:
        pass


class EventLog(BaseEventHandler):
    """Instrumentation events seen by the root dispatcher."""

    events: list[BaseEvent] = Field(default_factory=list)

    @classmethod
    def class_name(cls) -> str:
        return "EventLog"

    def handle(self, event: BaseEvent, **kwargs: Any) -> None:
        self.events.append(event)

    def names(self) -> list[str]:
        return [type(event).__name__ for event in self.events]

"""A scripted OpenAI-compatible endpoint on ``httpx.MockTransport``, for exact wire scripts.

Tests queue replies (text, reasoning, tool calls, errors); each reply answers a
streamed request with SSE chunks and a plain request with one JSON body, so one
script serves ``invoke`` and ``stream`` alike. Every request body is recorded.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from oaicompat.langchain import ChatOpenAICompatible

MODEL = "scripted-model"
BASE_URL = "http://scripted.test/v1"

Reply = Callable[[dict[str, Any]], httpx.Response]


def _sse(events: list[dict[str, Any]]) -> httpx.Response:
    payload = b"".join(b"data: " + json.dumps(event).encode() + b"\n\n" for event in events)
    return httpx.Response(
        200,
        headers={"content-type": "text/event-stream"},
        content=payload + b"data: [DONE]\n\n",
    )


def _chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-scripted",
        "object": "chat.completion.chunk",
        "model": MODEL,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
    }


def _usage(prompt: int, completion: int) -> dict[str, Any]:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def _completion(
    message: dict[str, Any], finish_reason: str, usage: dict[str, Any]
) -> httpx.Response:
    return httpx.Response(
        200,
        json={
            "id": "chatcmpl-scripted",
            "object": "chat.completion",
            "model": MODEL,
            "choices": [{"index": 0, "message": message, "finish_reason": finish_reason}],
            "usage": usage,
        },
    )


def text_reply(
    pieces: list[str],
    *,
    reasoning: list[str] = (),  # type: ignore[assignment]
    usage: tuple[int, int] = (7, 3),
    usage_on_every_chunk: bool = False,
) -> Reply:
    """An answer streamed as ``reasoning`` then ``pieces``, usage in a last choice-less chunk.

    With ``usage_on_every_chunk`` each chunk also carries a running total, as some
    servers send: summing those would over-count.
    """

    def reply(body: dict[str, Any]) -> httpx.Response:
        total = _usage(*usage)
        if not body.get("stream"):
            message: dict[str, Any] = {"role": "assistant", "content": "".join(pieces)}
            if reasoning:
                message["reasoning_content"] = "".join(reasoning)
            return _completion(message, "stop", total)
        events = [_chunk({"reasoning_content": part}) for part in reasoning]
        events += [_chunk({"content": part}) for part in pieces]
        events.append(_chunk({}, "stop"))
        if usage_on_every_chunk:
            for number, event in enumerate(events, start=1):
                event["usage"] = _usage(usage[0], min(number, usage[1]))
        events.append({**_chunk({}), "choices": [], "usage": total})
        return _sse(events)

    return reply


@dataclass
class Call:
    id: str
    name: str
    arguments: str
    pieces: int = 2


def tool_reply(calls: list[Call], *, repeat_id_and_name: bool = False) -> Reply:
    """Tool calls; streamed interleaved, each call's arguments cut into ``pieces`` fragments."""

    def reply(body: dict[str, Any]) -> httpx.Response:
        if not body.get("stream"):
            message = {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": call.id,
                        "type": "function",
                        "function": {"name": call.name, "arguments": call.arguments},
                    }
                    for call in calls
                ],
            }
            return _completion(message, "tool_calls", _usage(11, 6))
        fragments = []
        for call in calls:
            size = -(-len(call.arguments) // call.pieces) or 1
            fragments.append(
                [
                    call.arguments[start : start + size]
                    for start in range(0, len(call.arguments), size)
                ]
                or [""]
            )
        events = []
        for step in range(max(len(parts) for parts in fragments)):
            deltas = []
            for index, (call, parts) in enumerate(zip(calls, fragments, strict=True)):
                if step >= len(parts):
                    continue
                delta: dict[str, Any] = {"index": index, "function": {"arguments": parts[step]}}
                if step == 0 or repeat_id_and_name:
                    delta["id"] = call.id
                    delta["type"] = "function"
                    delta["function"]["name"] = call.name
                deltas.append(delta)
            events.append(_chunk({"tool_calls": deltas}))
        events.append(_chunk({}, "tool_calls"))
        events.append({**_chunk({}), "choices": [], "usage": _usage(11, 6)})
        return _sse(events)

    return reply


def status_reply(status: int, message: str, headers: dict[str, str] | None = None) -> Reply:
    def reply(body: dict[str, Any]) -> httpx.Response:
        return httpx.Response(status, headers=headers, json={"error": {"message": message}})

    return reply


@dataclass
class ScriptedEndpoint:
    """Replies in order (the last one repeats); request bodies and headers are kept."""

    replies: list[Reply] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    models: list[ChatOpenAICompatible] = field(default_factory=list)

    def queue(self, *replies: Reply) -> None:
        self.replies.extend(replies)

    def handle(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        self.requests.append(body)
        self.headers.append(dict(request.headers))
        reply = self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]
        return reply(body)

    def model(self, **params: Any) -> ChatOpenAICompatible:
        transport = httpx.MockTransport(self.handle)
        model = ChatOpenAICompatible(
            model=MODEL,
            base_url=BASE_URL,
            max_retries=0,
            http_client=httpx.Client(transport=transport),
            http_async_client=httpx.AsyncClient(transport=transport),
            **params,
        )
        self.models.append(model)
        return model

"""Clients on a scripted mock server, driven the same way sync and async."""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Sequence
from typing import Any

import httpx

from oaicompat import AsyncClient, ChatResponse, Client
from oaicompat.profiles import ServerProfile

BASE_URL = "http://server.test/v1"
Reply = Callable[[httpx.Request], httpx.Response]


def completion(
    content: str | None = "ok",
    *,
    tool_calls: Sequence[dict[str, Any]] | None = None,
    finish_reason: str = "stop",
) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if tool_calls:
        message["tool_calls"] = list(tool_calls)
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1763700000,
        "model": "m",
        "choices": [{"index": 0, "message": message, "finish_reason": finish_reason}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8},
    }


def tool_call(name: str, arguments: str, call_id: str = "call_1") -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def ok(payload: dict[str, Any]) -> Reply:
    return lambda request: httpx.Response(200, json=payload)


def sse(payload: dict[str, Any]) -> Reply:
    """A stream answer carrying ``payload`` (a completion) as content deltas and a finish."""
    choice = payload["choices"][0]
    message = choice["message"]
    events: list[dict[str, Any]] = []
    delta: dict[str, Any] = {"role": "assistant"}
    if message.get("content"):
        delta["content"] = message["content"]
    if message.get("tool_calls"):
        delta["tool_calls"] = [{"index": i, **call} for i, call in enumerate(message["tool_calls"])]
    events.append(
        {"id": "c", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": delta}]}
    )
    events.append(
        {
            "id": "c",
            "object": "chat.completion.chunk",
            "choices": [{"index": 0, "delta": {}, "finish_reason": choice["finish_reason"]}],
        }
    )
    body = "".join(f"data: {json.dumps(event)}\n\n" for event in events) + "data: [DONE]\n\n"
    return lambda request: httpx.Response(
        200, content=body.encode(), headers={"content-type": "text/event-stream"}
    )


def refuse(status: int, payload: dict[str, Any] | bytes) -> Reply:
    if isinstance(payload, bytes):
        return lambda request: httpx.Response(
            status, content=payload, headers={"content-type": "text/plain; charset=utf-8"}
        )
    return lambda request: httpx.Response(status, json=payload)


class Script:
    """Plays replies in order (the last repeats) and records the request bodies."""

    def __init__(self, *replies: Reply) -> None:
        self.replies = list(replies)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        reply = self.replies[min(len(self.requests), len(self.replies) - 1)]
        self.requests.append(request)
        return reply(request)

    def body(self, index: int) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.requests[index].content)
        return data

    @property
    def bodies(self) -> list[dict[str, Any]]:
        return [self.body(i) for i in range(len(self.requests))]


class Both:
    """One client, sync or async, with awaitable helpers so one test body serves both."""

    def __init__(
        self, is_async: bool, script: Script, profile: str | ServerProfile | None, **kw: Any
    ) -> None:
        transport = httpx.MockTransport(script)
        self.is_async = is_async
        self.script = script
        options: dict[str, Any] = {"max_retries": 0, "profile": profile, **kw}
        if is_async:
            self.client: Client | AsyncClient = AsyncClient(
                BASE_URL, "m", http_client=httpx.AsyncClient(transport=transport), **options
            )
        else:
            self.client = Client(
                BASE_URL, "m", http_client=httpx.Client(transport=transport), **options
            )

    async def _maybe(self, value: Any) -> Any:
        return await value if inspect.isawaitable(value) else value

    async def chat(self, *args: Any, **kwargs: Any) -> ChatResponse:
        result: ChatResponse = await self._maybe(self.client.chat(*args, **kwargs))
        return result

    async def stream(self, *args: Any, **kwargs: Any) -> ChatResponse:
        stream = self.client.stream(*args, **kwargs)
        if self.is_async:
            async with stream as opened:  # type: ignore[union-attr]
                final: ChatResponse = await opened.final()
                return final
        with stream as opened:  # type: ignore[union-attr]
            result: ChatResponse = opened.final()
            return result

    async def call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        return await self._maybe(getattr(self.client, name)(*args, **kwargs))

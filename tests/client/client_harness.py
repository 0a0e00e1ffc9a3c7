"""Run one client scenario both ways, sync and async, against an in-process mock server.

Every test in this folder takes the ``mode`` fixture and awaits its methods;
in sync mode they call `Client` directly, in async mode they await
`AsyncClient`. The scripted server answers each request with the next entry
of its script (the last one repeats), so retries can be scripted too.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Any

import httpx

from oaicompat import AsyncChatStream, AsyncClient, ChatChunk, ChatResponse, ChatStream, Client

AnyClient = Client | AsyncClient
AnyStream = ChatStream | AsyncChatStream
Reply = Callable[[httpx.Request], httpx.Response] | Exception

BASE_URL = "http://testserver:8000/v1"
CHAT_URL = BASE_URL + "/chat/completions"


class ScriptedBody(httpx.SyncByteStream, httpx.AsyncByteStream):
    """A response body sent piece by piece, optionally failing after the last piece.

    Records how many pieces were pulled and whether it was closed, so tests can
    see that an abandoned stream stopped reading and released the connection.
    """

    def __init__(self, pieces: Sequence[bytes], *, error: Exception | None = None) -> None:
        self.pieces = list(pieces)
        self.error = error
        self.pulled = 0
        self.closed = False

    def _next_pieces(self) -> Iterator[bytes]:
        for piece in self.pieces:
            self.pulled += 1
            yield piece
        if self.error is not None:
            raise self.error

    def __iter__(self) -> Iterator[bytes]:
        yield from self._next_pieces()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for piece in self._next_pieces():
            yield piece

    def close(self) -> None:
        self.closed = True

    async def aclose(self) -> None:
        self.closed = True


class ScriptedServer:
    """The handler of an `httpx.MockTransport`: records requests, plays replies in order."""

    def __init__(self, *script: Reply) -> None:
        if not script:
            raise ValueError("a scripted server needs at least one reply")
        self.script = list(script)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        index = min(len(self.requests), len(self.script) - 1)
        self.requests.append(request)
        reply = self.script[index]
        if isinstance(reply, Exception):
            raise reply
        return reply(request)

    def body(self, index: int = -1) -> dict[str, Any]:
        decoded: dict[str, Any] = json.loads(self.requests[index].content)
        return decoded

    @property
    def calls(self) -> int:
        return len(self.requests)


# Replies ------------------------------------------------------------------


def completion(
    content: str | None = "Hello there",
    *,
    reasoning: str | None = None,
    tool_calls: list[dict[str, Any]] | None = None,
    finish_reason: str = "stop",
    usage: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A chat.completion body as OpenAI documents it."""
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if reasoning is not None:
        message["reasoning_content"] = reasoning
    if tool_calls is not None:
        message["tool_calls"] = tool_calls
    return {
        "id": "chatcmpl-123",
        "object": "chat.completion",
        "created": 1700000000,
        "model": "test-model",
        "choices": [{"index": 0, "message": message, "finish_reason": finish_reason}],
        "usage": usage or {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15},
    }


def json_reply(
    data: Any, status: int = 200, headers: dict[str, str] | None = None
) -> Callable[[httpx.Request], httpx.Response]:
    return lambda request: httpx.Response(status, json=data, headers=headers)


def raw_reply(
    body: bytes, status: int = 200, content_type: str = "text/html", **headers: str
) -> Callable[[httpx.Request], httpx.Response]:
    all_headers = {"content-type": content_type, **headers}
    return lambda request: httpx.Response(status, content=body, headers=all_headers)


def sse_event(payload: dict[str, Any] | str) -> bytes:
    data = payload if isinstance(payload, str) else json.dumps(payload)
    return f"data: {data}\n\n".encode()


def chunk_payload(
    delta: dict[str, Any], finish_reason: str | None = None, **extra: Any
) -> dict[str, Any]:
    return {
        "id": "chatcmpl-123",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": "test-model",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
        **extra,
    }


def text_stream_events(
    pieces: Sequence[str], *, usage: dict[str, Any] | None = None, done: bool = True
) -> list[bytes]:
    """SSE events of a plain text answer: role, one event per piece, finish, usage, [DONE]."""
    events = [sse_event(chunk_payload({"role": "assistant", "content": ""}))]
    events += [sse_event(chunk_payload({"content": piece})) for piece in pieces]
    events.append(sse_event(chunk_payload({}, "stop")))
    if usage is not None:
        payload = chunk_payload({})
        payload["choices"] = []
        payload["usage"] = usage
        events.append(sse_event(payload))
    if done:
        events.append(b"data: [DONE]\n\n")
    return events


def sse_reply(
    events: Sequence[bytes],
    *,
    error: Exception | None = None,
    bodies: list[ScriptedBody] | None = None,
    gzipped: bool = False,
) -> Callable[[httpx.Request], httpx.Response]:
    """A streamed 200 answer; each body made is appended to ``bodies`` for inspection."""

    def reply(request: httpx.Request) -> httpx.Response:
        headers = {"content-type": "text/event-stream"}
        pieces = list(events)
        if gzipped:
            headers["content-encoding"] = "gzip"
            whole = gzip.compress(b"".join(pieces))
            pieces = [whole[: len(whole) // 2], whole[len(whole) // 2 :]]
        body = ScriptedBody(pieces, error=error)
        if bodies is not None:
            bodies.append(body)
        return httpx.Response(200, stream=body, headers=headers)

    return reply


# Running a scenario both ways ---------------------------------------------


class Mode:
    """Sync or async: the same scenario, driven through `Client` or `AsyncClient`."""

    def __init__(self, is_async: bool) -> None:
        self.is_async = is_async
        self.delays: list[float] = []
        self._clients: list[AnyClient] = []
        self._http_clients: list[httpx.Client | httpx.AsyncClient] = []

    def __repr__(self) -> str:
        return "async" if self.is_async else "sync"

    @property
    def client_class(self) -> type[AnyClient]:
        return AsyncClient if self.is_async else Client

    def http_client(
        self, server: ScriptedServer, **kwargs: Any
    ) -> httpx.Client | httpx.AsyncClient:
        transport = httpx.MockTransport(server)
        http: httpx.Client | httpx.AsyncClient
        if self.is_async:
            http = httpx.AsyncClient(transport=transport, **kwargs)
        else:
            http = httpx.Client(transport=transport, **kwargs)
        self._http_clients.append(http)
        return http

    def client(
        self,
        server: ScriptedServer,
        *,
        base_url: str | None = BASE_URL,
        model: str = "test-model",
        http_client: httpx.Client | httpx.AsyncClient | None = None,
        **kwargs: Any,
    ) -> AnyClient:
        """A client wired to ``server``; waits between retries are recorded in ``delays``."""
        kwargs.setdefault("sleep", self.delays.append)
        client = self.client_class(
            base_url,
            model,
            http_client=http_client if http_client is not None else self.http_client(server),
            **kwargs,
        )
        self._clients.append(client)
        return client

    async def chat(self, client: AnyClient, messages: Any = "Hi", **kwargs: Any) -> ChatResponse:
        if isinstance(client, AsyncClient):
            return await client.chat(messages, **kwargs)
        return client.chat(messages, **kwargs)

    async def stream_all(
        self, client: AnyClient, messages: Any = "Hi", **kwargs: Any
    ) -> tuple[list[ChatChunk], ChatResponse]:
        """Every chunk inside a ``with`` block, then ``final()``."""
        if isinstance(client, AsyncClient):
            async with client.stream(messages, **kwargs) as astream:
                chunks = [chunk async for chunk in astream]
            return chunks, await astream.final()
        with client.stream(messages, **kwargs) as stream:
            chunks = list(stream)
        return chunks, stream.final()

    async def stream_take(
        self, client: AnyClient, count: int, messages: Any = "Hi", **kwargs: Any
    ) -> tuple[list[ChatChunk], AnyStream]:
        """Leave the ``with`` block after ``count`` chunks."""
        chunks: list[ChatChunk] = []
        if isinstance(client, AsyncClient):
            async with client.stream(messages, **kwargs) as astream:
                async for chunk in astream:
                    chunks.append(chunk)
                    if len(chunks) == count:
                        break
            return chunks, astream
        with client.stream(messages, **kwargs) as stream:
            for chunk in stream:
                chunks.append(chunk)
                if len(chunks) == count:
                    break
        return chunks, stream

    async def enter(self, stream: AnyStream) -> AnyStream:
        if isinstance(stream, AsyncChatStream):
            return await stream.__aenter__()
        return stream.__enter__()

    async def next_chunk(self, stream: AnyStream) -> ChatChunk:
        if isinstance(stream, AsyncChatStream):
            return await stream.__anext__()
        return next(stream)

    async def iterate(self, stream: AnyStream) -> list[ChatChunk]:
        """Iterate without a ``with`` block."""
        if isinstance(stream, AsyncChatStream):
            return [chunk async for chunk in stream]
        return list(stream)

    async def final(self, stream: AnyStream) -> ChatResponse:
        if isinstance(stream, AsyncChatStream):
            return await stream.final()
        return stream.final()

    async def close_stream(self, stream: AnyStream) -> None:
        if isinstance(stream, AsyncChatStream):
            await stream.aclose()
        else:
            stream.close()

    async def close(self, client: AnyClient) -> None:
        if isinstance(client, AsyncClient):
            await client.aclose()
        else:
            client.close()

    async def cleanup(self) -> None:
        for client in self._clients:
            await self.close(client)
        for http in self._http_clients:
            if isinstance(http, httpx.AsyncClient):
                await http.aclose()
            else:
                http.close()

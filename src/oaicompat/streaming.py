"""Streamed answers: `ChatStream` and `AsyncChatStream`.

A stream is a context manager and an iterator of `ChatChunk`, with a final
value: ``final()`` reads what is left and returns the same `ChatResponse` that
``chat()`` returns for the same answer. It opens lazily (on ``with`` or on the
first chunk asked for), so ``aclient.stream(...)`` needs no ``await``. Leaving
the ``with`` block early closes the connection.

The body is read as raw bytes and handed straight to the SSE parser: this is
the per-token hot path, so there is no line decoding by httpx and no
per-chunk validation. Everything both classes share (timing, the parser,
turning a dropped connection into `StreamError` with the partial answer) is in
`_StreamCore`; the two classes differ only by ``await``.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Generator, Iterator
from contextlib import contextmanager
from time import perf_counter
from typing import TYPE_CHECKING

import httpx

from oaicompat import _json
from oaicompat._closing import AsyncClosing, Closing
from oaicompat._transport import HTTPX_ERRORS, BoundedBody
from oaicompat.errors import StreamError
from oaicompat.protocol import StreamParser
from oaicompat.types import ChatChunk, ChatResponse, ToolCallDelta

if TYPE_CHECKING:
    from oaicompat._transport import ClientBase

__all__ = ["AsyncChatStream", "ChatStream"]


def _is_whole_document(response: httpx.Response) -> bool:
    # A server that ignores ``stream: true`` answers with one JSON document, and
    # a proxy may answer with an HTML page; read as SSE, either would silently
    # yield nothing. Both go through the non-stream path instead.
    content_type: str = response.headers.get("content-type", "")
    return content_type.startswith(("application/json", "text/html"))


def _can_read_raw(response: httpx.Response) -> bool:
    # Raw bytes are the fast path, but only usable when they are not compressed
    # and not already read (a mock transport given ``content=bytes`` reads it upfront).
    if response.is_stream_consumed:
        return False
    encoding: str = response.headers.get("content-encoding", "identity")
    return encoding.lower() in ("identity", "")


def _response_as_chunk(response: ChatResponse) -> ChatChunk:
    deltas = [
        ToolCallDelta(
            index=index,
            id=call.id,
            name=call.name,
            arguments=call.arguments_text or _json.dumps(call.arguments).decode("utf-8"),
        )
        for index, call in enumerate(response.tool_calls)
    ]
    return ChatChunk(
        content=response.content,
        reasoning=response.reasoning or "",
        tool_call_deltas=deltas,
        finish_reason=response.finish_reason,
        usage=response.usage,
        raw=response.raw,
    )


class _StreamCore:
    """Parser, clock and outcome of one stream, whatever drives it."""

    __slots__ = (
        "_client",
        "_first_token_at",
        "_parser",
        "_saw_chunk",
        "_started",
        "error",
        "response",
    )

    def __init__(self, client: ClientBase) -> None:
        self._client = client
        self._parser: StreamParser | None = None
        self._started = 0.0
        self._first_token_at: float | None = None
        self._saw_chunk = False
        self.response: ChatResponse | None = None
        self.error: StreamError | None = None

    def begin(self) -> None:
        self._started = perf_counter()

    def attach(self) -> None:
        # Made after the request went through: a fallback may have changed the profile.
        self._parser = StreamParser(self._client.profile)

    def feed(self, data: bytes) -> list[ChatChunk]:
        assert self._parser is not None
        chunks = self._parser.feed(data)
        if self._first_token_at is None and chunks:
            self._saw_chunk = True
            for chunk in chunks:
                if chunk.content or chunk.reasoning or chunk.tool_call_deltas:
                    self._first_token_at = perf_counter()
                    break
        return chunks

    def _stamp(self, response: ChatResponse) -> ChatResponse:
        response.latency_s = perf_counter() - self._started
        if self._first_token_at is not None:
            response.time_to_first_token_s = self._first_token_at - self._started
        return response

    def complete(self) -> ChatResponse:
        assert self._parser is not None
        response = self._stamp(self._parser.finish())
        if not self._saw_chunk and not self._parser.done:
            raise StreamError(
                "the server ended the stream without sending any data", partial=response
            )
        self.response = response
        return response

    def complete_from_json(self, response: httpx.Response, body: BoundedBody) -> ChatChunk:
        answer = self._client._finish_response(response, body, self._started)
        self._first_token_at = perf_counter()
        self.response = self._stamp(answer)
        return _response_as_chunk(answer)

    def partial(self) -> ChatResponse:
        if self._parser is None:
            return self._stamp(ChatResponse())
        return self._stamp(self._parser.partial())

    def failure(self, exc: Exception) -> StreamError:
        """The `StreamError` for an httpx failure after the stream started."""
        if isinstance(exc, httpx.TimeoutException):
            reason = "no data within the read timeout"
        else:
            reason = str(exc) or type(exc).__name__
        self.error = StreamError(f"stream cut short: {reason}", partial=self.partial())
        return self.error

    def record(self, error: StreamError) -> None:
        self._client._redact(error)
        if error.partial is not None:
            self._stamp(error.partial)
        self.error = error

    @contextmanager
    def reading(self) -> Iterator[None]:
        """Around the reading of a stream: an httpx failure becomes a `StreamError`,
        and a `StreamError` is recorded before it goes on to the caller."""
        try:
            yield
        except HTTPX_ERRORS as exc:
            raise self.failure(exc) from exc
        except StreamError as error:
            self.record(error)
            raise

    def outcome(self) -> ChatResponse:
        """The finished response, or the reason there is none."""
        if self.response is not None:
            return self.response
        if self.error is not None:
            raise self.error
        raise StreamError("stream was closed before it finished", partial=self.partial())


class _StreamBase:
    def __init__(self, client: ClientBase) -> None:
        self._core = _StreamCore(client)
        self._limit = client._max_response_bytes
        self._closed = False

    @property
    def response(self) -> ChatResponse | None:
        """The whole answer once the stream has finished, else None."""
        return self._core.response

    @property
    def closed(self) -> bool:
        return self._closed

    def _check_usable(self) -> None:
        if self._closed and self._core.response is None:
            raise StreamError("stream is closed", partial=self._core.partial())

    def _unfinished(self) -> bool:
        """Whether ``final()`` still has chunks to read before it can answer."""
        return self._core.response is None and self._core.error is None and not self._closed


class ChatStream(_StreamBase, Closing):
    """A streamed answer: ``with client.stream(messages) as stream: for chunk in stream: ...``."""

    def __init__(self, client: ClientBase, open_response: Callable[[], httpx.Response]) -> None:
        super().__init__(client)
        self._open_response = open_response
        self._http_response: httpx.Response | None = None
        self._chunks: Generator[ChatChunk, None, None] | None = None

    def _open(self) -> httpx.Response:
        if self._http_response is None:
            self._check_usable()
            self._core.begin()
            self._http_response = self._open_response()
            self._core.attach()
        return self._http_response

    def _run(self) -> Generator[ChatChunk, None, None]:
        response = self._open()
        core, limit = self._core, self._limit
        # Hold no reference to the stream from here on: a stream dropped mid-loop
        # (``for chunk in client.stream(...): break``) is then freed at once and this
        # generator's ``finally`` releases the connection, not at the next GC cycle.
        del self
        try:
            with core.reading():
                if _is_whole_document(response):
                    body = BoundedBody(limit, response.headers)
                    for piece in response.iter_bytes():
                        if not body.add(piece):
                            break
                    yield core.complete_from_json(response, body)
                    return
                pieces = response.iter_raw() if _can_read_raw(response) else response.iter_bytes()
                for data in pieces:
                    yield from core.feed(data)
                core.complete()
        finally:
            response.close()

    def __enter__(self) -> ChatStream:
        self._open()
        return self

    def __iter__(self) -> Iterator[ChatChunk]:
        if self._chunks is None:
            self._check_usable()
            self._chunks = self._run()
        return self._chunks

    def __next__(self) -> ChatChunk:
        return next(iter(self))

    def final(self) -> ChatResponse:
        """Read what is left of the stream and return the whole answer."""
        if self._unfinished():
            for _ in self:
                pass
        return self._core.outcome()

    def close(self) -> None:
        """Stop reading and release the connection; safe to call more than once."""
        self._closed = True
        if self._chunks is not None:
            self._chunks.close()
        if self._http_response is not None:
            self._http_response.close()


class AsyncChatStream(_StreamBase, AsyncClosing):
    """``async with aclient.stream(messages) as stream: async for chunk in stream: ...``."""

    def __init__(
        self, client: ClientBase, open_response: Callable[[], Awaitable[httpx.Response]]
    ) -> None:
        super().__init__(client)
        self._open_response = open_response
        self._http_response: httpx.Response | None = None
        self._chunks: AsyncGenerator[ChatChunk, None] | None = None

    async def _open(self) -> httpx.Response:
        if self._http_response is None:
            self._check_usable()
            self._core.begin()
            self._http_response = await self._open_response()
            self._core.attach()
        return self._http_response

    async def _run(self) -> AsyncGenerator[ChatChunk, None]:
        response = await self._open()
        core, limit = self._core, self._limit
        # Hold no reference to the stream from here on: a stream dropped mid-loop
        # (``for chunk in client.stream(...): break``) is then freed at once and this
        # generator's ``finally`` releases the connection, not at the next GC cycle.
        del self
        try:
            with core.reading():
                if _is_whole_document(response):
                    body = BoundedBody(limit, response.headers)
                    async for piece in response.aiter_bytes():
                        if not body.add(piece):
                            break
                    yield core.complete_from_json(response, body)
                    return
                pieces = response.aiter_raw() if _can_read_raw(response) else response.aiter_bytes()
                async for data in pieces:
                    for chunk in core.feed(data):
                        yield chunk
                core.complete()
        finally:
            await response.aclose()

    async def __aenter__(self) -> AsyncChatStream:
        await self._open()
        return self

    def __aiter__(self) -> AsyncIterator[ChatChunk]:
        if self._chunks is None:
            self._check_usable()
            self._chunks = self._run()
        return self._chunks

    async def __anext__(self) -> ChatChunk:
        return await self.__aiter__().__anext__()

    async def final(self) -> ChatResponse:
        """Read what is left of the stream and return the whole answer."""
        if self._unfinished():
            async for _ in self:
                pass
        return self._core.outcome()

    async def aclose(self) -> None:
        """Stop reading and release the connection; safe to call more than once."""
        self._closed = True
        if self._chunks is not None:
            await self._chunks.aclose()
        if self._http_response is not None:
            await self._http_response.aclose()

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

__all__ = ["AsyncChatStream", "ChatStream", "StreamOpening", "astart_stream", "start_stream"]


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


class StreamOpening:
    """A 2xx answer to a stream request, as far as it was read inside the retry loop.

    Whether the answer is an event stream or one whole document (a server that
    ignored ``stream: true``, by its content type or by a body starting with
    ``{``) is settled before any chunk reaches the caller. A whole document is
    read there and then, so an error document inside the 200 raises its typed
    error where the retry policy still applies; a chat completion becomes
    ``answer``. An event stream is left for the stream to read, from ``head``
    (the bytes read to tell) and then ``pieces``.

    A read failing while telling is kept in ``failure`` and raised by the
    stream: silence after the headers is a cut stream, never a retry.
    """

    __slots__ = ("_deciding", "answer", "body", "failure", "is_document", "pieces", "response")

    def __init__(self, response: httpx.Response, limit: int) -> None:
        self.response = response
        self.body = BoundedBody(limit, response.headers)
        self.is_document: bool | None = True if _is_whole_document(response) else None
        self.answer: ChatResponse | None = None
        self.failure: Exception | None = None
        self.pieces: Iterator[bytes] | AsyncIterator[bytes] = iter(())
        self._deciding = b""

    def take(self, piece: bytes) -> bool:
        """Keep ``piece``; False once the stream can read the rest itself."""
        if self.is_document is None and (start := piece.lstrip()):
            self.is_document = start.startswith(b"{")
            if not self.is_document:
                self._deciding = piece
                return False
        if self.body.add(piece):
            return True
        # Past the limit: a document too large, or that much whitespace, which is no stream.
        self.is_document = True
        return False

    @property
    def head(self) -> bytes:
        """The event-stream bytes read while telling what the answer is."""
        return b"" if self.is_document else self.body.content + self._deciding

    def settle(self, client: ClientBase) -> None:
        """For a whole document: its answer, or its typed error, raised here."""
        if self.is_document and self.failure is None:
            self.answer = client._finish_response(self.response, self.body, perf_counter())


def start_stream(client: ClientBase, response: httpx.Response) -> StreamOpening:
    """Read as much of ``response`` as it takes to tell what it is (see `StreamOpening`)."""
    opening = StreamOpening(response, client._max_response_bytes)
    pieces = response.iter_raw() if _can_read_raw(response) else response.iter_bytes()
    opening.pieces = pieces
    try:
        try:
            for piece in pieces:
                if not opening.take(piece):
                    break
        except HTTPX_ERRORS as exc:
            opening.failure = exc
        opening.settle(client)
    except BaseException:
        response.close()
        raise
    if opening.answer is not None:
        response.close()
    return opening


async def astart_stream(client: ClientBase, response: httpx.Response) -> StreamOpening:
    """`start_stream` for an ``httpx.AsyncClient`` response."""
    opening = StreamOpening(response, client._max_response_bytes)
    pieces = response.aiter_raw() if _can_read_raw(response) else response.aiter_bytes()
    opening.pieces = pieces
    try:
        try:
            async for piece in pieces:
                if not opening.take(piece):
                    break
        except HTTPX_ERRORS as exc:
            opening.failure = exc
        opening.settle(client)
    except BaseException:
        await response.aclose()
        raise
    if opening.answer is not None:
        await response.aclose()
    return opening


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
        "on_finish",
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
        self.on_finish: Callable[[ChatResponse], None] | None = None
        """Run on the whole answer once the stream ended (structured streams parse it)."""

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

    def complete_from_answer(self, answer: ChatResponse) -> ChatChunk:
        self._first_token_at = perf_counter()
        self.response = self._stamp(answer)
        return _response_as_chunk(answer)

    def finish(self) -> None:
        if self.on_finish is not None and self.response is not None:
            self.on_finish(self.response)

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

    def __init__(self, client: ClientBase, open_response: Callable[[], StreamOpening]) -> None:
        super().__init__(client)
        self._open_response = open_response
        self._opening: StreamOpening | None = None
        self._chunks: Generator[ChatChunk, None, None] | None = None

    def _open(self) -> StreamOpening:
        if self._opening is None:
            self._check_usable()
            self._core.begin()
            self._opening = self._open_response()
            self._core.attach()
        return self._opening

    def _run(self) -> Generator[ChatChunk, None, None]:
        opening = self._open()
        core = self._core
        # Hold no reference to the stream from here on: a stream dropped mid-loop
        # (``for chunk in client.stream(...): break``) is then freed at once and this
        # generator's ``finally`` releases the connection, not at the next GC cycle.
        del self
        try:
            with core.reading():
                if opening.answer is not None:
                    yield core.complete_from_answer(opening.answer)
                else:
                    yield from core.feed(opening.head)
                    if opening.failure is not None:
                        raise opening.failure
                    pieces = opening.pieces
                    assert isinstance(pieces, Iterator)
                    for data in pieces:
                        yield from core.feed(data)
                    core.complete()
            core.finish()
        finally:
            opening.response.close()

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
        if self._opening is not None:
            self._opening.response.close()


class AsyncChatStream(_StreamBase, AsyncClosing):
    """``async with aclient.stream(messages) as stream: async for chunk in stream: ...``."""

    def __init__(
        self, client: ClientBase, open_response: Callable[[], Awaitable[StreamOpening]]
    ) -> None:
        super().__init__(client)
        self._open_response = open_response
        self._opening: StreamOpening | None = None
        self._chunks: AsyncGenerator[ChatChunk, None] | None = None

    async def _open(self) -> StreamOpening:
        if self._opening is None:
            self._check_usable()
            self._core.begin()
            self._opening = await self._open_response()
            self._core.attach()
        return self._opening

    async def _run(self) -> AsyncGenerator[ChatChunk, None]:
        opening = await self._open()
        core = self._core
        # Hold no reference to the stream from here on: a stream dropped mid-loop
        # (``for chunk in client.stream(...): break``) is then freed at once and this
        # generator's ``finally`` releases the connection, not at the next GC cycle.
        del self
        try:
            with core.reading():
                if opening.answer is not None:
                    yield core.complete_from_answer(opening.answer)
                else:
                    for chunk in core.feed(opening.head):
                        yield chunk
                    if opening.failure is not None:
                        raise opening.failure
                    pieces = opening.pieces
                    assert isinstance(pieces, AsyncIterator)
                    async for data in pieces:
                        for chunk in core.feed(data):
                            yield chunk
                    core.complete()
            core.finish()
        finally:
            await opening.response.aclose()

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
        if self._opening is not None:
            await self._opening.response.aclose()

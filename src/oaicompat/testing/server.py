"""A real OpenAI-compatible HTTP/1.1 server on loopback, answering from a script.

The server runs its own asyncio event loop in a daemon thread, so it serves
synchronous and asynchronous clients alike and keeps a thousand streams open
at once. It speaks just enough HTTP/1.1 for real clients: keep-alive,
``Content-Length`` and chunked request bodies, chunked responses with one
HTTP chunk per SSE event. It never writes to stdout or stderr.

::

    with ScriptedServer() as server:
        server.enqueue(service_unavailable(), times=2)   # two 503s, then...
        server.enqueue(Reply(text="Hello!"))              # ...this answer
        client = SomeClient(base_url=server.base_url)
        ...
        assert server.requests[-1].json["model"] == "scripted-model"

When nothing is queued for a route, chat and legacy completion requests are
answered by the server's policy (:class:`~oaicompat.testing.policy.DefaultPolicy` unless one
is given), which plays a capable model.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import threading
import time
import zlib
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal

from oaicompat._json import dumps, loads
from oaicompat.testing._http import (
    error_body,
    log_loop_error,
    parse_head,
    read_body,
    reset,
    response_head,
    run_loop,
    send,
)
from oaicompat.testing.policy import DefaultPolicy
from oaicompat.testing.replies import Disconnect, RawReply, Reply
from oaicompat.testing.tokens import count_prompt_tokens
from oaicompat.testing.wire import (
    COMPLETIONS_PATH,
    Completion,
    completion_body,
    sse_events,
    stream_chunks,
    text_completion_body,
    text_completion_chunks,
)

__all__ = ["CHAT_PATH", "COMPLETIONS_PATH", "RecordedRequest", "ScriptedServer"]

logger = logging.getLogger(__name__)

CHAT_PATH = "/v1/chat/completions"
_ANSWERED_PATHS = (CHAT_PATH, COMPLETIONS_PATH)
_MAX_HEAD_BYTES = 1024 * 1024
_BACKLOG = 4096
_MAX_CHOICES = 16
_STARTUP_TIMEOUT = 10.0

Imitation = Literal["llamacpp", "ollama"]
AnyReply = Reply | RawReply | Disconnect
QueueItem = AnyReply | Callable[["RecordedRequest"], AnyReply]


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the server received it. Header names are lower-case."""

    method: str
    path: str
    query: str
    headers: Mapping[str, str]
    body: bytes = b""
    json: Any = field(default=None, repr=False)
    """The parsed JSON body, or None when the body is empty or not JSON."""


class _ClientGone(Exception):
    """The connection is over: the client left, or a fault closed it on purpose."""


class _MalformedRequest(Exception):
    """The bytes received are not an HTTP/1.1 request this server can read."""


class ScriptedServer:
    """An OpenAI-compatible server on ``127.0.0.1`` with a random free port.

    Routes: ``POST /v1/chat/completions`` and the legacy ``POST /v1/completions``
    (both JSON and SSE, from the same replies), ``GET /v1/models``,
    ``GET /health``; with ``imitate`` containing ``"llamacpp"``, ``GET /props``
    (``default_generation_settings.n_ctx``); with ``"ollama"``, ``GET /api/tags``,
    ``GET /api/version`` and ``POST /api/show`` (``num_ctx``). Anything else is
    a 404 in OpenAI's wording.

    Args:
        model: the model name listed by the discovery routes and used in
            answers when the request names none.
        context_window: the ``n_ctx`` reported, and the prompt size above which
            the default policy refuses with a context-length error.
        policy: answers chat requests when nothing is queued; a callable taking
            a :class:`RecordedRequest` and returning a reply.
        imitate: which servers' discovery routes to serve.
    """

    def __init__(
        self,
        *,
        model: str = "scripted-model",
        context_window: int = 8192,
        policy: Callable[[RecordedRequest], AnyReply] | None = None,
        imitate: Iterable[Imitation] = ("llamacpp", "ollama"),
    ) -> None:
        self.model = model
        self.context_window = context_window
        self.policy = policy or DefaultPolicy(context_window=context_window)
        self.imitate = frozenset(imitate)
        self._lock = threading.Lock()
        self._queues: dict[str, deque[QueueItem]] = {}
        self._requests: list[RecordedRequest] = []
        self._ids = itertools.count(1)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.AbstractServer | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self._port: int | None = None
        self.errors: list[Exception] = []
        """Exceptions raised by reply factories or the policy (each answered with a 500)."""

    def __repr__(self) -> str:
        where = self.url if self._port is not None else "stopped"
        return f"<ScriptedServer {where} model={self.model!r}>"

    # -- lifecycle -----------------------------------------------------------

    def start(self) -> ScriptedServer:
        """Bind a free port and serve in a background thread. Returns self."""
        if self._loop is not None:
            return self
        loop = asyncio.new_event_loop()
        loop.set_exception_handler(log_loop_error)
        thread = threading.Thread(
            target=run_loop, args=(loop,), name="oaicompat-scripted-server", daemon=True
        )
        self._loop, self._thread = loop, thread
        thread.start()
        try:
            asyncio.run_coroutine_threadsafe(self._open(), loop).result(_STARTUP_TIMEOUT)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Close every connection, stop serving and join the thread. Idempotent."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        try:
            if loop.is_running() or not loop.is_closed():
                future = asyncio.run_coroutine_threadsafe(self._close(), loop)
                with contextlib.suppress(Exception):
                    future.result(_STARTUP_TIMEOUT)
                loop.call_soon_threadsafe(loop.stop)
        finally:
            thread.join(_STARTUP_TIMEOUT)
            self._loop = self._thread = self._server = None
            self._port = None

    def __enter__(self) -> ScriptedServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def _open(self) -> None:
        self._server = await asyncio.start_server(
            self._serve_connection,
            "127.0.0.1",
            0,
            limit=_MAX_HEAD_BYTES,
            backlog=_BACKLOG,
        )
        self._port = self._server.sockets[0].getsockname()[1]

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
        tasks = list(self._connections)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    # -- addresses -----------------------------------------------------------

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("ScriptedServer is not running; call start() first")
        return self._port

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``, the server's root."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/v1``, what OpenAI-style clients take as ``base_url``."""
        return f"{self.url}/v1"

    # -- script --------------------------------------------------------------

    def enqueue(self, *replies: QueueItem, times: int = 1, path: str = CHAT_PATH) -> None:
        """Queue replies for ``path``, each ``times`` times, answered first in, first out.

        A reply is a :class:`Reply`, :class:`RawReply`, :class:`Disconnect`, or
        a callable building one from the :class:`RecordedRequest`. Once the
        queue is empty, chat requests go to the policy again, so
        ``enqueue(service_unavailable(), times=2)`` means "fail twice, then answer".
        Only the chat and completions routes take a :class:`Reply`.
        """
        if times < 0:
            raise ValueError("times must be >= 0")
        for reply in replies:
            if isinstance(reply, Reply) and path not in _ANSWERED_PATHS:
                raise TypeError(
                    f"a Reply answers {' and '.join(_ANSWERED_PATHS)} only; use RawReply for {path}"
                )
        with self._lock:
            queue = self._queues.setdefault(path, deque())
            for reply in replies:
                queue.extend([reply] * times)

    def script(self, *replies: QueueItem) -> None:
        """Replace the queued chat replies with these, in order."""
        with self._lock:
            self._queues[CHAT_PATH] = deque(replies)
        for reply in replies:
            if not (callable(reply) or isinstance(reply, (Reply, RawReply, Disconnect))):
                raise TypeError(f"not a reply: {reply!r}")

    def pending(self, path: str = CHAT_PATH) -> int:
        """How many queued replies for ``path`` have not been used yet."""
        with self._lock:
            return len(self._queues.get(path, ()))

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far, oldest first (a copy)."""
        with self._lock:
            return list(self._requests)

    @property
    def chat_requests(self) -> list[RecordedRequest]:
        """The requests made to the chat route."""
        return [request for request in self.requests if request.path == CHAT_PATH]

    def clear(self) -> None:
        """Forget recorded requests and drop every queued reply."""
        with self._lock:
            self._requests.clear()
            self._queues.clear()

    def _next_queued(self, request: RecordedRequest) -> AnyReply | None:
        with self._lock:
            queue = self._queues.get(request.path)
            item = queue.popleft() if queue else None
        if item is None or isinstance(item, (Reply, RawReply, Disconnect)):
            return item
        return item(request)

    # -- HTTP ----------------------------------------------------------------

    async def _serve_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._connections.add(task)
        try:
            while await self._serve_one(reader, writer):
                pass
        except (_ClientGone, ConnectionError, asyncio.IncompleteReadError):
            pass
        except _MalformedRequest:
            with contextlib.suppress(ConnectionError):
                await send(writer, 400, error_body("Malformed HTTP request"), keep_alive=False)
        finally:
            if task is not None:
                self._connections.discard(task)
            writer.close()

    async def _serve_one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.LimitOverrunError as exc:
            raise _MalformedRequest from exc
        except asyncio.IncompleteReadError as exc:
            if exc.partial.strip():
                raise _MalformedRequest from exc
            return False
        try:
            method, target, version, headers = parse_head(head)
            body = await read_body(reader, headers)
        except (asyncio.LimitOverrunError, ValueError, UnicodeDecodeError) as exc:
            raise _MalformedRequest from exc
        path, _, query = target.partition("?")
        parsed: Any = None
        if body:
            with contextlib.suppress(ValueError):
                parsed = loads(body)
        request = RecordedRequest(method, path, query, headers, body, parsed)
        with self._lock:
            self._requests.append(request)
        keep_alive = version == "HTTP/1.1" and headers.get("connection", "").lower() != "close"
        return await self._respond(request, writer, keep_alive) and keep_alive

    async def _respond(
        self, request: RecordedRequest, writer: asyncio.StreamWriter, keep_alive: bool
    ) -> bool:
        is_answered = request.method == "POST" and request.path in _ANSWERED_PATHS
        discovery = None if is_answered else self._discovery_route(request)
        if not is_answered and discovery is None:
            message = f"Invalid URL ({request.method} {request.path})"
            await send(writer, 404, error_body(message), keep_alive=keep_alive)
            return True
        try:
            reply = self._next_queued(request)
            if reply is None and discovery is not None:
                reply = RawReply(body=discovery(self))
            if reply is None:
                reply = self.policy(request)
            rendered = self._render(request, reply) if isinstance(reply, Reply) else None
        except Exception as exc:
            # A failing reply factory or policy is a bug in the test; answer 500 and keep it.
            self.errors.append(exc)
            message = f"scripted reply failed: {exc!r}"
            await send(writer, 500, error_body(message, "server_error"), keep_alive=keep_alive)
            return True
        if isinstance(reply, Disconnect):
            await asyncio.sleep(reply.delay)
            reset(writer)
            return False
        if isinstance(reply, RawReply):
            await asyncio.sleep(reply.first_byte_delay)
            await send(
                writer,
                reply.status,
                reply.body,
                keep_alive=keep_alive,
                headers=reply.headers,
                content_type=reply.content_type,
                compress=reply.gzip,
            )
            return True
        assert rendered is not None
        await asyncio.sleep(reply.first_byte_delay)
        if isinstance(rendered, bytes):
            await self._send_body(reply, rendered, writer, keep_alive)
        else:
            await self._stream(reply, rendered, writer, keep_alive)
        return True

    def _discovery_route(self, request: RecordedRequest) -> Callable[[ScriptedServer], Any] | None:
        routes: dict[tuple[str, str], Callable[[ScriptedServer], Any]] = {
            ("GET", "/v1/models"): _models,
            ("GET", "/health"): lambda _: {"status": "ok"},
        }
        if "llamacpp" in self.imitate:
            routes["GET", "/props"] = _props
        if "ollama" in self.imitate:
            routes["GET", "/api/tags"] = _tags
            routes["GET", "/api/version"] = lambda _: {"version": "0.6.0"}
            routes["POST", "/api/show"] = _show
        return routes.get((request.method, request.path.rstrip("/") or "/"))

    def _render(self, request: RecordedRequest, reply: Reply) -> bytes | list[bytes]:
        """The JSON body, or the SSE events when the request asks to stream."""
        body = request.json if isinstance(request.json, dict) else {}
        legacy = request.path == COMPLETIONS_PATH
        stream_options = body.get("stream_options")
        requested_n = body.get("n")
        completion = Completion(
            id=f"{'cmpl' if legacy else 'chatcmpl'}-scripted{next(self._ids)}",
            created=int(time.time()),
            model=str(body["model"]) if isinstance(body.get("model"), str) else self.model,
            prompt_tokens=count_prompt_tokens(body),
            include_usage=isinstance(stream_options, dict)
            and stream_options.get("include_usage") is True,
            n=min(max(requested_n, 1), _MAX_CHOICES) if isinstance(requested_n, int) else 1,
        )
        if body.get("stream") is True:
            chunks = stream_chunks(reply, completion)
            return sse_events(reply, text_completion_chunks(chunks) if legacy else chunks)
        answer = completion_body(reply, completion)
        return dumps(text_completion_body(answer) if legacy else answer)

    async def _send_body(
        self, reply: Reply, data: bytes, writer: asyncio.StreamWriter, keep_alive: bool
    ) -> None:
        if reply.drop_after is None:
            await send(
                writer,
                reply.status,
                data,
                keep_alive=keep_alive,
                headers=reply.headers,
                content_type="application/json",
                compress=reply.gzip,
            )
            return
        head = response_head(reply.status, "application/json", len(data), reply.headers, keep_alive)
        writer.write(head + data[: len(data) // 2])
        await writer.drain()
        raise _ClientGone

    async def _stream(
        self, reply: Reply, events: list[bytes], writer: asyncio.StreamWriter, keep_alive: bool
    ) -> None:
        headers = {"Cache-Control": "no-cache", **reply.headers}
        compressor = zlib.compressobj(wbits=31) if reply.gzip else None
        if compressor is not None:
            headers["Content-Encoding"] = "gzip"
        writer.write(response_head(reply.status, "text/event-stream", None, headers, keep_alive))
        for position, event in enumerate(events):
            if reply.drop_after is not None and position >= reply.drop_after:
                await writer.drain()
                raise _ClientGone
            if position and reply.chunk_delay:
                await asyncio.sleep(reply.chunk_delay)
            if compressor is not None:
                event = compressor.compress(event) + compressor.flush(zlib.Z_SYNC_FLUSH)
            writer.write(b"%x\r\n%b\r\n" % (len(event), event))
            await writer.drain()
        if reply.drop_after is not None:
            raise _ClientGone
        tail = compressor.flush() if compressor is not None else b""
        if tail:
            writer.write(b"%x\r\n%b\r\n" % (len(tail), tail))
        writer.write(b"0\r\n\r\n")
        await writer.drain()


# -- routes ------------------------------------------------------------------


def _models(server: ScriptedServer) -> Any:
    return {
        "object": "list",
        "data": [
            {
                "id": server.model,
                "object": "model",
                "created": 1700000000,
                "owned_by": "oaicompat",
                "meta": {"n_ctx_train": server.context_window},
            }
        ],
    }


def _props(server: ScriptedServer) -> Any:
    return {
        "default_generation_settings": {
            "n_ctx": server.context_window,
            "model": server.model,
            "params": {"temperature": 0.8, "top_p": 0.95},
        },
        "total_slots": 1,
        "model_path": f"/models/{server.model}.gguf",
        "chat_template": "{{ messages }}",
        "build_info": "scripted",
    }


def _tags(server: ScriptedServer) -> Any:
    return {
        "models": [
            {
                "name": server.model,
                "model": server.model,
                "modified_at": "2025-01-01T00:00:00Z",
                "size": 0,
                "digest": "0" * 64,
                "details": {"format": "gguf", "family": "llama", "parameter_size": "1B"},
            }
        ]
    }


def _show(server: ScriptedServer) -> Any:
    return {
        "parameters": f"num_ctx                        {server.context_window}",
        "details": {"format": "gguf", "family": "llama", "parameter_size": "1B"},
        "model_info": {
            "general.architecture": "llama",
            "llama.context_length": server.context_window,
        },
        "capabilities": ["completion", "tools"],
    }

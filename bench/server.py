"""A minimal OpenAI-compatible server that is never the bottleneck.

Raw asyncio protocol, HTTP/1.1 with keep-alive, every response pre-built and
cached per size. A stream goes out the way uvicorn-based servers (vLLM,
llama-cpp-python, LiteLLM) send it: chunked transfer encoding with one HTTP
chunk per SSE event, each written separately. The writer yields to the event
loop every few events so that concurrent streams interleave, and honours
transport flow control so a slow client never makes the server buffer a
whole stream.

``GET /stats`` returns the server's own CPU seconds, so the harness can show
that the server spends less CPU per run than the client it serves.

Run: ``python -m bench.server [--port 0]``; it prints ``PORT <n>`` when ready.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import resource
import signal
import sys

from bench import payloads

_STREAM_HEAD = (
    b"HTTP/1.1 200 OK\r\n"
    b"content-type: text/event-stream; charset=utf-8\r\n"
    b"cache-control: no-cache\r\n"
    b"transfer-encoding: chunked\r\n"
    b"\r\n"
)
_LAST_CHUNK = b"0\r\n\r\n"


def _http_response(status: str, body: bytes, content_type: str = "application/json") -> bytes:
    head = (
        f"HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {len(body)}\r\n\r\n"
    )
    return head.encode("ascii") + body


@functools.lru_cache(maxsize=32)
def completion_response(n_tokens: int) -> bytes:
    return _http_response("200 OK", payloads.completion_body(n_tokens))


@functools.lru_cache(maxsize=32)
def stream_pieces(n_tokens: int) -> tuple[bytes, ...]:
    """The status line and headers, then one HTTP chunk per SSE event, then the end."""
    chunks = [b"%x\r\n%s\r\n" % (len(event), event) for event in payloads.stream_events(n_tokens)]
    return (_STREAM_HEAD, *chunks, _LAST_CHUNK)


def _error(status: str, message: str) -> bytes:
    return _http_response(status, json.dumps({"error": {"message": message}}).encode())


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class _Stats:
    requests = 0
    streamed_events = 0


class _Connection(asyncio.Protocol):
    def __init__(self, yield_every: int) -> None:
        self._yield_every = yield_every
        self._buffer = bytearray()
        self._transport: asyncio.Transport | None = None
        self._streaming = False
        self._closed = False
        self._resumed: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self._wake_writer()

    def pause_writing(self) -> None:
        self._resumed = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        self._wake_writer()

    def _wake_writer(self) -> None:
        if self._resumed is not None and not self._resumed.done():
            self._resumed.set_result(None)
        self._resumed = None

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if not self._streaming:
            self._serve_buffered()

    def _serve_buffered(self) -> None:
        """Answer every complete request in the buffer, in order (clients may pipeline)."""
        transport = self._transport
        assert transport is not None
        while not self._closed:
            head_end = self._buffer.find(b"\r\n\r\n")
            if head_end < 0:
                return
            head = bytes(self._buffer[:head_end]).decode("latin-1")
            request_line, _, header_text = head.partition("\r\n")
            headers = {}
            for line in header_text.split("\r\n"):
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            body_start = head_end + 4
            body_end = body_start + int(headers.get("content-length", "0"))
            if len(self._buffer) < body_end:
                return
            body = bytes(self._buffer[body_start:body_end])
            del self._buffer[:body_end]
            _Stats.requests += 1
            pieces = self._route(request_line, headers, body)
            if isinstance(pieces, bytes):
                transport.write(pieces)
                if headers.get("connection", "").lower() == "close":
                    transport.close()
                    return
                continue
            self._streaming = True
            asyncio.get_running_loop().create_task(self._send_stream(pieces))
            return

    def _route(
        self, request_line: str, headers: dict[str, str], body: bytes
    ) -> bytes | tuple[bytes, ...]:
        method, _, rest = request_line.partition(" ")
        path = rest.split(" ", 1)[0].split("?", 1)[0]
        if method == "GET" and path == "/stats":
            stats = {
                "cpu_s": cpu_seconds(),
                "requests": _Stats.requests,
                "streamed_events": _Stats.streamed_events,
            }
            return _http_response("200 OK", json.dumps(stats).encode())
        if method != "POST" or not path.endswith("/chat/completions"):
            return _error("404 Not Found", f"no route for {method} {path}")
        if "chunked" in headers.get("transfer-encoding", ""):
            return _error("411 Length Required", "send the body with a content-length")
        try:
            request = json.loads(body)
        except ValueError:
            return _error("400 Bad Request", "body is not JSON")
        n_tokens = payloads.tokens_for(str(request.get("model", "")))
        if n_tokens is None:
            return _error("404 Not Found", "model must be named bench-<n>")
        if request.get("stream"):
            return stream_pieces(n_tokens)
        return completion_response(n_tokens)

    async def _send_stream(self, pieces: tuple[bytes, ...]) -> None:
        transport = self._transport
        assert transport is not None
        write = transport.write
        yield_every = self._yield_every
        countdown = yield_every
        for piece in pieces:
            if self._closed:
                return
            write(piece)
            if self._resumed is not None:
                await self._resumed
                countdown = yield_every
            else:
                countdown -= 1
                if countdown == 0:
                    countdown = yield_every
                    await asyncio.sleep(0)
        _Stats.streamed_events += len(pieces) - 2
        self._streaming = False
        if self._buffer:
            self._serve_buffered()


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


async def serve(host: str, port: int, yield_every: int, prebuild: list[int]) -> None:
    for n_tokens in prebuild:
        stream_pieces(n_tokens)
        completion_response(n_tokens)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: _Connection(yield_every), host, port, backlog=4096, reuse_address=True
    )
    bound_port = server.sockets[0].getsockname()[1]
    stop = loop.create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, _resolve, stop)
    print(f"PORT {bound_port}", flush=True)
    async with server:
        await stop


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument(
        "--yield-every",
        type=int,
        default=16,
        help="stream events written before yielding to other connections",
    )
    parser.add_argument(
        "--prebuild", default="", help="comma-separated token counts to build before serving"
    )
    args = parser.parse_args(argv)
    prebuild = [int(size) for size in args.prebuild.split(",") if size]
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.host, args.port, max(1, args.yield_every), prebuild))
    sys.stdout.flush()


if __name__ == "__main__":
    main()

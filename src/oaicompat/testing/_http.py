"""Just enough HTTP/1.1 for the scripted server, on asyncio streams."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import http
import logging
import socket
import struct
from collections.abc import Mapping
from typing import Any

from oaicompat._json import dumps

__all__ = [
    "error_body",
    "log_loop_error",
    "parse_head",
    "read_body",
    "reset",
    "response_head",
    "run_loop",
    "send",
]

logger = logging.getLogger("oaicompat.testing.server")


def parse_head(head: bytes) -> tuple[str, str, str, dict[str, str]]:
    """Method, target, version and lower-cased headers (repeats joined with ", ")."""
    request_line, *header_lines = head.decode("latin-1").split("\r\n")
    method, target, version = request_line.split(" ", 2)
    headers: dict[str, str] = {}
    for line in header_lines:
        if line:
            name, _, value = line.partition(":")
            key, value = name.strip().lower(), value.strip()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
    return method, target, version, headers


def run_loop(loop: asyncio.AbstractEventLoop) -> None:
    asyncio.set_event_loop(loop)
    try:
        loop.run_forever()
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


def log_loop_error(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    # Clients that vanish mid-stream are routine here; keep them off stderr.
    logger.debug("scripted server: %s", context.get("message"), exc_info=context.get("exception"))


def error_body(message: str, type_: str = "invalid_request_error") -> Any:
    return {"error": {"message": message, "type": type_, "param": None, "code": None}}


async def read_body(reader: asyncio.StreamReader, headers: Mapping[str, str]) -> bytes:
    if "chunked" in headers.get("transfer-encoding", "").lower():
        parts: list[bytes] = []
        while True:
            size_line = await reader.readuntil(b"\r\n")
            size = int(size_line.split(b";", 1)[0].strip(), 16)
            if size == 0:
                await reader.readuntil(b"\r\n")
                return b"".join(parts)
            parts.append(await reader.readexactly(size))
            await reader.readexactly(2)
    length = int(headers.get("content-length", "0") or "0")
    return await reader.readexactly(length) if length else b""


def response_head(
    status: int,
    content_type: str,
    length: int | None,
    headers: Mapping[str, str],
    keep_alive: bool,
) -> bytes:
    try:
        reason = http.HTTPStatus(status).phrase
    except ValueError:
        reason = "Unknown"
    lines = [f"HTTP/1.1 {status} {reason}", f"Content-Type: {content_type}"]
    lines.append(
        f"Content-Length: {length}" if length is not None else "Transfer-Encoding: chunked"
    )
    lines.append(f"Connection: {'keep-alive' if keep_alive else 'close'}")
    lines.append("Server: oaicompat-scripted")
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


async def send(
    writer: asyncio.StreamWriter,
    status: int,
    body: Any,
    *,
    keep_alive: bool,
    headers: Mapping[str, str] | None = None,
    content_type: str | None = None,
    compress: bool = False,
) -> None:
    if isinstance(body, bytes):
        data, default_type = body, "application/octet-stream"
    elif isinstance(body, str):
        data, default_type = body.encode("utf-8"), "text/plain; charset=utf-8"
    else:
        data, default_type = dumps(body), "application/json"
    extra = dict(headers or {})
    if compress:
        data = gzip.compress(data)
        extra["Content-Encoding"] = "gzip"
    writer.write(
        response_head(status, content_type or default_type, len(data), extra, keep_alive) + data
    )
    await writer.drain()


def reset(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP RST (SO_LINGER 0) instead of an orderly FIN."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()

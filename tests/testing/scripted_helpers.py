"""Helpers for talking to the scripted server with plain httpx and reading its SSE."""

from __future__ import annotations

import json
import socket
from typing import Any

import httpx

from oaicompat._json import loads

CHAT = "/chat/completions"


def chat_body(text: str = "Hello", **extra: Any) -> dict[str, Any]:
    return {"model": "scripted-model", "messages": [{"role": "user", "content": text}], **extra}


def sse_data(raw: bytes) -> list[bytes]:
    """The ``data:`` payloads of an SSE body, whatever its line endings; comments skipped."""
    lines = raw.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
    return [line[len(b"data: ") :] for line in lines if line.startswith(b"data: ")]


def stream_chunks(raw: bytes) -> list[dict[str, Any]]:
    """The JSON chunks of an SSE body, ``[DONE]`` excluded."""
    return [loads(data) for data in sse_data(raw) if data != b"[DONE]"]


def stream(client: httpx.Client, body: dict[str, Any]) -> tuple[httpx.Response, bytes]:
    with client.stream("POST", CHAT, json={**body, "stream": True}) as response:
        return response, response.read()


def joined(chunks: list[dict[str, Any]], field: str) -> str:
    return "".join(
        choice["delta"].get(field) or "" for chunk in chunks for choice in chunk["choices"]
    )


def tool_call_deltas(chunks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        call
        for chunk in chunks
        for choice in chunk["choices"]
        for call in choice["delta"].get("tool_calls") or ()
    ]


def merged_tool_calls(chunks: list[dict[str, Any]]) -> dict[int, dict[str, str]]:
    """Tool-call fragments joined by index, as a client must do: index -> id, name, arguments."""
    calls: dict[int, dict[str, str]] = {}
    for delta in tool_call_deltas(chunks):
        call = calls.setdefault(delta["index"], {"id": "", "name": "", "arguments": ""})
        call["id"] += delta.get("id", "")
        function = delta.get("function", {})
        call["name"] += function.get("name", "")
        call["arguments"] += function.get("arguments", "")
    return calls


def receive_until_closed(sock: socket.socket) -> bytes:
    received = b""
    while data := sock.recv(65536):
        received += data
    return received


def raw_exchange(port: int, request: bytes) -> bytes:
    """Send raw request bytes on a fresh connection; everything received until it closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(request)
        return receive_until_closed(sock)


def raw_chat_request(body: dict[str, Any]) -> bytes:
    payload = json.dumps(body).encode()
    return (
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (len(payload), payload)
    )

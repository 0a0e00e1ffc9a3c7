"""Loading the recorded wire formats in ``transcripts/`` and replaying them through the core."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from oaicompat.profiles import PRESETS, ServerProfile
from oaicompat.protocol import StreamParser
from oaicompat.types import ChatChunk, ChatResponse

TRANSCRIPTS = Path(__file__).parent / "transcripts"


def sse_bytes(name: str) -> bytes:
    return (TRANSCRIPTS / f"{name}.sse").read_bytes()


def json_body(name: str) -> Any:
    return json.loads((TRANSCRIPTS / f"{name}.json").read_text(encoding="utf-8"))


def transcript_names() -> list[str]:
    return sorted(path.stem for path in TRANSCRIPTS.glob("*.sse"))


def profile(name: str) -> ServerProfile:
    return PRESETS[name]


def replay(pieces: Iterable[bytes], server: ServerProfile) -> tuple[list[ChatChunk], ChatResponse]:
    """Feed ``pieces`` one read at a time; the chunks produced and the final response."""
    parser = StreamParser(server)
    chunks: list[ChatChunk] = []
    for piece in pieces:
        chunks.extend(parser.feed(piece))
    return chunks, parser.finish()


def byte_by_byte(data: bytes) -> list[bytes]:
    return [data[i : i + 1] for i in range(len(data))]


def with_line_ends(data: bytes, ending: bytes) -> bytes:
    """The same stream with every LF line end replaced (JSON payloads hold no raw LF)."""
    return data.replace(b"\n", ending)


def call_view(response: ChatResponse, *, keep_ids: bool = True) -> list[tuple[Any, ...]]:
    """Tool calls as comparable tuples; ids left out when the parser had to invent them."""
    return [
        ((call.id if keep_ids else None), call.name, call.arguments, call.error)
        for call in response.tool_calls
    ]


def chunk_view(chunks: list[ChatChunk], *, keep_ids: bool = True) -> list[tuple[Any, ...]]:
    return [
        (
            chunk.content,
            chunk.reasoning,
            chunk.finish_reason,
            chunk.usage,
            [
                (delta.index, delta.id if keep_ids else None, delta.name, delta.arguments)
                for delta in chunk.tool_call_deltas
            ],
        )
        for chunk in chunks
    ]


def response_view(response: ChatResponse, *, keep_ids: bool = True) -> tuple[Any, ...]:
    return (
        response.content,
        response.reasoning,
        response.finish_reason,
        response.usage,
        response.model,
        response.id,
        call_view(response, keep_ids=keep_ids),
    )

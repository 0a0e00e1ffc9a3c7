"""Driving a core stream through a folder into LlamaIndex's cumulative responses."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Generator
from typing import Protocol, TypeVar

from oaicompat import types as core
from oaicompat.streaming import AsyncChatStream, ChatStream

__all__ = ["afold_stream", "fold_stream"]

_R = TypeVar("_R", covariant=True)


class Folder(Protocol[_R]):
    """Turns chunks into responses (`StreamFolder` for chat, `CompletionFolder` for text)."""

    def add(self, chunk: core.ChatChunk) -> _R | None: ...

    def finish(self, final: core.ChatResponse) -> _R: ...


def fold_stream(stream: ChatStream, folder: Folder[_R]) -> Generator[_R, None, None]:
    """A real generator, as LlamaIndex's callback decorators require: the request goes
    out when it is first advanced, and closing it releases the connection."""
    with stream:
        for chunk in stream:
            response = folder.add(chunk)
            if response is not None:
                yield response
        yield folder.finish(stream.final())


async def afold_stream(stream: AsyncChatStream, folder: Folder[_R]) -> AsyncGenerator[_R, None]:
    """The async twin of `fold_stream`."""
    async with stream:
        async for chunk in stream:
            response = folder.add(chunk)
            if response is not None:
                yield response
        yield folder.finish(await stream.final())

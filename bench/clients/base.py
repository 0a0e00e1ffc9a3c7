"""The interface every benchmarked library is wrapped in.

Each wrapper drives its library the way that library's users do (its own
client object, its own message types, its own stream iteration) and returns
what it received, so the harness can check the text and the chunk count.
A wrapper is built for one model name; ``concurrency`` lets a wrapper size a
connection pool when its library asks the user to.
"""

from __future__ import annotations

TIMEOUT_S = 120.0
API_KEY = "bench-key"


class TextCollector:
    """Joins the non-empty text deltas of one stream and counts them."""

    __slots__ = ("parts",)

    def __init__(self) -> None:
        self.parts: list[str] = []

    def add(self, text: object) -> None:
        if text:
            self.parts.append(str(text))

    def result(self) -> tuple[str, int]:
        return "".join(self.parts), len(self.parts)


class BenchClient:
    """A library under test. Sync wrappers implement ``chat``/``stream``,
    async ones ``achat``/``astream``; LangChain and LlamaIndex models do both."""

    def __init__(self, base_url: str, model: str, concurrency: int = 1) -> None:
        self.base_url = base_url
        self.model = model
        self.concurrency = concurrency

    def chat(self) -> str:
        raise NotImplementedError

    def stream(self) -> tuple[str, int]:
        raise NotImplementedError

    async def achat(self) -> str:
        raise NotImplementedError

    async def astream(self) -> tuple[str, int]:
        raise NotImplementedError

    def close(self) -> None:
        """Release the sync client's connections."""

    async def aclose(self) -> None:
        """Release the async client's connections."""

"""Our core ``oaicompat.Client`` and ``AsyncClient``, used as the README shows."""

from __future__ import annotations

import inspect
import os
from typing import Any

from bench.clients.base import TIMEOUT_S, BenchClient, TextCollector
from bench.payloads import PROMPT
from oaicompat import AsyncClient, Client


class OursSync(BenchClient):
    def __init__(self, base_url: str, model: str, concurrency: int = 1) -> None:
        super().__init__(base_url, model, concurrency)
        self.client = Client(base_url, model, max_retries=0, timeout=TIMEOUT_S)

    def chat(self) -> str:
        return self.client.chat(PROMPT).content

    def stream(self) -> tuple[str, int]:
        collector = TextCollector()
        with self.client.stream(PROMPT) as stream:
            for chunk in stream:
                collector.add(chunk.content)
        return collector.result()

    def close(self) -> None:
        self.client.close()


class OursAsync(BenchClient):
    def __init__(self, base_url: str, model: str, concurrency: int = 1) -> None:
        super().__init__(base_url, model, concurrency)
        self.client = AsyncClient(base_url, model, max_retries=0, timeout=TIMEOUT_S)

    async def achat(self) -> str:
        return (await self.client.chat(PROMPT)).content

    async def astream(self) -> tuple[str, int]:
        collector = TextCollector()
        stream: Any = self.client.stream(PROMPT)
        if inspect.isawaitable(stream):
            stream = await stream
        async with stream:
            async for chunk in stream:
                collector.add(chunk.content)
        return collector.result()

    async def aclose(self) -> None:
        await self.client.aclose()


class OursAsyncOnHttpxTransport(OursAsync):
    """`AsyncClient` with its own asyncio transport turned off: what that transport buys."""

    def __init__(self, base_url: str, model: str, concurrency: int = 1) -> None:
        # Each client runs in its own worker process, so this reaches no other client.
        os.environ["OAICOMPAT_HTTPX_TRANSPORT"] = "1"
        super().__init__(base_url, model, concurrency)

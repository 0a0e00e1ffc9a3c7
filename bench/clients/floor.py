"""The floor: bare httpx, reading lines and ``json.loads`` on each data line.

No library does less work than this and still parses every chunk, so it is
the yardstick every other client's cost is divided by.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from bench.clients.base import TIMEOUT_S, BenchClient, TextCollector
from bench.payloads import PROMPT


def _content_of(line: str, collector: TextCollector) -> bool:
    """Feed one SSE line; True once the stream says ``[DONE]``."""
    if not line.startswith("data:"):
        return False
    data = line[5:].lstrip()
    if data == "[DONE]":
        return True
    choices = json.loads(data)["choices"]
    if choices:
        collector.add(choices[0]["delta"].get("content"))
    return False


class _HttpxBase(BenchClient):
    def __init__(self, base_url: str, model: str, concurrency: int = 1) -> None:
        super().__init__(base_url, model, concurrency)
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.limits = httpx.Limits(
            max_connections=max(100, concurrency), max_keepalive_connections=max(20, concurrency)
        )
        self.chat_body: dict[str, Any] = {"model": model, "messages": PROMPT}
        self.stream_body: dict[str, Any] = {
            **self.chat_body,
            "stream": True,
            "stream_options": {"include_usage": True},
        }

    @staticmethod
    def content_of(response: httpx.Response) -> str:
        response.raise_for_status()
        return str(response.json()["choices"][0]["message"]["content"])


class HttpxFloor(_HttpxBase):
    def __init__(self, base_url: str, model: str, concurrency: int = 1) -> None:
        super().__init__(base_url, model, concurrency)
        self.client = httpx.Client(timeout=TIMEOUT_S, limits=self.limits)

    def chat(self) -> str:
        return self.content_of(self.client.post(self.url, json=self.chat_body))

    def stream(self) -> tuple[str, int]:
        collector = TextCollector()
        with self.client.stream("POST", self.url, json=self.stream_body) as response:
            response.raise_for_status()
            for line in response.iter_lines():
                if _content_of(line, collector):
                    break
        return collector.result()

    def close(self) -> None:
        self.client.close()


class AsyncHttpxFloor(_HttpxBase):
    def __init__(self, base_url: str, model: str, concurrency: int = 1) -> None:
        super().__init__(base_url, model, concurrency)
        self.client = httpx.AsyncClient(timeout=TIMEOUT_S, limits=self.limits)

    async def achat(self) -> str:
        return self.content_of(await self.client.post(self.url, json=self.chat_body))

    async def astream(self) -> tuple[str, int]:
        collector = TextCollector()
        async with self.client.stream("POST", self.url, json=self.stream_body) as response:
            response.raise_for_status()
            async for line in response.aiter_lines():
                if _content_of(line, collector):
                    break
        return collector.result()

    async def aclose(self) -> None:
        await self.client.aclose()

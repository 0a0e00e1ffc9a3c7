"""The ``openai`` SDK, sync and async, as its docs show it used with a local server."""

from __future__ import annotations

from typing import Any

import openai

from bench.clients.base import API_KEY, TIMEOUT_S, BenchClient, TextCollector
from bench.payloads import PROMPT

_STREAM_OPTIONS: Any = {"include_usage": True}
# The SDK types messages as TypedDicts; the bench prompt is plain dicts.
_MESSAGES: Any = PROMPT


def _add_chunk(chunk: Any, collector: TextCollector) -> None:
    if chunk.choices:
        collector.add(chunk.choices[0].delta.content)


class OpenAISync(BenchClient):
    def __init__(self, base_url: str, model: str, concurrency: int = 1) -> None:
        super().__init__(base_url, model, concurrency)
        self.client = openai.OpenAI(
            base_url=base_url, api_key=API_KEY, max_retries=0, timeout=TIMEOUT_S
        )

    def chat(self) -> str:
        completion = self.client.chat.completions.create(model=self.model, messages=_MESSAGES)
        return completion.choices[0].message.content or ""

    def stream(self) -> tuple[str, int]:
        collector = TextCollector()
        with self.client.chat.completions.create(
            model=self.model, messages=_MESSAGES, stream=True, stream_options=_STREAM_OPTIONS
        ) as stream:
            for chunk in stream:
                _add_chunk(chunk, collector)
        return collector.result()

    def close(self) -> None:
        self.client.close()


class OpenAIAsync(BenchClient):
    def __init__(self, base_url: str, model: str, concurrency: int = 1) -> None:
        super().__init__(base_url, model, concurrency)
        self.client = openai.AsyncOpenAI(
            base_url=base_url, api_key=API_KEY, max_retries=0, timeout=TIMEOUT_S
        )

    async def achat(self) -> str:
        completion = await self.client.chat.completions.create(model=self.model, messages=_MESSAGES)
        return completion.choices[0].message.content or ""

    async def astream(self) -> tuple[str, int]:
        collector = TextCollector()
        async with await self.client.chat.completions.create(
            model=self.model, messages=_MESSAGES, stream=True, stream_options=_STREAM_OPTIONS
        ) as stream:
            async for chunk in stream:
                _add_chunk(chunk, collector)
        return collector.result()

    async def aclose(self) -> None:
        await self.client.close()

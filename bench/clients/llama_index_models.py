"""LlamaIndex LLMs: ``OpenAILike`` and our adapter, through ``chat``/``stream_chat``
and their async twins, with LlamaIndex's own message type."""

from __future__ import annotations

from typing import Any

from bench.clients.base import API_KEY, TIMEOUT_S, BenchClient, TextCollector
from bench.payloads import PROMPT

# Given explicitly so that neither model asks the server for it during the run.
_CONTEXT_WINDOW = 32768


class _LlamaIndexLLM(BenchClient):
    def __init__(self, base_url: str, model: str, concurrency: int = 1) -> None:
        super().__init__(base_url, model, concurrency)
        from llama_index.core.llms import ChatMessage

        self.messages = [ChatMessage(role=m["role"], content=m["content"]) for m in PROMPT]
        self.llm = self.make_llm()

    def make_llm(self) -> Any:
        raise NotImplementedError

    def chat(self) -> str:
        return str(self.llm.chat(self.messages).message.content)

    def stream(self) -> tuple[str, int]:
        collector = TextCollector()
        for response in self.llm.stream_chat(self.messages):
            collector.add(response.delta)
        return collector.result()

    async def achat(self) -> str:
        return str((await self.llm.achat(self.messages)).message.content)

    async def astream(self) -> tuple[str, int]:
        collector = TextCollector()
        async for response in await self.llm.astream_chat(self.messages):
            collector.add(response.delta)
        return collector.result()


class OpenAILikeClient(_LlamaIndexLLM):
    def make_llm(self) -> Any:
        from llama_index.llms.openai_like import OpenAILike  # type: ignore[import-untyped]

        return OpenAILike(
            model=self.model,
            api_base=self.base_url,
            api_key=API_KEY,
            is_chat_model=True,
            max_retries=0,
            timeout=TIMEOUT_S,
            context_window=_CONTEXT_WINDOW,
        )


class OursLlamaIndexClient(_LlamaIndexLLM):
    def make_llm(self) -> Any:
        from oaicompat.llama_index import OpenAICompatible

        return OpenAICompatible(
            model=self.model,
            base_url=self.base_url,
            max_retries=0,
            timeout=TIMEOUT_S,
            context_window=_CONTEXT_WINDOW,
        )

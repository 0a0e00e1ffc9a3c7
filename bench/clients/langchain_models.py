"""LangChain chat models: ``langchain_openai.ChatOpenAI`` and our adapter.

Both are driven through the public ``BaseChatModel`` API (``invoke``,
``stream``, ``ainvoke``, ``astream``), so the callback and message-merging
machinery every LangChain user pays for is on the measured path.
"""

from __future__ import annotations

from typing import Any

from bench.clients.base import API_KEY, TIMEOUT_S, BenchClient, TextCollector
from bench.payloads import PROMPT


class _LangChainModel(BenchClient):
    def __init__(self, base_url: str, model: str, concurrency: int = 1) -> None:
        super().__init__(base_url, model, concurrency)
        self.llm = self.make_model()

    def make_model(self) -> Any:
        raise NotImplementedError

    def chat(self) -> str:
        return str(self.llm.invoke(PROMPT).content)

    def stream(self) -> tuple[str, int]:
        collector = TextCollector()
        for chunk in self.llm.stream(PROMPT):
            collector.add(chunk.content)
        return collector.result()

    async def achat(self) -> str:
        return str((await self.llm.ainvoke(PROMPT)).content)

    async def astream(self) -> tuple[str, int]:
        collector = TextCollector()
        async for chunk in self.llm.astream(PROMPT):
            collector.add(chunk.content)
        return collector.result()


class ChatOpenAIClient(_LangChainModel):
    def make_model(self) -> Any:
        from langchain_openai import ChatOpenAI

        return ChatOpenAI(
            model=self.model,
            base_url=self.base_url,
            api_key=API_KEY,  # type: ignore[arg-type]
            max_retries=0,
            timeout=TIMEOUT_S,
            stream_usage=True,
        )


class OursLangChainClient(_LangChainModel):
    def make_model(self) -> Any:
        from oaicompat.langchain import ChatOpenAICompatible

        return ChatOpenAICompatible(  # type: ignore[call-arg]
            model=self.model, base_url=self.base_url, max_retries=0, timeout=TIMEOUT_S
        )

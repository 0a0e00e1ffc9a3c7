"""The registry of benchmarked clients.

A wrapper module is imported only inside the worker process that runs it, so
a library that is not installed (or not written yet) makes that one client
"unavailable" instead of breaking the run.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from bench.clients.base import BenchClient


@dataclass(frozen=True)
class ClientSpec:
    name: str
    target: str
    """``module:Class`` of the wrapper in this package."""
    package: str
    """What its users import, for the import-time figure."""
    has_sync: bool
    has_async: bool
    ours: bool = False
    peers: tuple[str, ...] = ()
    """For our clients: the peers whose users we want to win over."""

    def load(self) -> type[BenchClient]:
        module_name, _, class_name = self.target.partition(":")
        cls: type[BenchClient] = getattr(
            importlib.import_module(f"bench.clients.{module_name}"), class_name
        )
        return cls

    def mode_for(self, needs_async: bool) -> str | None:
        """Which API a scenario drives: sync when the client has one, unless
        the scenario needs concurrency on one event loop. None: not applicable."""
        if needs_async:
            return "async" if self.has_async else None
        return "sync" if self.has_sync else "async"


SYNC_FLOOR = "httpx"
ASYNC_FLOOR = "httpx-async"

CLIENTS: tuple[ClientSpec, ...] = (
    ClientSpec("httpx", "floor:HttpxFloor", "httpx", has_sync=True, has_async=False),
    ClientSpec("httpx-async", "floor:AsyncHttpxFloor", "httpx", has_sync=False, has_async=True),
    ClientSpec("openai", "openai_sdk:OpenAISync", "openai", has_sync=True, has_async=False),
    ClientSpec("openai-async", "openai_sdk:OpenAIAsync", "openai", has_sync=False, has_async=True),
    ClientSpec(
        "langchain-openai",
        "langchain_models:ChatOpenAIClient",
        "langchain_openai",
        has_sync=True,
        has_async=True,
    ),
    ClientSpec(
        "llamaindex-openailike",
        "llama_index_models:OpenAILikeClient",
        "llama_index.llms.openai_like",
        has_sync=True,
        has_async=True,
    ),
    ClientSpec(
        "oaicompat",
        "ours:OursSync",
        "oaicompat",
        has_sync=True,
        has_async=False,
        ours=True,
        peers=("openai",),
    ),
    ClientSpec(
        "oaicompat-async",
        "ours:OursAsync",
        "oaicompat",
        has_sync=False,
        has_async=True,
        ours=True,
        peers=("openai-async",),
    ),
    # A reference, not a contender: the same AsyncClient on httpx's own async transport.
    ClientSpec(
        "oaicompat-async-httpx-transport",
        "ours:OursAsyncOnHttpxTransport",
        "oaicompat",
        has_sync=False,
        has_async=True,
    ),
    ClientSpec(
        "oaicompat-langchain",
        "langchain_models:OursLangChainClient",
        "oaicompat.langchain",
        has_sync=True,
        has_async=True,
        ours=True,
        peers=("langchain-openai",),
    ),
    ClientSpec(
        "oaicompat-llamaindex",
        "llama_index_models:OursLlamaIndexClient",
        "oaicompat.llama_index",
        has_sync=True,
        has_async=True,
        ours=True,
        peers=("llamaindex-openailike",),
    ),
)

BY_NAME = {spec.name: spec for spec in CLIENTS}


def floor_for(mode: str) -> str:
    return ASYNC_FLOOR if mode == "async" else SYNC_FLOOR

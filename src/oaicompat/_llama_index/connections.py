"""The core clients one adapter instance uses, built on first use.

LlamaIndex models are pydantic objects that get copied, deep-copied, pickled
and mutated (``llm.model = ...``). Each instance therefore owns the clients it
built, remembers the settings they were built with, and builds new ones when
it is a copy or its settings changed. httpx clients a user injected are shared
by every copy; pools the adapter opened are never shared.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    from oaicompat.client import AsyncClient, Client

_BUILD_LOCK = threading.Lock()


class Connections:
    """Injected httpx clients, plus the core clients and discovered facts of one owner."""

    __slots__ = (
        "async_client",
        "async_http_client",
        "config",
        "context_window",
        "http_client",
        "owner",
        "sync_client",
    )

    def __init__(
        self,
        http_client: httpx.Client | None = None,
        async_http_client: httpx.AsyncClient | None = None,
    ) -> None:
        self.http_client = http_client
        self.async_http_client = async_http_client
        self.owner: int | None = None
        self.config: tuple[Any, ...] | None = None
        self.sync_client: Client | None = None
        self.async_client: AsyncClient | None = None
        self.context_window: int | None = None

    def fresh(self) -> Connections:
        """A holder with the same injected clients and nothing built yet."""
        return Connections(self.http_client, self.async_http_client)

    def __deepcopy__(self, memo: dict[int, Any]) -> Connections:
        return self.fresh()

    def __reduce__(self) -> tuple[Callable[[], Connections], tuple[()]]:
        # httpx clients cannot be pickled; an unpickled adapter builds its own.
        return (Connections, ())

    def is_current(self, owner: object, config: tuple[Any, ...]) -> bool:
        return self.owner == id(owner) and self.config == config

    def built_client(self, owner: object) -> Client | AsyncClient | None:
        """A client this owner built, if any (its profile may have learned refusals)."""
        if self.owner != id(owner):
            return None
        return self.sync_client or self.async_client


def current(holder: Connections, owner: object, config: tuple[Any, ...]) -> Connections:
    """``holder`` when it belongs to ``owner`` and matches ``config``, else a fresh one.

    A sync client built with outdated settings is closed; an async one cannot be
    closed outside its event loop and is left to the garbage collector.
    """
    if holder.is_current(owner, config):
        return holder
    with _BUILD_LOCK:
        if holder.owner == id(owner) and holder.sync_client is not None:
            holder.sync_client.close()
        replacement = holder.fresh()
        replacement.owner = id(owner)
        replacement.config = config
        return replacement

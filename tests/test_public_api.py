"""The public surface: sync and async twins match, ``__all__`` is exact, the import stays light."""

from __future__ import annotations

import inspect
import subprocess
import sys
import types

import oaicompat
from oaicompat import AsyncChatStream, AsyncClient, ChatStream, Client


def public_names(cls: type) -> set[str]:
    # ``close`` and ``aclose`` are the one documented pair of different names
    # (as in httpx); the test reads them as the same name.
    return {"close" if name == "aclose" else name for name in dir(cls) if not name.startswith("_")}


def test_client_and_async_client_expose_the_same_names() -> None:
    assert public_names(Client) == public_names(AsyncClient)
    assert {"chat", "stream", "close", "base_url", "model", "profile"} <= public_names(Client)
    assert hasattr(AsyncClient, "aclose")


def test_streams_expose_the_same_names() -> None:
    assert public_names(ChatStream) == public_names(AsyncChatStream)
    assert {"final", "response", "close", "closed"} <= public_names(ChatStream)
    assert hasattr(AsyncChatStream, "aclose")


def test_async_twins_are_coroutines_where_they_wait() -> None:
    assert inspect.iscoroutinefunction(AsyncClient.chat)
    assert not inspect.iscoroutinefunction(AsyncClient.stream)
    assert inspect.iscoroutinefunction(AsyncChatStream.final)
    assert not inspect.iscoroutinefunction(Client.chat)


def test_client_constructors_take_the_same_arguments() -> None:
    sync_params = inspect.signature(Client).parameters
    async_params = inspect.signature(AsyncClient).parameters
    assert list(sync_params) == list(async_params)
    for name in ("base_url", "model", "api_key", "timeout", "max_retries", "profile", "headers"):
        assert name in sync_params
    for name in ("http2", "http_client", "chat_path", "default_params"):
        assert name in sync_params


def test_chat_and_stream_take_the_same_arguments() -> None:
    for method in ("chat", "stream"):
        sync_sig = inspect.signature(getattr(Client, method))
        async_sig = inspect.signature(getattr(AsyncClient, method))
        assert list(sync_sig.parameters) == list(async_sig.parameters)


def test_all_matches_what_is_exported() -> None:
    exported = {
        name
        for name, value in vars(oaicompat).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    } | set(oaicompat._LAZY)  # names loaded on first access
    assert len(oaicompat.__all__) == len(set(oaicompat.__all__))
    assert set(oaicompat.__all__) - {"__version__"} == exported
    for name in oaicompat.__all__:
        assert hasattr(oaicompat, name), name


def test_import_does_not_pull_in_frameworks_or_pydantic() -> None:
    code = (
        "import sys, oaicompat\n"
        "heavy = sorted(m for m in sys.modules"
        " if m.split('.')[0] in ('langchain', 'langchain_core', 'llama_index', 'pydantic',"
        " 'pydantic_core', 'openai'))\n"
        "print(','.join(heavy))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == ""


def test_import_leaves_discovery_and_structured_output_for_first_use() -> None:
    code = (
        "import sys, oaicompat\n"
        "lazy = ('oaicompat.discovery', 'oaicompat.structured', 'oaicompat.fallback',"
        " 'oaicompat._probes', 'asyncio')\n"
        "print(','.join(m for m in lazy if m in sys.modules))\n"
        "oaicompat.StructuredOutputError, oaicompat.detect_local_servers\n"
        "print('oaicompat.discovery' in sys.modules and 'oaicompat.structured' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.split() == ["True"]

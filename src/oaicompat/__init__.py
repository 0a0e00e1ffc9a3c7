"""oaicompat: one client for every OpenAI-compatible chat server.

``import oaicompat`` stays light: it imports httpx and nothing from LangChain,
LlamaIndex or pydantic. The adapters live in ``oaicompat.langchain`` and
``oaicompat.llama_index`` and import their framework only when imported.
"""

import importlib as _importlib
from typing import TYPE_CHECKING as _TYPE_CHECKING
from typing import Any as _Any

from oaicompat.client import AsyncClient, Client
from oaicompat.errors import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ContextLengthError,
    InternalServerError,
    NotFoundError,
    OAICompatError,
    PermissionDeniedError,
    RateLimitError,
    ResponseParseError,
    StreamError,
)
from oaicompat.profiles import PRESETS, ServerProfile, get_profile
from oaicompat.retry import RetryPolicy
from oaicompat.streaming import AsyncChatStream, ChatStream
from oaicompat.types import ChatChunk, ChatResponse, Message, ToolCall, ToolCallDelta, Usage

if _TYPE_CHECKING:
    from oaicompat.discovery import ServerInfo, adetect_local_servers, detect_local_servers
    from oaicompat.structured import StructuredOutputError

__version__ = "0.1.0"

# Loaded on first access: discovery and structured output are not needed to chat,
# and importing them eagerly would slow every `import oaicompat`.
_LAZY = {
    "ServerInfo": "oaicompat.discovery",
    "adetect_local_servers": "oaicompat.discovery",
    "detect_local_servers": "oaicompat.discovery",
    "StructuredOutputError": "oaicompat.structured",
}


def __getattr__(name: str) -> _Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'oaicompat' has no attribute {name!r}")
    value = getattr(_importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "PRESETS",
    "APIConnectionError",
    "APIStatusError",
    "APITimeoutError",
    "AsyncChatStream",
    "AsyncClient",
    "AuthenticationError",
    "BadRequestError",
    "ChatChunk",
    "ChatResponse",
    "ChatStream",
    "Client",
    "ContextLengthError",
    "InternalServerError",
    "Message",
    "NotFoundError",
    "OAICompatError",
    "PermissionDeniedError",
    "RateLimitError",
    "ResponseParseError",
    "RetryPolicy",
    "ServerInfo",
    "ServerProfile",
    "StreamError",
    "StructuredOutputError",
    "ToolCall",
    "ToolCallDelta",
    "Usage",
    "__version__",
    "adetect_local_servers",
    "detect_local_servers",
    "get_profile",
]

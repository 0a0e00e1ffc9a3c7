"""oaicompat: one client for every OpenAI-compatible chat server.

``import oaicompat`` stays light: it imports httpx and nothing from LangChain,
LlamaIndex or pydantic. The adapters live in ``oaicompat.langchain`` and
``oaicompat.llama_index`` and import their framework only when imported.
"""

from oaicompat.client import AsyncClient, Client
from oaicompat.discovery import ServerInfo, adetect_local_servers, detect_local_servers
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
from oaicompat.structured import StructuredOutputError
from oaicompat.types import ChatChunk, ChatResponse, Message, ToolCall, ToolCallDelta, Usage

__version__ = "0.1.0"

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

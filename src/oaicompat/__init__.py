"""oaicompat: one client for every OpenAI-compatible chat server.

``import oaicompat`` stays light: it imports httpx and nothing from LangChain,
LlamaIndex or pydantic. The adapters live in ``oaicompat.langchain`` and
``oaicompat.llama_index`` and import their framework only when imported.
"""

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
from oaicompat.types import ChatChunk, ChatResponse, Message, ToolCall, ToolCallDelta, Usage

__version__ = "0.1.0"

__all__ = [
    "PRESETS",
    "APIConnectionError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "ChatChunk",
    "ChatResponse",
    "ContextLengthError",
    "InternalServerError",
    "Message",
    "NotFoundError",
    "OAICompatError",
    "PermissionDeniedError",
    "RateLimitError",
    "ResponseParseError",
    "ServerProfile",
    "StreamError",
    "ToolCall",
    "ToolCallDelta",
    "Usage",
    "__version__",
    "get_profile",
]

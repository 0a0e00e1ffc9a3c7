"""Our errors, re-raised as classes that are also LangChain's ``langchain_core.exceptions`` types.

``except oaicompat.RateLimitError`` and ``except ModelRateLimitError`` both catch
a :class:`ChatRateLimitError`, so code written against either keeps working, and
LangChain's own handling (``.with_retry()``, agents' error middleware) sees the
type it knows. ``is_retryable`` follows our per-error ``retryable`` decision,
except for a stream that failed after it started: the core never resends one
(its caller already saw chunks), but LangChain retries a whole call, which
such a failure deserves.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from langchain_core.exceptions import (
    ContextOverflowError,
    ModelAPIError,
    ModelAuthenticationError,
    ModelConnectionError,
    ModelError,
    ModelInvalidRequestError,
    ModelNotFoundError,
    ModelPermissionDeniedError,
    ModelRateLimitError,
    ModelTimeoutError,
)

from oaicompat import errors as core
from oaicompat.structured import StructuredOutputError

__all__ = [
    "ChatAPIConnectionError",
    "ChatAPITimeoutError",
    "ChatAuthenticationError",
    "ChatBadRequestError",
    "ChatContextLengthError",
    "ChatInternalServerError",
    "ChatNotFoundError",
    "ChatPermissionDeniedError",
    "ChatRateLimitError",
    "ChatResponseParseError",
    "ChatStreamError",
    "convert_error",
    "translated_errors",
]


class ChatAPIConnectionError(core.APIConnectionError, ModelConnectionError):
    """The server could not be reached (a :class:`ModelConnectionError` too)."""


class ChatAPITimeoutError(core.APITimeoutError, ModelTimeoutError):
    """A timeout fired (a :class:`ModelTimeoutError` too)."""


class ChatBadRequestError(core.BadRequestError, ModelInvalidRequestError):
    """400 or 422 (a :class:`ModelInvalidRequestError` too)."""


class ChatContextLengthError(core.ContextLengthError, ChatBadRequestError, ContextOverflowError):
    """The prompt does not fit the context window (a :class:`ContextOverflowError` too)."""


class ChatAuthenticationError(core.AuthenticationError, ModelAuthenticationError):
    """401 (a :class:`ModelAuthenticationError` too)."""


class ChatPermissionDeniedError(core.PermissionDeniedError, ModelPermissionDeniedError):
    """403 (a :class:`ModelPermissionDeniedError` too)."""


class ChatNotFoundError(core.NotFoundError, ModelNotFoundError):
    """404, e.g. an unknown model (a :class:`ModelNotFoundError` too)."""


class ChatRateLimitError(core.RateLimitError, ModelRateLimitError):
    """429 or overloaded (a :class:`ModelRateLimitError` too)."""


class ChatInternalServerError(core.InternalServerError, ModelAPIError):
    """A 5xx answer (a :class:`ModelAPIError` too)."""


class ChatStreamError(core.StreamError, ModelAPIError):
    """A stream that failed after it started: cut short, an error event or a malformed
    chunk (a :class:`ModelAPIError` too, retryable). ``partial`` holds what arrived."""


class ChatResponseParseError(core.ResponseParseError, ModelAPIError):
    """A 2xx answer that is not a chat completion, e.g. a proxy's HTML page
    (a :class:`ModelAPIError` too)."""


_ALWAYS_RETRYABLE = (ChatStreamError,)

# Most specific first: the first class in an error's MRO found here wins; None keeps
# the error as it is.
_CONVERSIONS: dict[type[core.OAICompatError], type[core.OAICompatError] | None] = {
    # Judged by the output parser, as LangChain expects, not a failure of the model call.
    StructuredOutputError: None,
    core.ResponseParseError: ChatResponseParseError,
    core.StreamError: ChatStreamError,
    core.ContextLengthError: ChatContextLengthError,
    core.BadRequestError: ChatBadRequestError,
    core.AuthenticationError: ChatAuthenticationError,
    core.PermissionDeniedError: ChatPermissionDeniedError,
    core.NotFoundError: ChatNotFoundError,
    core.RateLimitError: ChatRateLimitError,
    core.InternalServerError: ChatInternalServerError,
    core.APITimeoutError: ChatAPITimeoutError,
    core.APIConnectionError: ChatAPIConnectionError,
}


def convert_error(error: core.OAICompatError) -> core.OAICompatError:
    """The same error as its LangChain-compatible class, every attribute kept.

    Errors LangChain has no type for (a structured answer that does not parse,
    statuses outside the tree) and errors already converted are returned unchanged.
    """
    if isinstance(error, ModelError):
        return error
    target = next((_CONVERSIONS[cls] for cls in type(error).__mro__ if cls in _CONVERSIONS), None)
    if target is None:
        return error
    # Copy rather than re-construct: the subclasses take different constructor
    # arguments, and every attribute (status_code, body, retry_after, ...) must survive.
    converted = target.__new__(target)
    converted.__dict__.update(error.__dict__)
    converted.args = error.args
    retryable = error.retryable or issubclass(target, _ALWAYS_RETRYABLE)
    converted.is_retryable = retryable  # type: ignore[attr-defined]
    return converted


@contextmanager
def translated_errors() -> Iterator[None]:
    """Re-raise our errors raised inside the block as their LangChain-compatible classes."""
    try:
        yield
    except core.OAICompatError as error:
        converted = convert_error(error)
        if converted is error:
            raise
        raise converted from error

"""The error tree. Every failure a caller can see is one of these.

::

    OAICompatError
    ├── APIConnectionError            cannot connect, connection dropped
    │   └── APITimeoutError
    ├── APIStatusError                status_code, body, headers, request_id, retryable
    │   ├── BadRequestError           400, 422
    │   │   └── ContextLengthError    prompt too long, in every server's wording
    │   ├── AuthenticationError       401
    │   ├── PermissionDeniedError     403
    │   ├── NotFoundError             404 (e.g. unknown model)
    │   ├── RateLimitError            429 (retry_after seconds)
    │   └── InternalServerError       >= 500
    ├── StreamError                   error event inside a 200 stream, malformed chunk, cut short
    └── ResponseParseError            2xx that is not a chat completion

Messages carry the server's own words (JSON ``error.message``, an ``error``
string, FastAPI's ``detail``, plain text, or an HTML page's title) so a user
reading one line knows what the server said. Nothing here ever holds the
request headers, so the API key cannot leak through an exception.
"""

from __future__ import annotations

import email.utils
import re
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from oaicompat.types import ChatResponse

__all__ = [
    "APIConnectionError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "ContextLengthError",
    "InternalServerError",
    "NotFoundError",
    "OAICompatError",
    "PermissionDeniedError",
    "RateLimitError",
    "ResponseParseError",
    "StreamError",
    "error_from_payload",
    "error_from_status",
    "extract_server_message",
    "parse_retry_after",
]

MAX_MESSAGE_CHARS = 500
RETRYABLE_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504})


class OAICompatError(Exception):
    """Base of every error raised by oaicompat."""

    retryable: bool = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class APIConnectionError(OAICompatError):
    """The server could not be reached, or the connection dropped before a response."""

    retryable = True


class APITimeoutError(APIConnectionError):
    """A connect, read, write or pool timeout fired."""


class APIStatusError(OAICompatError):
    """The server answered with an error status."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
        server_message: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.body = body
        self.headers: dict[str, str] = dict(headers or {})
        self.request_id = request_id
        self.retry_after = retry_after
        self.server_message = server_message
        self.retryable = status_code in RETRYABLE_STATUSES


class BadRequestError(APIStatusError):
    """400 or 422: the server refused the request as written."""


class ContextLengthError(BadRequestError):
    """The prompt (plus the requested output) does not fit the model's context window."""


class AuthenticationError(APIStatusError):
    """401: missing or wrong API key."""


class PermissionDeniedError(APIStatusError):
    """403: the key is valid but not allowed to do this."""


class NotFoundError(APIStatusError):
    """404: unknown model or wrong route (check ``base_url``)."""


class RateLimitError(APIStatusError):
    """429, or an 'overloaded' answer: slow down; ``retry_after`` is in seconds when known."""

    def __init__(self, message: str, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retryable = True


class InternalServerError(APIStatusError):
    """A 5xx answer."""


class StreamError(OAICompatError):
    """A stream failed after it started: error event, malformed chunk, or cut short.

    ``partial`` holds everything received before the failure.
    """

    def __init__(
        self,
        message: str,
        *,
        partial: ChatResponse | None = None,
        payload: Any = None,
    ) -> None:
        super().__init__(message)
        self.partial = partial
        self.payload = payload


class ResponseParseError(OAICompatError):
    """A 2xx answer that is not a chat completion (HTML, invalid JSON, no choices)."""

    def __init__(self, message: str, *, body: Any = None, status_code: int | None = None) -> None:
        super().__init__(message)
        self.body = body
        self.status_code = status_code


# Patterns as strings, compiled by `re` on first use and cached there: they only
# matter on error paths, and compiling them at import slows `import oaicompat`.
_CONTEXT_LENGTH_PATTERN = (
    r"(?i)context[_ ]length|context window|context size|maximum model length|max_model_len"
    r"|maximum context|prompt is too long|too many tokens|exceeds? (?:the )?(?:available )?context"
    r"|longer than the model|max_new_tokens`? must be <= \d+|tokens \+ `?max_new_tokens`?"
    r"|must have less than \d+ tokens|reduce the length of the messages|exceed_context_size"
)
_HTML_TITLE = rb"(?is)<title[^>]*>(.*?)</title>"
_HTML_TAG = r"<[^>]+>"
_WHITESPACE = r"\s+"


def _clip(text: str) -> str:
    text = re.sub(_WHITESPACE, " ", text).strip()
    if len(text) > MAX_MESSAGE_CHARS:
        return text[: MAX_MESSAGE_CHARS - 3] + "..."
    return text


def _message_from_json(data: Any) -> str | None:
    if isinstance(data, str):
        return data
    if not isinstance(data, Mapping):
        return None
    error = data.get("error")
    if isinstance(error, Mapping):
        for key in ("message", "msg", "detail", "error"):
            value = error.get(key)
            if isinstance(value, str) and value:
                return value
        return str(dict(error))
    if isinstance(error, str) and error:
        return error
    detail = data.get("detail")
    if isinstance(detail, str) and detail:
        return detail
    if isinstance(detail, list) and detail:
        parts = [
            str(item.get("msg", item)) if isinstance(item, Mapping) else str(item)
            for item in detail
        ]
        return "; ".join(parts)
    for key in ("message", "msg"):
        value = data.get(key)
        if isinstance(value, str) and value:
            return value
    return None


def extract_server_message(body: bytes | str | Any) -> str:
    """The server's own explanation, from JSON, plain text or an HTML page."""
    if isinstance(body, (bytes, bytearray)):
        raw = bytes(body)
        stripped = raw.lstrip()
        if stripped[:1] in (b"{", b"[", b'"'):
            from oaicompat._json import loads

            try:
                message = _message_from_json(loads(raw))
            except ValueError:
                message = None
            if message:
                return _clip(message)
        if stripped[:1] == b"<":
            title = re.search(_HTML_TITLE, raw)
            text = title.group(1) if title else raw
            return _clip(re.sub(_HTML_TAG, " ", text.decode("utf-8", "replace")))
        return _clip(raw.decode("utf-8", "replace"))
    if isinstance(body, str):
        return extract_server_message(body.encode("utf-8"))
    message = _message_from_json(body)
    return _clip(message) if message else ""


def parse_retry_after(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """Seconds to wait, from ``retry-after-ms``, or ``Retry-After`` as seconds or an HTTP date."""
    lowered = {key.lower(): value for key, value in headers.items()}
    millis = lowered.get("retry-after-ms")
    if millis is not None:
        try:
            return max(0.0, float(millis) / 1000.0)
        except ValueError:
            pass
    value = lowered.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)


def _error_type(body: Any) -> str:
    if isinstance(body, Mapping):
        error = body.get("error")
        if isinstance(error, Mapping):
            return " ".join(str(error.get(key) or "") for key in ("type", "code"))
        return str(body.get("error_type") or "")
    return ""


def _status_class(status_code: int, server_message: str, error_type: str) -> type[APIStatusError]:
    overloaded = "overloaded" in error_type.lower() or "overloaded" in server_message.lower()
    if status_code == 429 or (overloaded and status_code in (503, 529)):
        return RateLimitError
    if status_code in (400, 413, 422):
        if re.search(_CONTEXT_LENGTH_PATTERN, server_message) or re.search(
            _CONTEXT_LENGTH_PATTERN, error_type
        ):
            return ContextLengthError
        return BadRequestError if status_code != 413 else APIStatusError
    if status_code == 401:
        return AuthenticationError
    if status_code == 403:
        return PermissionDeniedError
    if status_code == 404:
        return NotFoundError
    if status_code >= 500:
        if (
            re.search(_CONTEXT_LENGTH_PATTERN, server_message)
            and "context" in server_message.lower()
        ):
            # llama-cpp-python reports an overlong prompt as a 500.
            return ContextLengthError
        return InternalServerError
    return APIStatusError


def error_from_status(
    status_code: int,
    headers: Mapping[str, str],
    body: bytes,
    *,
    reason: str = "",
) -> APIStatusError:
    """The typed error for an HTTP error response."""
    server_message = extract_server_message(body)
    parsed: Any = None
    if body.lstrip()[:1] in (b"{", b"["):
        from oaicompat._json import loads

        try:
            parsed = loads(body)
        except ValueError:
            parsed = None
    return error_from_payload(
        status_code,
        parsed if parsed is not None else body.decode("utf-8", "replace"),
        headers=headers,
        server_message=server_message,
        reason=reason,
    )


def error_from_payload(
    status_code: int,
    payload: Any,
    *,
    headers: Mapping[str, str] | None = None,
    server_message: str | None = None,
    reason: str = "",
) -> APIStatusError:
    """The typed error for an error object, e.g. ``{"error": {...}}`` inside a 200 answer."""
    headers = headers or {}
    if server_message is None:
        server_message = extract_server_message(payload)
    error_cls = _status_class(status_code, server_message, _error_type(payload))
    lowered = {key.lower(): value for key, value in headers.items()}
    request_id = lowered.get("x-request-id") or lowered.get("request-id")
    label = f"{status_code} {reason}".strip()
    message = f"{label}: {server_message}" if server_message else label
    return error_cls(
        message,
        status_code=status_code,
        body=payload,
        headers=headers,
        request_id=request_id,
        retry_after=parse_retry_after(headers),
        server_message=server_message or None,
    )

"""HTTP error answers to typed errors, in each server's own wording."""

from __future__ import annotations

import email.utils
import json
from typing import Any

import pytest

from oaicompat.errors import (
    MAX_MESSAGE_CHARS,
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    ContextLengthError,
    InternalServerError,
    NotFoundError,
    OAICompatError,
    PermissionDeniedError,
    RateLimitError,
    error_from_payload,
    error_from_status,
    extract_server_message,
    parse_retry_after,
)

OPENAI_STYLE = b'{"error": {"message": "something went wrong", "type": "x", "code": null}}'


@pytest.mark.parametrize(
    ("status", "error_class", "retryable"),
    [
        (400, BadRequestError, False),
        (401, AuthenticationError, False),
        (403, PermissionDeniedError, False),
        (404, NotFoundError, False),
        (408, APIStatusError, True),
        (409, APIStatusError, True),
        (413, APIStatusError, False),
        (418, APIStatusError, False),
        (422, BadRequestError, False),
        (429, RateLimitError, True),
        (500, InternalServerError, True),
        (501, InternalServerError, False),
        (502, InternalServerError, True),
        (503, InternalServerError, True),
        (504, InternalServerError, True),
        (529, InternalServerError, False),
    ],
)
def test_status_to_class(status: int, error_class: type[APIStatusError], retryable: bool) -> None:
    error = error_from_status(status, {}, OPENAI_STYLE)
    assert type(error) is error_class
    assert isinstance(error, OAICompatError)
    assert error.status_code == status
    assert error.retryable is retryable
    assert "something went wrong" in str(error)
    assert error.server_message == "something went wrong"
    assert str(status) in str(error)


def test_reason_phrase_and_request_id() -> None:
    error = error_from_status(
        404,
        {"X-Request-ID": "req_123"},
        b'{"error": {"message": "model not found"}}',
        reason="Not Found",
    )
    assert str(error) == "404 Not Found: model not found"
    assert error.request_id == "req_123"
    assert error.body == {"error": {"message": "model not found"}}


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (503, b'{"error": {"message": "Overloaded", "type": "overloaded_error"}}'),
        (529, b'{"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}'),
        (429, b'{"error": "Model is overloaded", "error_type": "overloaded"}'),
    ],
    ids=["503-overloaded", "529-overloaded", "tgi-429"],
)
def test_overloaded_is_a_rate_limit(status: int, body: bytes) -> None:
    error = error_from_status(status, {}, body)
    assert isinstance(error, RateLimitError)
    assert error.retryable


CONTEXT_OVERFLOWS = {
    "openai": (
        400,
        {
            "error": {
                "message": "This model's maximum context length is 128000 tokens. However, your"
                " messages resulted in 130532 tokens. Please reduce the length of the messages.",
                "type": "invalid_request_error",
                "param": "messages",
                "code": "context_length_exceeded",
            }
        },
    ),
    "vllm": (
        400,
        {
            "object": "error",
            "message": "This model's maximum context length is 4096 tokens. However, you requested"
            " 5000 tokens (4500 in the messages, 500 in the completion). Please reduce the length"
            " of the messages or completion.",
            "type": "BadRequestError",
            "param": None,
            "code": 400,
        },
    ),
    "vllm-newer": (
        400,
        {
            "error": {
                "message": "This model's maximum context length is 2048 tokens. However, your"
                " request has 8 input tokens plus 2045 'max_tokens'. Please reduce one or the"
                " other. (parameter=input_tokens, max_tokens, value=(8, 2045))",
                "type": "BadRequestError",
                "param": "input_tokens, max_tokens",
                "code": 400,
            }
        },
    ),
    "llamacpp": (
        400,
        {
            "error": {
                "code": 400,
                "message": "request (4476 tokens) exceeds the available context size (4096 tokens)",
                "type": "exceed_context_size_error",
                "n_prompt_tokens": 4476,
                "n_ctx": 4096,
            }
        },
    ),
    "llamacpp-type-only": (
        400,
        {
            "error": {
                "code": 400,
                "message": "request rejected",
                "type": "exceed_context_size_error",
            }
        },
    ),
    "tgi-total": (
        422,
        {
            "error": "Input validation error: `inputs` tokens + `max_new_tokens` must be <= 4096."
            " Given: 4000 `inputs` tokens and 500 `max_new_tokens`",
            "error_type": "validation",
        },
    ),
    "tgi-inputs": (
        422,
        {
            "error": "Input validation error: `inputs` must have less than 4096 tokens."
            " Given: 4545",
            "error_type": "validation",
        },
    ),
    "sglang": (
        400,
        {
            "object": "error",
            "message": "The input (5000 tokens) is longer than the model's context length (4096"
            " tokens).",
            "type": "BadRequestError",
            "param": None,
            "code": 400,
        },
    ),
    "lmstudio": (
        400,
        {
            "error": "Trying to keep the first 5000 tokens when context the overflows. However,"
            " the model is loaded with context length of only 4096 tokens, which is not enough."
            " Try to load the model with a larger context length, or provide a shorter input"
        },
    ),
    "mistral": (
        400,
        {
            "object": "error",
            "message": "Prompt contains 40000 tokens and 0 draft tokens, too large for model with"
            " 32768 maximum context length",
            "type": "invalid_request_message_error",
            "param": None,
            "code": None,
        },
    ),
    "llamacpp-python": (
        400,
        {
            "error": {
                "message": "This model's maximum context length is 2048 tokens. However, you"
                " requested 5000 tokens (4900 in the messages, 100 in the completion). Please"
                " reduce the length of the messages or completion.",
                "type": "invalid_request_error",
                "param": "messages",
                "code": "context_length_exceeded",
            }
        },
    ),
    "llamacpp-python-unformatted-500": (
        500,
        {
            "error": {
                "message": "Requested tokens (5000) exceed context window of 2048",
                "type": "internal_server_error",
                "param": None,
                "code": None,
            }
        },
    ),
}


@pytest.mark.parametrize("server", sorted(CONTEXT_OVERFLOWS))
def test_context_overflow_in_every_wording(server: str) -> None:
    status, payload = CONTEXT_OVERFLOWS[server]
    error = error_from_status(status, {}, json.dumps(payload).encode())
    assert isinstance(error, ContextLengthError)
    assert isinstance(error, BadRequestError)
    assert error.status_code == status
    assert not error.retryable or status >= 500
    assert error.body == payload


@pytest.mark.parametrize(
    ("status", "payload", "error_class"),
    [
        (
            400,
            {"error": {"message": "Invalid 'temperature': expected a value <= 2"}},
            BadRequestError,
        ),
        (
            422,
            {"error": "Input validation error: `top_n_tokens` must be <= 5. Given: 10"},
            BadRequestError,
        ),
        (400, {"error": {"message": "Unsupported parameter: 'max_tokens'"}}, BadRequestError),
        (500, {"error": {"message": "CUDA error: out of memory"}}, InternalServerError),
        (500, {"error": {"message": "too many tokens per second"}}, InternalServerError),
    ],
)
def test_other_errors_are_not_context_overflows(
    status: int, payload: Any, error_class: type[APIStatusError]
) -> None:
    error = error_from_status(status, {}, json.dumps(payload).encode())
    assert type(error) is error_class


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"error": {"message": "bad key", "type": "auth"}}', "bad key"),
        (b'{"error": {"msg": "from msg"}}', "from msg"),
        (b'{"error": "plain error"}', "plain error"),
        (b'{"detail": "Not authenticated"}', "Not authenticated"),
        (
            b'{"detail": [{"loc": ["body", "messages"], "msg": "field required"},'
            b' {"msg": "value is not a valid float"}]}',
            "field required; value is not a valid float",
        ),
        (b'{"message": "top-level message", "object": "error"}', "top-level message"),
        (b'"a JSON string"', "a JSON string"),
        (
            b"upstream connect error or disconnect/reset",
            "upstream connect error or disconnect/reset",
        ),
        (b"  \n  spaced\n\n  out  ", "spaced out"),
        (b"bad \xff bytes", "bad \ufffd bytes"),
        (b"", ""),
        (b"{not json", "{not json"),
    ],
)
def test_extract_server_message(body: bytes, message: str) -> None:
    assert extract_server_message(body) == message
    assert extract_server_message(body.decode("utf-8", "replace")) == message


def test_error_object_without_message_is_still_shown() -> None:
    assert "quota" in extract_server_message(b'{"error": {"code": "quota"}}')


@pytest.mark.parametrize(
    ("page", "title"),
    [
        (
            b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
            b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
            b"</body>\r\n</html>\r\n",
            "502 Bad Gateway",
        ),
        (
            b'<!DOCTYPE html>\n<html lang="en-US"><head><title data-x="1">\n  example.com |'
            b" 524: A timeout occurred\n</title></head><body>...</body></html>",
            "example.com | 524: A timeout occurred",
        ),
        (b"<html><body><h1>Service Unavailable</h1><p>Try later</p></body></html>", None),
    ],
    ids=["nginx", "cloudflare", "no-title"],
)
def test_html_pages(page: bytes, title: str | None) -> None:
    error = error_from_status(502, {"content-type": "text/html"}, page)
    assert isinstance(error, InternalServerError)
    message = error.server_message or ""
    if title is not None:
        assert message == title
    else:
        assert "Service Unavailable" in message
        assert "Try later" in message
        assert "<" not in message


def test_long_messages_are_clipped() -> None:
    message = extract_server_message(b"x" * 10_000)
    assert len(message) == MAX_MESSAGE_CHARS
    assert message.endswith("...")


def test_error_payload_inside_a_200() -> None:
    error = error_from_payload(500, {"error": {"message": "model crashed"}})
    assert isinstance(error, InternalServerError)
    assert error.server_message == "model crashed"


NOW = 1_700_000_000.0


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"Retry-After": "7"}, 7.0),
        ({"retry-after": "1.5"}, 1.5),
        ({"RETRY-AFTER": " 3 "}, 3.0),
        ({"Retry-After": email.utils.formatdate(NOW + 30, usegmt=True)}, 30.0),
        ({"Retry-After": email.utils.formatdate(NOW - 30, usegmt=True)}, 0.0),
        ({"retry-after-ms": "250"}, 0.25),
        ({"retry-after-ms": "250", "Retry-After": "9"}, 0.25),
        ({"retry-after-ms": "soon", "Retry-After": "9"}, 9.0),
        ({"Retry-After": "-5"}, 0.0),
        ({"Retry-After": "tomorrow"}, None),
        ({"Retry-After": ""}, None),
        ({}, None),
    ],
)
def test_retry_after(headers: dict[str, str], seconds: float | None) -> None:
    assert parse_retry_after(headers, now=NOW) == seconds


def test_rate_limit_error_carries_retry_after_from_headers_only() -> None:
    body = b'{"error": {"message": "Rate limit reached. Please try again in 20s."}}'
    assert error_from_status(429, {"retry-after-ms": "1500"}, body).retry_after == 1.5
    assert error_from_status(429, {}, body).retry_after is None

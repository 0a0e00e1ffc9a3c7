"""When to retry a failed request, and how long to wait first.

Pure policy: no I/O, no sleeping, no httpx. The clients ask
`RetryPolicy.delay_before_retry` after each failed attempt and do the waiting
themselves, so tests inject a recording sleep instead of patching the clock.

What is retried: a connection that could not be made or dropped before an
answer, a timeout, and the statuses 408, 409, 429, 500, 502, 503 and 504 (plus
an "overloaded" answer, which the error tree files under `RateLimitError`).
Other 4xx are never retried: the same request would be refused again. A stream
is retried only while it is being opened; once its first byte was read, a
failure is a `StreamError` and reaches the caller.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from oaicompat.errors import (
    APIConnectionError,
    APIStatusError,
    ContextLengthError,
    OAICompatError,
    RateLimitError,
)

__all__ = ["DEFAULT_RETRY_STATUSES", "RetryPolicy"]

DEFAULT_RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504})


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with jitter, capped, that defers to the server's ``Retry-After``.

    The n-th retry (n from 0) waits ``initial_delay * 2**n``, capped at
    ``max_delay``, then shortened by up to ``jitter`` of itself so that many
    clients that failed together do not come back together. When the error
    carries ``retry_after`` (from ``Retry-After`` or ``retry-after-ms``), that
    wait is used instead, capped at ``max_retry_after``.
    """

    max_retries: int = 2
    initial_delay: float = 0.5
    max_delay: float = 8.0
    jitter: float = 0.25
    max_retry_after: float = 60.0
    retry_statuses: frozenset[int] = DEFAULT_RETRY_STATUSES
    random: Callable[[], float] = field(default=random.random, repr=False, compare=False)
    """Source of jitter in [0, 1); replace it to make delays deterministic."""

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        if self.initial_delay < 0 or self.max_delay < 0 or self.max_retry_after < 0:
            raise ValueError("retry delays must be >= 0")
        if not 0.0 <= self.jitter <= 1.0:
            raise ValueError("jitter must be between 0 and 1")

    def is_retryable(self, error: BaseException) -> bool:
        """Whether a request that failed with ``error`` may be sent again unchanged."""
        if isinstance(error, APIConnectionError):
            return True
        if isinstance(error, ContextLengthError):
            # Some servers report an overlong prompt as a 500; it will not fit next time either.
            return False
        if isinstance(error, RateLimitError):
            return True
        if isinstance(error, APIStatusError):
            return error.status_code in self.retry_statuses
        return False

    def backoff(self, retries_done: int) -> float:
        """The wait before retry number ``retries_done + 1`` when the server gave no hint."""
        base = min(self.max_delay, self.initial_delay * (2.0 ** min(retries_done, 32)))
        return base * (1.0 - self.jitter * self.random())

    def delay_before_retry(self, error: OAICompatError, retries_done: int) -> float | None:
        """Seconds to wait before retrying, or None when the error should reach the caller."""
        if retries_done >= self.max_retries or not self.is_retryable(error):
            return None
        retry_after = getattr(error, "retry_after", None)
        if isinstance(retry_after, (int, float)) and retry_after >= 0:
            return min(float(retry_after), self.max_retry_after)
        return self.backoff(retries_done)

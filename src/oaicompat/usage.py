"""Token usage in one shape, whatever the server called its fields.

The rules (DESIGN.md): ``input_tokens`` counts every prompt token, cached
included; ``output_tokens`` counts every generated token, reasoning included;
``total_tokens`` is the server's own figure, else the sum. Servers that report
cache reads beside the prompt count (Anthropic-style names) get them added,
because there the prompt count excludes them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from oaicompat.types import Usage

__all__ = ["normalize_usage", "usage_from_payload"]


def _count(value: Any) -> int | None:
    """A token count from an int, a float with no fraction, or a numeric string."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, float):
        # NaN and infinity are not counts (int() of infinity raises OverflowError).
        if not math.isfinite(value) or value < 0 or value != int(value):
            return None
        return int(value)
    if isinstance(value, str):
        text = value.strip()
        try:
            # int() also guards against what isdigit() lets through ("²", or more
            # digits than Python converts); those fall back to float and fail there.
            return _count(int(text))
        except ValueError:
            pass
        try:
            number = float(text)
        except ValueError:
            return None
        return _count(number)
    return None


def _first(raw: Mapping[str, Any], *keys: str) -> int | None:
    for key in keys:
        if key in raw:
            count = _count(raw[key])
            if count is not None:
                return count
    return None


def _nested(raw: Mapping[str, Any], outer: str, inner: str) -> int | None:
    details = raw.get(outer)
    if isinstance(details, Mapping):
        return _count(details.get(inner))
    return None


def normalize_usage(raw: Any) -> Usage | None:
    """Normalize one usage object; None when it carries no token counts at all."""
    if not isinstance(raw, Mapping):
        return None
    cached = _nested(raw, "prompt_tokens_details", "cached_tokens")
    if cached is None:
        cached = _first(raw, "prompt_cache_hit_tokens", "cache_read_input_tokens")
    if cached is None:
        cached = _nested(raw, "input_tokens_details", "cached_tokens")

    input_tokens = _first(raw, "prompt_tokens")
    if input_tokens is None:
        input_tokens = _first(raw, "input_tokens")
        if input_tokens is not None:
            # Anthropic-style counts exclude cache reads and writes from input_tokens.
            input_tokens += _first(raw, "cache_read_input_tokens") or 0
            input_tokens += _first(raw, "cache_creation_input_tokens") or 0
    if input_tokens is None:
        input_tokens = _first(raw, "prompt_eval_count")
    output_tokens = _first(raw, "completion_tokens", "output_tokens", "eval_count")
    if input_tokens is None and output_tokens is None:
        return None
    input_tokens = input_tokens or 0
    output_tokens = output_tokens or 0
    total = _first(raw, "total_tokens")
    if total is None:
        total = input_tokens + output_tokens
    return Usage(
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        total_tokens=total,
        cached_input_tokens=cached,
        reasoning_tokens=_nested(raw, "completion_tokens_details", "reasoning_tokens"),
        raw=dict(raw),
    )


def _usage_from_timings(timings: Mapping[str, Any]) -> Usage | None:
    prompt = _count(timings.get("prompt_n"))
    predicted = _count(timings.get("predicted_n"))
    if prompt is None and predicted is None:
        return None
    cache = _count(timings.get("cache_n"))
    input_tokens = (prompt or 0) + (cache or 0)
    return Usage(
        input_tokens=input_tokens,
        output_tokens=predicted or 0,
        total_tokens=input_tokens + (predicted or 0),
        cached_input_tokens=cache,
        raw={"timings": dict(timings)},
    )


def usage_from_payload(payload: Mapping[str, Any]) -> Usage | None:
    """The usage a response or chunk reports, wherever the server put it.

    Looks at ``usage``, Groq's ``x_groq.usage``, Ollama's native top-level
    counts, and last llama.cpp's ``timings`` (only when no usage object came).
    """
    usage = payload.get("usage")
    if usage is not None:
        normalized = normalize_usage(usage)
        if normalized is not None:
            return normalized
    groq = payload.get("x_groq")
    if isinstance(groq, Mapping) and "usage" in groq:
        normalized = normalize_usage(groq["usage"])
        if normalized is not None:
            return normalized
    if "prompt_eval_count" in payload or "eval_count" in payload:
        normalized = normalize_usage(payload)
        if normalized is not None:
            return normalized
    timings = payload.get("timings")
    if isinstance(timings, Mapping):
        return _usage_from_timings(timings)
    return None

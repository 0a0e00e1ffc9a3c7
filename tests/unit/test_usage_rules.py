"""Every usage rule of DESIGN.md's "Normalization rules", one server dialect at a time."""

from __future__ import annotations

from typing import Any

import pytest
from transcript_data import json_body

from oaicompat.types import Usage
from oaicompat.usage import normalize_usage, usage_from_payload


def counts(usage: Usage | None) -> tuple[int, int, int, int | None, int | None] | None:
    if usage is None:
        return None
    return (
        usage.input_tokens,
        usage.output_tokens,
        usage.total_tokens,
        usage.cached_input_tokens,
        usage.reasoning_tokens,
    )


def test_openai_cached_and_reasoning_details() -> None:
    raw = {
        "prompt_tokens": 1250,
        "completion_tokens": 180,
        "total_tokens": 1430,
        "prompt_tokens_details": {"cached_tokens": 1024, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 128, "audio_tokens": 0},
    }
    # prompt_tokens already includes the cached tokens, completion_tokens the reasoning.
    assert counts(normalize_usage(raw)) == (1250, 180, 1430, 1024, 128)


def test_deepseek_cache_hit_tokens() -> None:
    raw = {
        "prompt_tokens": 84,
        "completion_tokens": 130,
        "total_tokens": 214,
        "prompt_cache_hit_tokens": 64,
        "prompt_cache_miss_tokens": 20,
        "completion_tokens_details": {"reasoning_tokens": 118},
    }
    assert counts(normalize_usage(raw)) == (84, 130, 214, 64, 118)


def test_prompt_tokens_details_win_over_cache_hit_tokens() -> None:
    raw = {
        "prompt_tokens": 10,
        "completion_tokens": 1,
        "prompt_tokens_details": {"cached_tokens": 4},
        "prompt_cache_hit_tokens": 9,
    }
    assert counts(normalize_usage(raw)) == (10, 1, 11, 4, None)


def test_anthropic_names_add_cache_reads_and_writes_to_the_input() -> None:
    raw = {
        "input_tokens": 20,
        "output_tokens": 7,
        "cache_read_input_tokens": 100,
        "cache_creation_input_tokens": 30,
    }
    assert counts(normalize_usage(raw)) == (150, 7, 157, 100, None)


def test_responses_api_names() -> None:
    raw = {
        "input_tokens": 300,
        "output_tokens": 40,
        "total_tokens": 340,
        "input_tokens_details": {"cached_tokens": 256},
        "output_tokens_details": {"reasoning_tokens": 12},
    }
    # reasoning_tokens only ever comes from completion_tokens_details.
    assert counts(normalize_usage(raw)) == (300, 40, 340, 256, None)


def test_reasoning_tokens_only_from_completion_tokens_details() -> None:
    raw = {"prompt_tokens": 3, "completion_tokens": 9, "reasoning_tokens": 5}
    assert counts(normalize_usage(raw)) == (3, 9, 12, None, None)


def test_ollama_native_counts() -> None:
    usage = usage_from_payload(json_body("ollama_native_counts"))
    assert counts(usage) == (26, 5, 31, None, None)


def test_vllm_null_details() -> None:
    raw: dict[str, Any] = {
        "prompt_tokens": 402,
        "total_tokens": 451,
        "completion_tokens": 49,
        "prompt_tokens_details": None,
    }
    assert counts(normalize_usage(raw)) == (402, 49, 451, None, None)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"prompt_tokens": "12", "completion_tokens": "3"}, (12, 3, 15)),
        ({"prompt_tokens": " 12 ", "completion_tokens": "3.0"}, (12, 3, 15)),
        ({"prompt_tokens": 12.0, "completion_tokens": 3, "total_tokens": "15"}, (12, 3, 15)),
        ({"prompt_tokens": "1e2", "completion_tokens": 0}, (100, 0, 100)),
    ],
)
def test_numbers_given_as_strings(raw: dict[str, Any], expected: tuple[int, int, int]) -> None:
    usage = normalize_usage(raw)
    assert usage is not None
    assert (usage.input_tokens, usage.output_tokens, usage.total_tokens) == expected


@pytest.mark.parametrize(
    "bad",
    [-1, -0.5, 1.5, "abc", "", "-3", True, None, [], {}, float("nan"), float("inf"), "inf", "²"],
)
def test_unreadable_counts_are_ignored(bad: Any) -> None:
    usage = normalize_usage({"prompt_tokens": bad, "completion_tokens": 4})
    assert usage is not None
    assert (usage.input_tokens, usage.output_tokens, usage.total_tokens) == (0, 4, 4)
    details = normalize_usage(
        {
            "prompt_tokens": 1,
            "completion_tokens": 1,
            "prompt_tokens_details": {"cached_tokens": bad},
        }
    )
    assert details is not None
    assert details.cached_input_tokens is None


def test_missing_total_is_the_sum() -> None:
    usage = normalize_usage({"prompt_tokens": 7, "completion_tokens": 5})
    assert usage is not None
    assert usage.total_tokens == 12


def test_stated_total_is_kept() -> None:
    usage = normalize_usage({"prompt_tokens": 7, "completion_tokens": 5, "total_tokens": 20})
    assert usage is not None
    assert usage.total_tokens == 20


def test_one_side_missing_counts_as_zero() -> None:
    assert counts(normalize_usage({"completion_tokens": 5})) == (0, 5, 5, None, None)
    assert counts(normalize_usage({"prompt_tokens": 5})) == (5, 0, 5, None, None)


@pytest.mark.parametrize(
    "raw", [{}, {"total_tokens": 9}, {"cost": 0.1}, None, "12", 12, [1, 2], {"usage": {}}]
)
def test_no_token_counts_is_none(raw: Any) -> None:
    assert normalize_usage(raw) is None


def test_raw_is_kept() -> None:
    raw = {"prompt_tokens": 1, "completion_tokens": 2, "queue_time": 0.05}
    usage = normalize_usage(raw)
    assert usage is not None
    assert usage.raw == raw


def test_to_openai_dict_round_trips() -> None:
    usage = Usage(100, 20, 120, cached_input_tokens=64, reasoning_tokens=8)
    assert normalize_usage(usage.to_openai_dict()) == usage


def test_groq_usage_under_x_groq() -> None:
    payload = {
        "choices": [],
        "x_groq": {"id": "req_1", "usage": {"prompt_tokens": 18, "completion_tokens": 27}},
    }
    assert counts(usage_from_payload(payload)) == (18, 27, 45, None, None)


def test_top_level_usage_wins_over_x_groq() -> None:
    payload = {
        "usage": {"prompt_tokens": 1, "completion_tokens": 1},
        "x_groq": {"usage": {"prompt_tokens": 50, "completion_tokens": 50}},
    }
    assert counts(usage_from_payload(payload)) == (1, 1, 2, None, None)


def test_x_groq_without_usage() -> None:
    assert usage_from_payload({"x_groq": {"id": "req_1"}}) is None


def test_llamacpp_timings_alone() -> None:
    payload = {"timings": {"prompt_n": 18, "cache_n": 6, "predicted_n": 40, "prompt_ms": 3.2}}
    usage = usage_from_payload(payload)
    assert counts(usage) == (24, 40, 64, 6, None)


def test_llamacpp_timings_without_cache_n() -> None:
    assert counts(usage_from_payload({"timings": {"prompt_n": 5, "predicted_n": 2}})) == (
        5,
        2,
        7,
        None,
        None,
    )


def test_usage_object_wins_over_timings() -> None:
    payload = {
        "usage": {"prompt_tokens": 30, "completion_tokens": 2, "total_tokens": 32},
        "timings": {"prompt_n": 1, "cache_n": 0, "predicted_n": 1},
    }
    assert counts(usage_from_payload(payload)) == (30, 2, 32, None, None)


def test_timings_used_when_usage_is_null_or_empty() -> None:
    timings = {"prompt_n": 3, "cache_n": 1, "predicted_n": 2}
    assert counts(usage_from_payload({"usage": None, "timings": timings})) == (4, 2, 6, 1, None)
    assert counts(usage_from_payload({"usage": {}, "timings": timings})) == (4, 2, 6, 1, None)


@pytest.mark.parametrize("timings", [{}, {"prompt_ms": 1.0}, "x", None, {"prompt_n": "nope"}])
def test_timings_without_counts(timings: Any) -> None:
    assert usage_from_payload({"timings": timings}) is None


def test_payload_without_usage() -> None:
    assert usage_from_payload({"choices": [{"delta": {"content": "x"}}]}) is None

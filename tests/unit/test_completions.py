"""The legacy text ``/completions`` protocol: request bodies, answers and streams, no I/O."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from oaicompat.errors import StreamError
from oaicompat.profiles import PRESETS, ServerProfile
from oaicompat.protocol import StreamParser, build_body, build_completion_body, parse_response

GENERIC = PRESETS["generic"]


def body(
    server: ServerProfile = GENERIC,
    *,
    prompt: str = "Once upon a time",
    stream: bool = False,
    defaults: dict[str, Any] | None = None,
    **params: Any,
) -> dict[str, Any]:
    return build_completion_body(
        model="m",
        prompt=prompt,
        profile=server,
        defaults=defaults or {},
        stream=stream,
        params=params,
    )


def text_chunk(text: str, finish_reason: str | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "id": "cmpl-1",
        "object": "text_completion",
        "created": 1700000000,
        "model": "m",
        "choices": [{"index": 0, "text": text, "logprobs": None, "finish_reason": finish_reason}],
        **extra,
    }


def sse(*payloads: dict[str, Any] | str) -> bytes:
    return b"".join(
        b"data: " + (p if isinstance(p, str) else json.dumps(p)).encode() + b"\n\n"
        for p in payloads
    )


# Bodies -------------------------------------------------------------------


def test_minimal_body_is_model_and_prompt() -> None:
    assert body(temperature=None) == {"model": "m", "prompt": "Once upon a time"}


def test_defaults_and_params_merge_like_chat() -> None:
    sent = body(
        defaults={"temperature": 0.2, "stop": ["\n"], "seed": 1}, temperature=0.9, seed=None
    )
    assert sent == {"model": "m", "prompt": "Once upon a time", "temperature": 0.9, "stop": ["\n"]}


@pytest.mark.parametrize("server", ["generic", "openai", "azure"])
def test_output_limit_is_spelled_max_tokens_whatever_the_chat_spelling(server: str) -> None:
    profile = PRESETS[server]
    assert body(profile, max_completion_tokens=7) == {
        "model": "m",
        "prompt": "Once upon a time",
        "max_tokens": 7,
    }
    # A per-call limit beats a default given under the other name.
    sent = body(profile, defaults={"max_completion_tokens": 100}, max_tokens=5)
    assert sent["max_tokens"] == 5
    assert "max_completion_tokens" not in sent


def test_chat_body_keeps_the_profile_spelling() -> None:
    # The shared merge must not have changed what chat sends.
    chat = build_body(
        model="m",
        messages=[{"role": "user", "content": "hi"}],
        profile=PRESETS["openai"],
        defaults={},
        stream=False,
        params={"max_tokens": 7},
    )
    assert chat["max_completion_tokens"] == 7
    assert "max_tokens" not in chat


def test_a_server_known_to_refuse_max_tokens_gets_the_other_spelling() -> None:
    learned = replace(GENERIC, max_tokens_param="max_completion_tokens").without_param("max_tokens")
    sent = body(learned, max_tokens=9)
    assert sent["max_completion_tokens"] == 9
    assert "max_tokens" not in sent


def test_unsupported_params_are_dropped() -> None:
    profile = GENERIC.without_param("seed")
    assert "seed" not in body(profile, seed=3, temperature=0.1)
    assert body(profile, seed=3, temperature=0.1)["temperature"] == 0.1


def test_stream_asks_for_usage_when_the_profile_allows() -> None:
    sent = body(stream=True)
    assert sent["stream"] is True
    assert sent["stream_options"] == {"include_usage": True}
    quiet = replace(GENERIC, stream_usage=False)
    assert "stream_options" not in body(quiet, stream=True)
    no_options = replace(GENERIC, supports_stream_options=False)
    assert "stream_options" not in body(no_options, stream=True)


def test_non_stream_drops_stream_flags_given_as_params() -> None:
    sent = body(stream=False, defaults={"stream": True}, stream_options={"include_usage": True})
    assert "stream" not in sent
    assert "stream_options" not in sent


def test_prompt_must_be_text() -> None:
    with pytest.raises(TypeError, match="prompt must be a string"):
        body(prompt=["a", "b"])  # type: ignore[arg-type]


# Whole answers --------------------------------------------------------------


def test_parse_response_reads_the_text_of_a_legacy_answer() -> None:
    data = text_chunk(" there was a cat.", "length")
    data["usage"] = {"prompt_tokens": 4, "completion_tokens": 5, "total_tokens": 9}
    response = parse_response(data, GENERIC)
    assert response.content == " there was a cat."
    assert response.finish_reason == "length"
    assert response.usage is not None
    assert (response.usage.input_tokens, response.usage.output_tokens) == (4, 5)
    assert response.id == "cmpl-1"


def test_legacy_answer_with_think_tags_is_split_when_the_profile_asks() -> None:
    data = text_chunk("<think>hmm</think>\n\nanswer", "stop")
    response = parse_response(data, PRESETS["ollama"])
    assert response.content == "answer"
    assert response.reasoning == "hmm"


# Streams --------------------------------------------------------------------


def test_stream_parser_reads_text_deltas() -> None:
    parser = StreamParser(GENERIC)
    usage = {"prompt_tokens": 4, "completion_tokens": 3, "total_tokens": 7}
    tail = text_chunk("", None)
    tail["choices"] = []
    tail["usage"] = usage
    chunks = parser.feed(
        sse(
            text_chunk(" there"),
            text_chunk(" was"),
            text_chunk(" a", "length"),
            tail,
            "[DONE]",
        )
    )
    assert [chunk.content for chunk in chunks] == [" there", " was", " a", ""]
    assert [chunk.finish_reason for chunk in chunks] == [None, None, "length", None]
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.total_tokens == 7
    final = parser.finish()
    assert parser.done
    assert final.content == " there was a"
    assert final.finish_reason == "length"
    assert final.usage is not None
    assert final.usage.output_tokens == 3
    # The raw answer keeps the legacy shape, so it reads back the same way.
    assert final.raw["object"] == "text_completion"
    assert final.raw["choices"][0]["text"] == " there was a"
    assert parse_response(final.raw, GENERIC).content == final.content


def test_text_stream_with_think_tags_splits_across_chunks() -> None:
    parser = StreamParser(PRESETS["ollama"])
    chunks = parser.feed(sse(text_chunk("<thi"), text_chunk("nk>plan</think> go"), "[DONE]"))
    final = parser.finish()
    assert "".join(chunk.content for chunk in chunks) == "go"
    assert final.reasoning == "plan"
    assert final.content == "go"


def test_chat_stream_raw_shape_is_unchanged() -> None:
    parser = StreamParser(GENERIC)
    chat_chunk = {
        "id": "c",
        "object": "chat.completion.chunk",
        "model": "m",
        "choices": [{"index": 0, "delta": {"content": "hi"}, "finish_reason": None}],
    }
    finish = {**chat_chunk, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
    parser.feed(sse(chat_chunk, finish, "[DONE]"))
    final = parser.finish()
    assert final.raw["object"] == "chat.completion"
    assert final.raw["choices"][0]["message"]["content"] == "hi"
    assert "text" not in final.raw["choices"][0]


def test_a_choice_with_neither_delta_nor_text_adds_nothing() -> None:
    parser = StreamParser(GENERIC)
    odd = text_chunk("x")
    odd["choices"][0].pop("text")
    chunks = parser.feed(sse(text_chunk("a"), odd, text_chunk("b"), "[DONE]"))
    assert [chunk.content for chunk in chunks] == ["a", "", "b"]
    assert parser.finish().content == "ab"


def test_error_mid_text_stream_keeps_the_partial_text() -> None:
    parser = StreamParser(GENERIC)
    assert [chunk.content for chunk in parser.feed(sse(text_chunk("half")))] == ["half"]
    with pytest.raises(StreamError) as caught:
        parser.feed(sse({"error": {"message": "boom"}}))
    partial = caught.value.partial
    assert partial is not None
    assert partial.content == "half"
    assert partial.raw["choices"][0]["text"] == "half"

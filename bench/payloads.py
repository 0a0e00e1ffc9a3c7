"""What the bench server sends and what every client must receive.

The server and the clients both build the expected text from here, so a
client that drops, reorders or mangles a chunk fails its check instead of
winning on speed. The model name carries the size: ``bench-<n>`` asks for an
answer of ``n`` tokens (one streamed chunk per token).
"""

from __future__ import annotations

import functools
import json

MODEL_PREFIX = "bench-"
PROMPT = [{"role": "user", "content": "Say something."}]

# A few non-ASCII words so every client's UTF-8 decoding is on the measured path.
_WORDS = [
    "the",
    "quick",
    "brown",
    "fox",
    "jumps",
    "over",
    "a",
    "lazy",
    "dog",
    "while",
    "café",
    "patrons",
    "sip",
    "naïve",
    "espresso",
    "and",
    "read",
    "日本語",
    "notes",
    "about",
    "streaming",
    "tokens",
    "one",
    "by",
    "one",
]


def model_name(n_tokens: int) -> str:
    return f"{MODEL_PREFIX}{n_tokens}"


def tokens_for(model: str) -> int | None:
    """How many tokens a ``bench-<n>`` model answers with; None for other names."""
    if not model.startswith(MODEL_PREFIX):
        return None
    tail = model[len(MODEL_PREFIX) :]
    return int(tail) if tail.isdigit() else None


def token(index: int) -> str:
    word = _WORDS[index % len(_WORDS)]
    return word if index == 0 else " " + word


@functools.lru_cache(maxsize=16)
def expected_text(n_tokens: int) -> str:
    return "".join(token(i) for i in range(n_tokens))


def usage(n_tokens: int) -> dict[str, int]:
    return {"prompt_tokens": 5, "completion_tokens": n_tokens, "total_tokens": 5 + n_tokens}


def _dumps(value: object) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def completion_body(n_tokens: int) -> bytes:
    """A non-streamed chat completion, shaped like OpenAI's and vLLM's."""
    model = model_name(n_tokens)
    return _dumps(
        {
            "id": "chatcmpl-bench",
            "object": "chat.completion",
            "created": 1700000000,
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": expected_text(n_tokens)},
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": usage(n_tokens),
        }
    )


def stream_events(n_tokens: int) -> list[bytes]:
    """Every SSE event of a stream: role chunk, one chunk per token, a finish
    chunk, a usage chunk with empty ``choices`` (as with
    ``stream_options.include_usage``) and ``[DONE]``."""
    model = model_name(n_tokens)

    def chunk(choices: list[dict[str, object]], **extra: object) -> bytes:
        body = {
            "id": "chatcmpl-bench",
            "object": "chat.completion.chunk",
            "created": 1700000000,
            "model": model,
            "choices": choices,
            **extra,
        }
        return b"data: " + _dumps(body) + b"\n\n"

    def choice(delta: dict[str, str], finish: str | None = None) -> list[dict[str, object]]:
        return [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]

    events = [chunk(choice({"role": "assistant", "content": ""}))]
    events.extend(chunk(choice({"content": token(i)})) for i in range(n_tokens))
    events.append(chunk(choice({}, "stop")))
    events.append(chunk([], usage=usage(n_tokens)))
    events.append(b"data: [DONE]\n\n")
    return events

"""Turning a :class:`Reply` into bytes: a completion body, or SSE events.

Pure functions of the reply and a :class:`Completion` (the per-request facts:
id, model, prompt tokens, whether usage was asked for, ``n``). The server adds
timing, dropping and compression while it writes. Answers to the legacy
``/v1/completions`` route are the chat ones reshaped (``text_completion``,
text in ``choices[i].text``), so every reply option works on both routes.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from oaicompat._json import dumps
from oaicompat.testing.replies import Reply
from oaicompat.testing.tokens import count_tokens

__all__ = [
    "COMPLETIONS_PATH",
    "Completion",
    "completion_body",
    "sse_events",
    "stream_chunks",
    "text_completion_body",
    "text_completion_chunks",
]

COMPLETIONS_PATH = "/v1/completions"
"""The legacy text-completions route."""

JSON = dict[str, Any]

_WORD_PIECE = re.compile(r"\s*\S+|\s+")
_ARGUMENT_FRAGMENT_CHARS = 6
SYSTEM_FINGERPRINT = "fp_scripted"


@dataclass(frozen=True)
class Completion:
    """Facts about one request that the rendered answer repeats."""

    id: str
    created: int
    model: str
    prompt_tokens: int
    include_usage: bool = False
    n: int = 1


def _pieces(text: str, chunk_size: int | None) -> list[str]:
    if not text:
        return []
    if chunk_size is None:
        return _WORD_PIECE.findall(text)
    return [text[i : i + chunk_size] for i in range(0, len(text), chunk_size)]


def _content_text(reply: Reply) -> str:
    if reply.reasoning is not None and reply.reasoning_field == "think":
        return f"<think>\n{reply.reasoning}\n</think>\n\n{reply.text}"
    return reply.text


def _separate_reasoning(reply: Reply) -> str | None:
    return reply.reasoning if reply.reasoning_field != "think" else None


def _call_ids(reply: Reply, completion: Completion) -> list[str]:
    suffix = completion.id.rsplit("-", 1)[-1]
    return [call.id or f"call_{suffix}_{i}" for i, call in enumerate(reply.tool_calls)]


def _arguments(reply: Reply) -> list[str]:
    return [
        call.arguments if isinstance(call.arguments, str) else dumps(dict(call.arguments)).decode()
        for call in reply.tool_calls
    ]


def _generated_text(reply: Reply) -> str:
    """Everything the model generated, with spaces so no two parts merge into one token."""
    parts = [_separate_reasoning(reply) or "", _content_text(reply)]
    for call, arguments in zip(reply.tool_calls, _arguments(reply), strict=True):
        parts += [call.name, arguments]
    return " ".join(parts)


def _usage_numbers(reply: Reply, completion: Completion) -> tuple[int, int, int]:
    """(prompt, completion, reasoning) tokens, all choices included."""
    prompt = reply.prompt_tokens if reply.prompt_tokens is not None else completion.prompt_tokens
    generated = reply.completion_tokens
    if generated is None:
        generated = count_tokens(_generated_text(reply)) * completion.n
    reasoning = count_tokens(reply.reasoning or "") * completion.n
    return prompt, generated, reasoning


def _openai_usage(reply: Reply, prompt: int, generated: int, reasoning: int) -> JSON:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": generated,
        "total_tokens": prompt + generated,
        "prompt_tokens_details": {"cached_tokens": reply.cached_tokens},
        "completion_tokens_details": {"reasoning_tokens": reasoning},
    }


def _llamacpp_usage(reply: Reply, prompt: int, generated: int) -> tuple[JSON, JSON]:
    usage = {
        "completion_tokens": generated,
        "prompt_tokens": prompt,
        "total_tokens": prompt + generated,
        "prompt_tokens_details": {"cached_tokens": reply.cached_tokens},
    }
    timings = {
        "cache_n": reply.cached_tokens,
        "prompt_n": prompt - reply.cached_tokens,
        "prompt_ms": 1.0,
        "prompt_per_second": 1000.0 * max(prompt - reply.cached_tokens, 0),
        "predicted_n": generated,
        "predicted_ms": 1.0,
        "predicted_per_second": 1000.0 * generated,
    }
    return usage, timings


def _groq_usage(prompt: int, generated: int) -> JSON:
    return {
        "queue_time": 0.001,
        "prompt_tokens": prompt,
        "prompt_time": 0.001,
        "completion_tokens": generated,
        "completion_time": 0.001,
        "total_tokens": prompt + generated,
        "total_time": 0.002,
    }


def _base(reply: Reply, completion: Completion, obj: str) -> JSON:
    return {
        "id": completion.id,
        "object": obj,
        "created": completion.created,
        "model": reply.model or completion.model,
        "system_fingerprint": SYSTEM_FINGERPRINT,
    }


def completion_body(reply: Reply, completion: Completion) -> JSON:
    """The JSON body of a non-streamed ``chat.completion``."""
    content = _content_text(reply)
    message: JSON = {
        "role": "assistant",
        "content": content if content or not reply.tool_calls else None,
    }
    reasoning = _separate_reasoning(reply)
    if reasoning is not None:
        message[reply.reasoning_field] = reasoning
    if reply.tool_calls:
        message["tool_calls"] = [
            {"id": call_id, "type": "function", "function": {"name": call.name, "arguments": args}}
            for call, call_id, args in zip(
                reply.tool_calls, _call_ids(reply, completion), _arguments(reply), strict=True
            )
        ]
    body = _base(reply, completion, "chat.completion")
    body["choices"] = [
        {
            "index": i,
            "message": message,
            "logprobs": None,
            "finish_reason": reply.resolved_finish_reason,
        }
        for i in range(completion.n)
    ]
    prompt, generated, reasoning_tokens = _usage_numbers(reply, completion)
    if reply.usage == "llamacpp":
        body["usage"], body["timings"] = _llamacpp_usage(reply, prompt, generated)
    elif reply.usage == "groq":
        body["usage"] = _groq_usage(prompt, generated)
        body["x_groq"] = {"id": f"req_{completion.id}"}
    elif reply.usage != "none":
        body["usage"] = _openai_usage(reply, prompt, generated, reasoning_tokens)
    body.update(reply.extra)
    return body


def _tool_call_deltas(reply: Reply, completion: Completion) -> Iterator[JSON]:
    ids = _call_ids(reply, completion)
    arguments = _arguments(reply)
    order = list(range(len(reply.tool_calls)))
    if reply.tool_call_order == "out_of_order":
        order.reverse()

    def head(position: int) -> JSON:
        item: JSON = {}
        if reply.tool_call_index:
            item["index"] = 0 if reply.tool_call_order == "duplicate" else position
        return item

    if reply.tool_call_style == "whole":
        calls = []
        for position in order:
            item = head(position)
            if reply.tool_call_ids:
                item["id"] = ids[position]
            item["type"] = "function"
            item["function"] = {
                "name": reply.tool_calls[position].name,
                "arguments": arguments[position],
            }
            calls.append(item)
        yield {"tool_calls": calls}
        return
    for position in order:
        first = head(position)
        if reply.tool_call_ids:
            first["id"] = ids[position]
        first["type"] = "function"
        first["function"] = {"name": reply.tool_calls[position].name, "arguments": ""}
        yield {"tool_calls": [first]}
        for piece in _pieces(arguments[position], reply.chunk_size or _ARGUMENT_FRAGMENT_CHARS):
            yield {"tool_calls": [{**head(position), "function": {"arguments": piece}}]}


def _deltas(reply: Reply, completion: Completion) -> Iterator[tuple[JSON, str]]:
    """Each delta with the generated text it adds (for running usage totals)."""
    yield {"role": "assistant", "content": ""}, ""
    reasoning = _separate_reasoning(reply)
    if reasoning:
        for piece in _pieces(reasoning, reply.chunk_size):
            yield {reply.reasoning_field: piece}, piece
    separator = " "
    for piece in _pieces(_content_text(reply), reply.chunk_size):
        yield {"content": piece}, separator + piece
        separator = ""
    for delta in _tool_call_deltas(reply, completion):
        added = ""
        for call in delta["tool_calls"]:
            function = call["function"]
            if function.get("name"):
                added += " " + function["name"] + " "
            added += function["arguments"]
        yield delta, added


def stream_chunks(reply: Reply, completion: Completion) -> list[JSON]:
    """The ``chat.completion.chunk`` objects of a streamed answer, usage chunk included."""
    prompt, generated, reasoning_tokens = _usage_numbers(reply, completion)
    finish_reason = reply.resolved_finish_reason
    chunks: list[JSON] = []
    emitted = ""

    def chunk(choices: list[JSON]) -> JSON:
        item = _base(reply, completion, "chat.completion.chunk")
        item["choices"] = choices
        if reply.usage == "openai" and completion.include_usage:
            item["usage"] = None
        elif reply.usage == "running":
            so_far = min(generated, count_tokens(emitted) * completion.n)
            item["usage"] = {
                "prompt_tokens": prompt,
                "completion_tokens": so_far,
                "total_tokens": prompt + so_far,
            }
        item.update(reply.extra)
        return item

    for delta, added in _deltas(reply, completion):
        emitted += added
        for index in range(completion.n):
            chunks.append(
                chunk([{"index": index, "delta": delta, "logprobs": None, "finish_reason": None}])
            )
    emitted = _generated_text(reply)
    last = chunk(
        [
            {"index": index, "delta": {}, "logprobs": None, "finish_reason": finish_reason}
            for index in range(completion.n)
        ]
    )
    chunks.append(last)
    if reply.usage == "running":
        last["usage"] = {
            "prompt_tokens": prompt,
            "completion_tokens": generated,
            "total_tokens": prompt + generated,
        }
    elif reply.usage == "groq":
        last["x_groq"] = {"id": f"req_{completion.id}", "usage": _groq_usage(prompt, generated)}
    elif reply.usage == "llamacpp":
        usage, last["timings"] = _llamacpp_usage(reply, prompt, generated)
        if completion.include_usage:
            tail = chunk([])
            tail["usage"], tail["timings"] = usage, last["timings"]
            chunks.append(tail)
    elif reply.usage == "openai" and completion.include_usage:
        tail = chunk([])
        tail["usage"] = _openai_usage(reply, prompt, generated, reasoning_tokens)
        chunks.append(tail)
    return chunks


def _as_text_completion(item: JSON, part: str) -> JSON:
    converted = {**item, "object": "text_completion"}
    converted["choices"] = [
        {
            "index": choice["index"],
            "text": (choice.get(part) or {}).get("content") or "",
            "logprobs": None,
            "finish_reason": choice["finish_reason"],
        }
        for choice in item["choices"]
    ]
    return converted


def text_completion_body(body: JSON) -> JSON:
    """A rendered ``chat.completion`` as the legacy endpoint answers: ``text_completion``."""
    return _as_text_completion(body, "message")


def text_completion_chunks(chunks: list[JSON]) -> list[JSON]:
    """Rendered chat chunks as a legacy stream sends them.

    Chunks carrying nothing the legacy shape can hold (the role-only opener,
    separate reasoning, tool-call deltas) are left out; usage chunks stay.
    """
    legacy: list[JSON] = []
    for chunk in chunks:
        choices = chunk["choices"]
        if choices and not any(
            choice["delta"].get("content") or choice["finish_reason"] is not None
            for choice in choices
        ):
            continue
        legacy.append(_as_text_completion(chunk, "delta"))
    return legacy


def sse_events(reply: Reply, chunks: list[JSON]) -> list[bytes]:
    """The chunks framed as SSE events, with the reply's framing faults applied."""
    eol = reply.line_ending.encode()
    events: list[bytes] = []
    for position, item in enumerate(chunks):
        payload = dumps(item)
        if reply.error_after == position:
            events.append(b"data: " + dumps({"error": dict(reply.error)}) + eol + eol)
            return events
        if reply.malformed_at == position:
            events.append(b"data: " + payload[: len(payload) // 2] + eol + eol)
        if reply.keepalive and position % reply.keepalive == 0:
            events.append(b": keep-alive" + eol + eol)
        events.append(b"data: " + payload + eol + eol)
    if reply.error_after is not None:
        events.append(b"data: " + dumps({"error": dict(reply.error)}) + eol + eol)
        return events
    if reply.done:
        events.append(b"data: [DONE]" + eol + eol)
    return events

"""Property tests on the byte-level stream path: SSE decoder and StreamParser.

Hostile or random bytes must only ever raise oaicompat's own errors, and the
way a stream is cut into reads must never change what comes out of it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from oaicompat.errors import OAICompatError, StreamError
from oaicompat.profiles import ServerProfile
from oaicompat.protocol import StreamParser, parse_response
from oaicompat.sse import SSEDecoder
from oaicompat.think import ThinkTagSplitter
from oaicompat.types import ChatChunk, ChatResponse

TRANSCRIPTS = Path(__file__).parents[1] / "unit" / "transcripts"
STREAMS = {path.stem: path.read_bytes() for path in sorted(TRANSCRIPTS.glob("*.sse"))}
PROFILES = [ServerProfile(), ServerProfile(think_tags=True)]

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def cut(data: bytes, points: list[int]) -> list[bytes]:
    bounds = sorted({min(point, len(data)) for point in points})
    pieces, start = [], 0
    for bound in bounds:
        pieces.append(data[start:bound])
        start = bound
    pieces.append(data[start:])
    return pieces


def outcome(pieces: list[bytes], profile: ServerProfile) -> tuple[Any, ...]:
    """Everything a caller can observe: chunks and final response, or the error and partial.

    After an error only the partial counts: chunks completed in the read that failed
    reach the caller through ``partial``, not through ``feed``'s return value.
    """
    parser = StreamParser(profile)
    chunks: list[ChatChunk] = []
    try:
        for piece in pieces:
            chunks.extend(parser.feed(piece))
        return ("ok", view_chunks(chunks), view_response(parser.finish()))
    except StreamError as exc:
        partial = view_response(exc.partial) if exc.partial is not None else None
        return ("error", partial, type(exc.payload).__name__)


def view_chunks(chunks: list[ChatChunk]) -> list[tuple[Any, ...]]:
    return [
        (
            c.content,
            c.reasoning,
            c.finish_reason,
            c.usage,
            [(d.index, d.name, d.arguments, d.id is None) for d in c.tool_call_deltas],
        )
        for c in chunks
    ]


def view_response(response: ChatResponse) -> tuple[Any, ...]:
    return (
        response.content,
        response.reasoning,
        response.finish_reason,
        response.usage,
        response.model,
        response.id,
        [(c.name, c.arguments, c.arguments_text, c.error) for c in response.tool_calls],
    )


@FAST
@given(
    name=st.sampled_from(sorted(STREAMS)),
    ending=st.sampled_from([b"\n", b"\r\n", b"\r"]),
    points=st.lists(st.integers(min_value=0, max_value=20_000), max_size=40),
    think=st.sampled_from(PROFILES),
)
def test_any_cut_of_a_real_stream_equals_feeding_it_whole(
    name: str, ending: bytes, points: list[int], think: ServerProfile
) -> None:
    data = STREAMS[name].replace(b"\n", ending)
    assert outcome(cut(data, points), think) == outcome([data], think)


@FAST
@given(name=st.sampled_from(sorted(STREAMS)), point=st.integers(min_value=0, max_value=20_000))
def test_synthesized_ids_are_stable_within_one_stream(name: str, point: int) -> None:
    parser = StreamParser(ServerProfile())
    announced: dict[int, str] = {}
    try:
        for piece in cut(STREAMS[name], [point]):
            for chunk in parser.feed(piece):
                for delta in chunk.tool_call_deltas:
                    if delta.id is not None:
                        assert delta.index not in announced
                        announced[delta.index] = delta.id
        response = parser.finish()
    except StreamError:
        return
    assert [call.id for call in response.tool_calls] == [
        announced[index] for index in range(len(response.tool_calls))
    ]


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=400), limit=st.integers(min_value=1, max_value=64))
def test_decoder_on_random_bytes(data: bytes, limit: int) -> None:
    decoder = SSEDecoder(max_event_bytes=limit)
    try:
        events = decoder.feed(data) + decoder.close()
    except StreamError:
        return
    for name, payload in events:
        assert name is None or isinstance(name, bytes)
        assert isinstance(payload, bytes)
        assert len(payload) <= limit


LINE_PARTS = st.lists(
    st.sampled_from(
        [
            b"data: ",
            b"data:",
            b"event: error",
            b"event:",
            b": comment",
            b"id: 1",
            b"\n",
            b"\r",
            b"\r\n",
            b"[DONE]",
            b"{",
            b"}",
            b'"choices"',
            b'"error"',
            b":",
            b"x",
            b" ",
            b"\xff",
        ]
    ),
    max_size=60,
).map(b"".join)


@settings(max_examples=300, deadline=None)
@given(
    data=st.one_of(st.binary(max_size=300), LINE_PARTS),
    points=st.lists(st.integers(min_value=0, max_value=300), max_size=10),
)
def test_decoder_cuts_never_matter(data: bytes, points: list[int]) -> None:
    def run(pieces: list[bytes]) -> Any:
        decoder = SSEDecoder(max_event_bytes=1 << 20)
        events = []
        for piece in pieces:
            events.extend(decoder.feed(piece))
        return events + decoder.close()

    assert run(cut(data, points)) == run([data])


@settings(max_examples=300, deadline=None)
@given(
    data=st.one_of(st.binary(max_size=300), LINE_PARTS),
    points=st.lists(st.integers(min_value=0, max_value=300), max_size=6),
    profile=st.sampled_from(PROFILES),
)
def test_stream_parser_on_random_bytes_raises_only_its_own_errors(
    data: bytes, points: list[int], profile: ServerProfile
) -> None:
    parser = StreamParser(profile, max_event_bytes=128)
    try:
        for piece in cut(data, points):
            parser.feed(piece)
        parser.finish()
    except OAICompatError:
        pass


@settings(max_examples=100, deadline=None)
@given(
    limit=st.integers(min_value=8, max_value=512),
    extra=st.integers(min_value=1, max_value=300),
    step=st.integers(min_value=1, max_value=97),
    shape=st.sampled_from(["one-line", "many-lines", "comment"]),
)
def test_oversized_line_or_event_raises_instead_of_growing(
    limit: int, extra: int, step: int, shape: str
) -> None:
    if shape == "one-line":
        data = b"data: " + b"x" * (limit + extra)
    elif shape == "many-lines":
        data = b"data: y\n" * (limit + extra)
    else:
        data = b":" + b"k" * (limit + extra)
    parser = StreamParser(ServerProfile(), max_event_bytes=limit)
    with pytest.raises(StreamError) as caught:
        feed_in_steps(parser, data, step)
    assert caught.value.partial is not None


def feed_in_steps(parser: StreamParser, data: bytes, step: int) -> None:
    for start in range(0, len(data), step):
        parser.feed(data[start : start + step])


@FAST
@given(
    events=st.lists(
        st.text(alphabet="abc xyz", max_size=30).map(lambda s: json.dumps({"v": s}).encode()),
        max_size=8,
    ),
    step=st.integers(min_value=1, max_value=50),
)
def test_events_at_the_limit_pass(events: list[bytes], step: int) -> None:
    lines = [b"data: " + event for event in events]
    limit = max((len(line) for line in lines), default=1)
    decoder = SSEDecoder(max_event_bytes=limit)
    data = b"".join(line + b"\n\n" for line in lines)
    got = []
    for start in range(0, len(data), step):
        got.extend(decoder.feed(data[start : start + step]))
    assert [payload for _, payload in got + decoder.close()] == events


THINK_PIECES = st.lists(
    st.sampled_from(["<think>", "</think>", "<", "/", "think", ">", " ", "\n", "a", "b c", "<th"]),
    max_size=20,
).map("".join)


@settings(max_examples=300, deadline=None)
@given(text=THINK_PIECES, points=st.lists(st.integers(min_value=0, max_value=200), max_size=8))
def test_think_splitting_does_not_depend_on_cuts(text: str, points: list[int]) -> None:
    def run(pieces: list[str]) -> tuple[str, str]:
        splitter = ThinkTagSplitter()
        reasoning, content = "", ""
        for piece in pieces:
            r, c = splitter.feed(piece)
            reasoning, content = reasoning + r, content + c
        r, c = splitter.flush()
        return reasoning + r, content + c

    bounds = sorted({min(point, len(text)) for point in points})
    pieces, start = [], 0
    for bound in bounds:
        pieces.append(text[start:bound])
        start = bound
    pieces.append(text[start:])
    whole = run([text])
    assert run(pieces) == whole
    reasoning, content = whole
    if text.lstrip().startswith("<think>"):
        assert reasoning == reasoning.strip()
        assert content == content.lstrip()
    else:
        assert (reasoning, content) == ("", text)


def stream_of(deltas: list[dict[str, Any]], finish: str | None = "stop") -> bytes:
    chunks = [{"id": "c", "model": "m", "choices": [{"index": 0, "delta": d}]} for d in deltas]
    chunks.append(
        {"id": "c", "model": "m", "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]}
    )
    return (
        b"".join(b"data: " + json.dumps(c).encode() + b"\n\n" for c in chunks) + b"data: [DONE]\n\n"
    )


def body_of(message: dict[str, Any], finish: str | None = "stop") -> dict[str, Any]:
    return {
        "id": "c",
        "model": "m",
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
    }


def finish_of(data: bytes, profile: ServerProfile) -> ChatResponse:
    parser = StreamParser(profile)
    parser.feed(data)
    return parser.finish()


@settings(max_examples=200, deadline=None)
@given(pieces=st.lists(THINK_PIECES, max_size=6), profile=st.sampled_from(PROFILES))
def test_streamed_content_equals_the_same_content_unstreamed(
    pieces: list[str], profile: ServerProfile
) -> None:
    streamed = finish_of(stream_of([{"content": piece} for piece in pieces]), profile)
    whole = parse_response(body_of({"content": "".join(pieces)}), profile)
    assert (streamed.content, streamed.reasoning) == (whole.content, whole.reasoning)


@settings(max_examples=200, deadline=None)
@given(
    pieces=st.lists(st.text(max_size=6), max_size=6),
    field=st.sampled_from(["reasoning_content", "reasoning"]),
)
def test_streamed_reasoning_equals_the_same_reasoning_unstreamed(
    pieces: list[str], field: str
) -> None:
    profile = ServerProfile()
    streamed = finish_of(stream_of([{field: piece} for piece in pieces]), profile)
    whole = parse_response(body_of({"content": None, field: "".join(pieces)}), profile)
    assert (streamed.content, streamed.reasoning) == (whole.content, whole.reasoning)


CALLS = st.lists(
    st.tuples(
        st.text(alphabet="abcdef_", min_size=1, max_size=8),
        st.dictionaries(
            st.text(max_size=5),
            st.none() | st.booleans() | st.integers(-1000, 1000) | st.text(max_size=8),
            max_size=3,
        ),
    ),
    min_size=1,
    max_size=3,
)


@settings(max_examples=200, deadline=None)
@given(
    calls=CALLS,
    style=st.sampled_from(["openai", "repeated", "id-only", "whole"]),
    cuts=st.lists(st.integers(min_value=0, max_value=60), max_size=5),
)
def test_streamed_tool_calls_equal_the_same_calls_unstreamed(
    calls: list[tuple[str, dict[str, Any]]], style: str, cuts: list[int]
) -> None:
    deltas: list[dict[str, Any]] = []
    for index, (name, arguments) in enumerate(calls):
        call_id = f"call_{index}"
        text = json.dumps(arguments)
        fragments = [text] if style == "whole" else [p.decode() for p in cut(text.encode(), cuts)]
        for number, fragment in enumerate(fragments):
            entry: dict[str, Any] = {"function": {"arguments": fragment}}
            if style != "id-only":
                entry["index"] = index
            if number == 0 or style in ("repeated", "id-only"):
                entry["id"] = call_id
                entry["type"] = "function"
                entry["function"]["name"] = name
            deltas.append({"tool_calls": [entry]})
    message = {
        "content": None,
        "tool_calls": [
            {
                "id": f"call_{i}",
                "type": "function",
                "function": {"name": n, "arguments": json.dumps(a)},
            }
            for i, (n, a) in enumerate(calls)
        ],
    }
    streamed = finish_of(stream_of(deltas, "tool_calls"), ServerProfile())
    whole = parse_response(body_of(message, "tool_calls"), ServerProfile())
    view = [(c.id, c.name, c.arguments, c.arguments_text, c.error) for c in whole.tool_calls]
    assert [
        (c.id, c.name, c.arguments, c.arguments_text, c.error) for c in streamed.tool_calls
    ] == view
    assert [c.arguments for c in streamed.tool_calls] == [a for _, a in calls]

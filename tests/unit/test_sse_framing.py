"""SSE framing per the WHATWG event-stream rules, and how StreamParser reacts to bad events."""

from __future__ import annotations

import pytest

from oaicompat.errors import OAICompatError, StreamError
from oaicompat.profiles import PRESETS
from oaicompat.protocol import StreamParser
from oaicompat.sse import SSEDecoder, SSEEvent


def decode(*pieces: bytes, max_event_bytes: int | None = None) -> list[SSEEvent]:
    decoder = (
        SSEDecoder() if max_event_bytes is None else SSEDecoder(max_event_bytes=max_event_bytes)
    )
    events: list[SSEEvent] = []
    for piece in pieces:
        events.extend(decoder.feed(piece))
    return events + decoder.close()


STREAM = (
    b": keep-alive\n"
    b"event: message\n"
    b"data: first\n"
    b"\n"
    b"data:second, no space\n"
    b"id: 7\n"
    b"retry: 1000\n"
    b"\n"
    b"data: line one\n"
    b"data:  line two keeps one leading space\n"
    b"\n"
    b"event: error\n"
    b'data: {"error": {"message": "boom"}}\n'
    b"\n"
    b"data: [DONE]\n"
    b"\n"
)
EVENTS: list[SSEEvent] = [
    (b"message", b"first"),
    (None, b"second, no space"),
    (None, b"line one\n line two keeps one leading space"),
    (b"error", b'{"error": {"message": "boom"}}'),
    (None, b"[DONE]"),
]


@pytest.mark.parametrize("ending", [b"\n", b"\r\n", b"\r"], ids=["lf", "crlf", "cr"])
def test_line_endings(ending: bytes) -> None:
    assert decode(STREAM.replace(b"\n", ending)) == EVENTS


def test_mixed_line_endings() -> None:
    endings = [b"\n", b"\r\n", b"\r"]
    mixed = b""
    for i, line in enumerate(STREAM.split(b"\n")[:-1]):
        ending = endings[i % 3]
        if mixed.endswith(b"\r") and not line and ending == b"\n":
            ending = b"\r"  # a lone CR then an LF would read as one CRLF
        mixed += line + ending
    assert b"\r\n" in mixed
    assert decode(mixed) == EVENTS


@pytest.mark.parametrize("ending", [b"\n", b"\r\n", b"\r"], ids=["lf", "crlf", "cr"])
def test_every_split_point_gives_the_same_events(ending: bytes) -> None:
    data = STREAM.replace(b"\n", ending)
    for cut in range(len(data) + 1):
        assert decode(data[:cut], data[cut:]) == EVENTS, cut


@pytest.mark.parametrize("ending", [b"\n", b"\r\n", b"\r"], ids=["lf", "crlf", "cr"])
def test_byte_by_byte(ending: bytes) -> None:
    data = STREAM.replace(b"\n", ending)
    assert decode(*(data[i : i + 1] for i in range(len(data)))) == EVENTS


def test_empty_reads_anywhere_change_nothing() -> None:
    data = STREAM.replace(b"\n", b"\r\n")
    pieces = [piece for i in range(len(data)) for piece in (b"", data[i : i + 1])]
    assert decode(*pieces, b"") == EVENTS


def test_crlf_cut_between_cr_and_lf_is_one_line_end() -> None:
    assert decode(b"data: a\r", b"\ndata: b\r\n\r\n") == [(None, b"a\nb")]
    assert decode(b"data: a\r", b"", b"\ndata: b\r\n\r\n") == [(None, b"a\nb")]


def test_comments_only_dispatch_nothing() -> None:
    assert decode(b": OPENROUTER PROCESSING\n\n:\n\n: ping\r\n\r\n") == []


def test_blank_lines_without_data_dispatch_nothing() -> None:
    assert decode(b"\n\n\n", b"event: x\n\n", b"id: 1\n\n") == []


def test_event_name_applies_to_one_event_only() -> None:
    assert decode(b"event: error\ndata: a\n\ndata: b\n\n") == [(b"error", b"a"), (None, b"b")]


def test_field_without_colon_and_unknown_fields() -> None:
    # `data` alone is a data line with an empty value; unknown fields are ignored.
    assert decode(b"data\ndata: x\nfoo: bar\n\n") == [(None, b"\nx")]


def test_stream_ending_without_blank_line_or_newline() -> None:
    assert decode(b"data: a\n\ndata: last") == [(None, b"a"), (None, b"last")]
    assert decode(b"data: a\n\ndata: last\n") == [(None, b"a"), (None, b"last")]


def test_close_resets_for_reuse() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: x") == []
    assert decoder.close() == [(None, b"x")]
    assert decoder.close() == []


def test_bytes_are_not_decoded() -> None:
    assert decode(b"data: \xff\xfe caf\xc3\xa9\n\n") == [(None, b"\xff\xfe caf\xc3\xa9")]


def test_line_over_the_limit_raises() -> None:
    decoder = SSEDecoder(max_event_bytes=64)
    decoder.feed(b"data: " + b"x" * 50)
    with pytest.raises(StreamError, match="64-byte limit"):
        decoder.feed(b"x" * 50)


def test_event_over_the_limit_raises_even_with_short_lines() -> None:
    decoder = SSEDecoder(max_event_bytes=64)
    for _ in range(5):
        decoder.feed(b"data: 0123456789\n")
    with pytest.raises(StreamError, match="64-byte limit"):
        decoder.feed(b"data: 0123456789\n")


def test_events_under_the_limit_pass() -> None:
    line = b"data: " + b"x" * 58 + b"\n\n"
    events = decode(line * 50, max_event_bytes=64)
    assert events == [(None, b"x" * 58)] * 50


@pytest.mark.parametrize("line", [b"data: " + b"x" * 70, b": " + b"k" * 70, b"x" * 70])
@pytest.mark.parametrize("step", [1, 7, 1000])
def test_line_over_the_limit_raises_however_it_arrives(line: bytes, step: int) -> None:
    data = line + b"\n\n"
    decoder = SSEDecoder(max_event_bytes=64)
    with pytest.raises(StreamError, match="64-byte limit"):
        feed_in_steps(decoder, data, step)


def feed_in_steps(decoder: SSEDecoder, data: bytes, step: int) -> None:
    for start in range(0, len(data), step):
        decoder.feed(data[start : start + step])
    decoder.close()


def test_comment_lines_and_split_long_line_are_bounded_too() -> None:
    decoder = SSEDecoder(max_event_bytes=32)
    decoder.feed(b": keep-alive padding")
    with pytest.raises(StreamError):
        decoder.feed(b": keep-alive padding")


def stream(*events: bytes) -> bytes:
    return b"".join(b"data: " + event + b"\n\n" for event in events)


CHUNK = b'{"id":"c1","model":"m","choices":[{"index":0,"delta":{"content":"%s"}}]}'


def test_parser_without_done_still_finishes() -> None:
    parser = StreamParser(PRESETS["generic"])
    parser.feed(stream(CHUNK % b"a", CHUNK % b"b"))
    assert not parser.done
    assert parser.finish().content == "ab"


def test_parser_marks_done() -> None:
    parser = StreamParser(PRESETS["generic"])
    parser.feed(stream(CHUNK % b"a", b"[DONE]"))
    assert parser.done
    assert parser.finish().content == "a"


@pytest.mark.parametrize(
    "payload",
    [b"{not json", b'{"choices": [', b"", b"undefined", b"\xff\xfe"],
    ids=["garbage", "truncated", "empty", "word", "binary"],
)
def test_malformed_json_is_a_stream_error_with_partial(payload: bytes) -> None:
    parser = StreamParser(PRESETS["generic"])
    parser.feed(stream(CHUNK % b"kept"))
    with pytest.raises(StreamError, match="not valid JSON") as caught:
        parser.feed(stream(payload))
    assert caught.value.partial is not None
    assert caught.value.partial.content == "kept"
    assert caught.value.payload == payload


@pytest.mark.parametrize("payload", [b"[1, 2]", b'"text"', b"42", b"null", b"true"])
def test_json_that_is_not_an_object_is_a_stream_error(payload: bytes) -> None:
    parser = StreamParser(PRESETS["generic"])
    with pytest.raises(StreamError, match="not a JSON object"):
        parser.feed(stream(payload))


def test_error_event_by_name() -> None:
    parser = StreamParser(PRESETS["generic"])
    parser.feed(stream(CHUNK % b"so far"))
    with pytest.raises(StreamError, match="model crashed") as caught:
        parser.feed(b'event: error\ndata: {"message": "model crashed"}\n\n')
    assert caught.value.partial is not None
    assert caught.value.partial.content == "so far"


def test_chunks_before_an_error_in_the_same_read_reach_the_caller_first() -> None:
    # A server may pack several events into one HTTP chunk: the ones before the
    # failure are handed over, and the error comes on the next call.
    parser = StreamParser(PRESETS["generic"])
    read = stream(CHUNK % b"one", CHUNK % b"two") + b'data: {"error": "boom"}\n\n'
    chunks = parser.feed(read)
    assert [chunk.content for chunk in chunks] == ["one", "two"]
    with pytest.raises(StreamError, match="boom") as caught:
        parser.feed(stream(CHUNK % b"never"))
    assert caught.value.partial is not None
    assert caught.value.partial.content == "onetwo"
    with pytest.raises(StreamError, match="boom"):
        parser.finish()


@pytest.mark.parametrize(
    "payload",
    [
        b'{"error": {"message": "overloaded", "type": "server_error"}}',
        b'{"error": "overloaded"}',
        b'{"error": {"message": "overloaded"}, "choices": []}',
        b'{"error": {"message": "overloaded"}, "choices": [{"index": 0, "delta": {}}]}',
    ],
)
def test_error_object_in_a_data_event(payload: bytes) -> None:
    parser = StreamParser(PRESETS["generic"])
    with pytest.raises(StreamError, match="overloaded"):
        parser.feed(stream(payload))


def test_null_error_field_is_not_an_error() -> None:
    parser = StreamParser(PRESETS["generic"])
    parser.feed(stream(b'{"error": null, "choices": [{"index": 0, "delta": {"content": "ok"}}]}'))
    assert parser.finish().content == "ok"


def test_oversized_event_in_parser_keeps_partial() -> None:
    parser = StreamParser(PRESETS["generic"], max_event_bytes=256)
    parser.feed(stream(CHUNK % b"before"))
    with pytest.raises(StreamError) as caught:
        parser.feed(b"data: " + b"x" * 1000)
    assert isinstance(caught.value, OAICompatError)
    assert caught.value.partial is not None
    assert caught.value.partial.content == "before"


def test_finish_reason_survives_a_later_chunk_without_one() -> None:
    parser = StreamParser(PRESETS["generic"])
    parser.feed(
        stream(
            b'{"choices": [{"index": 0, "delta": {"content": "x"}, "finish_reason": "length"}]}',
            b'{"choices": [{"index": 0, "delta": {}, "finish_reason": null}]}',
        )
    )
    assert parser.finish().finish_reason == "length"


def test_finish_reason_is_not_invented_from_tool_calls() -> None:
    parser = StreamParser(PRESETS["generic"])
    parser.feed(
        stream(
            b'{"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "id": "c",'
            b' "function": {"name": "f", "arguments": "{}"}}]}}]}'
        )
    )
    response = parser.finish()
    assert len(response.tool_calls) == 1
    assert response.finish_reason is None


def test_last_usage_wins() -> None:
    parser = StreamParser(PRESETS["generic"])
    parser.feed(
        stream(
            b'{"choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 1}}',
            b'{"choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 9}}',
            b'{"choices": [], "usage": null}',
        )
    )
    usage = parser.finish().usage
    assert usage is not None
    assert (usage.input_tokens, usage.output_tokens, usage.total_tokens) == (5, 9, 14)


def test_partial_before_any_chunk() -> None:
    parser = StreamParser(PRESETS["generic"])
    partial = parser.partial()
    assert partial.content == ""
    assert partial.reasoning is None
    assert partial.tool_calls == []
    assert partial.usage is None

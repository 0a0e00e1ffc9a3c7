"""Tool calls: argument parsing, whole calls, and folding streamed fragments into calls."""

from __future__ import annotations

from typing import Any

import pytest

from oaicompat.tool_calls import ToolCallAccumulator, parse_arguments, parse_tool_calls
from oaicompat.types import ToolCall, ToolCallDelta


@pytest.mark.parametrize(
    ("arguments", "parsed", "text"),
    [
        ('{"city": "Paris"}', {"city": "Paris"}, '{"city": "Paris"}'),
        ({"city": "Paris"}, {"city": "Paris"}, '{"city":"Paris"}'),
        ("", {}, ""),
        ("   ", {}, "   "),
        (None, {}, ""),
        ("{}", {}, "{}"),
        ('"{\\"city\\": \\"Paris\\"}"', {"city": "Paris"}, '"{\\"city\\": \\"Paris\\"}"'),
    ],
    ids=["string", "object", "empty", "blank", "none", "empty-object", "double-encoded"],
)
def test_parse_arguments_accepts(arguments: Any, parsed: dict[str, Any], text: str) -> None:
    assert parse_arguments(arguments) == (parsed, text, None)


@pytest.mark.parametrize(
    ("arguments", "text", "reason"),
    [
        ('{"city": "Par', '{"city": "Par', "not valid JSON"),
        ("[1, 2]", "[1, 2]", "got list"),
        ("42", "42", "got int"),
        ('"just text"', '"just text"', "JSON string, not an object"),
        ([1, 2], "[1,2]", "got list"),
        (7, "7", "got int"),
        ("null", "null", "got NoneType"),
    ],
)
def test_parse_arguments_keeps_bad_input_as_text(arguments: Any, text: str, reason: str) -> None:
    parsed, kept, error = parse_arguments(arguments)
    assert parsed == {}
    assert kept == text
    assert error is not None
    assert reason in error


def test_whole_calls_ids_become_strings() -> None:
    message = {
        "tool_calls": [
            {"id": 0, "type": "function", "function": {"name": "a", "arguments": "{}"}},
            {"id": "call_x", "type": "function", "function": {"name": "b", "arguments": {"k": 1}}},
        ]
    }
    calls = parse_tool_calls(message)
    assert [(c.id, c.name, c.arguments) for c in calls] == [
        ("0", "a", {}),
        ("call_x", "b", {"k": 1}),
    ]


def test_whole_calls_without_ids_get_distinct_ids() -> None:
    message = {
        "tool_calls": [
            {"function": {"name": "a", "arguments": ""}},
            {"id": "", "function": {"name": "a", "arguments": ""}},
            {"id": None, "function": {"name": "a", "arguments": ""}},
        ]
    }
    ids = [call.id for call in parse_tool_calls(message)]
    assert all(call_id.startswith("call_") for call_id in ids)
    assert len(set(ids)) == 3


def test_whole_call_without_function_wrapper() -> None:
    calls = parse_tool_calls({"tool_calls": [{"id": "c", "name": "f", "arguments": '{"a":1}'}]})
    assert [(c.id, c.name, c.arguments) for c in calls] == [("c", "f", {"a": 1})]


def test_whole_call_invalid_arguments_kept_with_error() -> None:
    calls = parse_tool_calls(
        {"tool_calls": [{"id": "c", "function": {"name": "f", "arguments": "{oops"}}]}
    )
    assert calls[0].arguments == {}
    assert calls[0].arguments_text == "{oops"
    assert calls[0].error is not None


def test_legacy_function_call_alone() -> None:
    calls = parse_tool_calls({"function_call": {"name": "lookup", "arguments": '{"q": 1}'}})
    assert [(c.name, c.arguments) for c in calls] == [("lookup", {"q": 1})]
    assert calls[0].id.startswith("call_")


def test_tool_calls_preferred_over_legacy_function_call() -> None:
    message = {
        "function_call": {"name": "f", "arguments": "{}"},
        "tool_calls": [{"id": "t1", "function": {"name": "f", "arguments": "{}"}}],
    }
    assert [c.id for c in parse_tool_calls(message)] == ["t1"]


@pytest.mark.parametrize(
    "message",
    [{}, {"tool_calls": None}, {"tool_calls": []}, {"tool_calls": "x"}, {"function_call": "x"}],
)
def test_no_calls(message: dict[str, Any]) -> None:
    assert parse_tool_calls(message) == []


def test_non_object_entries_are_skipped() -> None:
    message = {"tool_calls": [None, 3, "x", {"id": "ok", "function": {"name": "f"}}]}
    assert [c.id for c in parse_tool_calls(message)] == ["ok"]


def fold(*deltas: dict[str, Any]) -> tuple[list[ToolCallDelta], list[ToolCall]]:
    accumulator = ToolCallAccumulator()
    out: list[ToolCallDelta] = []
    for delta in deltas:
        out.extend(accumulator.add_delta(delta))
    return out, accumulator.calls()


def calls_of(*entries: dict[str, Any]) -> dict[str, Any]:
    return {"tool_calls": list(entries)}


def fn(name: str | None = None, arguments: Any = None, **extra: Any) -> dict[str, Any]:
    function: dict[str, Any] = {}
    if name is not None:
        function["name"] = name
    if arguments is not None:
        function["arguments"] = arguments
    return {"function": function, **extra}


def summary(calls: list[ToolCall]) -> list[tuple[str, str, dict[str, Any], str | None]]:
    return [(c.id, c.name, c.arguments, c.error) for c in calls]


def test_fragments_joined_by_index() -> None:
    deltas, calls = fold(
        calls_of(fn("get", "", index=0, id="a", type="function")),
        calls_of(fn(arguments='{"x"', index=0)),
        calls_of(fn(arguments=": 1}", index=0)),
    )
    assert summary(calls) == [("a", "get", {"x": 1}, None)]
    assert [(d.index, d.id, d.name, d.arguments) for d in deltas] == [
        (0, "a", "get", ""),
        (0, None, None, '{"x"'),
        (0, None, None, ": 1}"),
    ]


def test_interleaved_indices() -> None:
    _, calls = fold(
        calls_of(fn("a", "", index=0, id="ca")),
        calls_of(fn("b", "", index=1, id="cb")),
        calls_of(fn(arguments='{"n": 1}', index=0)),
        calls_of(fn(arguments='{"n": 2}', index=1)),
    )
    assert summary(calls) == [("ca", "a", {"n": 1}, None), ("cb", "b", {"n": 2}, None)]


def test_fragments_joined_by_id_when_index_is_missing() -> None:
    _, calls = fold(
        calls_of(fn("a", '{"n":', id="x1")),
        calls_of(fn("b", '{"m":', id="x2")),
        calls_of(fn(arguments=" 1}", id="x1")),
        calls_of(fn(arguments=" 2}", id="x2")),
    )
    assert summary(calls) == [("x1", "a", {"n": 1}, None), ("x2", "b", {"m": 2}, None)]


def test_fragment_with_neither_index_nor_id_continues_the_last_call() -> None:
    _, calls = fold(
        calls_of(fn("a", '{"n":', id="x1")),
        calls_of(fn(arguments=" 1}")),
    )
    assert summary(calls) == [("x1", "a", {"n": 1}, None)]


def test_several_calls_in_one_chunk() -> None:
    deltas, calls = fold(
        calls_of(
            fn("a", '{"n": 1}', index=0, id="c0"),
            fn("b", '{"n": 2}', index=1, id="c1"),
        )
    )
    assert summary(calls) == [("c0", "a", {"n": 1}, None), ("c1", "b", {"n": 2}, None)]
    assert [d.index for d in deltas] == [0, 1]


def test_whole_call_in_one_chunk_with_object_arguments() -> None:
    deltas, calls = fold(calls_of(fn("a", {"n": 1}, index=0, id="call_abc")))
    assert summary(calls) == [("call_abc", "a", {"n": 1}, None)]
    assert deltas[0].arguments == '{"n":1}'


def test_id_and_name_repeated_on_every_delta_are_not_concatenated() -> None:
    deltas, calls = fold(
        calls_of(fn("get_weather", '{"ci', index=0, id="call_1")),
        calls_of(fn("get_weather", 'ty": "Rome"}', index=0, id="call_1")),
    )
    assert summary(calls) == [("call_1", "get_weather", {"city": "Rome"}, None)]
    assert [(d.id, d.name) for d in deltas] == [("call_1", "get_weather"), (None, None)]


def test_same_index_with_another_id_is_another_call() -> None:
    _, calls = fold(
        calls_of(fn("a", '{"n": 1}', index=0, id="first")),
        calls_of(fn("b", '{"n": 2}', index=0, id="second")),
        calls_of(fn(arguments="", index=0, id="second")),
    )
    assert summary(calls) == [("first", "a", {"n": 1}, None), ("second", "b", {"n": 2}, None)]


def test_each_call_gets_its_own_stable_output_index() -> None:
    deltas, _ = fold(
        calls_of(fn("a", "{}", index=0, id="first")),
        calls_of(fn("b", "{", index=0, id="second")),
        calls_of(fn(arguments="}", index=0)),
    )
    assert [(d.index, d.id) for d in deltas] == [(0, "first"), (1, "second"), (1, None)]


def test_integer_ids_become_strings() -> None:
    _, calls = fold(calls_of(fn("a", "{}", id=0)), calls_of(fn("b", "{}", id=1)))
    assert [c.id for c in calls] == ["0", "1"]


def test_missing_id_is_synthesized_once() -> None:
    deltas, calls = fold(
        calls_of(fn("a", '{"n":', index=0)),
        calls_of(fn(arguments=" 1}", index=0)),
    )
    assert calls[0].id.startswith("call_")
    assert [d.id for d in deltas] == [calls[0].id, None]


def test_invalid_json_arguments_kept_as_text_with_error() -> None:
    _, calls = fold(calls_of(fn("a", '{"n": ', index=0, id="c")))
    assert calls[0].arguments == {}
    assert calls[0].arguments_text == '{"n": '
    assert calls[0].error is not None


def test_empty_arguments_mean_no_arguments() -> None:
    _, calls = fold(calls_of(fn("a", "", index=0, id="c")))
    assert summary(calls) == [("c", "a", {}, None)]


def test_delta_that_adds_nothing_is_not_reported() -> None:
    deltas, _ = fold(
        calls_of(fn("a", "{}", index=0, id="c")),
        calls_of({"index": 0, "type": "function"}),
        calls_of(fn("a", "", index=0, id="c")),
    )
    assert len(deltas) == 1


def test_legacy_function_call_deltas() -> None:
    deltas, calls = fold(
        {"function_call": {"name": "lookup", "arguments": ""}},
        {"function_call": {"arguments": '{"q":'}},
        {"function_call": {"name": "lookup", "arguments": ' "x"}'}},
    )
    assert [(c.name, c.arguments) for c in calls] == [("lookup", {"q": "x"})]
    assert [d.name for d in deltas] == ["lookup", None, None]
    assert calls[0].id.startswith("call_")


def test_legacy_function_call_ignored_once_tool_calls_seen() -> None:
    _, calls = fold(
        {
            "function_call": {"name": "f", "arguments": "{}"},
            "tool_calls": [{"index": 0, "id": "t", "function": {"name": "f", "arguments": "{}"}}],
        },
        {"function_call": {"name": "f", "arguments": "{}"}, "tool_calls": None},
    )
    assert summary(calls) == [("t", "f", {}, None)]


@pytest.mark.parametrize(
    "delta",
    [
        {"tool_calls": "x"},
        {"tool_calls": {"index": 0}},
        {"tool_calls": [None, 1, "x"]},
        {"tool_calls": []},
        {"tool_calls": None},
        {"function_call": None},
        {"function_call": "x"},
        {},
    ],
)
def test_malformed_deltas_add_nothing(delta: dict[str, Any]) -> None:
    deltas, calls = fold(delta)
    assert deltas == []
    assert calls == []


def test_negative_or_non_integer_index_is_treated_as_missing() -> None:
    _, calls = fold(
        calls_of(fn("a", '{"n":', index=-1, id="c1")),
        calls_of(fn(arguments=" 1}", index="0", id="c1")),
    )
    assert summary(calls) == [("c1", "a", {"n": 1}, None)]


def test_bool_reports_whether_any_call_started() -> None:
    accumulator = ToolCallAccumulator()
    assert not accumulator
    accumulator.add_delta(calls_of(fn("a", "", index=0)))
    assert accumulator

"""Tool calls: argument parsing and folding streamed fragments into whole calls.

Servers disagree on almost everything here: arguments arrive as a JSON
string, an object, ``""`` or double-encoded; ids are strings, integers or
missing; streamed deltas carry an ``index``, or only an ``id``, or neither;
some repeat the id and name on every delta, some send a whole call in one
chunk (Ollama), some reuse index 0 for every parallel call. The accumulator
gives each call a stable slot, so downstream code sees one index per call,
the id and name exactly once (on the call's first delta) and the argument
text exactly once.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

from oaicompat._json import dumps, loads
from oaicompat.types import JSONObject, ToolCall, ToolCallDelta

__all__ = ["ToolCallAccumulator", "new_call_id", "parse_arguments", "parse_tool_calls"]


def new_call_id() -> str:
    """An id for a call the server sent without one (unique, so histories never collide)."""
    # os.urandom rather than uuid: importing uuid pulls in `platform` at import time.
    return "call_" + os.urandom(12).hex()


def parse_arguments(arguments: Any) -> tuple[JSONObject, str, str | None]:
    """``(arguments, arguments_text, error)``; invalid input is kept as text with an error."""
    if arguments is None:
        return {}, "", None
    if isinstance(arguments, Mapping):
        value = dict(arguments)
        return value, _text_of(value), None
    if not isinstance(arguments, str):
        text = _text_of(arguments) if _is_json_value(arguments) else str(arguments)
        return {}, text, f"arguments must be a JSON object, got {type(arguments).__name__}"
    text = arguments
    if not text.strip():
        return {}, text, None
    try:
        value = loads(text)
    except ValueError as exc:
        return {}, text, f"arguments are not valid JSON: {exc}"
    if isinstance(value, str):
        # Some servers JSON-encode the argument string twice.
        try:
            value = loads(value)
        except ValueError:
            return {}, text, "arguments are a JSON string, not an object"
    if not isinstance(value, dict):
        return {}, text, f"arguments must be a JSON object, got {type(value).__name__}"
    return value, text, None


def _is_json_value(value: Any) -> bool:
    return isinstance(value, (list, int, float, bool))


def _text_of(arguments: Any) -> str:
    if arguments is None:
        return ""
    if isinstance(arguments, str):
        return arguments
    try:
        return dumps(arguments).decode("utf-8")
    except TypeError:
        # orjson refuses integers beyond 64 bits, which the stdlib parser produces.
        return json.dumps(arguments, ensure_ascii=False, default=str)


def _call_id(raw_id: Any) -> str | None:
    if raw_id is None or raw_id == "":
        return None
    return str(raw_id)


def _build_call(call_id: str | None, name: str, arguments: Any) -> ToolCall:
    parsed, text, error = parse_arguments(arguments)
    return ToolCall(
        id=call_id or new_call_id(),
        name=name,
        arguments=parsed,
        arguments_text=text,
        error=error,
    )


def parse_tool_calls(message: Mapping[str, Any]) -> list[ToolCall]:
    """Whole calls from a non-streamed message: ``tool_calls``, else legacy ``function_call``."""
    calls: list[ToolCall] = []
    raw_calls = message.get("tool_calls")
    if isinstance(raw_calls, list) and raw_calls:
        for raw in raw_calls:
            if not isinstance(raw, Mapping):
                continue
            function = raw.get("function")
            if not isinstance(function, Mapping):
                function = raw
            name = function.get("name")
            calls.append(
                _build_call(
                    _call_id(raw.get("id")),
                    name if isinstance(name, str) else "",
                    function.get("arguments"),
                )
            )
        return calls
    legacy = message.get("function_call")
    if isinstance(legacy, Mapping):
        name = legacy.get("name")
        calls.append(
            _build_call(None, name if isinstance(name, str) else "", legacy.get("arguments"))
        )
    return calls


class _Slot:
    __slots__ = ("arguments", "id", "id_was_sent", "name", "position")

    def __init__(self, position: int, call_id: str | None) -> None:
        self.position = position
        self.id_was_sent = call_id is not None
        self.id = call_id or new_call_id()
        self.name = ""
        self.arguments: list[str] = []


class ToolCallAccumulator:
    """Folds streamed tool-call deltas into calls, one stable slot per call."""

    __slots__ = ("_by_id", "_by_index", "_legacy_slot", "_saw_tool_calls", "_slots")

    def __init__(self) -> None:
        self._slots: list[_Slot] = []
        self._by_index: dict[int, _Slot] = {}
        self._by_id: dict[str, _Slot] = {}
        self._saw_tool_calls = False
        self._legacy_slot: _Slot | None = None

    def __bool__(self) -> bool:
        return bool(self._slots)

    def add_delta(self, delta: Mapping[str, Any]) -> list[ToolCallDelta]:
        """Fold one chunk's ``delta``; return the normalized deltas it carried."""
        raw_calls = delta.get("tool_calls")
        if raw_calls:
            if not isinstance(raw_calls, list):
                return []
            self._saw_tool_calls = True
            out: list[ToolCallDelta] = []
            for raw in raw_calls:
                if isinstance(raw, Mapping):
                    normalized = self._add_call_delta(raw)
                    if normalized is not None:
                        out.append(normalized)
            return out
        legacy = delta.get("function_call")
        if isinstance(legacy, Mapping) and not self._saw_tool_calls:
            return self._add_legacy_delta(legacy)
        return []

    def _slot_for(self, server_index: Any, call_id: str | None) -> tuple[_Slot, bool]:
        """The call a delta belongs to, and whether it is new."""
        index = server_index if isinstance(server_index, int) and server_index >= 0 else None
        if call_id is not None and call_id in self._by_id:
            return self._by_id[call_id], False
        if index is not None:
            slot = self._by_index.get(index)
            if slot is not None:
                if call_id is None:
                    return slot, False
                if not slot.id_was_sent:
                    # The id came after the first fragment; the synthesized one stays.
                    self._by_id[call_id] = slot
                    return slot, False
                # Otherwise the same index with another id is a new call
                # (servers that give every parallel call index 0).
        elif call_id is None and self._slots:
            return self._slots[-1], False
        slot = _Slot(len(self._slots), call_id)
        self._slots.append(slot)
        if index is not None:
            self._by_index[index] = slot
        self._by_id[slot.id] = slot
        return slot, True

    def _add_call_delta(self, raw: Mapping[str, Any]) -> ToolCallDelta | None:
        function = raw.get("function")
        if not isinstance(function, Mapping):
            function = {}
        slot, is_new = self._slot_for(raw.get("index"), _call_id(raw.get("id")))
        name = function.get("name")
        new_name: str | None = None
        # A name repeated on every delta is not a fragment; a growing one replaces.
        if (
            isinstance(name, str)
            and name
            and name != slot.name
            and (not slot.name or name.startswith(slot.name))
        ):
            slot.name = new_name = name
        fragment = _text_of(function.get("arguments"))
        if fragment:
            slot.arguments.append(fragment)
        if not is_new and new_name is None and not fragment:
            return None
        return ToolCallDelta(
            index=slot.position, id=slot.id if is_new else None, name=new_name, arguments=fragment
        )

    def _add_legacy_delta(self, legacy: Mapping[str, Any]) -> list[ToolCallDelta]:
        slot = self._legacy_slot
        is_new = slot is None
        if slot is None:
            slot = self._legacy_slot = _Slot(len(self._slots), None)
            self._slots.append(slot)
        name = legacy.get("name")
        new_name: str | None = None
        if isinstance(name, str) and name and not slot.name:
            slot.name = new_name = name
        fragment = _text_of(legacy.get("arguments"))
        if fragment:
            slot.arguments.append(fragment)
        if not is_new and new_name is None and not fragment:
            return []
        return [
            ToolCallDelta(
                index=slot.position,
                id=slot.id if is_new else None,
                name=new_name,
                arguments=fragment,
            )
        ]

    def calls(self) -> list[ToolCall]:
        """The whole calls so far, in the order they started."""
        out = []
        for slot in self._slots:
            parsed, text, error = parse_arguments("".join(slot.arguments))
            out.append(
                ToolCall(
                    id=slot.id, name=slot.name, arguments=parsed, arguments_text=text, error=error
                )
            )
        return out

"""Values valid for a JSON schema, filled from the prompt where it helps.

This is how the scripted model "understands" a request: numbers in the
prompt become integer and number arguments (``magic_function(3)`` gives
``{"input": 3}``, ``a=5`` fills ``a``), quoted text and capitalised names
become strings (``named 'Ada'``, ``in San Francisco, CA``), an enum value the
prompt mentions is chosen. Everything else gets a simple value that still
satisfies the schema: bounds, ``enum``, ``const``, ``required``, ``$ref``,
``anyOf``/``oneOf``/``allOf``, nested objects and arrays with ``minItems``.
``pattern`` and ``multipleOf`` are not honoured.
"""

from __future__ import annotations

import math
import re
from collections import deque
from collections.abc import Mapping
from typing import Any

__all__ = ["PromptHints", "value_for_schema"]

_NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?!\w)")
_QUOTED = re.compile(r"\"([^\"\n]{1,200})\"|“([^”\n]{1,200})”|(?<!\w)'([^'\n]{1,200})'(?!\w)")
_CAPITALISED = re.compile(r"[A-Z][\w'’-]*(?:,? [A-Z][\w'’-]*)*")
_SENTENCE_END = re.compile(r"(?:^|[.!?:;]\s*)$")
_FORMATS = {
    "date": "2025-01-01",
    "date-time": "2025-01-01T00:00:00Z",
    "time": "12:00:00",
    "email": "user@example.com",
    "uri": "https://example.com",
    "url": "https://example.com",
    "uuid": "00000000-0000-4000-8000-000000000000",
}
_SHALLOW_DEPTH = 4
"""Below this depth only required properties are filled, so recursive schemas end."""
_MAX_DEPTH = 16


class PromptHints:
    """Values found in the prompt, handed out in order of appearance."""

    def __init__(self, text: str) -> None:
        self.text = text
        self._numbers = deque(match.group() for match in _NUMBER.finditer(text))
        quoted = [
            next(group for group in match.groups() if group) for match in _QUOTED.finditer(text)
        ]
        self._strings = deque(quoted + _capitalised_names(text))

    def number(self, name: str) -> float | None:
        named = re.search(
            rf"\b{re.escape(name)}\s*(?:=|:|is|of)\s*(-?\d+(?:\.\d+)?)", self.text, re.IGNORECASE
        )
        if named:
            return float(named.group(1))
        return float(self._numbers.popleft()) if self._numbers else None

    def string(self) -> str | None:
        return self._strings.popleft() if self._strings else None

    def mentions(self, option: Any) -> bool:
        return isinstance(option, str) and bool(
            re.search(rf"(?<!\w){re.escape(option)}(?!\w)", self.text, re.IGNORECASE)
        )


def _capitalised_names(text: str) -> list[str]:
    """Runs of capitalised words, minus the capital every sentence starts with."""
    names = []
    for match in _CAPITALISED.finditer(text):
        if match.start() and text[match.start() - 1].isalnum():
            continue
        name = match.group()
        if _SENTENCE_END.search(text[: match.start()]):
            name = name.partition(" ")[2].lstrip(", ")
        if name and name != "I":
            names.append(name)
    return names


def _resolve(schema: Any, root: Mapping[str, Any]) -> Mapping[str, Any]:
    seen = 0
    while isinstance(schema, Mapping) and isinstance(schema.get("$ref"), str) and seen < _MAX_DEPTH:
        target: Any = root
        for part in schema["$ref"].removeprefix("#").strip("/").split("/"):
            if part:
                target = target.get(part.replace("~1", "/").replace("~0", "~"), {})
        siblings = {key: value for key, value in schema.items() if key != "$ref"}
        schema = {**target, **siblings} if isinstance(target, Mapping) else siblings
        seen += 1
    return schema if isinstance(schema, Mapping) else {}


def _merge_all_of(schema: Mapping[str, Any], root: Mapping[str, Any]) -> Mapping[str, Any]:
    merged: dict[str, Any] = {key: value for key, value in schema.items() if key != "allOf"}
    for part in schema["allOf"]:
        part = _resolve(part, root)
        for key, value in part.items():
            if key == "properties":
                merged["properties"] = {**merged.get("properties", {}), **value}
            elif key == "required":
                merged["required"] = [*merged.get("required", []), *value]
            else:
                merged.setdefault(key, value)
    return merged


def _is_null(schema: Mapping[str, Any]) -> bool:
    return schema.get("type") == "null" or schema.get("const", 0) is None


def _schema_type(schema: Mapping[str, Any]) -> str:
    declared = schema.get("type")
    if isinstance(declared, list):
        declared = next((kind for kind in declared if kind != "null"), "null")
    if isinstance(declared, str):
        return declared
    if "properties" in schema:
        return "object"
    if "items" in schema or "prefixItems" in schema:
        return "array"
    return "string"


def value_for_schema(
    schema: Any,
    hints: PromptHints,
    *,
    name: str = "value",
    root: Mapping[str, Any] | None = None,
    depth: int = 0,
) -> Any:
    """A value that validates against ``schema``, preferring what ``hints`` offer."""
    root = root if root is not None else (schema if isinstance(schema, Mapping) else {})
    schema = _resolve(schema, root)
    if depth > _MAX_DEPTH:
        return None
    if "allOf" in schema:
        schema = _merge_all_of(schema, root)
    for key in ("anyOf", "oneOf"):
        options = [_resolve(option, root) for option in schema.get(key) or ()]
        if options:
            chosen = next((option for option in options if not _is_null(option)), options[0])
            rest = {k: v for k, v in schema.items() if k != key}
            return value_for_schema({**rest, **chosen}, hints, name=name, root=root, depth=depth)
    if "const" in schema:
        return schema["const"]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return next(
            (option for option in schema["enum"] if hints.mentions(option)), schema["enum"][0]
        )
    kind = _schema_type(schema)
    if kind == "object":
        return _object_value(schema, hints, root, depth)
    if kind == "array":
        return _array_value(schema, hints, name, root, depth)
    if kind in ("integer", "number"):
        return _number_value(schema, hints, name, integer=kind == "integer")
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return _string_value(schema, hints, name)


def _object_value(
    schema: Mapping[str, Any], hints: PromptHints, root: Mapping[str, Any], depth: int
) -> dict[str, Any]:
    properties = schema.get("properties") or {}
    required = set(schema.get("required") or ())
    return {
        key: value_for_schema(sub, hints, name=key, root=root, depth=depth + 1)
        for key, sub in properties.items()
        if depth < _SHALLOW_DEPTH or key in required
    }


def _array_value(
    schema: Mapping[str, Any], hints: PromptHints, name: str, root: Mapping[str, Any], depth: int
) -> list[Any]:
    prefix = schema.get("prefixItems")
    if isinstance(prefix, list):
        return [
            value_for_schema(sub, hints, name=name, root=root, depth=depth + 1) for sub in prefix
        ]
    low = int(schema.get("minItems", 0))
    count = max(low, 1 if depth < _SHALLOW_DEPTH else 0)
    if "maxItems" in schema:
        count = min(count, int(schema["maxItems"]))
    items = schema.get("items", {})
    return [
        value_for_schema(items, hints, name=name, root=root, depth=depth + 1) for _ in range(count)
    ]


def _number_value(
    schema: Mapping[str, Any], hints: PromptHints, name: str, *, integer: bool
) -> int | float:
    found = hints.number(name)
    value = found if found is not None else 1.0
    low, high = schema.get("minimum"), schema.get("maximum")
    ex_low, ex_high = schema.get("exclusiveMinimum"), schema.get("exclusiveMaximum")
    step = 1.0 if integer else 0.5
    if isinstance(ex_low, (int, float)) and not isinstance(ex_low, bool):
        ex_low_bound = math.floor(ex_low) + 1 if integer else ex_low + step
        low = ex_low_bound if low is None else max(low, ex_low_bound)
    if isinstance(ex_high, (int, float)) and not isinstance(ex_high, bool):
        ex_high_bound = math.ceil(ex_high) - 1 if integer else ex_high - step
        high = ex_high_bound if high is None else min(high, ex_high_bound)
    if integer:
        value = float(round(value))
        low = math.ceil(low) if low is not None else None
        high = math.floor(high) if high is not None else None
    if low is not None and value < low:
        value = low
    if high is not None and value > high:
        value = high if low is None or high >= low else low
    value = float(value)
    return int(value) if integer or value.is_integer() else value


def _string_value(schema: Mapping[str, Any], hints: PromptHints, name: str) -> str:
    fmt = schema.get("format")
    if isinstance(fmt, str) and fmt in _FORMATS:
        return _FORMATS[fmt]
    text = hints.string()
    if text is None:
        description = schema.get("description")
        text = (
            description if isinstance(description, str) and description else name.replace("_", " ")
        )
    low = int(schema.get("minLength", 0))
    if len(text) < low:
        text = text + "x" * (low - len(text))
    if "maxLength" in schema:
        text = text[: int(schema["maxLength"])]
    return text

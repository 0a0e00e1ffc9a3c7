"""Schema-valid values filled from the prompt."""

from __future__ import annotations

from typing import Any

import pytest

from oaicompat.testing.arguments import PromptHints, value_for_schema

jsonschema = pytest.importorskip("jsonschema")

SCHEMAS: list[dict[str, Any]] = [
    {"type": "object", "properties": {}},
    {
        "type": "object",
        "properties": {
            "input": {"type": "integer", "exclusiveMinimum": -1000, "exclusiveMaximum": 1000}
        },
        "required": ["input"],
    },
    {
        "type": "object",
        "properties": {
            "a": {"type": "integer", "minimum": 10},
            "b": {"type": "number", "maximum": -2.5},
            "c": {"type": "integer", "exclusiveMinimum": 4.5, "exclusiveMaximum": 6},
        },
        "required": ["a", "b", "c"],
    },
    {
        "type": "object",
        "properties": {
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            "flag": {"type": "boolean"},
            "nothing": {"type": "null"},
            "fixed": {"const": "v1"},
            "when": {"type": "string", "format": "date-time"},
            "short": {"type": "string", "maxLength": 3},
            "long": {"type": "string", "minLength": 40},
        },
        "required": ["unit", "flag", "nothing", "fixed", "when", "short", "long"],
        "additionalProperties": False,
    },
    {
        "type": "object",
        "properties": {
            "tags": {"type": "array", "items": {"type": "string"}, "minItems": 2, "maxItems": 3},
            "pair": {"type": "array", "prefixItems": [{"type": "integer"}, {"type": "string"}]},
            "empty": {"type": "array", "items": {"type": "integer"}, "maxItems": 0},
        },
        "required": ["tags", "pair", "empty"],
    },
    {
        "$defs": {
            "Address": {
                "type": "object",
                "properties": {"city": {"type": "string"}, "zip": {"type": "string"}},
                "required": ["city"],
            }
        },
        "type": "object",
        "properties": {
            "home": {"$ref": "#/$defs/Address"},
            "work": {"anyOf": [{"$ref": "#/$defs/Address"}, {"type": "null"}]},
            "either": {"oneOf": [{"type": "integer"}, {"type": "string"}]},
            "maybe": {"type": ["null", "number"]},
            "merged": {
                "allOf": [
                    {"type": "object", "properties": {"x": {"type": "integer"}}, "required": ["x"]},
                    {"properties": {"y": {"type": "string"}}, "required": ["y"]},
                ]
            },
        },
        "required": ["home", "work", "either", "maybe", "merged"],
    },
    {
        "definitions": {
            "Node": {
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "children": {"type": "array", "items": {"$ref": "#/definitions/Node"}},
                },
                "required": ["name"],
            }
        },
        "$ref": "#/definitions/Node",
    },
]

PROMPTS = [
    "",
    "What is 3 + 4?",
    "Book 'Ada Lovelace' in Paris for 12 people at -5 degrees, celsius",
]


@pytest.mark.parametrize("schema", SCHEMAS)
@pytest.mark.parametrize("prompt", PROMPTS)
def test_values_validate_against_their_schema(schema: dict[str, Any], prompt: str) -> None:
    value = value_for_schema(schema, PromptHints(prompt))
    jsonschema.validate(value, schema)


def test_numbers_come_from_the_prompt_in_order() -> None:
    schema = {
        "type": "object",
        "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
        "required": ["a", "b"],
    }
    assert value_for_schema(schema, PromptHints("What is 3 + 4")) == {"a": 3, "b": 4}
    assert value_for_schema(schema, PromptHints("use b=9 and a: 2")) == {"a": 2, "b": 9}


def test_a_number_inside_a_call_expression_is_found() -> None:
    schema = SCHEMAS[1]
    hints = PromptHints("What is the value of magic_function(3)? Use the tool.")
    assert value_for_schema(schema, hints) == {"input": 3}


def test_out_of_range_numbers_are_clamped_into_the_schema() -> None:
    value = value_for_schema(SCHEMAS[2], PromptHints("numbers 1 and 7 and 100"))
    assert value == {"a": 10, "b": -2.5, "c": 5}


def test_strings_come_from_quotes_then_capitalised_names() -> None:
    schema = {
        "type": "object",
        "properties": {"customer_name": {"type": "string"}, "city": {"type": "string"}},
        "required": ["customer_name", "city"],
    }
    hints = PromptHints("Create a customer named '你好啊集团' based in San Francisco, CA.")
    assert value_for_schema(schema, hints) == {
        "customer_name": "你好啊集团",
        "city": "San Francisco, CA",
    }


def test_sentence_starts_are_not_taken_as_names() -> None:
    schema = {"type": "object", "properties": {"style": {"type": "string"}}}
    hints = PromptHints("Using the tool, generate a Pirate greeting. Then stop.")
    assert value_for_schema(schema, hints) == {"style": "Pirate"}


def test_string_falls_back_to_the_description_or_name() -> None:
    schema = {
        "type": "object",
        "properties": {
            "setup": {"type": "string", "description": "question to set up a joke"},
            "answer_style": {"type": "string"},
        },
    }
    assert value_for_schema(schema, PromptHints("tell me a joke")) == {
        "setup": "question to set up a joke",
        "answer_style": "answer style",
    }


def test_an_enum_value_mentioned_in_the_prompt_is_chosen() -> None:
    schema = {"type": "string", "enum": ["celsius", "fahrenheit"]}
    assert value_for_schema(schema, PromptHints("in Fahrenheit please")) == "fahrenheit"
    assert value_for_schema(schema, PromptHints("whatever")) == "celsius"

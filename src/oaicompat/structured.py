"""Structured output, once for every server: request fields in, a parsed value out.

A caller asks for structured output with a pydantic model class, a JSON-schema
dict, or an OpenAI ``response_format`` dict. Servers offer three ways to get it:

- ``json_schema``: ``response_format={"type": "json_schema", ...}``, enforced by the server;
- ``tool``: one function whose parameters are the schema, forced with ``tool_choice``;
  the answer is the call's arguments;
- ``json_object``: JSON mode plus an instruction carrying the schema (and the schema
  itself where the server enforces it, see ``ServerProfile.json_object_schema_key``).

``auto`` takes the profile's preferred method and otherwise the first one the
profile supports, in that order. Everything here works on request bodies, so
the fallback can move a refused request to the next method, and the parser
reads which method was finally used from the body that was sent.

pydantic is never imported here at module level: a model class arrives already
imported by the caller, and ``ValidationError`` is imported only to catch it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from oaicompat import _json
from oaicompat.errors import ResponseParseError
from oaicompat.profiles import ServerProfile, StructuredMethod
from oaicompat.types import ChatResponse, JSONObject

__all__ = [
    "METHOD_ORDER",
    "MethodArg",
    "StructuredOutputError",
    "StructuredSpec",
    "apply_method",
    "choose_method",
    "has_user_tools",
    "method_in_body",
    "next_method",
    "parse_structured",
    "resolve_spec",
    "spec_from_body",
]

MethodArg = Literal["auto", "json_schema", "json_object", "tool"]
METHOD_ORDER: tuple[StructuredMethod, ...] = ("json_schema", "tool", "json_object")

TOOL_DESCRIPTION = "Give the final answer as this function's arguments."
INSTRUCTION_HEAD = "Respond with one JSON object and nothing else."
SCHEMA_LEAD = " It must match this JSON schema:\n"
_NAME_CHARS = re.compile(r"[^A-Za-z0-9_-]")
_FENCE = re.compile(r"^```[A-Za-z0-9_-]*\s*(.*?)\s*```$", re.DOTALL)


class StructuredOutputError(ResponseParseError):
    """The answer is not the structured value asked for.

    It was cut off (``finish_reason == "length"``), is not valid JSON, or does
    not validate against the model class or schema. ``response`` is the whole
    answer and ``text`` the part that was parsed, so nothing is lost.
    """

    def __init__(
        self, message: str, *, response: ChatResponse | None = None, text: str = ""
    ) -> None:
        super().__init__(message, body=text)
        self.response = response
        self.text = text


@dataclass(frozen=True, slots=True)
class StructuredSpec:
    """What the caller asked for, whatever form it came in."""

    name: str
    schema: JSONObject | None
    model: type[Any] | None = None
    strict: bool | None = None

    @property
    def is_object_schema(self) -> bool:
        """A schema a function's parameters can carry (the tool method needs one)."""
        return isinstance(self.schema, Mapping) and self.schema.get("type") == "object"


def _is_model_class(value: Any) -> bool:
    return (
        isinstance(value, type)
        and callable(getattr(value, "model_json_schema", None))
        and callable(getattr(value, "model_validate", None))
    )


def _clean_name(name: Any) -> str:
    text = _NAME_CHARS.sub("_", str(name or ""))[:64]
    return text or "response"


def resolve_spec(response_format: Any) -> StructuredSpec | None:
    """The spec for a model class, a JSON schema or an OpenAI ``response_format`` dict.

    None for ``{"type": "text"}``, which asks for nothing structured.
    """
    if _is_model_class(response_format):
        schema = response_format.model_json_schema()
        return StructuredSpec(
            name=_clean_name(response_format.__name__), schema=schema, model=response_format
        )
    if not isinstance(response_format, Mapping):
        raise TypeError(
            "response_format must be a pydantic model class, a JSON-schema dict or an "
            f"OpenAI response_format dict, got {type(response_format).__name__}"
        )
    kind = response_format.get("type")
    if kind == "text":
        return None
    if kind == "json_object":
        schema = response_format.get("schema") or response_format.get("value")
        if not isinstance(schema, Mapping):
            return StructuredSpec(name="response", schema=None)
        return StructuredSpec(name=_clean_name(schema.get("title")), schema=dict(schema))
    if kind == "json_schema":
        wrapper = response_format.get("json_schema")
        if not isinstance(wrapper, Mapping) or not isinstance(wrapper.get("schema"), Mapping):
            raise ValueError('response_format type "json_schema" needs json_schema.schema')
        strict = wrapper.get("strict")
        return StructuredSpec(
            name=_clean_name(wrapper.get("name")),
            schema=dict(wrapper["schema"]),
            strict=strict if isinstance(strict, bool) else None,
        )
    return StructuredSpec(
        name=_clean_name(response_format.get("title")), schema=dict(response_format)
    )


def _available(
    method: StructuredMethod, spec: StructuredSpec, profile: ServerProfile, user_tools: bool
) -> bool:
    if method == "json_schema":
        return profile.supports_json_schema and spec.schema is not None
    if method == "tool":
        forced = profile.supports_named_tool_choice or profile.supports_tool_choice_required
        return (
            profile.supports_tools
            and profile.supports_tool_choice
            and forced
            and spec.is_object_schema
            and not user_tools
        )
    # JSON mode, or the instruction alone when the server has no JSON mode: always possible.
    return True


def choose_method(
    method: MethodArg, spec: StructuredSpec, profile: ServerProfile, *, user_tools: bool = False
) -> StructuredMethod:
    """The method to try first: the one asked for, or for ``auto`` the profile's choice."""
    if method != "auto":
        if method not in METHOD_ORDER:
            raise ValueError(f"unknown structured_method {method!r}; use auto or {METHOD_ORDER}")
        if method == "tool" and user_tools:
            raise ValueError('structured_method="tool" cannot be combined with your own tools')
        return method
    if spec.schema is None:
        return "json_object"
    preferred = profile.structured_output_method
    if _available(preferred, spec, profile, user_tools):
        return preferred
    return next(m for m in METHOD_ORDER if _available(m, spec, profile, user_tools))


def next_method(
    current: StructuredMethod | None,
    spec: StructuredSpec,
    profile: ServerProfile,
    *,
    user_tools: bool = False,
) -> StructuredMethod | None:
    """The method to fall back to after ``current`` was refused, given the updated profile.

    The profile already records what was refused, so a method that is still
    available renders differently now. None when nothing is left.
    """
    if current == "tool" and _available("tool", spec, profile, user_tools):
        return "tool"  # a named tool_choice was refused; "required" still forces the call
    for method in METHOD_ORDER:
        if method != current and _available(method, spec, profile, user_tools):
            return method
    if current == "json_object" and not profile.supports_json_object:
        return "json_object"  # JSON mode refused: the instruction alone, no response_format
    return None


def _instruction(spec: StructuredSpec) -> str:
    if spec.schema is None:
        return INSTRUCTION_HEAD
    schema_text = _json.dumps(spec.schema).decode("utf-8")
    return f"{INSTRUCTION_HEAD}{SCHEMA_LEAD}{schema_text}"


def _instruction_schema(body: Mapping[str, Any]) -> JSONObject | None:
    """The schema an earlier json_object attempt wrote into the system message."""
    messages = body.get("messages")
    first = messages[0] if isinstance(messages, list) and messages else None
    content = first.get("content") if isinstance(first, Mapping) else None
    if not isinstance(content, str) or INSTRUCTION_HEAD + SCHEMA_LEAD not in content:
        return None
    schema_text = content.split(INSTRUCTION_HEAD + SCHEMA_LEAD, 1)[1]
    try:
        schema = _json.loads(schema_text.strip())
    except ValueError:
        return None
    return schema if isinstance(schema, dict) else None


def _with_instruction(messages: Any, spec: StructuredSpec) -> list[Any]:
    instruction = _instruction(spec)
    result: list[Any] = list(messages or [])
    first = result[0] if result else None
    if isinstance(first, Mapping) and first.get("role") in ("system", "developer"):
        content = first.get("content")
        if isinstance(content, str):
            if INSTRUCTION_HEAD in content:
                return result
            # One system message, extended: some chat templates refuse a second one.
            result[0] = {**first, "content": f"{content}\n\n{instruction}"}
            return result
    return [{"role": "system", "content": instruction}, *result]


def _structured_tool(spec: StructuredSpec) -> JSONObject:
    return {
        "type": "function",
        "function": {"name": spec.name, "description": TOOL_DESCRIPTION, "parameters": spec.schema},
    }


def _is_structured_tool(tool: Any) -> bool:
    function = tool.get("function") if isinstance(tool, Mapping) else None
    return isinstance(function, Mapping) and function.get("description") == TOOL_DESCRIPTION


def has_user_tools(body: Mapping[str, Any]) -> bool:
    """True when the body carries tools of the caller's, not only the structured-output one."""
    tools = body.get("tools")
    return isinstance(tools, list) and any(not _is_structured_tool(tool) for tool in tools)


def _strip_structured(body: JSONObject) -> None:
    body.pop("response_format", None)
    tools = body.get("tools")
    if isinstance(tools, list):
        ours = [tool for tool in tools if _is_structured_tool(tool)]
        if ours:
            rest = [tool for tool in tools if not _is_structured_tool(tool)]
            if rest:
                body["tools"] = rest
            else:
                body.pop("tools", None)
            body.pop("tool_choice", None)


def apply_method(
    body: Mapping[str, Any], spec: StructuredSpec, method: StructuredMethod, profile: ServerProfile
) -> JSONObject:
    """A copy of ``body`` asking for ``spec`` by ``method`` (replacing any earlier method)."""
    new: JSONObject = dict(body)
    _strip_structured(new)
    if method == "json_schema":
        wrapper: JSONObject = {"name": spec.name, "schema": spec.schema}
        if spec.strict is not None:
            wrapper["strict"] = spec.strict
        new["response_format"] = {"type": "json_schema", "json_schema": wrapper}
    elif method == "tool":
        new["tools"] = [*new.get("tools", ()), _structured_tool(spec)]
        if profile.supports_named_tool_choice:
            new["tool_choice"] = {"type": "function", "function": {"name": spec.name}}
        else:
            new["tool_choice"] = "required"
    else:
        if profile.supports_json_object:
            response_format: JSONObject = {"type": "json_object"}
            if profile.json_object_schema_key and spec.schema is not None:
                response_format[profile.json_object_schema_key] = spec.schema
            new["response_format"] = response_format
        new["messages"] = _with_instruction(new.get("messages"), spec)
    return new


def method_in_body(body: Mapping[str, Any]) -> StructuredMethod | None:
    """Which structured method a request body uses, or None when it uses none."""
    response_format = body.get("response_format")
    if isinstance(response_format, Mapping):
        kind = response_format.get("type")
        if kind == "json_schema":
            return "json_schema"
        if kind in ("json_object", "json"):
            return "json_object"
    tools = body.get("tools")
    if isinstance(tools, list) and any(_is_structured_tool(tool) for tool in tools):
        return "tool"
    messages = body.get("messages")
    if isinstance(messages, list) and messages:
        first = messages[0]
        content = first.get("content") if isinstance(first, Mapping) else None
        if isinstance(content, str) and INSTRUCTION_HEAD in content:
            return "json_object"
    return None


def spec_from_body(body: Mapping[str, Any]) -> StructuredSpec | None:
    """The spec a body asks for, rebuilt from the body alone (used by the fallback)."""
    method = method_in_body(body)
    if method == "tool":
        for tool in body.get("tools") or ():
            if _is_structured_tool(tool):
                function = tool["function"]
                parameters = function.get("parameters")
                return StructuredSpec(
                    name=_clean_name(function.get("name")),
                    schema=dict(parameters) if isinstance(parameters, Mapping) else None,
                )
    response_format = body.get("response_format")
    spec = None
    if method in ("json_schema", "json_object") and isinstance(response_format, Mapping):
        spec = resolve_spec(response_format)
    if method == "json_object" and (spec is None or spec.schema is None):
        schema = _instruction_schema(body)
        if schema is not None:
            spec = StructuredSpec(name=_clean_name(schema.get("title")), schema=schema)
    return spec


# Parsing the answer ------------------------------------------------------


def _fail(message: str, response: ChatResponse, text: str) -> StructuredOutputError:
    return StructuredOutputError(message, response=response, text=text)


def _answer_text(response: ChatResponse, spec: StructuredSpec, method: StructuredMethod) -> Any:
    """The JSON value the answer carries: the tool call's arguments, or the content parsed."""
    if method == "tool":
        for call in response.tool_calls:
            if call.name == spec.name:
                if call.error is not None:
                    raise _fail(
                        f"the structured-output tool call's arguments are not a JSON object "
                        f"({call.error})",
                        response,
                        call.arguments_text,
                    )
                return call.arguments
        if not response.content.strip():
            raise _fail(
                f"the model did not call the structured-output function {spec.name!r}",
                response,
                "",
            )
    text = response.content.strip()
    fenced = _FENCE.match(text)
    if fenced:
        text = fenced.group(1)
    if not text:
        raise _fail("the answer is empty, not JSON", response, text)
    try:
        return _json.loads(text)
    except ValueError as exc:
        raise _fail(f"the answer is not valid JSON ({exc})", response, text) from None


def _check_schema_shape(value: Any, schema: Mapping[str, Any]) -> str | None:
    """A quick top-level check for plain schemas; full validation needs a model class."""
    expected = schema.get("type")
    if expected == "object":
        if not isinstance(value, dict):
            return f"expected a JSON object, got {type(value).__name__}"
        missing = [key for key in schema.get("required") or () if key not in value]
        if missing:
            return f"missing required keys: {', '.join(map(str, missing))}"
    elif expected == "array" and not isinstance(value, list):
        return f"expected a JSON array, got {type(value).__name__}"
    return None


def _is_tool_turn(response: ChatResponse, spec: StructuredSpec, method: StructuredMethod) -> bool:
    """Whether the model called the user's own tools, so this turn holds no final answer.

    Agents send their tools together with a response format and loop until
    the model answers; judging the intermediate tool-call turns as malformed
    JSON would break every such loop.
    """
    if not response.tool_calls:
        return False
    if method == "tool":
        return all(call.name != spec.name for call in response.tool_calls)
    return True


def parse_structured(response: ChatResponse, spec: StructuredSpec, method: StructuredMethod) -> Any:
    """The structured value of an answer: a model instance when a class was given, else JSON.

    None when the model called the user's tools instead of answering.
    """
    if _is_tool_turn(response, spec, method):
        return None
    if response.finish_reason == "length":
        raise _fail(
            "the answer was cut off by the token limit (finish_reason='length') before the "
            "JSON was complete; raise max_tokens",
            response,
            response.content,
        )
    value = _answer_text(response, spec, method)
    if spec.model is not None:
        from pydantic import ValidationError

        try:
            return spec.model.model_validate(value)
        except ValidationError as exc:
            raise _fail(
                f"the answer does not validate as {spec.model.__name__}: {exc}",
                response,
                _json.dumps(value).decode("utf-8"),
            ) from exc
    if spec.schema is not None:
        problem = _check_schema_shape(value, spec.schema)
        if problem:
            raise _fail(
                f"the answer does not match the schema: {problem}",
                response,
                _json.dumps(value).decode("utf-8"),
            )
    return value

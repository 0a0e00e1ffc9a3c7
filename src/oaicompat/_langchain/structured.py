"""``with_structured_output``: the request each method sends and the parser that reads the answer.

The request goes through the core client, which knows what each server accepts.
When the core hands back an already parsed value (``ChatResponse.parsed``, carried
in ``additional_kwargs["parsed"]``) the parsers use it; otherwise LangChain's own
parsers read the text, so streaming still yields partial objects as they grow.
"""

from __future__ import annotations

from operator import itemgetter
from typing import TYPE_CHECKING, Any, Literal

import pydantic
from langchain_core.exceptions import OutputParserException
from langchain_core.messages import BaseMessage
from langchain_core.output_parsers import JsonOutputParser, PydanticOutputParser
from langchain_core.output_parsers.base import OutputParserLike
from langchain_core.output_parsers.openai_tools import (
    JsonOutputKeyToolsParser,
    PydanticToolsParser,
)
from langchain_core.outputs import ChatGeneration, Generation
from langchain_core.runnables import Runnable, RunnableMap, RunnablePassthrough
from langchain_core.utils.function_calling import convert_to_openai_function
from langchain_core.utils.pydantic import is_basemodel_subclass

from oaicompat._langchain.outputs import STRUCTURED_ERROR_KEY
from oaicompat.profiles import ServerProfile

if TYPE_CHECKING:
    from langchain_core.language_models import LanguageModelInput

__all__ = ["StructuredMethod", "default_method", "parser_for", "response_format_for"]

StructuredMethod = Literal["json_schema", "function_calling", "json_mode"]

_METHOD_FOR_PROFILE: dict[str, StructuredMethod] = {
    "json_schema": "json_schema",
    "tool": "function_calling",
    "json_object": "json_mode",
}


def default_method(profile: ServerProfile) -> StructuredMethod:
    """The method the server profile says works best."""
    return _METHOD_FOR_PROFILE[profile.structured_output_method]


def is_pydantic_class(schema: Any) -> bool:
    return isinstance(schema, type) and is_basemodel_subclass(schema)


def schema_name(schema: dict[str, Any] | type) -> str:
    name: str = convert_to_openai_function(schema)["name"]
    return name


def response_format_for(schema: dict[str, Any] | type, *, strict: bool | None) -> dict[str, Any]:
    """OpenAI's ``response_format`` of type ``json_schema`` for any LangChain schema."""
    if isinstance(schema, dict) and schema.get("type") == "json_schema" and "json_schema" in schema:
        return schema
    if isinstance(schema, dict) and "name" in schema and "schema" in schema:
        return {"type": "json_schema", "json_schema": schema}
    function = convert_to_openai_function(schema, strict=strict)
    json_schema: dict[str, Any] = {"name": function["name"], "schema": function["parameters"]}
    if function.get("description"):
        json_schema["description"] = function["description"]
    if strict is not None:
        json_schema["strict"] = strict
    return {"type": "json_schema", "json_schema": json_schema}


_MISSING = object()


def _parsed_value(result: list[Generation], *, partial: bool) -> Any:
    """The core's parsed value; raises the core's verdict when it rejected the answer."""
    if not (result and isinstance(result[0], ChatGeneration)):
        return _MISSING
    extra = result[0].message.additional_kwargs
    if not partial and STRUCTURED_ERROR_KEY in extra:
        raise OutputParserException(extra[STRUCTURED_ERROR_KEY], llm_output=result[0].text)
    return extra.get("parsed", _MISSING)


class _JsonParser(JsonOutputParser):
    """JSON from the text, or the value the core already parsed."""

    def parse_result(self, result: list[Generation], *, partial: bool = False) -> Any:
        parsed = _parsed_value(result, partial=partial)
        if parsed is _MISSING:
            return super().parse_result(result, partial=partial)
        if isinstance(parsed, pydantic.BaseModel):
            return parsed.model_dump()
        return parsed


class _PydanticParser(PydanticOutputParser[Any]):
    """A pydantic object from the text, or from the value the core already parsed."""

    def parse_result(self, result: list[Generation], *, partial: bool = False) -> Any:
        parsed = _parsed_value(result, partial=partial)
        if parsed is _MISSING:
            return super().parse_result(result, partial=partial)
        if isinstance(parsed, self.pydantic_object):
            return parsed
        if isinstance(parsed, pydantic.BaseModel):
            parsed = parsed.model_dump()
        return self._parse_obj(parsed)


def parser_for(schema: dict[str, Any] | type, method: StructuredMethod) -> OutputParserLike[Any]:
    """The parser that turns the model's answer into the user's schema."""
    if method == "function_calling":
        if is_pydantic_class(schema):
            return PydanticToolsParser(tools=[schema], first_tool_only=True)  # type: ignore[list-item]
        return JsonOutputKeyToolsParser(key_name=schema_name(schema), first_tool_only=True)
    if is_pydantic_class(schema):
        return _PydanticParser(pydantic_object=schema)  # type: ignore[arg-type]
    return _JsonParser()


def with_parser(
    llm: Runnable[LanguageModelInput, BaseMessage],
    parser: OutputParserLike[Any],
    *,
    include_raw: bool,
) -> Runnable[LanguageModelInput, Any]:
    """``llm | parser``, or LangChain's ``raw``/``parsed``/``parsing_error`` dict."""
    if not include_raw:
        return llm | parser
    parse = RunnablePassthrough.assign(
        parsed=itemgetter("raw") | parser, parsing_error=lambda _: None
    )
    give_up = RunnablePassthrough.assign(parsed=lambda _: None)
    return RunnableMap(raw=llm) | parse.with_fallbacks([give_up], exception_key="parsing_error")

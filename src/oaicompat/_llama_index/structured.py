"""Structured output: the request options for the core and reading its answer back.

The core picks the method (json_schema, a forced tool call or json_object),
builds the request and validates the answer into ``ChatResponse.parsed``; the
adapter only forwards the options and shows partial objects while streaming
with LlamaIndex's own lenient parser.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Generic

from llama_index.core.base.llms.types import ChatMessage, ChatResponse, ToolCallBlock
from llama_index.core.program.streaming_utils import process_streaming_content_incremental
from llama_index.core.types import Model

from oaicompat._llama_index.messages import arguments_text
from oaicompat._llama_index.responses import PARSED_KEY

if TYPE_CHECKING:
    from llama_index.core.program.utils import FlexibleModel


def structured_kwargs(
    output_cls: type[Model], method: str, llm_kwargs: dict[str, Any] | None
) -> dict[str, Any]:
    """Chat options asking the core for ``output_cls``.

    A caller's ``tool_choice`` is dropped: when the core answers through a
    forced tool call it chooses the tool itself. A ``structured_method`` in
    ``llm_kwargs`` overrides the adapter's.
    """
    kwargs = {key: value for key, value in (llm_kwargs or {}).items() if key != "tool_choice"}
    kwargs["response_format"] = output_cls
    kwargs.setdefault("structured_method", method)
    return kwargs


def parsed_value(response: ChatResponse, output_cls: type[Model]) -> Model:
    """The validated object the core put on the response."""
    value = response.additional_kwargs.get(PARSED_KEY)
    if isinstance(value, output_cls):
        return value
    if value is None:
        raise ValueError(
            f"the server's answer holds no {output_cls.__name__}: "
            f"{(response.message.content or '')[:200]!r}"
        )
    return output_cls.model_validate(value)


class PartialStructured(Generic[Model]):
    """Folds streamed responses into ever more complete objects.

    Mid-stream, the JSON so far (the text, or the forced tool call's
    arguments) goes through LlamaIndex's lenient incremental parser; the last
    response carries the core's validated value, which is what ends the stream.
    """

    __slots__ = ("_current", "_output_cls")

    def __init__(self, output_cls: type[Model]) -> None:
        self._output_cls = output_cls
        self._current: Model | FlexibleModel | None = None

    def update(self, response: ChatResponse) -> Model | FlexibleModel:
        if PARSED_KEY in response.additional_kwargs:
            self._current = parsed_value(response, self._output_cls)
            return self._current
        text = _json_text(response)
        view = ChatResponse(message=ChatMessage(content=text))
        self._current = process_streaming_content_incremental(view, self._output_cls, self._current)
        return self._current


def _json_text(response: ChatResponse) -> str:
    content = response.message.content
    if content:
        return content
    for block in response.message.blocks:
        if isinstance(block, ToolCallBlock):
            return arguments_text(block.tool_kwargs)
    return ""

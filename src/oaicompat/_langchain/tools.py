"""Tool definitions and ``tool_choice`` in LangChain's spellings, turned into OpenAI's."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool

__all__ = ["ToolLike", "format_tools", "normalize_tool_choice"]

ToolLike = dict[str, Any] | type | Callable[..., Any] | BaseTool


def format_tools(tools: Sequence[ToolLike], *, strict: bool | None = None) -> list[dict[str, Any]]:
    """OpenAI ``tools`` entries for LangChain tools, functions, pydantic models and dicts."""
    return [convert_to_openai_tool(tool, strict=strict) for tool in tools]


def _tool_names(tools: Sequence[dict[str, Any]]) -> list[str]:
    return [tool["function"]["name"] for tool in tools if "function" in tool]


def normalize_tool_choice(
    tool_choice: dict[str, Any] | str | bool | None, tools: Sequence[dict[str, Any]]
) -> dict[str, Any] | str | None:
    """OpenAI's ``tool_choice`` for what LangChain users write.

    ``"auto"`` and ``"none"`` pass through; ``"any"``, ``"required"`` and ``True``
    force some tool; a tool's name forces that tool; a dict is sent as given;
    ``None`` and ``False`` leave the server's default.
    """
    if tool_choice is None or tool_choice is False:
        return None
    if tool_choice is True or tool_choice in ("any", "required"):
        return "required"
    if isinstance(tool_choice, dict):
        return tool_choice
    if tool_choice in ("auto", "none"):
        return tool_choice
    names = _tool_names(tools)
    if tool_choice in names:
        return {"type": "function", "function": {"name": tool_choice}}
    raise ValueError(
        f"tool_choice {tool_choice!r} is neither 'auto', 'none', 'any', 'required' nor "
        f"the name of a bound tool ({', '.join(names) or 'no tools bound'})"
    )

"""Showing answers to people: Markdown for Jupyter, one-line summaries for terminals.

In a notebook, a `ChatResponse` renders itself (``_repr_markdown_``): the
answer, the reasoning folded in a ``<details>`` block, the tool calls and the
token usage. `stream_to_notebook` (and `astream_to_notebook` for an
`AsyncChatStream`) shows a stream as it arrives in ONE output that is updated
in place, then returns the final `ChatResponse`::

    from oaicompat.display import stream_to_notebook

    answer = stream_to_notebook(client.stream("Write a haiku about GPUs."))

Outside a Jupyter kernel (a script, a terminal IPython) the same call prints
the text as it arrives and a usage line at the end.

Nothing here imports IPython unless a notebook kernel is already running it,
and ``import oaicompat`` does not import this module.
"""

from __future__ import annotations

import contextlib
import html
import importlib
import json
import sys
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Protocol, TextIO

from oaicompat.types import ChatChunk, ChatResponse, ToolCall, Usage

if TYPE_CHECKING:
    from oaicompat.streaming import AsyncChatStream, ChatStream

__all__ = [
    "astream_to_notebook",
    "format_timing",
    "format_usage",
    "response_markdown",
    "stream_to_notebook",
]

DEFAULT_UPDATE_INTERVAL = 0.05
"""Seconds between two redraws of a streaming output: a redraw per token would
send a message to the browser per token and make long answers crawl."""


_MIN_RATE_WINDOW_S = 0.05
"""Below this, a tokens-per-second figure measures the network buffer, not the model."""


# Plain-text summaries ---------------------------------------------------------


def format_usage(usage: Usage | None) -> str:
    """``"12 in (8 cached), 40 out (25 reasoning), 52 total tokens"``, or a note when unknown."""
    if usage is None:
        return "usage not reported by the server"
    input_part = f"{usage.input_tokens} in"
    if usage.cached_input_tokens:
        input_part += f" ({usage.cached_input_tokens} cached)"
    output_part = f"{usage.output_tokens} out"
    if usage.reasoning_tokens:
        output_part += f" ({usage.reasoning_tokens} reasoning)"
    return f"{input_part}, {output_part}, {usage.total_tokens} total tokens"


def format_timing(response: ChatResponse) -> str:
    """``"1.42 s, first token after 0.21 s, 38.5 tokens/s"``; the parts the response knows."""
    parts: list[str] = []
    if response.latency_s is not None:
        parts.append(f"{response.latency_s:.2f} s")
    first = response.time_to_first_token_s
    if first is not None:
        parts.append(f"first token after {first:.2f} s")
    if response.latency_s is not None and response.usage and response.usage.output_tokens:
        # Generation speed excludes the wait for the first token (queueing, prompt processing).
        generating = response.latency_s - (first or 0.0)
        if generating >= _MIN_RATE_WINDOW_S:
            parts.append(f"{response.usage.output_tokens / generating:.1f} tokens/s")
    return ", ".join(parts)


def format_arguments(call: ToolCall) -> str:
    """A tool call's arguments as compact JSON, or the raw text when they did not parse."""
    if call.error is not None or (not call.arguments and call.arguments_text):
        return call.arguments_text
    return json.dumps(call.arguments, ensure_ascii=False)


# Markdown -----------------------------------------------------------------------


def _fence(text: str) -> str:
    """A code fence longer than any backtick run in ``text``, so the text cannot close it."""
    longest = run = 0
    for char in text:
        run = run + 1 if char == "`" else 0
        longest = max(longest, run)
    return "`" * max(3, longest + 1)


def _reasoning_block(reasoning: str, *, open_: bool) -> str:
    # Escaped so that tags in the model's thoughts cannot close the <details> block;
    # the blank lines let Markdown inside it render.
    attribute = " open" if open_ else ""
    return (
        f"<details{attribute}><summary>Reasoning</summary>\n\n"
        f"{html.escape(reasoning.strip())}\n\n</details>"
    )


def _tool_calls_block(calls: list[ToolCall]) -> str:
    lines = ["**Tool calls**", ""]
    for call in calls:
        arguments = format_arguments(call)
        fence = _fence(arguments)
        label = f"`{call.name}`" + (f" ({call.id})" if call.id else "")
        if call.error:
            label += f" (arguments did not parse: {call.error})"
        lines += [label, "", f"{fence}json", arguments, fence, ""]
    return "\n".join(lines).rstrip()


def _footer(response: ChatResponse, *, streaming: bool, note: str | None) -> str:
    if note is not None:
        return f"**{html.escape(note)}**"
    if streaming:
        return "<sub>receiving...</sub>"
    parts = [part for part in (response.model, format_usage(response.usage)) if part]
    if response.finish_reason:
        parts.append(f"finish: {response.finish_reason}")
    timing = format_timing(response)
    if timing:
        parts.append(timing)
    return "<sub>" + html.escape(" · ".join(parts)) + "</sub>"


def response_markdown(
    response: ChatResponse, *, streaming: bool = False, note: str | None = None
) -> str:
    """The Markdown a notebook shows for ``response``.

    Content as the model wrote it (models answer in Markdown), reasoning folded
    (kept open while it is all there is of a streaming answer), tool calls with
    their JSON arguments, then model, usage, finish reason and timing, or
    ``note`` in their place (e.g. the error that cut a stream short).
    """
    blocks: list[str] = []
    if response.reasoning:
        blocks.append(
            _reasoning_block(response.reasoning, open_=streaming and not response.content)
        )
    if response.content:
        blocks.append(response.content)
    if response.tool_calls:
        blocks.append(_tool_calls_block(response.tool_calls))
    if not response.content and not response.tool_calls and not streaming:
        blocks.append("*(empty answer)*")
    blocks.append(_footer(response, streaming=streaming, note=note))
    return "\n\n".join(blocks)


# Live views -----------------------------------------------------------------------


class _Progress:
    """What a stream has delivered so far, as a `ChatResponse` that can be drawn."""

    def __init__(self) -> None:
        self._content: list[str] = []
        self._reasoning: list[str] = []
        self._calls: dict[int, list[str]] = {}  # index -> [id, name, arguments so far]

    def add(self, chunk: ChatChunk) -> None:
        if chunk.content:
            self._content.append(chunk.content)
        if chunk.reasoning:
            self._reasoning.append(chunk.reasoning)
        for delta in chunk.tool_call_deltas:
            call = self._calls.setdefault(delta.index, ["", "", ""])
            call[0] = call[0] or delta.id or ""
            call[1] = call[1] or delta.name or ""
            call[2] += delta.arguments

    def response(self) -> ChatResponse:
        calls = [
            ToolCall(id=call_id, name=name, arguments={}, arguments_text=arguments)
            for call_id, name, arguments in self._calls.values()
        ]
        return ChatResponse(
            content="".join(self._content),
            reasoning="".join(self._reasoning) or None,
            tool_calls=calls,
        )


class _View(Protocol):
    def add(self, chunk: ChatChunk) -> None: ...

    def finish(self, response: ChatResponse) -> None: ...

    def fail(self, error: BaseException) -> None: ...


class _NotebookView:
    """One Markdown output, redrawn in place (``display_id``) as chunks arrive."""

    def __init__(self, interval: float) -> None:
        ipython_display: Any = importlib.import_module("IPython.display")
        self._markdown = ipython_display.Markdown
        self._handle = ipython_display.display(
            self._markdown("<sub>waiting for the first token...</sub>"), display_id=True
        )
        self._progress = _Progress()
        self._interval = interval
        self._drawn_at: float | None = None

    def _draw(self, markdown: str) -> None:
        self._handle.update(self._markdown(markdown))
        self._drawn_at = time.monotonic()

    def add(self, chunk: ChatChunk) -> None:
        if not (chunk.content or chunk.reasoning or chunk.tool_call_deltas):
            return  # role, finish and usage chunks change nothing on screen
        self._progress.add(chunk)
        if self._drawn_at is None or time.monotonic() - self._drawn_at >= self._interval:
            self._draw(response_markdown(self._progress.response(), streaming=True))

    def finish(self, response: ChatResponse) -> None:
        self._draw(response_markdown(response))

    def fail(self, error: BaseException) -> None:
        partial = getattr(error, "partial", None)
        shown = partial if isinstance(partial, ChatResponse) else self._progress.response()
        self._draw(
            response_markdown(shown, streaming=True, note=f"{type(error).__name__}: {error}")
        )


class _PrintView:
    """Outside a notebook: the text as it arrives, then a usage line."""

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._reasoning = False

    def add(self, chunk: ChatChunk) -> None:
        if chunk.reasoning:
            if not self._reasoning:
                self._out.write("[reasoning] ")
                self._reasoning = True
            self._out.write(chunk.reasoning)
        if chunk.content:
            if self._reasoning:
                self._out.write("\n[answer] ")
                self._reasoning = False
            self._out.write(chunk.content)
        self._out.flush()

    def finish(self, response: ChatResponse) -> None:
        for call in response.tool_calls:
            self._out.write(f"\n[tool call] {call.name}({format_arguments(call)})")
        summary = "; ".join(
            part for part in (format_usage(response.usage), format_timing(response)) if part
        )
        self._out.write(f"\n[{summary}]\n")
        self._out.flush()

    def fail(self, error: BaseException) -> None:
        self._out.write(f"\n[{type(error).__name__}: {error}]\n")
        self._out.flush()


def _in_notebook() -> bool:
    """True inside a Jupyter kernel, where rich outputs can be updated in place."""
    ipython: Any = sys.modules.get("IPython")  # a kernel has imported it already
    if ipython is None:
        return False
    shell = ipython.get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def _open_view(interval: float) -> _View:
    if _in_notebook():
        return _NotebookView(interval)
    return _PrintView(sys.stdout)


@contextlib.contextmanager
def _showing(view: _View) -> Iterator[_View]:
    try:
        yield view
    except BaseException as error:
        view.fail(error)
        raise


def stream_to_notebook(
    stream: ChatStream, *, update_interval: float = DEFAULT_UPDATE_INTERVAL
) -> ChatResponse:
    """Show ``stream`` as it arrives and return the final `ChatResponse`.

    In Jupyter, one Markdown output is redrawn at most every ``update_interval``
    seconds and a last time with the whole answer and its usage; elsewhere the
    text is printed as it comes. The stream is closed when this returns or raises;
    on an error, what arrived stays on screen with the error under it.
    """
    with _showing(_open_view(update_interval)) as view, stream:
        for chunk in stream:
            view.add(chunk)
        response = stream.final()
        view.finish(response)
    return response


async def astream_to_notebook(
    stream: AsyncChatStream, *, update_interval: float = DEFAULT_UPDATE_INTERVAL
) -> ChatResponse:
    """`stream_to_notebook` for an `AsyncChatStream`: ``await astream_to_notebook(...)``."""
    with _showing(_open_view(update_interval)) as view:
        async with stream:
            async for chunk in stream:
                view.add(chunk)
            response = await stream.final()
        view.finish(response)
    return response

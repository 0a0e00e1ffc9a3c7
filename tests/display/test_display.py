"""Jupyter display: a ChatResponse as Markdown, and streams shown in one output updated in place."""

from __future__ import annotations

import sys
import types
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from oaicompat import AsyncClient, ChatResponse, Client, StreamError, ToolCall, Usage
from oaicompat.display import (
    astream_to_notebook,
    format_timing,
    format_usage,
    response_markdown,
    stream_to_notebook,
)
from oaicompat.testing import Reply, ScriptedServer, ScriptedToolCall

# A fake IPython ----------------------------------------------------------------------


@dataclass
class Markdown:
    data: str


@dataclass
class Handle:
    shown: list[str]

    def update(self, obj: Markdown) -> None:
        self.shown.append(obj.data)


@dataclass
class Notebook:
    """What a kernel's front end received: each display, and the updates to each."""

    displays: list[list[str]] = field(default_factory=list)

    def display(self, obj: Markdown, *, display_id: bool = False) -> Handle:
        assert display_id is True, "a live output needs a display id to be updated in place"
        self.displays.append([obj.data])
        return Handle(self.displays[-1])

    @property
    def final(self) -> str:
        return self.displays[-1][-1]


def _install_ipython(monkeypatch: pytest.MonkeyPatch, *, kernel: bool) -> Notebook:
    notebook = Notebook()
    ipython = types.ModuleType("IPython")
    shell = types.SimpleNamespace(kernel=object() if kernel else None)
    ipython.get_ipython = lambda: shell  # type: ignore[attr-defined]
    display = types.ModuleType("IPython.display")
    display.Markdown = Markdown  # type: ignore[attr-defined]
    display.display = notebook.display  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "IPython", ipython)
    monkeypatch.setitem(sys.modules, "IPython.display", display)
    return notebook


@pytest.fixture
def notebook(monkeypatch: pytest.MonkeyPatch) -> Notebook:
    return _install_ipython(monkeypatch, kernel=True)


@pytest.fixture
def client(scripted_server: ScriptedServer) -> Iterator[Client]:
    with Client(scripted_server.base_url, "scripted-model") as client:
        yield client


# Markdown --------------------------------------------------------------------------


def _answer(**overrides: Any) -> ChatResponse:
    fields: dict[str, Any] = {
        "content": "Paris is the **capital**.",
        "reasoning": "The user asks <b>about</b> France.",
        "tool_calls": [ToolCall("call_1", "get_weather", {"city": "Paris"}, '{"city":"Paris"}')],
        "finish_reason": "stop",
        "usage": Usage(20, 12, 32, cached_input_tokens=8, reasoning_tokens=5),
        "model": "qwen3:8b",
        "latency_s": 1.5,
        "time_to_first_token_s": 0.5,
    }
    fields.update(overrides)
    return ChatResponse(**fields)


def test_markdown_has_content_folded_reasoning_tool_calls_and_usage() -> None:
    markdown = response_markdown(_answer())

    reasoning_at = markdown.index("<details><summary>Reasoning</summary>")
    content_at = markdown.index("Paris is the **capital**.")
    calls_at = markdown.index("**Tool calls**")
    assert reasoning_at < content_at < calls_at
    # Tags in the reasoning are shown as text, so they cannot close the <details> block.
    assert "The user asks &lt;b&gt;about&lt;/b&gt; France." in markdown
    assert '`get_weather` (call_1)\n\n```json\n{"city": "Paris"}\n```' in markdown
    footer = markdown.splitlines()[-1]
    assert footer.startswith("<sub>qwen3:8b · 20 in (8 cached), 12 out (5 reasoning), 32 total")
    assert "finish: stop" in footer
    assert "1.50 s, first token after 0.50 s, 12.0 tokens/s" in footer


def test_chat_response_renders_itself_in_jupyter() -> None:
    answer = _answer()
    assert answer._repr_markdown_() == response_markdown(answer)


def test_markdown_of_an_empty_answer_without_usage() -> None:
    markdown = response_markdown(ChatResponse())
    assert "*(empty answer)*" in markdown
    assert "usage not reported by the server" in markdown
    assert "<details" not in markdown


def test_unparsed_arguments_are_shown_as_sent_with_the_reason() -> None:
    call = ToolCall("c", "search", {}, '{"q": "```oops', error="invalid JSON")
    markdown = response_markdown(ChatResponse(tool_calls=[call]))
    assert "(arguments did not parse: invalid JSON)" in markdown
    # The fence is longer than the backticks inside, which therefore cannot close it.
    assert '````json\n{"q": "```oops\n````' in markdown


@pytest.mark.parametrize(
    ("usage", "expected"),
    [
        (Usage(10, 5, 15), "10 in, 5 out, 15 total tokens"),
        (
            Usage(10, 5, 15, cached_input_tokens=0, reasoning_tokens=0),
            "10 in, 5 out, 15 total tokens",
        ),
        (Usage(10, 5, 15, 4, 3), "10 in (4 cached), 5 out (3 reasoning), 15 total tokens"),
        (None, "usage not reported by the server"),
    ],
)
def test_format_usage(usage: Usage | None, expected: str) -> None:
    assert format_usage(usage) == expected


def test_format_timing_leaves_out_a_rate_it_cannot_measure() -> None:
    assert format_timing(ChatResponse()) == ""
    assert format_timing(ChatResponse(latency_s=0.2)) == "0.20 s"
    # A few milliseconds of generation measure the socket buffer, not the model.
    quick = ChatResponse(usage=Usage(1, 50, 51), latency_s=0.012, time_to_first_token_s=0.01)
    assert format_timing(quick) == "0.01 s, first token after 0.01 s"
    steady = ChatResponse(usage=Usage(1, 50, 51), latency_s=2.5, time_to_first_token_s=0.5)
    assert format_timing(steady) == "2.50 s, first token after 0.50 s, 25.0 tokens/s"


# Streams in a notebook -------------------------------------------------------------


def test_stream_updates_one_output_in_place(
    notebook: Notebook, client: Client, scripted_server: ScriptedServer
) -> None:
    scripted_server.enqueue(Reply("one two three four five"))
    stream = client.stream("count")

    response = stream_to_notebook(stream, update_interval=0)

    assert response.content == "one two three four five"
    assert stream.closed
    (output,) = notebook.displays  # one output, redrawn; never a new one per chunk
    progress = output[1:-1]
    assert len(progress) >= 5
    assert all(update.endswith("<sub>receiving...</sub>") for update in progress)
    assert [update.split("\n\n")[0] for update in progress[-2:]] == [
        "one two three four",
        "one two three four five",
    ]
    assert notebook.final == response_markdown(response)
    assert "5 out" in notebook.final


def test_redraws_are_throttled(notebook: Notebook, client: Client) -> None:
    response = stream_to_notebook(client.stream("a b c d e f g h"), update_interval=3600)

    (output,) = notebook.displays
    assert len(output) == 3  # the placeholder, the first chunk, the final answer
    assert output[-1] == response_markdown(response)


def test_reasoning_is_open_while_it_is_all_there_is(
    notebook: Notebook, client: Client, scripted_server: ScriptedServer
) -> None:
    scripted_server.enqueue(Reply("Done.", reasoning="step one, step two"))

    stream_to_notebook(client.stream("think"), update_interval=0)

    (output,) = notebook.displays
    assert any("<details open>" in update and "step one" in update for update in output)
    assert notebook.final.startswith("<details><summary>Reasoning</summary>")
    assert "Done." in notebook.final


def test_streamed_tool_calls_are_shown(
    notebook: Notebook, client: Client, scripted_server: ScriptedServer
) -> None:
    scripted_server.enqueue(Reply(tool_calls=[ScriptedToolCall("add", {"a": 1, "b": 2})]))

    response = stream_to_notebook(client.stream("add"), update_interval=0)

    assert response.tool_calls[0].arguments == {"a": 1, "b": 2}
    assert any("`add`" in update for update in notebook.displays[0][1:-1])
    assert '{"a": 1, "b": 2}' in notebook.final


def test_a_stream_cut_short_leaves_what_arrived_and_the_error(
    notebook: Notebook, client: Client, scripted_server: ScriptedServer
) -> None:
    scripted_server.enqueue(Reply("alpha beta gamma delta epsilon", drop_after=3))

    with pytest.raises(StreamError):
        stream_to_notebook(client.stream("go"), update_interval=3600)

    assert "alpha" in notebook.final
    assert "**StreamError: stream cut short" in notebook.final


async def test_async_stream_updates_one_output_in_place(
    notebook: Notebook, scripted_server: ScriptedServer
) -> None:
    scripted_server.enqueue(Reply("async words arrive", reasoning="hmm"))
    async with AsyncClient(scripted_server.base_url, "scripted-model") as client:
        stream = client.stream("go")
        response = await astream_to_notebook(stream, update_interval=0)

    assert response.content == "async words arrive"
    assert stream.closed
    (output,) = notebook.displays
    assert len(output) > 3
    assert notebook.final == response_markdown(response)


# Outside a notebook ------------------------------------------------------------------


def test_without_ipython_the_stream_is_printed(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    client: Client,
    scripted_server: ScriptedServer,
) -> None:
    monkeypatch.delitem(sys.modules, "IPython", raising=False)
    scripted_server.enqueue(Reply("the answer", reasoning="a thought"))

    response = stream_to_notebook(client.stream("hi"))

    printed = capsys.readouterr().out
    assert printed.startswith("[reasoning] a thought\n[answer] the answer\n[")
    assert format_usage(response.usage) in printed
    assert "IPython" not in sys.modules  # nothing imported it on the way


def test_terminal_ipython_prints_too(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], client: Client
) -> None:
    terminal = _install_ipython(monkeypatch, kernel=False)

    stream_to_notebook(client.stream("plain"))

    assert terminal.displays == []
    assert capsys.readouterr().out.startswith("You said: plain\n[")


def test_printed_tool_calls_and_errors(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    client: Client,
    scripted_server: ScriptedServer,
) -> None:
    monkeypatch.delitem(sys.modules, "IPython", raising=False)
    scripted_server.enqueue(Reply(tool_calls=[ScriptedToolCall("add", {"a": 1})]))
    scripted_server.enqueue(Reply("cut here soon please", drop_after=2))

    stream_to_notebook(client.stream("add"))
    with pytest.raises(StreamError):
        stream_to_notebook(client.stream("again"))

    printed = capsys.readouterr().out
    assert '[tool call] add({"a": 1})' in printed
    assert "[StreamError: stream cut short" in printed

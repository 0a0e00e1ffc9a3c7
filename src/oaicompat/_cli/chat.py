"""``oaicompat chat``: one answer, or a multi-turn conversation when no prompt is given."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from oaicompat._cli.console import Console, describe_error
from oaicompat._cli.target import Target
from oaicompat.client import Client
from oaicompat.display import format_arguments, format_timing, format_usage
from oaicompat.errors import OAICompatError
from oaicompat.types import ChatChunk, ChatResponse, Message

EXIT_WORDS = frozenset({"/exit", "/quit"})
HELP = "Type a message and press Enter. /reset starts over, /exit (or Ctrl-D) quits."
_HISTORY_LENGTH = 1000


@dataclass(frozen=True)
class ChatOptions:
    """How each turn is asked and shown."""

    stream: bool = True
    schema: Any = None
    """A JSON schema (or OpenAI ``response_format``) the answer must follow."""
    params: tuple[tuple[str, Any], ...] = ()
    """Request parameters given on the command line (temperature, max_tokens)."""

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> ChatOptions:
        params = {"temperature": args.temperature, "max_tokens": args.max_tokens}
        return cls(
            stream=not args.no_stream,
            schema=load_schema(args.json_schema) if args.json_schema else None,
            params=tuple((name, value) for name, value in params.items() if value is not None),
        )


def load_schema(path: str) -> Any:
    """The JSON in ``path``: a JSON schema, or a whole OpenAI ``response_format``."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"cannot read the JSON schema file {path}: {exc.strerror}") from None
    try:
        schema = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(schema, dict):
        raise ValueError(f"{path} must hold a JSON object (a JSON schema)")
    return schema


class AnswerPrinter:
    """Shows one streamed answer: reasoning aside (dim, stderr), the answer on stdout."""

    def __init__(self, console: Console) -> None:
        self._console = console
        self._in_reasoning = False
        self._wrote_answer = False

    def chunk(self, chunk: ChatChunk) -> None:
        if chunk.reasoning:
            if not self._in_reasoning:
                self._console.aside("thinking: ")
                self._in_reasoning = True
            self._console.aside(chunk.reasoning)
        if chunk.content:
            if self._in_reasoning:
                self._console.aside("\n")
                self._in_reasoning = False
            self._console.write(chunk.content)
            self._wrote_answer = True

    def whole(self, response: ChatResponse) -> None:
        """A non-streamed answer, shown the same way."""
        self.chunk(ChatChunk(content=response.content, reasoning=response.reasoning or ""))

    def end(self, response: ChatResponse) -> None:
        if self._in_reasoning:
            self._console.aside("\n")
        if self._wrote_answer:
            self._console.line()
        show_tool_calls(self._console, response)
        show_usage(self._console, response)


def show_tool_calls(console: Console, response: ChatResponse) -> None:
    for call in response.tool_calls:
        console.line(f"tool call: {call.name}({format_arguments(call)})")


def show_usage(console: Console, response: ChatResponse) -> None:
    timing = format_timing(response)
    console.note(f"[{format_usage(response.usage)}{'; ' + timing if timing else ''}]")


def answer(
    client: Client, messages: list[Message], options: ChatOptions, console: Console
) -> ChatResponse:
    """Ask once and show the answer as it arrives."""
    params = dict(options.params)
    if options.schema is not None:
        # The JSON is printed once validated: half an object is no use to a pipe.
        response = client.chat(messages, response_format=options.schema, **params)
        console.line(json.dumps(response.parsed, indent=2, ensure_ascii=False))
        show_usage(console, response)
        return response
    printer = AnswerPrinter(console)
    if not options.stream:
        response = client.chat(messages, **params)
        printer.whole(response)
    else:
        with client.stream(messages, **params) as stream:
            for chunk in stream:
                printer.chunk(chunk)
            response = stream.final()
    printer.end(response)
    return response


def read_prompt(prompt: str) -> str:
    """The prompt argument; ``-`` reads it from stdin."""
    if prompt == "-":
        return sys.stdin.read().strip()
    return prompt


def run_chat(
    target: Target,
    prompt: str | None,
    system: str | None,
    options: ChatOptions,
    console: Console,
) -> int:
    messages: list[Message] = [{"role": "system", "content": system}] if system else []
    with target.client() as client:
        if prompt is not None:
            text = read_prompt(prompt)
            if not text:
                raise ValueError("the prompt is empty")
            answer(client, [*messages, {"role": "user", "content": text}], options, console)
            return 0
        return converse(client, messages, options, console)


def converse(
    client: Client,
    messages: list[Message],
    options: ChatOptions,
    console: Console,
    read: Callable[[str], str] = input,
) -> int:
    """The interactive loop; an error ends the turn, not the conversation."""
    interactive = sys.stdin.isatty()
    console.note(f"Chatting with {client.model} at {client.base_url}. {HELP}")
    opening = len(messages)
    with _history(enabled=interactive):
        while True:
            try:
                line = read("you> " if interactive else "")
            except EOFError:
                break
            except KeyboardInterrupt:
                console.line()
                continue
            text = line.strip()
            if not text:
                continue
            if text in EXIT_WORDS:
                break
            if text == "/reset":
                del messages[opening:]
                console.note("Conversation cleared.")
                continue
            if text in ("/help", "/?"):
                console.note(HELP)
                continue
            messages.append({"role": "user", "content": text})
            try:
                response = answer(client, messages, options, console)
            except KeyboardInterrupt:
                console.note("\n(interrupted)")
                messages.pop()
                continue
            except (OAICompatError, ValueError) as error:
                console.error(describe_error(error))
                messages.pop()
                continue
            messages.append(response.to_message())
    return 0


def _history_file() -> Path:
    state = os.environ.get("XDG_STATE_HOME") or os.path.join(
        os.path.expanduser("~"), ".local", "state"
    )
    return Path(state) / "oaicompat" / "chat_history"


@contextlib.contextmanager
def _history(*, enabled: bool) -> Iterator[None]:
    """Arrow-key editing and history kept across sessions, for a person at a terminal."""
    if not enabled:
        yield
        return
    try:
        import readline
    except ImportError:  # Windows without pyreadline: input() still works
        yield
        return
    path = _history_file()
    with contextlib.suppress(OSError):
        readline.read_history_file(path)
    readline.set_history_length(_HISTORY_LENGTH)
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            path.parent.mkdir(parents=True, exist_ok=True)
            readline.write_history_file(path)

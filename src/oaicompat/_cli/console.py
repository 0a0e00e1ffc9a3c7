"""Where the command writes: answers to stdout, everything about them to stderr.

Keeping notes, reasoning, usage and errors on stderr means ``oaicompat chat
"..." > answer.txt`` saves the answer and nothing else.
"""

from __future__ import annotations

import os
import sys
from typing import TextIO

from oaicompat.errors import (
    APIConnectionError,
    APIStatusError,
    AuthenticationError,
    NotFoundError,
    OAICompatError,
)

_DIM = "\x1b[2m"
_RESET = "\x1b[0m"


class Console:
    """The two output streams, with dim text for secondary output on a terminal."""

    def __init__(self, out: TextIO | None = None, err: TextIO | None = None) -> None:
        self.out = out if out is not None else sys.stdout
        self.err = err if err is not None else sys.stderr
        self.color = _is_terminal(self.err) and "NO_COLOR" not in os.environ

    @property
    def interactive(self) -> bool:
        """True when a person is watching stdout (worth slowing a demo down for)."""
        return _is_terminal(self.out)

    def write(self, text: str) -> None:
        """Part of an answer, shown at once."""
        self.out.write(text)
        self.out.flush()

    def line(self, text: str = "") -> None:
        self.write(text + "\n")

    def aside(self, text: str) -> None:
        """Secondary text (reasoning, usage), dim on a terminal, on stderr."""
        if self.color and text.strip():
            # Reset before the line ends, so no terminal carries the dimming to the next line.
            body = text.rstrip("\n")
            text = f"{_DIM}{body}{_RESET}{text[len(body) :]}"
        self.err.write(text)
        self.err.flush()

    def note(self, text: str) -> None:
        """One line about what the command is doing."""
        self.aside(text + "\n")

    def error(self, text: str) -> None:
        self.err.write(f"error: {text}\n")
        self.err.flush()


def _is_terminal(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # closed stream
        return False


def describe_error(error: BaseException) -> str:
    """One readable line for an error: its kind, the server's message, and what to try."""
    if isinstance(error, OAICompatError):
        text = f"{type(error).__name__}: {error.message}"
        hint = _hint(error)
        return f"{text} ({hint})" if hint else text
    if isinstance(error, ValueError) and str(error):
        return str(error)  # a setting the user gave (URL, profile, file): the text says which
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


def _hint(error: OAICompatError) -> str | None:
    if isinstance(error, AuthenticationError):
        return "pass --api-key or set OAICOMPAT_API_KEY"
    if isinstance(error, NotFoundError):
        return "`oaicompat models` lists what the server serves"
    if isinstance(error, APIConnectionError):
        return "is the server running? check --base-url or OAICOMPAT_BASE_URL"
    if isinstance(error, APIStatusError) and error.status_code == 405:
        return "check --base-url: it usually ends in /v1"
    return None

"""Splitting ``<think>...</think>`` reasoning out of answer text, incrementally.

Models served without a reasoning parser (Ollama's older builds, llama.cpp
without ``--reasoning-format``, vLLM without ``--reasoning-parser``) put their
chain of thought inside the content. When the profile asks for it, reasoning
is the text between the tags with surrounding whitespace stripped and content
is what follows ``</think>`` with leading whitespace stripped. The splitter is
fed one delta at a time, so a tag cut across two chunks is still found, and
text is held back only while it could still be the start of a tag.
"""

from __future__ import annotations

__all__ = ["ThinkTagSplitter"]

OPEN_TAG = "<think>"
CLOSE_TAG = "</think>"

_BEFORE = 0  # nothing but whitespace seen yet
_THINKING = 1  # inside <think>
_AFTER_TAG = 2  # after </think>, leading whitespace still being dropped
_CONTENT = 3  # plain content from here on


def _partial_suffix(text: str, tag: str) -> int:
    """Length of the longest suffix of ``text`` that is a proper prefix of ``tag``."""
    for length in range(min(len(tag) - 1, len(text)), 0, -1):
        if text.endswith(tag[:length]):
            return length
    return 0


class ThinkTagSplitter:
    """Feed content deltas; get ``(reasoning_delta, content_delta)`` back."""

    __slots__ = ("_held", "_reasoning_started", "_state", "_whitespace")

    def __init__(self) -> None:
        self._state = _BEFORE
        self._held = ""  # text that may still turn out to be (part of) a tag
        self._whitespace = ""  # reasoning whitespace that is emitted only if more reasoning follows
        self._reasoning_started = False

    def feed(self, text: str) -> tuple[str, str]:
        state = self._state
        if state == _CONTENT:
            return "", text
        if state == _AFTER_TAG:
            stripped = text.lstrip()
            if stripped:
                self._state = _CONTENT
            return "", stripped
        buffer = self._held + text
        self._held = ""
        if state == _BEFORE:
            lead = buffer.lstrip()
            if lead.startswith(OPEN_TAG):
                self._state = _THINKING
                return self._feed_thinking(lead[len(OPEN_TAG) :])
            if not lead or OPEN_TAG.startswith(lead):
                self._held = buffer
                return "", ""
            self._state = _CONTENT
            return "", buffer
        return self._feed_thinking(buffer)

    def flush(self) -> tuple[str, str]:
        """End of text: release what was held back."""
        held, self._held = self._held, ""
        if self._state == _BEFORE:
            self._state = _CONTENT
            return "", held
        if self._state == _THINKING:
            return self._reasoning_text(held), ""
        return "", ""

    def _feed_thinking(self, buffer: str) -> tuple[str, str]:
        end = buffer.find(CLOSE_TAG)
        if end >= 0:
            reasoning = self._reasoning_text(buffer[:end])
            self._whitespace = ""
            self._state = _AFTER_TAG
            return reasoning, self.feed(buffer[end + len(CLOSE_TAG) :])[1]
        keep = _partial_suffix(buffer, CLOSE_TAG)
        if keep:
            self._held = buffer[-keep:]
            buffer = buffer[:-keep]
        return self._reasoning_text(buffer), ""

    def _reasoning_text(self, text: str) -> str:
        """Reasoning to emit now: leading whitespace dropped, trailing whitespace deferred."""
        if not self._reasoning_started:
            text = text.lstrip()
            if not text:
                return ""
            self._reasoning_started = True
        body = text.rstrip()
        if not body:
            self._whitespace += text
            return ""
        out = self._whitespace + body
        self._whitespace = text[len(body) :]
        return out

"""``<think>`` splitting: the same answer however the text is cut into deltas."""

from __future__ import annotations

import itertools

import pytest

from oaicompat.profiles import ServerProfile
from oaicompat.protocol import parse_response
from oaicompat.think import ThinkTagSplitter


def split(*pieces: str) -> tuple[str, str]:
    splitter = ThinkTagSplitter()
    reasoning: list[str] = []
    content: list[str] = []
    for piece in pieces:
        r, c = splitter.feed(piece)
        reasoning.append(r)
        content.append(c)
    r, c = splitter.flush()
    return "".join(reasoning) + r, "".join(content) + c


CASES = [
    # (text, reasoning, content)
    ("<think>\nplan it\n</think>\n\nAnswer.", "plan it", "Answer."),
    ("  \n<think>a</think>b", "a", "b"),
    ("<think></think>Just the answer", "", "Just the answer"),
    ("<think>\n\n</think>\n\nAnswer", "", "Answer"),
    ("<think>line one\n\n  line two  </think>  tail  ", "line one\n\n  line two", "tail  "),
    ("<think>x < y and </thin is not a tag</think>ok", "x < y and </thin is not a tag", "ok"),
    ("<think>unclosed reasoning", "unclosed reasoning", ""),
    ("<think>unclosed ending in a partial tag </thi", "unclosed ending in a partial tag </thi", ""),
    ("No tags here.", "", "No tags here."),
    ("  leading spaces are kept without a tag", "", "  leading spaces are kept without a tag"),
    ("Answer first <think>not reasoning</think>", "", "Answer first <think>not reasoning</think>"),
    ("<thinking>not our tag</thinking>", "", "<thinking>not our tag</thinking>"),
    ("<th", "", "<th"),
    ("<", "", "<"),
    ("", "", ""),
    ("<think>a</think>b</think>c", "a", "b</think>c"),
]


@pytest.mark.parametrize(("text", "reasoning", "content"), CASES)
def test_whole_text(text: str, reasoning: str, content: str) -> None:
    assert split(text) == (reasoning, content)


@pytest.mark.parametrize(("text", "reasoning", "content"), CASES)
def test_cut_at_every_position(text: str, reasoning: str, content: str) -> None:
    for cut in range(len(text) + 1):
        assert split(text[:cut], text[cut:]) == (reasoning, content), cut


@pytest.mark.parametrize(("text", "reasoning", "content"), CASES)
def test_cut_at_every_pair_of_positions(text: str, reasoning: str, content: str) -> None:
    for first, second in itertools.combinations(range(len(text) + 1), 2):
        pieces = (text[:first], text[first:second], text[second:])
        assert split(*pieces) == (reasoning, content), (first, second)


@pytest.mark.parametrize(("text", "reasoning", "content"), CASES)
def test_one_character_at_a_time(text: str, reasoning: str, content: str) -> None:
    assert split(*text) == (reasoning, content)


def test_text_is_released_as_soon_as_it_cannot_be_a_tag() -> None:
    splitter = ThinkTagSplitter()
    assert splitter.feed("<th") == ("", "")
    assert splitter.feed("e answer") == ("", "<the answer")
    assert splitter.feed(" goes on") == ("", " goes on")


def test_reasoning_streams_before_the_close_tag() -> None:
    splitter = ThinkTagSplitter()
    assert splitter.feed("<think>\nstep one") == ("step one", "")
    assert splitter.feed(" and two</") == (" and two", "")
    assert splitter.feed("think>\n") == ("", "")
    assert splitter.feed("done") == ("", "done")


def test_trailing_reasoning_whitespace_waits_for_more_reasoning() -> None:
    splitter = ThinkTagSplitter()
    assert splitter.feed("<think>a ") == ("a", "")
    assert splitter.feed(" ") == ("", "")
    assert splitter.feed("b") == ("  b", "")


def test_response_with_think_tags_and_reasoning_field() -> None:
    body = {
        "choices": [
            {
                "message": {
                    "content": "<think>from tags</think>answer",
                    "reasoning_content": "from field ",
                },
                "finish_reason": "stop",
            }
        ]
    }
    on = parse_response(body, ServerProfile(think_tags=True))
    assert (on.reasoning, on.content) == ("from field from tags", "answer")
    off = parse_response(body, ServerProfile(think_tags=False))
    assert (off.reasoning, off.content) == ("from field ", "<think>from tags</think>answer")


def test_empty_think_block_gives_no_reasoning() -> None:
    body = {"choices": [{"message": {"content": "<think>\n\n</think>\n\nHi"}}]}
    response = parse_response(body, ServerProfile(think_tags=True))
    assert response.reasoning is None
    assert response.content == "Hi"

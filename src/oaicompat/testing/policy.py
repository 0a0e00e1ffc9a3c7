"""The default reply policy: a deterministic stand-in for a capable model.

What it does, in order of precedence:

- refuses a body that is not a JSON object or has no ``messages`` (400), and a
  prompt longer than the context window (400 ``context_length_exceeded``);
- calls a tool when ``tool_choice`` forces one (``"required"``, ``"any"``, a
  named function), or, with ``"auto"``, when the last user message names a tool,
  asks to use "the tool", or uses a word of a tool's name (``get_weather`` for
  "what is the weather..."). Several tools named in the message are called in
  parallel unless ``parallel_tool_calls`` is false. Arguments are valid for the
  tool's schema and filled from the prompt (see :mod:`oaicompat.testing.arguments`);
- after tool results, answers in text that quotes them;
- with ``response_format`` ``json_schema``, answers JSON valid for the schema;
  with ``json_object``, a JSON object whose keys are the quoted words of the
  prompt (``'setup' and 'punchline'``), else ``{"answer": ...}``;
- otherwise answers ``You said: <last user text>``.

Requests to the legacy ``/v1/completions`` route need a string ``prompt``
(400 otherwise), are held to the same context window, and are answered
``You said: <prompt>``.

Text answers honour ``stop`` (cut before the first stop sequence) and
``max_tokens`` / ``max_completion_tokens`` (cut to that many tokens, with
``finish_reason="length"``).
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from oaicompat.testing.arguments import PromptHints, value_for_schema
from oaicompat.testing.replies import RawReply, Reply, ScriptedToolCall, context_length_exceeded
from oaicompat.testing.tokens import (
    count_prompt_tokens,
    count_tokens,
    message_text,
    truncate_to_tokens,
)
from oaicompat.testing.wire import COMPLETIONS_PATH

if TYPE_CHECKING:
    from oaicompat.testing.server import RecordedRequest

__all__ = ["DefaultPolicy"]

JSON = Mapping[str, Any]

_ASKS_FOR_A_TOOL = re.compile(r"\b(?:use|using|call|with)\s+(?:the|a|your|this)\s+tools?\b", re.I)
_WORD = re.compile(r"[a-z0-9]+")
_GENERIC_NAME_WORDS = frozenset(
    [
        "get",
        "set",
        "fetch",
        "make",
        "create",
        "run",
        "call",
        "tool",
        "tools",
        "function",
        "lookup",
        "look",
        "find",
        "the",
        "for",
        "with",
        "and",
        "from",
        "into",
    ]
)
_QUOTED_KEY = re.compile(r"['\"`]([A-Za-z_][A-Za-z0-9_]*)['\"`]")
_MAX_SCHEMA_CANDIDATES = 64
_NO_TEXT_ANSWER = "Hello! How can I help you today?"


class DefaultPolicy:
    """Answers chat requests the way a capable, deterministic model would.

    Args:
        context_window: prompts counting more tokens than this are refused
            with OpenAI's context-length error; None disables the check.
    """

    def __init__(self, *, context_window: int | None = 8192) -> None:
        self.context_window = context_window

    def __call__(self, request: RecordedRequest) -> Reply | RawReply:
        body = request.json
        if not isinstance(body, Mapping):
            return _bad_request("We could not parse the JSON body of your request.")
        if request.path == COMPLETIONS_PATH:
            return self._complete(body)
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return _bad_request("'messages' must be a non-empty array.", param="messages")
        if not all(isinstance(message, Mapping) for message in messages):
            return _bad_request("Each message must be an object.", param="messages")
        prompt_tokens = count_prompt_tokens(body)
        if self.context_window is not None and prompt_tokens > self.context_window:
            return context_length_exceeded(self.context_window, prompt_tokens)
        return self.reply(body)

    def _complete(self, body: JSON) -> Reply | RawReply:
        prompt = body.get("prompt")
        if not isinstance(prompt, str):
            return _bad_request("'prompt' must be a string.", param="prompt")
        prompt_tokens = count_prompt_tokens(body)
        if self.context_window is not None and prompt_tokens > self.context_window:
            return context_length_exceeded(self.context_window, prompt_tokens)
        return _within_limits(f"You said: {prompt}" if prompt.strip() else _NO_TEXT_ANSWER, body)

    def reply(self, body: JSON) -> Reply:
        """The answer to a well-formed chat request body."""
        messages: list[JSON] = body["messages"]
        user_text = _last_user_text(messages)
        calls = _tool_calls(body, messages, user_text)
        if calls:
            return Reply(tool_calls=calls)
        if messages[-1].get("role") == "tool":
            text = _answer_from_tool_results(messages)
        else:
            text = _answer(body, user_text)
        return _within_limits(text, body)


def _bad_request(message: str, param: str | None = None) -> RawReply:
    error = {"message": message, "type": "invalid_request_error", "param": param, "code": None}
    return RawReply(status=400, body={"error": error})


def _last_user_text(messages: Sequence[JSON]) -> str:
    for message in reversed(messages):
        if message.get("role") == "user":
            return message_text(message)
    return ""


def _function_tools(body: JSON) -> list[JSON]:
    tools = body.get("tools")
    if not isinstance(tools, list):
        return []
    return [
        tool["function"]
        for tool in tools
        if isinstance(tool, Mapping)
        and isinstance(tool.get("function"), Mapping)
        and isinstance(tool["function"].get("name"), str)
    ]


def _forced_name(choice: Any) -> str | None:
    if isinstance(choice, Mapping):
        function = choice.get("function")
        if isinstance(function, Mapping) and isinstance(function.get("name"), str):
            return str(function["name"])
        name = choice.get("name")
        return name if isinstance(name, str) else None
    return None


def _name_words(name: str) -> set[str]:
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", name).lower()
    return {
        word for word in _WORD.findall(spaced) if word not in _GENERIC_NAME_WORDS and len(word) > 2
    }


def _mentioned_tools(text: str, tools: Sequence[JSON]) -> list[JSON]:
    """Tools the user asks for: named outright, else the best match by name words."""
    named = []
    for tool in tools:
        match = re.search(rf"(?<!\w){re.escape(tool['name'])}(?!\w)", text)
        if match:
            named.append((match.start(), tool))
    if named:
        return [tool for _, tool in sorted(named, key=lambda pair: pair[0])]
    words = set(_WORD.findall(text.lower()))
    words |= {word[:-1] for word in words if word.endswith("s")}
    scored = [(len(_name_words(tool["name"]) & words), tool) for tool in tools]
    best_score, best = max(scored, key=lambda pair: pair[0], default=(0, None))
    if best is not None and best_score > 0:
        return [best]
    if _ASKS_FOR_A_TOOL.search(text) and tools:
        return [tools[0]]
    return []


def _chosen_tools(body: JSON, messages: Sequence[JSON], user_text: str) -> list[JSON]:
    tools = _function_tools(body)
    choice = body.get("tool_choice")
    if not tools or choice == "none":
        return []
    forced = _forced_name(choice) or (
        choice if isinstance(choice, str) and choice in {t["name"] for t in tools} else None
    )
    if forced is not None:
        return [tool for tool in tools if tool["name"] == forced][:1]
    mentioned = _mentioned_tools(user_text, tools) if messages[-1].get("role") == "user" else []
    if choice in ("required", "any") or (
        isinstance(choice, Mapping) and choice.get("type") in ("required", "any")
    ):
        return mentioned or _mentioned_tools(user_text, tools) or [tools[0]]
    return mentioned


def _tool_calls(body: JSON, messages: Sequence[JSON], user_text: str) -> list[ScriptedToolCall]:
    chosen = _chosen_tools(body, messages, user_text)
    if body.get("parallel_tool_calls") is False:
        chosen = chosen[:1]
    calls = []
    for tool in chosen:
        parameters = tool.get("parameters")
        if not isinstance(parameters, Mapping):
            parameters = {"type": "object", "properties": {}}
        arguments = value_for_schema(parameters, PromptHints(user_text), name=tool["name"])
        calls.append(
            ScriptedToolCall(tool["name"], arguments if isinstance(arguments, dict) else {})
        )
    return calls


def _answer_from_tool_results(messages: Sequence[JSON]) -> str:
    names: dict[str, str] = {}
    for message in messages:
        for call in message.get("tool_calls") or ():
            if isinstance(call, Mapping) and isinstance(call.get("function"), Mapping):
                names[str(call.get("id"))] = str(call["function"].get("name", "tool"))
    results = []
    for message in reversed(messages):
        if message.get("role") != "tool":
            break
        name = names.get(str(message.get("tool_call_id")), message.get("name") or "tool")
        results.append(f"The {name} tool returned: {message_text(message)}")
    return "\n".join(reversed(results))


def _answer(body: JSON, user_text: str) -> str:
    response_format = body.get("response_format")
    kind = response_format.get("type") if isinstance(response_format, Mapping) else None
    if kind == "json_schema":
        spec = response_format.get("json_schema") if isinstance(response_format, Mapping) else None
        schema = spec.get("schema") if isinstance(spec, Mapping) else None
        value = value_for_schema(schema or {"type": "object"}, PromptHints(user_text))
        return json.dumps(value, ensure_ascii=False)
    if kind == "json_object":
        prompt = "\n".join(message_text(message) for message in body["messages"])
        schema = _schema_in(prompt)
        if schema is not None:
            return json.dumps(value_for_schema(schema, PromptHints(user_text)), ensure_ascii=False)
        keys = list(dict.fromkeys(_QUOTED_KEY.findall(prompt)))
        value = {key: f"{key.replace('_', ' ')} for: {user_text}" for key in keys}
        return json.dumps(value or {"answer": f"You said: {user_text}"}, ensure_ascii=False)
    return f"You said: {user_text}" if user_text.strip() else _NO_TEXT_ANSWER


def _schema_in(text: str) -> Mapping[str, Any] | None:
    """A JSON schema written into the prompt, as JSON-mode instructions often include one."""
    decoder = json.JSONDecoder()
    for match in itertools.islice(re.finditer(r"\{", text), _MAX_SCHEMA_CANDIDATES):
        try:
            value, _ = decoder.raw_decode(text, match.start())
        except ValueError:
            continue
        if isinstance(value, dict) and isinstance(value.get("properties"), dict):
            return value
    return None


def _within_limits(text: str, body: JSON) -> Reply:
    finish_reason = "stop"
    stop = body.get("stop")
    stops = [stop] if isinstance(stop, str) else stop if isinstance(stop, list) else []
    cuts = [text.find(s) for s in stops if isinstance(s, str) and s and s in text]
    if cuts:
        text = text[: min(cuts)]
    limit = body.get("max_completion_tokens", body.get("max_tokens"))
    if isinstance(limit, int) and not isinstance(limit, bool) and count_tokens(text) > limit:
        text = truncate_to_tokens(text, limit)
        finish_reason = "length"
    return Reply(text=text, finish_reason=finish_reason)

"""What to send instead when a server refuses a request parameter. Pure: no I/O.

Servers say "I do not take this" in many ways: OpenAI's ``Unsupported parameter:
'max_tokens' ...`` with ``param`` set, pydantic's ``extra_forbidden`` with a
``loc`` (vLLM, Mistral, llama-cpp-python), axum's ``Failed to deserialize the
JSON body into the target type: response_format: ...`` (TGI, DeepSeek), LM
Studio's ``'response_format.type' must be 'json_schema' or 'text'``, llama.cpp's
``response_format type must be one of ...``. ``plan_fallback`` finds which
parameters of the request the error names *and* refuses, and returns a body
without them (or with the supported alternative) plus a profile that remembers
it. An error that only mentions a parameter (``temperature must be <= 2``) is
the caller's mistake and is not rewritten.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any, Literal

from oaicompat import _json
from oaicompat.errors import APIStatusError, ContextLengthError
from oaicompat.profiles import ServerProfile
from oaicompat.structured import (
    StructuredSpec,
    apply_method,
    has_user_tools,
    method_in_body,
    next_method,
    spec_from_body,
)
from oaicompat.types import JSONObject

__all__ = ["conform_body", "explain_fallback", "plan_fallback", "refused_params"]

FALLBACK_STATUSES = frozenset({400, 422, 500, 501})
"""400/422 are refusals; llama-cpp-python reports a failed request validation as a
500 and llama.cpp a "not supported" as a 501."""

_NEVER_REFUSED = frozenset({"model", "messages", "prompt", "stream"})
_ESSENTIAL = frozenset({"tools", "functions"})
"""Dropping these would change what the request means; their refusal is raised."""
_VALUE_PARAMS = frozenset({"response_format", "tool_choice"})
"""Parameters a server may take while refusing one of their values."""
_TOKEN_LIMITS = ("max_tokens", "max_completion_tokens")

_PRESENCE_REFUSAL = re.compile(
    r"extra_forbidden|extra (?:inputs|fields) (?:are |is )?not permitted"
    r"|not (?:permitted|supported|allowed|available)|unsupported|unavailable"
    r"|unknown (?:field|param|parameter|argument|variant|key)|unrecogni[sz]ed"
    r"|unexpected (?:keyword|field|param|parameter|argument)"
    r"|does not support|doesn't support|do not support|is deprecated",
    re.IGNORECASE,
)
_VALUE_REFUSAL = re.compile(
    r"must (?:either )?be (?:one of|a named|['\"`])|literal_error|input should be ['\"`]"
    r"|invalid (?:value|type|tool_choice|response_format)|expected (?:one of|['\"`])"
    r"|failed to deserialize|missing field|only supports",
    re.IGNORECASE,
)
_SYNONYMS: Mapping[str, tuple[str, ...]] = {"response_format": ("response format",)}


def _haystack(error: APIStatusError) -> str:
    parts = [error.server_message or "", error.message]
    body = error.body
    if isinstance(body, (str, bytes)):
        parts.append(body.decode("utf-8", "replace") if isinstance(body, bytes) else body)
    elif body is not None:
        try:
            parts.append(_json.dumps(body).decode("utf-8", "replace"))
        except (TypeError, ValueError):
            parts.append(repr(body))
    return "\n".join(parts)


def _declared_param(error: APIStatusError) -> str | None:
    """OpenAI-style ``{"error": {"param": "max_tokens"}}``."""
    body = error.body
    if isinstance(body, Mapping):
        inner = body.get("error")
        if isinstance(inner, Mapping) and isinstance(inner.get("param"), str):
            return str(inner["param"]).split(".")[0].split("[")[0]
    return None


def _named_strongly(param: str, text: str) -> bool:
    name = re.escape(param)
    patterns = (
        # pydantic loc: ('body', 'stream_options') or ["body","stream_options",...]
        rf"""[(\[]\s*['"]body['"]\s*,\s*['"]{name}['"]""",
        # quoted: 'max_tokens', `tool_choice`, 'response_format.type'
        rf"""['"`]{name}(?:[.\[][^'"`\s]*)?['"`]""",
        # field: 'stream_options' / Unsupported param: best_of / parameter `seed`
        rf"""(?:field|param|parameter|argument)s?\s*[:=]?\s*['"`]?{name}\b""",
        # axum: ...into the target type: response_format: ...
        rf"target type:\s*{name}\b",
    )
    return any(re.search(pattern, text, re.IGNORECASE) for pattern in patterns)


def _named_loosely(param: str, text: str) -> bool:
    # A bare word is trusted only for names no sentence uses by accident.
    words = [param] if "_" in param else []
    words.extend(_SYNONYMS.get(param, ()))
    return any(
        re.search(rf"(?<![\w.]){re.escape(word)}(?![\w])", text, re.IGNORECASE) for word in words
    )


def refused_params(error: APIStatusError, body: Mapping[str, Any]) -> set[str]:
    """The parameters of ``body`` that ``error`` names and refuses (empty when none)."""
    if isinstance(error, ContextLengthError) or error.status_code not in FALLBACK_STATUSES:
        return set()
    text = _haystack(error)
    presence = _PRESENCE_REFUSAL.search(text) is not None
    value = _VALUE_REFUSAL.search(text) is not None
    if not (presence or value):
        return set()
    declared = _declared_param(error)
    refused: set[str] = set()
    for param in body:
        if param in _NEVER_REFUSED:
            continue
        if not (presence or (value and param in _VALUE_PARAMS)):
            continue
        if param == declared or _named_strongly(param, text) or _named_loosely(param, text):
            refused.add(param)
    return refused


def _restructure(
    body: JSONObject, spec: StructuredSpec, current: Any, profile: ServerProfile
) -> JSONObject | None:
    method = next_method(current, spec, profile, user_tools=has_user_tools(body))
    if method is None:
        return None
    return apply_method(body, spec, method, profile)


def _refuse_response_format(
    body: JSONObject, profile: ServerProfile
) -> tuple[JSONObject | None, ServerProfile]:
    method = method_in_body(body)
    spec = spec_from_body(body)
    if spec is None or method not in ("json_schema", "json_object"):
        body.pop("response_format", None)
        return body, profile.without_param("response_format")
    if method == "json_schema":
        profile = replace(profile, supports_json_schema=False)
    else:
        profile = replace(profile, supports_json_object=False)
    return _restructure(body, spec, method, profile), profile


def _instead_of_named(body: Mapping[str, Any], profile: ServerProfile) -> str:
    # With a single tool, "required" forces exactly the call the name asked for.
    tools = body.get("tools")
    single = isinstance(tools, list) and len(tools) == 1
    return "required" if single and profile.supports_tool_choice_required else "auto"


def _refuse_tool_choice(
    body: JSONObject, profile: ServerProfile, value_refused: bool
) -> tuple[JSONObject | None, ServerProfile]:
    choice = body.get("tool_choice")
    if value_refused and choice == "required":
        profile = replace(profile, supports_tool_choice_required=False)
        replacement: Any = "auto"
    elif value_refused and isinstance(choice, Mapping):
        profile = replace(profile, supports_named_tool_choice=False)
        replacement = _instead_of_named(body, profile)
    else:
        profile = replace(profile, supports_tool_choice=False).without_param("tool_choice")
        replacement = None
    if method_in_body(body) == "tool":
        spec = spec_from_body(body)
        if spec is None:
            return None, profile
        return _restructure(body, spec, "tool", profile), profile
    if replacement is None:
        body.pop("tool_choice", None)
    else:
        body["tool_choice"] = replacement
    return body, profile


def _refuse_token_limit(
    param: str, body: JSONObject, profile: ServerProfile
) -> tuple[JSONObject, ServerProfile]:
    other: Literal["max_tokens", "max_completion_tokens"] = (
        "max_completion_tokens" if param == "max_tokens" else "max_tokens"
    )
    limit = body.pop(param)
    if other in profile.unsupported_params:
        # Both spellings refused: the server takes no output limit at all.
        return body, profile.without_param(param)
    body[other] = limit
    # Remembering the refused spelling too keeps a later refusal of `other` from
    # switching back and forth.
    profile = replace(profile, max_tokens_param=other).without_param(param)
    return body, profile


def plan_fallback(
    error: APIStatusError, body: Mapping[str, Any], profile: ServerProfile
) -> tuple[JSONObject, ServerProfile] | None:
    """The body to send instead of ``body`` and the profile to keep, or None.

    None when the error is not about a request parameter, when the refused
    parameter is one the request cannot do without (``tools``), or when there
    is nothing left to try.
    """
    refused = refused_params(error, body)
    if not refused:
        return None
    structured_tool_only = method_in_body(body) == "tool" and not has_user_tools(body)
    if refused & _ESSENTIAL and not structured_tool_only:
        return None
    value_refused = _VALUE_REFUSAL.search(_haystack(error)) is not None
    new_body: JSONObject = dict(body)
    for param in sorted(refused):
        planned = _refuse(param, new_body, profile, refused, value_refused)
        if planned is None:
            return None
        new_body, profile = planned
    if new_body == dict(body):
        return None
    return new_body, profile


def _refuse(
    param: str,
    body: JSONObject,
    profile: ServerProfile,
    refused: set[str],
    value_refused: bool,
) -> tuple[JSONObject, ServerProfile] | None:
    """The body and profile after ``param`` was refused, or None when nothing is left."""
    planned: tuple[JSONObject | None, ServerProfile]
    if param in _ESSENTIAL:
        # Only reached when the one tool is the structured-output function.
        spec = spec_from_body(body)
        profile = replace(profile, supports_tools=False)
        planned = (_restructure(body, spec, "tool", profile) if spec else None), profile
    elif param == "response_format":
        planned = _refuse_response_format(body, profile)
    elif param == "tool_choice":
        planned = _refuse_tool_choice(body, profile, value_refused)
    elif param in _TOKEN_LIMITS:
        planned = _refuse_token_limit(param, body, profile)
    elif param == "stream_options":
        body.pop(param, None)
        if body.get("stream"):
            # Outside a stream the option is wrong only there (vLLM says so);
            # inside one the server does not know it at all.
            profile = replace(profile, supports_stream_options=False, stream_usage=False)
        planned = body, profile
    elif param == "parallel_tool_calls":
        body.pop(param, None)
        planned = body, replace(profile, supports_parallel_tool_calls=False)
    else:
        alias = profile.alias_for(param)
        value = body.pop(param, None)
        if alias is not None and alias not in refused:
            body[alias] = value
        else:
            profile = profile.without_param(param)
        planned = body, profile
    new_body, profile = planned
    return None if new_body is None else (new_body, profile)


def conform_body(body: Mapping[str, Any], profile: ServerProfile) -> JSONObject:
    """``body`` with what ``profile`` has learned applied: what ``build_body`` does not cover.

    Renames parameters the server spells its own way and turns a ``tool_choice``
    the server refuses into one it takes, so a refusal is paid for only once.
    """
    new: JSONObject = dict(body)
    for openai_name, server_name in profile.param_aliases:
        if openai_name in new and server_name not in new:
            new[server_name] = new.pop(openai_name)
    if "tool_choice" in new and method_in_body(new) != "tool":
        choice = new["tool_choice"]
        if not profile.supports_tool_choice:
            new.pop("tool_choice")
        elif isinstance(choice, Mapping) and not profile.supports_named_tool_choice:
            new["tool_choice"] = _instead_of_named(new, profile)
        elif choice == "required" and not profile.supports_tool_choice_required:
            new["tool_choice"] = "auto"
    for param in profile.unsupported_params:
        new.pop(param, None)
    return new


def _describe(value: Any) -> str:
    if isinstance(value, list):
        return f"{len(value)} item{'s' if len(value) != 1 else ''}"
    if isinstance(value, Mapping):
        kind = value.get("type")
        function = value.get("function")
        if isinstance(function, Mapping) and function.get("name"):
            return f"function {function['name']}"
        return f"type {kind}" if kind else "an object"
    return repr(value)


def explain_fallback(old: Mapping[str, Any], new: Mapping[str, Any]) -> str:
    """One line saying what changed between a refused body and its replacement."""
    changes: list[str] = []
    renamed_to = {key for key in new if key not in old}
    for key in sorted(set(old) - set(new)):
        target = next((k for k in renamed_to if old[key] == new[k]), None)
        if target is not None:
            changes.append(f"{key} renamed to {target}")
            renamed_to.discard(target)
        else:
            changes.append(f"{key} dropped")
    for key in sorted(renamed_to):
        if key != "messages":
            changes.append(f"{key} added ({_describe(new[key])})")
    for key in _changed(old, new, ("response_format", "tool_choice")):
        changes.append(f"{key} {_describe(old[key])} -> {_describe(new[key])}")
    old_method, new_method = method_in_body(old), method_in_body(new)
    if old_method != new_method:
        changes.append(f"structured output {old_method} -> {new_method}")
    return "; ".join(changes) or "request changed"


def _changed(old: Mapping[str, Any], new: Mapping[str, Any], keys: Iterable[str]) -> list[str]:
    return [key for key in keys if key in old and key in new and old[key] != new[key]]

"""Looking for the API key everywhere an object can show it, and servers that echo it back."""

from __future__ import annotations

import dataclasses
import functools
import pickle
import traceback
import types
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from oaicompat._transport import ClientBase
from oaicompat.testing import RawReply, RecordedRequest, Reply, ReplyLike

KEY = "sk-oaicompat-SECRET-1234"
"""A recognizable key: found anywhere, it leaked."""

_MAX_DEPTH = 12
_CODE = (
    types.FunctionType,
    types.MethodType,
    types.BuiltinFunctionType,
    types.ModuleType,
    types.CodeType,
    types.FrameType,
    types.TracebackType,
    functools.partial,
)


def _opaque(value: Any) -> bool:
    """Objects whose inside is not searched.

    The key holder itself and the clients (checked through their repr and str
    instead) must hold the key; httpx objects reached through an exception's
    ``__cause__`` hold the request they failed, headers included, as httpx
    designs them, and nothing prints those headers.
    """
    module = type(value).__module__ or ""
    return (
        type(value).__name__ == "_Secret"
        or isinstance(value, (ClientBase, type, *_CODE))
        or module.split(".")[0] in ("httpx", "httpcore", "asyncio", "ssl", "socket")
    )


def _walk(value: Any, path: str, seen: set[int], depth: int) -> Iterator[str]:
    if isinstance(value, str):
        if KEY in value:
            yield path
        return
    if isinstance(value, (bytes, bytearray)):
        if KEY.encode() in value:
            yield path
        return
    if value is None or isinstance(value, (int, float, bool)) or depth > _MAX_DEPTH:
        return
    if id(value) in seen or _opaque(value):
        return
    seen.add(id(value))
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield from _walk(key, f"{path}[key {key!r}]", seen, depth + 1)
            yield from _walk(item, f"{path}[{key!r}]", seen, depth + 1)
        return
    if isinstance(value, (list, tuple, set, frozenset)):
        for index, item in enumerate(value):
            yield from _walk(item, f"{path}[{index}]", seen, depth + 1)
        return
    if isinstance(value, BaseException):
        yield from _walk(value.args, f"{path}.args", seen, depth + 1)
        for name in ("__cause__", "__context__"):
            # What a chained exception shows, not what it holds: json's decode error keeps
            # the whole document it failed on (``doc``), as httpx's errors keep their request.
            chained = getattr(value, name)
            if chained is not None:
                yield from _walk(str(chained), f"str({path}.{name})", seen, depth + 1)
                yield from _walk(repr(chained), f"repr({path}.{name})", seen, depth + 1)
                yield from _walk(chained.args, f"{path}.{name}.args", seen, depth + 1)
    attributes: dict[str, Any] = {}
    if dataclasses.is_dataclass(value):
        attributes.update((f.name, getattr(value, f.name)) for f in dataclasses.fields(value))
    attributes.update(getattr(value, "__dict__", {}) or {})
    for slot in getattr(type(value), "__slots__", ()):
        if isinstance(slot, str) and hasattr(value, slot):
            attributes[slot] = getattr(value, slot)
    for name, item in attributes.items():
        yield from _walk(item, f"{path}.{name}", seen, depth + 1)


def key_locations(value: Any, name: str = "value") -> list[str]:
    """Everywhere the key shows in ``value``: its str, repr, pickle and everything it holds."""
    found = []
    for shown, text in (("str", _safe(str, value)), ("repr", _safe(repr, value))):
        if KEY in text:
            found.append(f"{shown}({name})")
    if isinstance(value, BaseException):
        formatted = "".join(traceback.format_exception(value))
        if KEY in formatted:
            found.append(f"traceback of {name}")
    try:
        pickled = pickle.dumps(value)
    except (TypeError, AttributeError, pickle.PicklingError):
        pickled = b""
    if KEY.encode() in pickled:
        found.append(f"pickle of {name}")
    found += list(_walk(value, name, set(), 0))
    return found


def _safe(render: Callable[[Any], str], value: Any) -> str:
    try:
        return render(value)
    except Exception as exc:  # a failing repr is a bug, but not this suite's
        return f"<{render.__name__} failed: {exc!r}>"


# Servers that echo the key --------------------------------------------------------------


def _key_header(request: RecordedRequest) -> str:
    return request.headers.get("authorization") or request.headers.get("api-key") or "no key"


def echo(build: Callable[[str], ReplyLike]) -> Callable[[RecordedRequest], ReplyLike]:
    """A reply factory handing the request's key header to ``build``."""
    return lambda request: build(_key_header(request))


ECHOES: dict[str, Callable[[str], ReplyLike]] = {
    "401-json-message": lambda auth: RawReply(
        401,
        {"error": {"message": f"Incorrect API key provided: {auth}", "type": "auth"}},
    ),
    "400-json-nested": lambda auth: RawReply(
        400,
        {
            "error": {"message": "bad request", "param": auth, "code": None},
            "debug": {"headers": {"authorization": auth}, "seen": [auth]},
        },
    ),
    "500-html-page": lambda auth: RawReply(
        500,
        f"<html><head><title>Error</title></head><body><pre>Authorization: {auth}</pre>"
        "</body></html>",
        content_type="text/html",
    ),
    "502-plain-text": lambda auth: RawReply(502, f"upstream refused {auth}"),
    "403-header": lambda auth: RawReply(
        403,
        {"error": {"message": "forbidden", "type": "permission"}},
        headers={"X-Debug-Authorization": auth},
    ),
    "429-echo": lambda auth: RawReply(
        429,
        {"error": {"message": f"slow down, {auth}", "type": "rate_limit"}},
        headers={"Retry-After": "0", "X-Echo": auth},
    ),
    "200-error-object": lambda auth: RawReply(
        200, {"error": {"message": f"key {auth} has no quota", "code": 402}}
    ),
    "200-not-json": lambda auth: RawReply(200, f"hello {auth}", content_type="text/plain"),
    "200-html": lambda auth: RawReply(
        200, f"<html><title>Portal for {auth}</title></html>", content_type="text/html"
    ),
}

STREAM_ECHOES: dict[str, Callable[[str], ReplyLike]] = {
    "error-event": lambda auth: Reply(
        "one two three four",
        error_after=3,
        error={"message": f"worker lost, {auth}", "type": "server_error", "auth": auth},
    ),
    "malformed-event": lambda auth: RawReply(
        200,
        'data: {"choices": [{"delta": {"content": "hi"}}]}\n\n'
        f'data: {{"broken": "{auth}"\n\n',
        content_type="text/event-stream",
    ),
    "non-object-event": lambda auth: RawReply(
        200, f'data: "{auth}"\n\n', content_type="text/event-stream"
    ),
}


__all__ = ["ECHOES", "KEY", "STREAM_ECHOES", "echo", "key_locations"]

"""Which server is this, what does it serve, and how long a context does it take?

Each operation is written once, as a sans-IO flow (a generator of `Probe` requests,
see ``_probes.py``) shared by the sync and async clients:

- `list_models_flow`: ``GET /models`` (Ollama's ``/api/tags`` when that is all there is);
- `health_flow`: is anything answering at ``base_url`` (2xx, 401 and 403 count);
- `preflight_flow`: is the configured model served (``llama3.1`` matches
  ``llama3.1:latest``); the error lists what is;
- `server_info_flow`: the server's kind, version, models and context window, from
  each server's own endpoints (Ollama ``/api/version`` and ``/api/show``, llama.cpp
  ``/props``, vLLM ``/version`` and ``max_model_len``, LM Studio ``/api/v0/models``,
  TGI ``/info``) and the ``owned_by`` of ``/models``.

`detect_local_servers` (and `adetect_local_servers`) probe the default local
ports of the presets at once and return what answers.

When ``base_url`` is not an OpenAI-compatible API (nothing listening, an HTML
page, a 404 on ``/models``), the error says what to check.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from oaicompat._probes import Flow, Probe, Reply, run_async, run_sync
from oaicompat.errors import (
    AuthenticationError,
    NotFoundError,
    OAICompatError,
    PermissionDeniedError,
    ResponseParseError,
    error_from_status,
    extract_server_message,
)
from oaicompat.profiles import PRESETS, ServerProfile, get_profile, preset_for_url

__all__ = [
    "ModelListing",
    "ServerInfo",
    "adetect_local_servers",
    "detect_local_servers",
    "health_flow",
    "list_models_flow",
    "match_model",
    "preflight_flow",
    "server_info_flow",
]

_CHECK_BASE_URL = (
    "this is not an OpenAI-compatible API root; check base_url (it usually ends in /v1, "
    "e.g. http://localhost:11434/v1)"
)
_SERVES_ANY_NAME = frozenset({"llamacpp", "me"})
"""``owned_by`` of single-model servers that answer whatever model name is asked for
(llama-server, llama-cpp-python)."""
_OWNED_BY_KIND = {
    "vllm": "vllm",
    "sglang": "sglang",
    "llamacpp": "llamacpp",
    "ollama": "ollama",
    "library": "ollama",
    "organization_owner": "lmstudio",
    "tgi": "tgi",
}
_CONTEXT_KEYS = ("max_model_len", "context_length", "context_window", "max_context_length")


@dataclass(frozen=True, slots=True)
class ServerInfo:
    """What a server says about itself. ``raw`` holds every JSON answer, by path."""

    kind: str
    """A preset name (``ollama``, ``llamacpp``, ``vllm``...) or ``generic``."""
    version: str | None
    models: tuple[str, ...]
    context_window: int | None
    """Of ``model`` (the configured one, else the first served), when the server tells."""
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False, hash=False)
    base_url: str = ""
    model: str | None = None

    @property
    def profile(self) -> ServerProfile:
        """The preset for this kind of server (the generic one when unknown)."""
        try:
            return get_profile(self.kind)
        except ValueError:
            return get_profile(None)


@dataclass(frozen=True, slots=True)
class ModelListing:
    """The answer of ``GET /models``: ids in order, and each entry as sent."""

    ids: tuple[str, ...]
    entries: tuple[Mapping[str, Any], ...]
    raw: Any

    def entry(self, model_id: str | None) -> Mapping[str, Any] | None:
        for model, entry in zip(self.ids, self.entries, strict=True):
            if model == model_id:
                return entry
        return self.entries[0] if self.entries and model_id is None else None

    @property
    def owners(self) -> set[str]:
        return {str(entry.get("owned_by")) for entry in self.entries if entry.get("owned_by")}


def _parse_listing(data: Any) -> ModelListing | None:
    if not isinstance(data, Mapping):
        return None
    items = data.get("data")
    if not isinstance(items, list):
        items = data.get("models")  # Ollama's /api/tags and llama.cpp's second list
    if not isinstance(items, list):
        return None
    ids: list[str] = []
    entries: list[Mapping[str, Any]] = []
    for item in items:
        if isinstance(item, Mapping):
            name = item.get("id") or item.get("name") or item.get("model")
            if isinstance(name, str) and name:
                ids.append(name)
                entries.append(item)
    return ModelListing(ids=tuple(ids), entries=tuple(entries), raw=data)


def _not_an_api(reply: Reply, what: str) -> OAICompatError:
    """The error for ``GET /models`` not answering like an OpenAI-compatible server."""
    if reply.error is not None:
        return reply.error
    if not 200 <= reply.status < 300:
        error = error_from_status(reply.status, reply.headers, reply.body)
        if isinstance(error, NotFoundError):
            said = error.server_message or "no body"
            error.message = f"GET {reply.url} answered 404 ({said}): {_CHECK_BASE_URL}"
        else:
            error.message = f"GET {reply.url}: {error.message}"
        error.args = (error.message,)
        return error
    content_type = reply.headers.get("content-type", "no content type")
    said = extract_server_message(reply.body) or "an empty body"
    return ResponseParseError(
        f"GET {reply.url} answered {content_type} ({said}) instead of {what}: {_CHECK_BASE_URL}",
        body=reply.body.decode("utf-8", "replace")[:2000],
        status_code=reply.status,
    )


def _listing_flow() -> Flow[ModelListing]:
    (reply,) = yield (Probe("GET", "models"),)
    listing = _parse_listing(reply.json())
    if listing is not None:
        return listing
    if reply.error is None and reply.status in (404, 405):
        # Ollama before its /v1/models: the native list has the same names.
        (tags,) = yield (Probe("GET", "api/tags", from_root=True, optional=True),)
        data = tags.json()
        if isinstance(data, Mapping) and isinstance(data.get("models"), list):
            native = _parse_listing(data)
            if native is not None:
                return native
    raise _not_an_api(reply, "a JSON model list")


def list_models_flow() -> Flow[list[str]]:
    """The ids of the models the server serves."""
    listing = yield from _listing_flow()
    return list(listing.ids)


def health_flow() -> Flow[bool]:
    """True when an OpenAI-style server answers at the base URL (auth errors count)."""
    (reply,) = yield (Probe("GET", "models"),)
    return reply.error is None and (reply.ok or reply.status in (401, 403))


def match_model(model: str, listing: ModelListing) -> str | None:
    """The served id ``model`` refers to, or None when it is not served.

    Exact, then case-insensitive, then Ollama's implicit ``:latest`` tag; a
    single-model server that ignores the name (llama-server) matches anything.
    """
    if model in listing.ids:
        return model
    lowered = {model_id.lower(): model_id for model_id in listing.ids}
    wanted = model.lower()
    for candidate in (wanted, f"{wanted}:latest", wanted.removesuffix(":latest")):
        if candidate in lowered:
            return lowered[candidate]
    if len(listing.ids) == 1 and listing.owners & _SERVES_ANY_NAME:
        return listing.ids[0]
    return None


def _missing_model(model: str, listing: ModelListing, url: str) -> NotFoundError:
    served = ", ".join(listing.ids[:20]) or "none"
    if len(listing.ids) > 20:
        served += f" (and {len(listing.ids) - 20} more)"
    return NotFoundError(
        f"model {model!r} is not served at {url}; available: {served}",
        status_code=404,
        body=listing.raw,
    )


def preflight_flow(model: str, base_url: str = "") -> Flow[str]:
    """The served id of ``model`` after checking that the server is up and serves it."""
    listing = yield from _listing_flow()
    served = match_model(model, listing)
    if served is None:
        raise _missing_model(model, listing, base_url or "the server")
    return served


# Server identification ---------------------------------------------------------

_NATIVE_PROBES = (
    Probe("GET", "api/version", from_root=True, optional=True),  # Ollama
    Probe("GET", "props", from_root=True, optional=True),  # llama.cpp
    Probe("GET", "version", from_root=True, optional=True),  # vLLM
    Probe("GET", "api/v0/models", from_root=True, optional=True),  # LM Studio
    Probe("GET", "info", from_root=True, optional=True),  # TGI
)


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int) and value > 0:
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip()) or None
    return None


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _kind(native: Mapping[str, Any], listing: ModelListing, base_url: str) -> str:
    props = _mapping(native.get("props"))
    if "default_generation_settings" in props or "build_info" in props:
        return "llamacpp"
    if "version" in _mapping(native.get("api/version")):
        return "ollama"
    lmstudio = _parse_listing(native.get("api/v0/models"))
    if lmstudio is not None and any(
        "max_context_length" in entry or "state" in entry for entry in lmstudio.entries
    ):
        return "lmstudio"
    info = _mapping(native.get("info"))
    if "model_id" in info and ("max_total_tokens" in info or "max_input_tokens" in info):
        return "tgi"
    owners = listing.owners
    if owners & {"me"} and any("permissions" in entry for entry in listing.entries):
        return "llamacpp_python"
    for owner in sorted(owners):
        if owner in _OWNED_BY_KIND:
            return _OWNED_BY_KIND[owner]
    if "version" in _mapping(native.get("version")):
        return "vllm"
    hosted = preset_for_url(base_url)
    return hosted.name if hosted is not None else "generic"


def _version(kind: str, native: Mapping[str, Any]) -> str | None:
    sources = {
        "ollama": _mapping(native.get("api/version")).get("version"),
        "llamacpp": _mapping(native.get("props")).get("build_info"),
        "tgi": _mapping(native.get("info")).get("version"),
    }
    value = sources.get(kind, _mapping(native.get("version")).get("version"))
    return str(value) if isinstance(value, (str, int, float)) and value != "" else None


def _listing_context(listing: ModelListing, model: str | None) -> int | None:
    entry = _mapping(listing.entry(model))
    for key in _CONTEXT_KEYS:
        value = _as_int(entry.get(key))
        if value:
            return value
    meta = _mapping(entry.get("meta"))
    return _as_int(meta.get("n_ctx")) or _as_int(meta.get("n_ctx_train"))


def _ollama_context(show: Mapping[str, Any]) -> int | None:
    # num_ctx (the Modelfile's setting) is what the server runs with; the model's
    # trained length in model_info is only an upper bound.
    parameters = show.get("parameters")
    if isinstance(parameters, str):
        for line in parameters.splitlines():
            name, _, value = line.strip().partition(" ")
            if name == "num_ctx":
                return _as_int(value)
    for key, value in _mapping(show.get("model_info")).items():
        if key.endswith(".context_length"):
            return _as_int(value)
    return None


def _context_window(
    kind: str, native: Mapping[str, Any], listing: ModelListing, model: str | None
) -> int | None:
    if kind == "llamacpp":
        props = _mapping(native.get("props"))
        settings = _mapping(props.get("default_generation_settings"))
        found = _as_int(settings.get("n_ctx")) or _as_int(props.get("n_ctx"))
        if found:
            return found
    elif kind == "ollama":
        found = _ollama_context(_mapping(native.get("api/show")))
        if found:
            return found
    elif kind == "lmstudio":
        lmstudio = _parse_listing(native.get("api/v0/models"))
        entry = _mapping(lmstudio.entry(model) if lmstudio else None)
        found = _as_int(entry.get("loaded_context_length")) or _as_int(
            entry.get("max_context_length")
        )
        if found:
            return found
    elif kind == "tgi":
        info = _mapping(native.get("info"))
        found = _as_int(info.get("max_total_tokens")) or _as_int(info.get("max_input_tokens"))
        if found:
            return found
    return _listing_context(listing, model)


def server_info_flow(base_url: str, model: str | None = None) -> Flow[ServerInfo]:
    """Identify the server at ``base_url``; the context window is ``model``'s (or the first's)."""
    listing = yield from _listing_flow()
    served = match_model(model, listing) if model else None
    target = served or model or (listing.ids[0] if listing.ids else None)
    raw: dict[str, Any] = {"models": listing.raw}
    native: dict[str, Any] = {}
    if preset_for_url(base_url) is None:
        # A hosted API is known by its host; only unknown hosts are asked who they are.
        replies = yield _NATIVE_PROBES
        for probe, reply in zip(_NATIVE_PROBES, replies, strict=True):
            data = reply.json()
            if isinstance(data, Mapping):
                native[probe.path] = data
    kind = _kind(native, listing, base_url)
    if kind == "ollama" and target:
        show_probe = Probe("POST", "api/show", from_root=True, json={"model": target})
        (show,) = yield (show_probe,)
        if isinstance(show.json(), Mapping):
            native["api/show"] = show.json()
    raw.update(native)
    return ServerInfo(
        kind=kind,
        version=_version(kind, native),
        models=listing.ids,
        context_window=_context_window(kind, native, listing, target),
        raw=raw,
        base_url=base_url,
        model=target,
    )


# Local detection -------------------------------------------------------------------

DETECT_HOST = "127.0.0.1"


def _local_candidates() -> list[tuple[str, tuple[str, ...]]]:
    """``(base_url, preset names)`` for each default local port, in preset order."""
    by_url: dict[str, list[str]] = {}
    for name, preset in PRESETS.items():
        if preset.is_local and preset.default_base_url:
            port = httpx.URL(preset.default_base_url).port
            by_url.setdefault(f"http://{DETECT_HOST}:{port}/v1", []).append(name)
    return [(url, tuple(names)) for url, names in by_url.items()]


def _detect_timeout(timeout: float) -> httpx.Timeout:
    # Nothing listening fails at connect time; a server that is there may take a
    # little longer to answer than to accept the connection.
    return httpx.Timeout(max(timeout * 4, 1.0), connect=timeout)


def _unreadable(error: OAICompatError, base_url: str, names: Sequence[str]) -> ServerInfo | None:
    """A server that answered but would not list models without a key still counts."""
    if isinstance(error, (AuthenticationError, PermissionDeniedError)):
        kind = names[0] if len(names) == 1 else "generic"
        return ServerInfo(
            kind=kind,
            version=None,
            models=(),
            context_window=None,
            raw={"error": error.message},
            base_url=base_url,
        )
    return None


def detect_local_servers(timeout: float = 0.3) -> list[ServerInfo]:
    """The OpenAI-compatible servers answering on this machine's default ports.

    Probes every preset's default local port at once; an empty list comes back
    in about ``timeout`` seconds when nothing is there. Uses threads, not an event
    loop, so it also works inside Jupyter.
    """
    candidates = _local_candidates()
    if not candidates:
        return []
    limit = _detect_timeout(timeout)

    def probe(http: httpx.Client, base_url: str, names: tuple[str, ...]) -> ServerInfo | None:
        try:
            return run_sync(server_info_flow(base_url), http, base_url, timeout=limit)
        except OAICompatError as error:
            return _unreadable(error, base_url, names)

    # Imported here: concurrent.futures adds ~13 ms to `import oaicompat`.
    from concurrent.futures import ThreadPoolExecutor

    # No proxy from the environment: a loopback probe must not travel anywhere.
    with (
        httpx.Client(timeout=limit, trust_env=False) as http,
        ThreadPoolExecutor(max_workers=len(candidates)) as pool,
    ):
        futures = [pool.submit(probe, http, url, names) for url, names in candidates]
        found = [future.result() for future in futures]
    return [info for info in found if info is not None]


async def adetect_local_servers(timeout: float = 0.3) -> list[ServerInfo]:
    """`detect_local_servers` for async code: the ports are probed concurrently."""
    candidates = _local_candidates()
    limit = _detect_timeout(timeout)

    async def probe(
        http: httpx.AsyncClient, base_url: str, names: tuple[str, ...]
    ) -> ServerInfo | None:
        try:
            return await run_async(server_info_flow(base_url), http, base_url, timeout=limit)
        except OAICompatError as error:
            return _unreadable(error, base_url, names)

    import asyncio

    async with httpx.AsyncClient(timeout=limit, trust_env=False) as http:
        found = await asyncio.gather(*(probe(http, url, names) for url, names in candidates))
    return [info for info in found if info is not None]

"""Which server and model a command talks to.

In order: ``--base-url`` (or ``OAICOMPAT_BASE_URL``); a ``--profile`` (or
``OAICOMPAT_PROFILE``) whose preset has a default URL; ``--scripted``; a
server answering on one of the presets' default local ports; and when none
answers, the built-in scripted server, announced in one line. The model is
``--model`` (or ``OAICOMPAT_MODEL``), else the first one the server lists.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

import httpx

from oaicompat._cli.console import Console
from oaicompat._transport import DEFAULT_TIMEOUT
from oaicompat.client import AsyncClient, Client
from oaicompat.discovery import ServerInfo, detect_local_servers
from oaicompat.profiles import ServerProfile, get_profile, preset_for_url
from oaicompat.testing import DefaultPolicy, RecordedRequest, ScriptedServer
from oaicompat.testing.replies import RawReply, Reply

ENV_BASE_URL = "OAICOMPAT_BASE_URL"
ENV_MODEL = "OAICOMPAT_MODEL"
ENV_PROFILE = "OAICOMPAT_PROFILE"
ENV_API_KEY = "OAICOMPAT_API_KEY"

_BUILTIN = "built-in scripted server"
_DEMO_CHUNK_DELAY = 0.015
"""Seconds between streamed words of the built-in server when a person watches:
fast enough not to bore, slow enough to see that it streams."""
_MODELS_SHOWN = 8


@dataclass(frozen=True)
class ServerOptions:
    """The server-selection flags, with the environment filled in where a flag is absent."""

    base_url: str | None = None
    model: str | None = None
    profile: str | None = None
    api_key: str | None = field(default=None, repr=False)
    timeout: float | None = None
    scripted: bool = False

    @classmethod
    def from_args(
        cls, args: argparse.Namespace, environ: Mapping[str, str] | None = None
    ) -> ServerOptions:
        env = os.environ if environ is None else environ
        return cls(
            base_url=args.base_url or env.get(ENV_BASE_URL) or None,
            model=args.model or env.get(ENV_MODEL) or None,
            profile=args.profile or env.get(ENV_PROFILE) or None,
            api_key=args.api_key or env.get(ENV_API_KEY) or None,
            timeout=args.timeout,
            scripted=args.scripted,
        )


@dataclass(frozen=True)
class Target:
    """A chosen server (and model, once known), able to build clients for it."""

    base_url: str
    model: str | None
    profile: str | ServerProfile | None
    api_key: str | None = field(default=None, repr=False)
    timeout: float | None = None
    info: ServerInfo | None = None
    """What discovery learnt, when the server was found by looking for it."""
    builtin: bool = False

    def _client_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"api_key": self.api_key, "profile": self.profile}
        if self.timeout is not None:
            # A server that is not there should still fail fast, however long answers may take.
            kwargs["timeout"] = httpx.Timeout(self.timeout, connect=DEFAULT_TIMEOUT.connect)
        return kwargs

    def client(self, model: str | None = None) -> Client:
        # Listing models needs no model, but a client is built for one.
        return Client(self.base_url, model or self.model or "-", **self._client_kwargs())

    def async_client(self) -> AsyncClient:
        return AsyncClient(self.base_url, self.model or "-", **self._client_kwargs())

    @property
    def profile_name(self) -> str:
        if isinstance(self.profile, ServerProfile):
            return self.profile.name
        if self.profile:
            return get_profile(self.profile).name
        hosted = preset_for_url(self.base_url)
        return hosted.name if hosted else "generic"


class _BuiltinPolicy:
    """The scripted server's default model, streaming at a visible pace for people."""

    def __init__(self, chunk_delay: float) -> None:
        self._policy = DefaultPolicy()
        self._chunk_delay = chunk_delay

    def __call__(self, request: RecordedRequest) -> Reply | RawReply:
        reply = self._policy(request)
        if isinstance(reply, Reply) and self._chunk_delay:
            return replace(reply, chunk_delay=self._chunk_delay)
        return reply


def start_builtin_server(stack: ExitStack, *, paced: bool) -> ScriptedServer:
    """The scripted server, stopped when ``stack`` closes."""
    policy = _BuiltinPolicy(_DEMO_CHUNK_DELAY if paced else 0.0)
    return stack.enter_context(ScriptedServer(policy=policy))


def given_target(options: ServerOptions) -> Target | None:
    """The server the flags or environment name, if they name one."""
    base_url = options.base_url
    if base_url is None and options.profile is not None:
        preset = get_profile(options.profile)
        if preset.default_base_url is None:
            raise ValueError(
                f"profile {preset.name!r} has no default URL: pass --base-url "
                f"(or set {ENV_BASE_URL})"
            )
        base_url = preset.default_base_url
    if base_url is None:
        return None
    return Target(
        base_url=base_url,
        model=options.model,
        profile=options.profile,
        api_key=options.api_key,
        timeout=options.timeout,
    )


def _builtin_target(stack: ExitStack, options: ServerOptions, console: Console) -> Target:
    server = start_builtin_server(stack, paced=console.interactive)
    return Target(
        base_url=server.base_url,
        model=options.model or server.model,
        profile=None,
        timeout=options.timeout,
        builtin=True,
    )


def _detected_target(info: ServerInfo, options: ServerOptions) -> Target:
    return Target(
        base_url=info.base_url,
        model=options.model or info.model,
        profile=options.profile or (info.kind if info.kind != "generic" else None),
        api_key=options.api_key,
        timeout=options.timeout,
        info=info,
    )


def describe_server(info: ServerInfo) -> str:
    version = f" {info.version}" if info.version else ""
    return f"{info.kind}{version} at {info.base_url}"


@contextmanager
def connect(options: ServerOptions, console: Console, *, need_model: bool) -> Iterator[Target]:
    """The server to use for one command; a built-in server started here is stopped on exit."""
    with ExitStack() as stack:
        target = given_target(options)
        if target is None and options.scripted:
            target = _builtin_target(stack, options, console)
            console.note(f"Using the {_BUILTIN} at {target.base_url} (canned answers).")
        elif target is None:
            found = detect_local_servers()
            if found:
                target = _detected_target(found[0], options)
                others = "; also found: " + ", ".join(map(describe_server, found[1:]))
                console.note(f"Using {describe_server(found[0])}{others if found[1:] else ''}.")
            else:
                target = _builtin_target(stack, options, console)
                console.note(
                    "No OpenAI-compatible server answered on the default local ports; using the "
                    f"{_BUILTIN} at {target.base_url} (canned answers)."
                )
        if need_model and target.model is None:
            target = replace(target, model=choose_model(target, console))
        yield target


def choose_model(target: Target, console: Console) -> str:
    """The first model the server lists; hosted APIs list too many to pick one for the user."""
    profile = get_profile(target.profile_name)
    if profile.api_key_required:
        raise ValueError(f"name a model with --model (or set {ENV_MODEL}) for {profile.name}")
    with target.client() as client:
        models = client.list_models()
    if not models:
        raise ValueError(f"{target.base_url} lists no models: name one with --model")
    if len(models) > 1:
        listed = ", ".join(models[:_MODELS_SHOWN]) + (
            ", ..." if len(models) > _MODELS_SHOWN else ""
        )
        console.note(f"Model {models[0]} (served: {listed}; choose with --model).")
    return models[0]

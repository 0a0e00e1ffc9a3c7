"""``oaicompat models`` and ``oaicompat doctor``: what a server serves, and what it supports."""

from __future__ import annotations

from contextlib import ExitStack

from oaicompat._cli.console import Console
from oaicompat._cli.target import (
    ServerOptions,
    Target,
    describe_server,
    given_target,
    start_builtin_server,
)
from oaicompat.discovery import ServerInfo, detect_local_servers
from oaicompat.profiles import PRESETS, ServerProfile
from oaicompat.structured import StructuredSpec, choose_method

_MODELS_SHOWN = 20
_OBJECT = {"type": "object", "properties": {"answer": {"type": "string"}}}


def run_models(target: Target, console: Console) -> int:
    with target.client() as client:
        models = client.list_models()
    for model in models:
        console.line(model)
    if not models:
        console.note(f"{target.base_url} lists no models.")
    return 0


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def capabilities(profile: ServerProfile) -> list[tuple[str, str]]:
    """What the profile says this kind of server supports, as (topic, summary) rows."""
    if profile.supports_tools:
        choices = ["auto"]
        if profile.supports_tool_choice_required:
            choices.append("required")
        if profile.supports_named_tool_choice:
            choices.append("a named tool")
        forcing = ", ".join(choices) if profile.supports_tool_choice else "ignored by the server"
        tools = (
            f"yes; tool_choice: {forcing}; "
            f"parallel calls: {_yes(profile.supports_parallel_tool_calls)}"
        )
    else:
        tools = "no"
    # What `structured_method="auto"` picks for an object schema on this server.
    method = choose_method("auto", StructuredSpec(name="answer", schema=_OBJECT), profile)
    structured = (
        f"{method} (json_schema: {_yes(profile.supports_json_schema)}, "
        f"json_object: {_yes(profile.supports_json_object)})"
    )
    reasoning = "from " + ", ".join(profile.reasoning_fields)
    if profile.think_tags:
        reasoning += "; <think> tags split from the content"
    usage = "asked for" if profile.stream_usage else "only if the server sends it unasked"
    rows = [
        ("tools", tools),
        ("structured output", structured),
        ("usage when streaming", usage),
        ("reasoning", reasoning),
        ("max tokens sent as", profile.max_tokens_param),
    ]
    if profile.unsupported_params:
        rows.append(("never sent", ", ".join(sorted(profile.unsupported_params))))
    return rows


def show_server(console: Console, info: ServerInfo) -> None:
    console.line(describe_server(info))
    models = list(info.models)
    shown = ", ".join(models[:_MODELS_SHOWN]) or "none listed"
    if len(models) > _MODELS_SHOWN:
        shown += f" (and {len(models) - _MODELS_SHOWN} more)"
    context = f"{info.context_window} tokens" if info.context_window else "not reported"
    if info.context_window and info.model:
        context += f" ({info.model})"
    profile = info.profile
    rows = [
        ("version", info.version or "not reported"),
        ("models", shown),
        ("context window", context),
        ("profile", profile.name if profile.name in PRESETS else "generic"),
        *capabilities(profile),
    ]
    width = max(len(topic) for topic, _ in rows)
    for topic, value in rows:
        console.line(f"  {topic + ':':<{width + 1}} {value}")


def run_doctor(options: ServerOptions, console: Console) -> int:
    """Describe the given server, or every local one; the built-in one when none answers."""
    given = given_target(options)
    if given is not None:
        with given.client() as client:
            # The context window is a model's: without --model, the first one served.
            model = given.model or next(iter(client.list_models()), None)
        with given.client(model) as client:
            show_server(console, client.server_info())
        return 0
    with ExitStack() as stack:
        infos = [] if options.scripted else detect_local_servers()
        if not infos:
            server = start_builtin_server(stack, paced=False)
            if not options.scripted:
                console.note(
                    "No OpenAI-compatible server answered on the default local ports; showing "
                    f"the built-in scripted server at {server.base_url} instead."
                )
            with Target(server.base_url, server.model, None).client() as client:
                infos = [client.server_info()]
        for index, info in enumerate(infos):
            if index:
                console.line()
            show_server(console, info)
    return 0

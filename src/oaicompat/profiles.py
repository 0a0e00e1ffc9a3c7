"""Server quirks as data.

Every difference between OpenAI-compatible servers that the client has to
know about is a field here, so that no code path ever asks "is this Ollama?".
A profile is frozen; the client keeps its own copy and replaces it (with
``dataclasses.replace``) when it learns at run time that a server refuses a
parameter.

The presets record what each server's documentation and source say it does
with a request field: accept it, ignore it silently, or refuse the request.
Where a server ignores a field, sending it is harmless, but a capability flag
still says False so that structured output never relies on it. Where a server
refuses a field, the flag is False (and, for plain parameters, the field is in
``unsupported_params``), so the first request already succeeds. Anything a
preset gets wrong is corrected at run time by the fallback in ``fallback.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal
from urllib.parse import urlsplit

__all__ = ["PRESETS", "ServerProfile", "StructuredMethod", "get_profile", "preset_for_url"]

StructuredMethod = Literal["json_schema", "tool", "json_object"]


@dataclass(frozen=True, slots=True)
class ServerProfile:
    """What one kind of server accepts and how it answers. Every field has a default."""

    name: str = "generic"
    default_base_url: str | None = None

    # Authentication
    api_key_required: bool = False
    api_key_env: str | None = None
    """Environment variable read for the key when none is given. Only presets
    for hosted services set it, so a local server never receives a cloud key."""
    auth_header: str = "Authorization"
    auth_scheme: str = "Bearer"
    """Prefix before the key; empty for Azure's ``api-key`` header."""
    api_version: str | None = None
    """Sent as the ``api-version`` query parameter (Azure)."""

    # Streaming
    stream_usage: bool = True
    """Ask for a final usage chunk with ``stream_options.include_usage``."""
    supports_stream_options: bool = True

    # Reasoning
    reasoning_fields: tuple[str, ...] = ("reasoning_content", "reasoning", "reasoning_text")
    think_tags: bool = False
    """Split a leading ``<think>...</think>`` out of the content into reasoning."""

    # Tools
    supports_tools: bool = True
    supports_tool_choice: bool = True
    supports_tool_choice_required: bool = True
    supports_named_tool_choice: bool = True
    supports_parallel_tool_calls: bool = True

    # Structured output
    supports_json_schema: bool = True
    supports_json_object: bool = True
    structured_output_method: StructuredMethod = "json_schema"
    json_object_schema_key: str | None = None
    """Key under which ``response_format={"type": "json_object"}`` takes a JSON schema
    that the server then enforces (``"schema"`` for llama.cpp, llama-cpp-python and
    Fireworks, ``"value"`` for TGI, where it is required); None when it takes none."""

    # Parameters
    max_tokens_param: Literal["max_tokens", "max_completion_tokens"] = "max_tokens"
    unsupported_params: frozenset[str] = field(default_factory=frozenset)
    """Request parameters this server refuses; they are dropped before sending."""
    param_aliases: tuple[tuple[str, str], ...] = ()
    """``(openai_name, server_name)`` pairs for parameters the server spells its own
    way, e.g. Mistral's ``random_seed`` for ``seed``."""

    context_window: int | None = None
    """The context window when it is fixed for the service, else None (ask the server)."""

    def without_param(self, param: str) -> ServerProfile:
        """A copy that no longer sends ``param``."""
        return replace(self, unsupported_params=self.unsupported_params | {param})

    def alias_for(self, param: str) -> str | None:
        """The server's own name for ``param``, when it has one."""
        for openai_name, server_name in self.param_aliases:
            if openai_name == param:
                return server_name
        return None

    @property
    def is_local(self) -> bool:
        """True when the default URL is on this machine (a server to look for locally)."""
        if not self.default_base_url:
            return False
        host = urlsplit(self.default_base_url).hostname or ""
        return host in ("localhost", "127.0.0.1", "::1")


def _local(name: str, port: int, **overrides: object) -> ServerProfile:
    return ServerProfile(
        name=name,
        default_base_url=f"http://localhost:{port}/v1",
        **overrides,  # type: ignore[arg-type]
    )


def _hosted(name: str, base_url: str, key_env: str, **overrides: object) -> ServerProfile:
    return ServerProfile(
        name=name,
        default_base_url=base_url,
        api_key_required=True,
        api_key_env=key_env,
        **overrides,  # type: ignore[arg-type]
    )


PRESETS: dict[str, ServerProfile] = {
    "generic": ServerProfile(),
    # max_tokens is refused by the reasoning models ("Unsupported parameter:
    # 'max_tokens' is not supported with this model. Use 'max_completion_tokens'
    # instead."), and every current model takes max_completion_tokens.
    "openai": _hosted(
        "openai",
        "https://api.openai.com/v1",
        "OPENAI_API_KEY",
        max_tokens_param="max_completion_tokens",
    ),
    # The key goes in an `api-key` header and every request needs `api-version`;
    # the base URL is per resource (https://NAME.openai.azure.com/openai/deployments/DEPLOYMENT).
    "azure": ServerProfile(
        name="azure",
        api_key_required=True,
        api_key_env="AZURE_OPENAI_API_KEY",
        auth_header="api-key",
        auth_scheme="",
        api_version="2024-10-21",
        max_tokens_param="max_completion_tokens",
    ),
    # Ollama's Go decoder ignores fields it does not know, so max_completion_tokens
    # would be dropped silently: only max_tokens limits the output. It documents
    # stream_options.include_usage, json_object and json_schema (0.5+) and tools,
    # but ignores tool_choice and parallel_tool_calls. Thinking models answer in
    # `reasoning` (older versions inline <think> in the content).
    "ollama": _local(
        "ollama",
        11434,
        supports_tool_choice=False,
        supports_tool_choice_required=False,
        supports_named_tool_choice=False,
        supports_parallel_tool_calls=False,
        reasoning_fields=("reasoning", "reasoning_content"),
        think_tags=True,
    ),
    # vLLM takes named tool_choice, "required" since 0.8.3, json_schema and
    # json_object; versions before 0.6.4 refuse max_completion_tokens with
    # extra_forbidden, so max_tokens is the spelling every version accepts.
    # Without --reasoning-parser the <think> block stays in the content.
    "vllm": _local("vllm", 8000, think_tags=True),
    # llama-server reads tool_choice only as a string ("auto", "none", "required"):
    # a named choice is silently treated as "auto". response_format json_object
    # takes a "schema" that its grammar enforces. With --reasoning-format none the
    # <think> block stays in the content.
    "llamacpp": _local(
        "llamacpp",
        8080,
        supports_named_tool_choice=False,
        json_object_schema_key="schema",
        reasoning_fields=("reasoning_content",),
        think_tags=True,
    ),
    # `python -m llama_cpp.server`: its request model only knows response_format
    # types "text" and "json_object" (json_schema fails validation, reported as a
    # 500), takes a "schema" in json_object, ignores stream_options (so no usage
    # chunk), and with a function-calling chat format honours a named tool_choice.
    "llamacpp_python": _local(
        "llamacpp_python",
        8000,
        stream_usage=False,
        supports_stream_options=False,
        supports_tool_choice_required=False,
        supports_parallel_tool_calls=False,
        supports_json_schema=False,
        json_object_schema_key="schema",
        structured_output_method="json_object",
    ),
    # LM Studio answers 400 "'response_format.type' must be 'json_schema' or 'text'"
    # to json_object.
    "lmstudio": _local(
        "lmstudio",
        1234,
        supports_json_object=False,
        supports_named_tool_choice=False,
        think_tags=True,
    ),
    "sglang": _local("sglang", 30000, think_tags=True),
    # TGI's Messages API: response_format is {"type": "json_object", "value": SCHEMA}
    # (a json_schema body fails with "missing field `value`"); parallel_tool_calls
    # is ignored. Usually published on 8080 (docker -p 8080:80), like llama-server.
    "tgi": _local(
        "tgi",
        8080,
        supports_parallel_tool_calls=False,
        supports_json_schema=False,
        json_object_schema_key="value",
        structured_output_method="json_object",
        think_tags=True,
    ),
    # The proxy forwards to whatever backend a model maps to and drops what it cannot.
    "litellm": _local("litellm", 4000),
    "openrouter": _hosted(
        "openrouter",
        "https://openrouter.ai/api/v1",
        "OPENROUTER_API_KEY",
        reasoning_fields=("reasoning", "reasoning_content"),
    ),
    # DeepSeek refuses json_schema ("This response_format type is unavailable now");
    # json_object needs the word "json" in the prompt, which the structured-output
    # instruction provides. Its reasoning models refuse a forced tool_choice.
    "deepseek": _hosted(
        "deepseek",
        "https://api.deepseek.com/v1",
        "DEEPSEEK_API_KEY",
        supports_json_schema=False,
        structured_output_method="json_object",
        reasoning_fields=("reasoning_content",),
    ),
    # Groq documents a 400 for logprobs, logit_bias and top_logprobs; usage also
    # arrives under x_groq.usage; reasoning comes in `reasoning`.
    "groq": _hosted(
        "groq",
        "https://api.groq.com/openai/v1",
        "GROQ_API_KEY",
        max_tokens_param="max_completion_tokens",
        unsupported_params=frozenset({"logprobs", "logit_bias", "top_logprobs"}),
        reasoning_fields=("reasoning", "reasoning_content"),
        think_tags=True,
    ),
    "together": _hosted(
        "together",
        "https://api.together.xyz/v1",
        "TOGETHER_API_KEY",
        reasoning_fields=("reasoning", "reasoning_content"),
        think_tags=True,
    ),
    # Mistral validates strictly (422 "Extra inputs are not permitted") and does not
    # know stream_options (usage always comes on the last chunk), max_completion_tokens
    # or seed (its name is random_seed).
    "mistral": _hosted(
        "mistral",
        "https://api.mistral.ai/v1",
        "MISTRAL_API_KEY",
        supports_stream_options=False,
        stream_usage=False,
        param_aliases=(("seed", "random_seed"),),
    ),
    # Fireworks has refused stream_options (400 "Extra inputs are not permitted,
    # field: 'stream_options'") and sends usage on the last chunk anyway; json_object
    # takes a "schema".
    "fireworks": _hosted(
        "fireworks",
        "https://api.fireworks.ai/inference/v1",
        "FIREWORKS_API_KEY",
        supports_stream_options=False,
        stream_usage=False,
        json_object_schema_key="schema",
        think_tags=True,
    ),
}

_ALIASES = {
    "llamacppserver": "llamacpp",
    "llamaserver": "llamacpp",
    "llamacpppython": "llamacpp_python",
    "llamacpppythonserver": "llamacpp_python",
    "azureopenai": "azure",
    "textgenerationinference": "tgi",
    "litellmproxy": "litellm",
}


def _normalized(name: str) -> str:
    return name.lower().replace("-", "").replace("_", "").replace(".", "").replace(" ", "")


def get_profile(profile: str | ServerProfile | None) -> ServerProfile:
    """A preset by name, a given profile as is, or the generic profile."""
    if profile is None:
        return PRESETS["generic"]
    if isinstance(profile, ServerProfile):
        return profile
    key = _normalized(profile)
    key = _normalized(_ALIASES.get(key, key))
    for name, preset in PRESETS.items():
        if _normalized(name) == key:
            return preset
    known = ", ".join(sorted(PRESETS))
    raise ValueError(f"unknown server profile {profile!r}; known: {known}")


def preset_for_url(base_url: str) -> ServerProfile | None:
    """The hosted-service preset whose default URL has the same host as ``base_url``.

    A hosted API is identified by its host (api.groq.com is Groq), so this is data
    lookup rather than a guess; local servers share hosts and are told apart by
    what they answer, not by their URL.
    """
    host = urlsplit(base_url).hostname
    if not host:
        return None
    for preset in PRESETS.values():
        hosted = preset.default_base_url is not None and not preset.is_local
        if hosted and urlsplit(preset.default_base_url or "").hostname == host:
            return preset
    return None

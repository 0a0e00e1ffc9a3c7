"""Server quirks as data.

Every difference between OpenAI-compatible servers that the client has to
know about is a field here, so that no code path ever asks "is this Ollama?".
A profile is frozen; the client keeps its own copy and replaces it (with
``dataclasses.replace``) when it learns at run time that a server refuses a
parameter.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

__all__ = ["PRESETS", "ServerProfile", "get_profile"]

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

    # Parameters
    max_tokens_param: Literal["max_tokens", "max_completion_tokens"] = "max_tokens"
    unsupported_params: frozenset[str] = field(default_factory=frozenset)
    """Request parameters this server refuses; they are dropped before sending."""

    context_window: int | None = None
    """The context window when it is fixed for the service, else None (ask the server)."""

    def without_param(self, param: str) -> ServerProfile:
        """A copy that no longer sends ``param``."""
        from dataclasses import replace

        return replace(self, unsupported_params=self.unsupported_params | {param})


def _local(name: str, port: int, **overrides: object) -> ServerProfile:
    return ServerProfile(
        name=name,
        default_base_url=f"http://localhost:{port}/v1",
        **overrides,  # type: ignore[arg-type]
    )


PRESETS: dict[str, ServerProfile] = {
    "generic": ServerProfile(),
    "openai": ServerProfile(
        name="openai",
        default_base_url="https://api.openai.com/v1",
        api_key_required=True,
        api_key_env="OPENAI_API_KEY",
        max_tokens_param="max_completion_tokens",
    ),
    "azure": ServerProfile(
        name="azure",
        api_key_required=True,
        api_key_env="AZURE_OPENAI_API_KEY",
        auth_header="api-key",
        auth_scheme="",
        api_version="2024-10-21",
        max_tokens_param="max_completion_tokens",
    ),
    "ollama": _local(
        "ollama",
        11434,
        supports_tool_choice_required=False,
        supports_named_tool_choice=False,
        supports_parallel_tool_calls=False,
    ),
    "vllm": _local("vllm", 8000),
    "llamacpp": _local("llamacpp", 8080, supports_parallel_tool_calls=True),
    "lmstudio": _local("lmstudio", 1234, supports_json_object=False),
    "sglang": _local("sglang", 30000),
    "tgi": _local(
        "tgi",
        8080,
        supports_stream_options=False,
        stream_usage=False,
        supports_parallel_tool_calls=False,
        supports_json_object=False,
    ),
    "litellm": ServerProfile(name="litellm", default_base_url="http://localhost:4000/v1"),
    "openrouter": ServerProfile(
        name="openrouter",
        default_base_url="https://openrouter.ai/api/v1",
        api_key_required=True,
        api_key_env="OPENROUTER_API_KEY",
    ),
    "deepseek": ServerProfile(
        name="deepseek",
        default_base_url="https://api.deepseek.com/v1",
        api_key_required=True,
        api_key_env="DEEPSEEK_API_KEY",
        supports_json_schema=False,
        structured_output_method="tool",
        supports_parallel_tool_calls=False,
    ),
    "groq": ServerProfile(
        name="groq",
        default_base_url="https://api.groq.com/openai/v1",
        api_key_required=True,
        api_key_env="GROQ_API_KEY",
    ),
    "together": ServerProfile(
        name="together",
        default_base_url="https://api.together.xyz/v1",
        api_key_required=True,
        api_key_env="TOGETHER_API_KEY",
    ),
    "mistral": ServerProfile(
        name="mistral",
        default_base_url="https://api.mistral.ai/v1",
        api_key_required=True,
        api_key_env="MISTRAL_API_KEY",
        supports_stream_options=False,
        stream_usage=False,
    ),
    "fireworks": ServerProfile(
        name="fireworks",
        default_base_url="https://api.fireworks.ai/inference/v1",
        api_key_required=True,
        api_key_env="FIREWORKS_API_KEY",
    ),
}


def get_profile(profile: str | ServerProfile | None) -> ServerProfile:
    """A preset by name, a given profile as is, or the generic profile."""
    if profile is None:
        return PRESETS["generic"]
    if isinstance(profile, ServerProfile):
        return profile
    key = profile.lower().replace("-", "").replace("_", "").replace(".", "")
    aliases = {"llamacppserver": "llamacpp", "llamacpp": "llamacpp", "azureopenai": "azure"}
    key = aliases.get(key, key)
    try:
        return PRESETS[key]
    except KeyError:
        known = ", ".join(sorted(PRESETS))
        raise ValueError(f"unknown server profile {profile!r}; known: {known}") from None

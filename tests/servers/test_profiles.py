"""Every preset's request shape through the clients, the factories, and client discovery."""

from __future__ import annotations

import inspect
import json
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from oaicompat import AsyncClient, Client
from oaicompat.discovery import ServerInfo
from oaicompat.errors import AuthenticationError, NotFoundError
from oaicompat.profiles import PRESETS, ServerProfile, get_profile, preset_for_url
from oaicompat.structured import method_in_body

from .harness import BASE_URL, Both, Script, completion, ok, sse
from .recorded import OLLAMA, Recorder

TOOLS = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]
SCHEMA = {"title": "Answer", "type": "object", "properties": {"a": {"type": "integer"}}}


@dataclass(frozen=True)
class Shape:
    """What a preset's server is sent for one streamed call with every option set."""

    limit: str = "max_tokens"
    stream_options: bool = True
    parallel_tool_calls: bool = True
    tool_choice: Any = "required"
    seed: str = "seed"
    structured: str = "json_schema"
    dropped: frozenset[str] = frozenset()


SHAPES: dict[str, Shape] = {
    "generic": Shape(),
    "openai": Shape(limit="max_completion_tokens"),
    "azure": Shape(limit="max_completion_tokens"),
    "ollama": Shape(parallel_tool_calls=False, tool_choice=None),
    "vllm": Shape(),
    "llamacpp": Shape(),
    "llamacpp_python": Shape(
        stream_options=False,
        parallel_tool_calls=False,
        tool_choice="auto",
        structured="json_object",
    ),
    "lmstudio": Shape(),
    "sglang": Shape(),
    "tgi": Shape(parallel_tool_calls=False, structured="json_object"),
    "litellm": Shape(),
    "openrouter": Shape(),
    "deepseek": Shape(structured="json_object"),
    "groq": Shape(limit="max_completion_tokens", dropped=frozenset({"logit_bias"})),
    "together": Shape(),
    "mistral": Shape(stream_options=False, seed="random_seed"),
    "fireworks": Shape(stream_options=False),
}


def test_every_preset_has_a_shape() -> None:
    assert set(SHAPES) == set(PRESETS)


def _client(name: str, script: Script) -> Client:
    base_url = None if PRESETS[name].default_base_url else "https://res.openai.azure.com/openai"
    return Client(
        base_url,
        "m",
        profile=name,
        api_key="sk-test",
        http_client=httpx.Client(transport=httpx.MockTransport(script)),
    )


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_preset_request_shape(name: str) -> None:
    shape = SHAPES[name]
    script = Script(sse(completion("ok")))
    client = _client(name, script)
    with client.stream(
        "hi",
        tools=TOOLS,
        tool_choice="required",
        parallel_tool_calls=False,
        max_tokens=64,
        seed=7,
        logit_bias={"50256": -100},
    ) as stream:
        stream.final()
    body = script.body(0)
    assert body[shape.limit] == 64
    assert {"max_tokens", "max_completion_tokens"} - {shape.limit} & set(body) == set()
    assert ("stream_options" in body) is shape.stream_options
    assert ("parallel_tool_calls" in body) is shape.parallel_tool_calls
    assert body.get("tool_choice") == shape.tool_choice
    assert body[shape.seed] == 7
    assert body["stream"] is True
    assert body["tools"][0]["function"]["name"] == "lookup"
    for param in shape.dropped:
        assert param not in body
    if not shape.dropped:
        assert body["logit_bias"] == {"50256": -100}


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_preset_structured_request(name: str) -> None:
    script = Script(ok(completion('{"a": 1}')))
    client = _client(name, script)
    assert client.chat("hi", response_format=SCHEMA).parsed == {"a": 1}
    assert method_in_body(script.body(0)) == SHAPES[name].structured


def test_azure_sends_api_key_header_and_api_version() -> None:
    script = Script(ok(completion("ok")))
    client = _client("azure", script)
    client.chat("hi")
    request = script.requests[0]
    assert request.headers["api-key"] == "sk-test"
    assert "authorization" not in request.headers
    assert request.url.params["api-version"] == get_profile("azure").api_version


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_only_hosted_presets_read_a_key_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    for preset in PRESETS.values():
        if preset.api_key_env:
            monkeypatch.setenv(preset.api_key_env, "env-key")
    script = Script(ok(completion("ok")))
    base_url = None if PRESETS[name].default_base_url else "https://res.openai.azure.com/openai"
    client = Client(
        base_url, "m", profile=name, http_client=httpx.Client(transport=httpx.MockTransport(script))
    )
    client.chat("hi")
    headers = script.requests[0].headers
    sent = headers.get("authorization") or headers.get("api-key")
    if PRESETS[name].is_local or name == "generic":
        assert sent is None
    else:
        assert sent in ("Bearer env-key", "env-key")


@pytest.mark.parametrize(
    ("given", "name"),
    [
        ("llama.cpp", "llamacpp"),
        ("llama-server", "llamacpp"),
        ("llama-cpp-python", "llamacpp_python"),
        ("LM Studio", "lmstudio"),
        ("Azure-OpenAI", "azure"),
        ("text-generation-inference", "tgi"),
        (None, "generic"),
    ],
)
def test_profile_names_and_aliases(given: str | None, name: str) -> None:
    assert get_profile(given).name == name


def test_unknown_profile_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match="ollama"):
        get_profile("olama")


def test_hosted_presets_are_found_by_host() -> None:
    assert preset_for_url("https://api.mistral.ai/v1").name == "mistral"  # type: ignore[union-attr]
    assert preset_for_url("https://openrouter.ai/api/v1").name == "openrouter"  # type: ignore[union-attr]
    assert preset_for_url("http://localhost:11434/v1") is None


def test_local_presets_are_on_their_documented_ports() -> None:
    ports = {
        name: httpx.URL(preset.default_base_url).port
        for name, preset in PRESETS.items()
        if preset.is_local and preset.default_base_url
    }
    assert ports == {
        "ollama": 11434,
        "vllm": 8000,
        "llamacpp": 8080,
        "llamacpp_python": 8000,
        "lmstudio": 1234,
        "sglang": 30000,
        "tgi": 8080,
        "litellm": 4000,
    }


# Factories ------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", [Client, AsyncClient])
@pytest.mark.parametrize(
    ("factory", "url", "profile"),
    [
        ("for_ollama", "http://localhost:11434/v1", "ollama"),
        ("for_vllm", "http://localhost:8000/v1", "vllm"),
        ("for_lmstudio", "http://localhost:1234/v1", "lmstudio"),
        ("for_llamacpp", "http://localhost:8080/v1", "llamacpp"),
    ],
)
def test_factories(cls: type[Client | AsyncClient], factory: str, url: str, profile: str) -> None:
    client = getattr(cls, factory)("llama3.1", temperature=0.2)
    assert isinstance(client, cls)
    assert (client.base_url, client.model, client.profile.name) == (url, "llama3.1", profile)
    assert client.default_params == {"temperature": 0.2}
    moved = getattr(cls, factory)("llama3.1", base_url="http://gpu-box:9000/v1")
    assert moved.base_url == "http://gpu-box:9000/v1"


def test_for_server_takes_any_preset() -> None:
    client = Client.for_server("sglang", "qwen")
    assert (client.base_url, client.profile.name) == ("http://localhost:30000/v1", "sglang")


def test_sync_and_async_clients_expose_the_same_server_names() -> None:
    names = ("list_models", "health", "preflight", "server_info", "for_server", "for_ollama")
    for name in names:
        assert hasattr(Client, name)
        assert hasattr(AsyncClient, name)
    for name in ("list_models", "health", "preflight", "server_info"):
        assert not inspect.iscoroutinefunction(getattr(Client, name))
        assert inspect.iscoroutinefunction(getattr(AsyncClient, name))
    sync_chat = inspect.signature(Client.chat).parameters
    async_chat = inspect.signature(AsyncClient.chat).parameters
    assert "structured_method" in sync_chat
    assert list(sync_chat) == list(async_chat)


# Discovery through the clients ---------------------------------------------------------


@pytest.fixture(params=[False, True], ids=["sync", "async"])
def ollama(request: pytest.FixtureRequest) -> tuple[Both, Recorder]:
    recorder = Recorder(OLLAMA)
    both = Both(request.param, Script(ok(completion())), "ollama", api_key="secret-key")
    transport = httpx.MockTransport(recorder)
    # The discovery requests go to the recorded server; chat is not used here.
    http: Any = (
        httpx.AsyncClient(transport=transport)
        if request.param
        else httpx.Client(transport=transport)
    )
    both.client._http_base = http
    return both, recorder


async def test_client_server_info(ollama: tuple[Both, Recorder]) -> None:
    both, recorder = ollama
    both.client._model = "llama3.1"
    info = await both.call("server_info")
    assert isinstance(info, ServerInfo)
    assert (info.kind, info.context_window, info.model) == ("ollama", 8192, "llama3.1:latest")
    assert info.base_url == BASE_URL
    assert all(r.headers["authorization"] == "Bearer secret-key" for r in recorder.requests)


async def test_client_list_models_health_preflight(ollama: tuple[Both, Recorder]) -> None:
    both, _ = ollama
    assert await both.call("list_models") == ["llama3.1:latest", "qwen3:0.6b"]
    assert await both.call("health") is True
    both.client._model = "qwen3:0.6b"
    assert await both.call("preflight") == "qwen3:0.6b"
    both.client._model = "mistral"
    with pytest.raises(NotFoundError, match=r"available: llama3\.1:latest, qwen3:0\.6b"):
        await both.call("preflight")


async def test_discovery_errors_never_show_the_key(ollama: tuple[Both, Recorder]) -> None:
    both, recorder = ollama
    echo = {"error": {"message": "Invalid API key: secret-key", "type": "invalid_request_error"}}
    recorder.routes = {("GET", "/v1/models"): (401, echo)}
    with pytest.raises(AuthenticationError) as caught:
        await both.call("list_models")
    assert "secret-key" not in str(caught.value)
    assert "secret-key" not in json.dumps(getattr(caught.value, "server_message", ""))


def test_profile_is_frozen_and_replaced_not_mutated() -> None:
    profile = ServerProfile()
    with pytest.raises(AttributeError):
        profile.stream_usage = False  # type: ignore[misc]
    assert profile.without_param("seed").unsupported_params == {"seed"}
    assert profile.unsupported_params == frozenset()

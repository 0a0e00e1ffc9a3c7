"""What the client sends: URL, headers, authentication, body, timeouts; and what it owns."""

from __future__ import annotations

import httpx
import pytest
from client_harness import CHAT_URL, Mode, ScriptedServer, completion, json_reply

from oaicompat import AsyncClient, Client, ServerProfile

KEY = "sk-test-0123456789abcdef"


def ok_server() -> ScriptedServer:
    return ScriptedServer(json_reply(completion()))


# Base URL -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("base_url", "expected"),
    [
        ("http://localhost:11434", "http://localhost:11434/v1/chat/completions"),
        ("http://localhost:11434/", "http://localhost:11434/v1/chat/completions"),
        ("http://localhost:11434/v1", "http://localhost:11434/v1/chat/completions"),
        ("http://localhost:11434/v1/", "http://localhost:11434/v1/chat/completions"),
        ("https://api.openai.com/v1", "https://api.openai.com/v1/chat/completions"),
        ("https://openrouter.ai/api/v1", "https://openrouter.ai/api/v1/chat/completions"),
        ("http://h:8000/v1/chat/completions", "http://h:8000/v1/chat/completions"),
        ("  http://h:8000/v1  ", "http://h:8000/v1/chat/completions"),
    ],
)
async def test_base_url_as_users_write_it(mode: Mode, base_url: str, expected: str) -> None:
    server = ok_server()
    client = mode.client(server, base_url=base_url)
    await mode.chat(client)
    assert str(server.requests[0].url) == expected
    assert client.base_url == expected.removesuffix("/chat/completions")


async def test_chat_path_overrides_the_endpoint(mode: Mode) -> None:
    server = ok_server()
    client = mode.client(server, base_url="http://h:9000/api", chat_path="/generate/chat")
    await mode.chat(client)
    assert str(server.requests[0].url) == "http://h:9000/api/generate/chat"


async def test_chat_path_may_be_a_full_url(mode: Mode) -> None:
    server = ok_server()
    client = mode.client(server, chat_path="http://other:1234/custom/route")
    await mode.chat(client)
    assert str(server.requests[0].url) == "http://other:1234/custom/route"


async def test_base_url_from_the_profile(mode: Mode) -> None:
    server = ok_server()
    profile = ServerProfile(name="local", default_base_url="http://127.0.0.1:8080/v1")
    client = mode.client(server, base_url=None, profile=profile)
    await mode.chat(client)
    assert str(server.requests[0].url) == "http://127.0.0.1:8080/v1/chat/completions"


@pytest.mark.parametrize("client_class", [Client, AsyncClient])
def test_missing_or_invalid_base_url_is_refused(client_class: type[Client | AsyncClient]) -> None:
    with pytest.raises(ValueError, match="base_url is required"):
        client_class(None, "m")
    with pytest.raises(ValueError, match="http"):
        client_class("localhost:11434", "m")
    with pytest.raises(ValueError, match="model is required"):
        client_class("http://localhost:11434", "")


@pytest.mark.parametrize(
    ("client_class", "wrong_http"),
    [(Client, httpx.AsyncClient), (AsyncClient, httpx.Client)],
)
def test_http_client_of_the_wrong_kind_is_refused(
    client_class: type[Client | AsyncClient], wrong_http: type[httpx.Client | httpx.AsyncClient]
) -> None:
    with pytest.raises(TypeError, match="http_client"):
        client_class("http://h", "m", http_client=wrong_http())


# Authentication ---------------------------------------------------------------


async def test_no_authorization_header_without_a_key(mode: Mode) -> None:
    server = ok_server()
    await mode.chat(mode.client(server))
    assert "authorization" not in server.requests[0].headers


async def test_bearer_key(mode: Mode) -> None:
    server = ok_server()
    await mode.chat(mode.client(server, api_key=KEY))
    assert server.requests[0].headers["authorization"] == f"Bearer {KEY}"


async def test_azure_style_key_header_and_api_version(mode: Mode) -> None:
    server = ok_server()
    client = mode.client(
        server, base_url="https://res.openai.azure.com/openai/deployments/gpt", profile="azure"
    )
    await mode.chat(client)
    assert "authorization" not in server.requests[0].headers
    client = mode.client(
        server,
        base_url="https://res.openai.azure.com/openai/deployments/gpt",
        profile="azure",
        api_key=KEY,
    )
    await mode.chat(client)
    request = server.requests[-1]
    assert request.headers["api-key"] == KEY
    assert "authorization" not in request.headers
    assert request.url.params["api-version"] == client.profile.api_version
    assert request.url.path == "/openai/deployments/gpt/chat/completions"


async def test_openai_key_in_environment_is_not_sent_to_a_local_server(
    mode: Mode, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    server = ok_server()
    await mode.chat(mode.client(server, base_url="http://localhost:11434"))
    await mode.chat(mode.client(server, base_url="http://localhost:11434", profile="ollama"))
    assert all("authorization" not in request.headers for request in server.requests)


async def test_hosted_url_picks_its_preset_and_key_variable(
    mode: Mode, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("GROQ_API_KEY", "gsk-groq")
    server = ok_server()
    openai = mode.client(server, base_url="https://api.openai.com/v1")
    groq = mode.client(server, base_url="https://api.groq.com/openai/v1")
    await mode.chat(openai)
    await mode.chat(groq)
    assert openai.profile.name == "openai"
    assert server.requests[0].headers["authorization"] == f"Bearer {KEY}"
    assert groq.profile.name == "groq"
    assert server.requests[1].headers["authorization"] == "Bearer gsk-groq"


async def test_key_from_the_variable_the_profile_names(
    mode: Mode, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    server = ok_server()
    await mode.chat(mode.client(server, base_url=None, profile="openai"))
    assert server.requests[0].headers["authorization"] == f"Bearer {KEY}"
    await mode.chat(mode.client(server, base_url=None, profile="openai", api_key="sk-explicit"))
    assert server.requests[1].headers["authorization"] == "Bearer sk-explicit"
    assert str(server.requests[0].url) == "https://api.openai.com/v1/chat/completions"


async def test_key_is_added_per_request_not_to_an_injected_client(mode: Mode) -> None:
    server = ok_server()
    http = mode.http_client(server, headers={"X-Team": "blue"})
    client = mode.client(server, http_client=http, api_key=KEY, headers={"X-Trace": "on"})
    await mode.chat(client)
    request = server.requests[0]
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert request.headers["x-team"] == "blue"
    assert request.headers["x-trace"] == "on"
    assert "authorization" not in http.headers
    assert KEY not in str(dict(http.headers))


@pytest.mark.parametrize("client_class", [Client, AsyncClient])
def test_key_not_in_repr_str_or_attributes(client_class: type[Client | AsyncClient]) -> None:
    client = client_class("http://h:1/v1", "m", api_key=KEY, profile="openai")
    for text in (repr(client), str(client), repr(vars(client)), str(vars(client))):
        assert KEY not in text
    assert "http://h:1/v1" in repr(client)


# Request body -----------------------------------------------------------------


async def test_unset_options_are_not_sent(mode: Mode) -> None:
    server = ok_server()
    messages = [{"role": "user", "content": "Hi"}]
    await mode.chat(mode.client(server), messages)
    assert server.body() == {"model": "test-model", "messages": messages}


async def test_defaults_and_per_call_params(mode: Mode) -> None:
    server = ok_server()
    client = mode.client(server, temperature=0.2, max_tokens=50, seed=7)
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    await mode.chat(
        client, tools=tools, tool_choice="auto", temperature=0.9, seed=None, model="other"
    )
    body = server.body()
    assert body["temperature"] == 0.9
    assert body["max_tokens"] == 50
    assert "seed" not in body
    assert body["model"] == "other"
    assert body["tools"] == tools
    assert body["tool_choice"] == "auto"
    assert "stream" not in body
    assert client.default_params == {"temperature": 0.2, "max_tokens": 50, "seed": 7}


async def test_stream_request_asks_for_events_and_usage(mode: Mode) -> None:
    from client_harness import sse_reply, text_stream_events

    server = ScriptedServer(sse_reply(text_stream_events(["a"])))
    await mode.stream_all(mode.client(server))
    body = server.body()
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert server.requests[0].headers["accept"] == "text/event-stream"
    # The stream is read as raw bytes, so it must not arrive compressed.
    assert server.requests[0].headers["accept-encoding"] == "identity"
    assert str(server.requests[0].url) == CHAT_URL


# Timeouts ---------------------------------------------------------------------


def request_timeout(server: ScriptedServer) -> dict[str, float | None]:
    timeout: dict[str, float | None] = server.requests[-1].extensions["timeout"]
    return timeout


async def test_default_timeout_is_finite(mode: Mode) -> None:
    server = ok_server()
    client = mode.client_class("http://h/v1", "m")
    await mode.close(client)
    assert client.timeout.read is not None
    assert client.timeout.connect is not None
    assert client.timeout.connect <= client.timeout.read
    await mode.chat(mode.client(server, timeout=httpx.Timeout(30.0, connect=2.0)))
    assert request_timeout(server) == {"connect": 2.0, "read": 30.0, "write": 30.0, "pool": 30.0}


@pytest.mark.parametrize(
    ("timeout", "expected"),
    [
        (5, {"connect": 5.0, "read": 5.0, "write": 5.0, "pool": 5.0}),
        (2.5, {"connect": 2.5, "read": 2.5, "write": 2.5, "pool": 2.5}),
        (None, {"connect": None, "read": None, "write": None, "pool": None}),
    ],
)
async def test_timeout_forms(
    mode: Mode, timeout: float | None, expected: dict[str, float | None]
) -> None:
    server = ok_server()
    await mode.chat(mode.client(server, timeout=timeout))
    assert request_timeout(server) == expected


async def test_injected_client_keeps_its_timeout_unless_one_is_given(mode: Mode) -> None:
    server = ok_server()
    http = mode.http_client(server, timeout=httpx.Timeout(7.0))
    await mode.chat(mode.client(server, http_client=http))
    assert request_timeout(server)["read"] == 7.0
    await mode.chat(mode.client(server, http_client=http, timeout=3.0))
    assert request_timeout(server)["read"] == 3.0


@pytest.mark.parametrize("timeout", [0, -1, "10", True])
def test_bad_timeout_is_refused(timeout: object) -> None:
    with pytest.raises(ValueError, match="timeout"):
        Client("http://h", "m", timeout=timeout)  # type: ignore[arg-type]


# Lifecycle --------------------------------------------------------------------


async def test_close_closes_only_an_owned_pool(mode: Mode) -> None:
    owned = mode.client_class("http://h/v1", "m")
    await mode.close(owned)
    assert owned._http.is_closed

    server = ok_server()
    http = mode.http_client(server)
    injected = mode.client(server, http_client=http)
    await mode.close(injected)
    assert not http.is_closed
    await mode.chat(mode.client(server, http_client=http))
    assert server.calls == 1


def test_sync_context_manager_closes() -> None:
    with Client("http://h/v1", "m") as client:
        assert not client._http.is_closed
    assert client._http.is_closed


async def test_async_context_manager_closes() -> None:
    async with AsyncClient("http://h/v1", "m") as client:
        assert not client._http.is_closed
    assert client._http.is_closed


def test_exposes_base_url_model_profile() -> None:
    with Client("http://localhost:8080", "llama", profile="llamacpp") as client:
        assert client.base_url == "http://localhost:8080/v1"
        assert client.model == "llama"
        assert client.profile.name == "llamacpp"
        assert client.max_retries == 2

"""The fixtures themselves: each server runs the generated model and answers over raw HTTP.

These use httpx directly so that a broken fixture or model is told apart from a client bug.
"""

from __future__ import annotations

import httpx
import pytest
from live_servers import CONTEXT_SIZE, LiveServer

pytestmark = pytest.mark.live


def test_llama_server_serves_the_tiny_model(llama_server: LiveServer) -> None:
    models = httpx.get(llama_server.base_url + "/models", timeout=10).json()
    assert [m["id"] for m in models["data"]] == [llama_server.model]

    props = httpx.get(llama_server.root_url + "/props", timeout=10).json()
    assert props["default_generation_settings"]["n_ctx"] == CONTEXT_SIZE
    assert "<|im_start|>" in props["chat_template"]


def test_llama_cpp_python_server_serves_the_tiny_model(
    llama_cpp_python_server: LiveServer,
) -> None:
    models = httpx.get(llama_cpp_python_server.base_url + "/models", timeout=10).json()
    assert [m["id"] for m in models["data"]] == [llama_cpp_python_server.model]


@pytest.mark.parametrize("server_fixture", ["llama_server", "llama_cpp_python_server"])
def test_raw_chat_completion_has_the_openai_shape(
    server_fixture: str, request: pytest.FixtureRequest
) -> None:
    server: LiveServer = request.getfixturevalue(server_fixture)
    response = httpx.post(
        server.base_url + "/chat/completions",
        json={
            "model": server.model,
            "messages": [{"role": "user", "content": "hello"}],
            "max_tokens": 5,
            "temperature": 0,
        },
        timeout=60,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    choice = body["choices"][0]
    assert choice["message"]["role"] == "assistant"
    assert isinstance(choice["message"]["content"], str)
    assert choice["finish_reason"] == "length"
    assert body["usage"]["completion_tokens"] == 5
    assert body["usage"]["prompt_tokens"] > 0

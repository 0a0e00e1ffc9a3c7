"""Discovery, structured output and the fallback against real llama.cpp servers.

The tiny model's text is noise, so structured output is only checked where a
grammar enforces it (llama-server) or where the server forces a schema-valid
tool call (llama-cpp-python with a function-calling chat format).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Literal

import httpx
import pytest
from live_servers import CONTEXT_SIZE, LiveServer
from pydantic import BaseModel, Field

from oaicompat import AsyncClient, Client
from oaicompat.errors import error_from_status
from oaicompat.fallback import plan_fallback
from oaicompat.profiles import ServerProfile
from oaicompat.structured import method_in_body

pytestmark = pytest.mark.live

MESSAGES = [{"role": "user", "content": "Describe a town as JSON."}]


class Town(BaseModel):
    name: str = Field(max_length=10)
    population: int = Field(ge=0, le=100000)
    kind: Literal["town", "city", "village"]


@pytest.fixture
def llama(llama_server: LiveServer) -> Iterator[Client]:
    with Client(llama_server.base_url, llama_server.model, timeout=60, max_retries=0) as client:
        yield client


def test_server_info_reads_llama_servers_context_window(
    llama: Client, llama_server: LiveServer
) -> None:
    info = llama.server_info()
    assert info.kind == "llamacpp"
    assert info.context_window == CONTEXT_SIZE
    assert llama_server.model in info.models
    assert info.version
    assert info.profile.name == "llamacpp"


async def test_async_server_info_and_preflight(llama_server: LiveServer) -> None:
    async with AsyncClient(llama_server.base_url, "any-name", timeout=60) as client:
        info = await client.server_info()
        assert (info.kind, info.context_window) == ("llamacpp", CONTEXT_SIZE)
        assert await client.health() is True
        # llama-server answers whatever model name it is asked for.
        assert await client.preflight() == llama_server.model


@pytest.mark.parametrize("method", ["auto", "json_schema", "json_object"])
def test_structured_output_on_llama_server(
    llama_server: LiveServer, method: Literal["auto"]
) -> None:
    # The preset knows that llama-server enforces a schema given with json_object.
    # (A forced tool call is not tried: with the tiny model's plain ChatML template
    # llama-server applies no tool-call grammar, so the noise is not a call.)
    with Client.for_llamacpp(llama_server.model, base_url=llama_server.base_url) as client:
        answer = client.chat(
            MESSAGES, response_format=Town, structured_method=method, max_tokens=200, temperature=0
        )
    assert isinstance(answer.parsed, Town)


def test_structured_output_streams_on_llama_server(llama: Client) -> None:
    with llama.stream(MESSAGES, response_format=Town, max_tokens=200, temperature=0) as stream:
        final = stream.final()
    assert isinstance(final.parsed, Town)


def test_llama_cpp_python_refusal_wording_is_recognised(
    llama_cpp_python_server: LiveServer,
) -> None:
    body = {
        "model": llama_cpp_python_server.model,
        "messages": MESSAGES,
        "max_tokens": 8,
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "Town", "schema": Town.model_json_schema()},
        },
    }
    response = httpx.post(
        llama_cpp_python_server.base_url + "/chat/completions", json=body, timeout=60
    )
    assert response.status_code >= 400
    error = error_from_status(response.status_code, response.headers, response.content)
    plan = plan_fallback(error, body, ServerProfile())
    assert plan is not None, response.text
    assert method_in_body(plan[0]) == "tool"


def test_json_schema_refusal_is_absorbed_on_llama_cpp_python(
    llama_cpp_python_server: LiveServer, caplog: pytest.LogCaptureFixture
) -> None:
    with (
        Client(
            llama_cpp_python_server.base_url, llama_cpp_python_server.model, timeout=120
        ) as client,
        caplog.at_level(logging.WARNING, logger="oaicompat"),
    ):
        first = client.chat(MESSAGES, response_format=Town, max_tokens=200, temperature=0)
        second = client.chat(MESSAGES, response_format=Town, max_tokens=200, temperature=0)
        assert isinstance(first.parsed, Town)
        assert isinstance(second.parsed, Town)
        assert not client.profile.supports_json_schema
    refusals = [record for record in caplog.records if "refused" in record.getMessage()]
    assert len(refusals) == 1

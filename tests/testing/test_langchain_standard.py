"""The default policy plays a capable model: LangChain's standard integration suite passes.

The suite runs through ``langchain_openai.ChatOpenAI``, an independent client,
so a pass here says the server behaves like a real OpenAI-compatible model
(tool choice, tool histories, structured output, JSON mode, streaming usage,
stop sequences), not that two halves of this package agree with each other.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from oaicompat.testing import ScriptedServer

pytest.importorskip("langchain_openai")
pytest.importorskip("langchain_tests")

from langchain_openai import ChatOpenAI
from langchain_tests.integration_tests import ChatModelIntegrationTests

# ChatOpenAI caches an async HTTP client per event loop and never closes it, so
# its client-side sockets are reported when pytest-asyncio discards each loop.
# The server's own sockets are checked by the other modules, which keep the
# project-wide error::ResourceWarning.
pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


class TestScriptedServerAsChatOpenAIBackend(ChatModelIntegrationTests):
    server: ScriptedServer

    @pytest.fixture(autouse=True)
    def _scripted_server(self) -> Iterator[None]:
        # A server per test gives a fresh base_url, so ChatOpenAI's async client
        # cache (keyed by base_url) never hands a test a client of a closed loop.
        with ScriptedServer() as server:
            self.server = server
            yield

    @property
    def chat_model_class(self) -> type[ChatOpenAI]:
        return ChatOpenAI

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {
            "model": "scripted-model",
            "base_url": self.server.base_url,
            "api_key": "sk-scripted",
            "stream_usage": True,
            "max_retries": 0,
        }

    @property
    def has_tool_choice(self) -> bool:
        return True

    @property
    def supports_json_mode(self) -> bool:
        return True

    @property
    def supports_model_override(self) -> bool:
        return True

    @property
    def model_override_value(self) -> str:
        return "another-model"


class TestScriptedServerWithoutToolChoice(TestScriptedServerAsChatOpenAIBackend):
    """Tool calls the model decides on by itself, and structured output through a tool."""

    @property
    def has_tool_choice(self) -> bool:
        return False

    @property
    def structured_output_kwargs(self) -> dict[str, Any]:
        return {"method": "function_calling"}

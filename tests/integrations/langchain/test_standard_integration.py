"""langchain-tests' standard integration suite against the package's scripted server.

The scripted server plays a capable model (follows ``tool_choice``, answers JSON
schemas, quotes tool results), so every standard test must pass here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from langchain_core.language_models import BaseChatModel
from langchain_tests.integration_tests import ChatModelIntegrationTests

from oaicompat.langchain import ChatOpenAICompatible
from oaicompat.testing import ScriptedServer


@pytest.fixture(scope="module")
def scripted() -> Iterator[ScriptedServer]:
    with ScriptedServer() as server:
        yield server


class TestChatOpenAICompatibleScripted(ChatModelIntegrationTests):
    base_url: str

    @pytest.fixture(autouse=True)
    def _point_at_server(self, scripted: ScriptedServer) -> None:
        self.base_url = scripted.base_url

    @pytest.fixture
    async def model(self, request: Any) -> AsyncIterator[BaseChatModel]:
        """The standard fixture, plus closing the model's connections afterwards.

        Async so that the teardown runs on the loop an async test opened connections on.
        """
        extra = getattr(request, "param", None) or {}
        chat = ChatOpenAICompatible(
            **{**self.standard_chat_model_params, **self.chat_model_params, **extra}
        )
        yield chat
        await chat.aclose()

    @property
    def chat_model_class(self) -> type[BaseChatModel]:
        return ChatOpenAICompatible

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"model": "scripted-model", "base_url": self.base_url, "max_retries": 0}

    @property
    def supports_json_mode(self) -> bool:
        return True

    @property
    def model_override_value(self) -> str:
        return "scripted-override"

    @property
    def supports_anthropic_inputs(self) -> bool:
        return True


def test_discover_profile_reads_the_context_window(scripted: ScriptedServer) -> None:
    model = ChatOpenAICompatible(model=scripted.model, base_url=scripted.base_url)
    assert model.profile is not None
    assert "max_input_tokens" not in model.profile
    profile = model.discover_profile()
    assert profile["max_input_tokens"] == scripted.context_window
    assert model.profile["max_input_tokens"] == scripted.context_window
    assert model.profile["tool_calling"] is True
    model.close()


async def test_adiscover_profile_reads_the_context_window(scripted: ScriptedServer) -> None:
    model = ChatOpenAICompatible(model=scripted.model, base_url=scripted.base_url)
    profile = await model.adiscover_profile()
    assert profile["max_input_tokens"] == scripted.context_window
    await model.aclose()

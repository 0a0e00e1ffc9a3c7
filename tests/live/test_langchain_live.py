"""langchain-tests' standard integration suite against a real llama.cpp ``llama-server``.

The server runs a tiny model with random weights (see ``tiny_model.py``): everything
about the protocol is real (streaming, usage, grammar-constrained JSON, forced tool
calls), but the text is noise. Tests that need the model to understand the prompt
are marked xfail, each saying what it needs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from langchain_core.exceptions import OutputParserException
from langchain_core.language_models import BaseChatModel
from langchain_tests.integration_tests import ChatModelIntegrationTests
from live_servers import LiveServer

from oaicompat.langchain import ChatOpenAICompatible

pytestmark = pytest.mark.live

WITH_AND_WITHOUT_V1 = pytest.mark.parametrize(
    "model", [{}, {"output_version": "v1"}], indirect=True
)
NO_FORCED_TOOL_CALL = (
    "needs a capable model: llama-server does not force a tool call (tool_choice "
    "'required' or a named tool) with the test model's chat template, so calling a tool "
    "is up to the model, and these weights are random; "
)


class TestChatOpenAICompatibleLlamaServer(ChatModelIntegrationTests):
    server: LiveServer

    @pytest.fixture(autouse=True)
    def _point_at_server(self, llama_server: LiveServer) -> None:
        self.server = llama_server

    @pytest.fixture
    async def model(self, request: Any) -> AsyncIterator[BaseChatModel]:
        """The standard fixture, plus closing the model's connections afterwards."""
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
        return {
            "model": self.server.model,
            "base_url": self.server.base_url,
            "profile": "llamacpp",
            "temperature": 0,
            # Enough room for grammar-constrained JSON to close; short enough to be quick.
            "max_tokens": 400,
            "timeout": 120,
            "max_retries": 0,
        }

    @property
    def supports_json_mode(self) -> bool:
        return True

    @property
    def supports_anthropic_inputs(self) -> bool:
        return True

    # Tests that need the model to understand the prompt. Everything they check on the
    # adapter's side passes against the scripted server (test_standard_integration.py).

    @WITH_AND_WITHOUT_V1
    @pytest.mark.xfail(
        reason=NO_FORCED_TOOL_CALL + "it must also read 3 from the prompt",
        raises=AssertionError,
        strict=False,
    )
    def test_tool_calling(self, model: BaseChatModel) -> None:
        super().test_tool_calling(model)

    @pytest.mark.xfail(
        reason=NO_FORCED_TOOL_CALL + "it must also read 3 from the prompt",
        raises=AssertionError,
        strict=False,
    )
    async def test_tool_calling_async(self, model: BaseChatModel) -> None:
        await super().test_tool_calling_async(model)

    @pytest.mark.xfail(
        reason=NO_FORCED_TOOL_CALL + "it must also fill answer_style from the prompt",
        raises=AssertionError,
        strict=False,
    )
    def test_bind_runnables_as_tools(self, model: BaseChatModel) -> None:
        super().test_bind_runnables_as_tools(model)

    @pytest.mark.xfail(reason=NO_FORCED_TOOL_CALL, raises=AssertionError, strict=False)
    def test_tool_choice(self, model: BaseChatModel) -> None:
        super().test_tool_choice(model)

    @pytest.mark.xfail(reason=NO_FORCED_TOOL_CALL, raises=AssertionError, strict=False)
    def test_tool_calling_with_no_arguments(self, model: BaseChatModel) -> None:
        super().test_tool_calling_with_no_arguments(model)

    @WITH_AND_WITHOUT_V1
    @pytest.mark.xfail(
        reason="needs a capable model: it must choose to call get_weather for a weather "
        "question (tool_choice is 'auto' here), and these weights are random",
        raises=AssertionError,
        strict=False,
    )
    def test_agent_loop(self, model: BaseChatModel) -> None:
        super().test_agent_loop(model)

    @pytest.mark.xfail(
        reason=NO_FORCED_TOOL_CALL + "it must also copy the Chinese name into the arguments",
        raises=AssertionError,
        strict=False,
    )
    def test_unicode_tool_call_integration(self, model: BaseChatModel) -> None:
        super().test_unicode_tool_call_integration(model)

    @pytest.mark.xfail(
        reason="needs a capable model: JSON mode constrains the answer to some JSON "
        "object, not to the requested keys, and a random model's strings rarely close "
        "before max_tokens",
        raises=(AssertionError, OutputParserException),
        strict=False,
    )
    def test_json_mode(self, model: BaseChatModel) -> None:
        super().test_json_mode(model)

    @pytest.mark.xfail(
        reason="needs a capable model: the grammar keeps the JSON valid, but a random "
        "model may not close a string before max_tokens (the answer is then cut off and "
        "reported as such); the other structured-output tests pass here",
        raises=OutputParserException,
        strict=False,
    )
    def test_structured_output_optional_param(self, model: BaseChatModel) -> None:
        super().test_structured_output_optional_param(model)


def test_discover_profile_reads_llama_servers_context_window(llama_server: LiveServer) -> None:
    model = ChatOpenAICompatible(
        model=llama_server.model, base_url=llama_server.base_url, profile="llamacpp"
    )
    assert model.discover_profile()["max_input_tokens"] == llama_server.context_size
    model.close()

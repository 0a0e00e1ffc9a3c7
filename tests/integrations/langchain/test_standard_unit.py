"""langchain-tests' standard unit suite for ChatOpenAICompatible."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.language_models import BaseChatModel
from langchain_tests.unit_tests import ChatModelUnitTests

from oaicompat.langchain import ChatOpenAICompatible


class TestChatOpenAICompatibleUnit(ChatModelUnitTests):
    @property
    def chat_model_class(self) -> type[BaseChatModel]:
        return ChatOpenAICompatible

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"model": "unit-model", "base_url": "http://localhost:8000/v1"}

    @property
    def init_from_env_params(self) -> tuple[dict[str, str], dict[str, Any], dict[str, Any]]:
        return (
            {"OAICOMPAT_API_KEY": "key-from-env"},
            {"model": "unit-model", "base_url": "http://localhost:8000/v1"},
            {"api_key": "key-from-env"},
        )

    @property
    def supports_json_mode(self) -> bool:
        return True

    @pytest.mark.xfail(
        reason=(
            "langchain_core.load(allowed_objects='all') revives only the classes in "
            "langchain-core's built-in mapping, so no third-party class can pass; "
            "ChatOpenAICompatible round-trips with allowed_objects=[ChatOpenAICompatible] "
            "(test_langchain_adapter.py::test_api_key_stays_out_of_repr_and_serialization)"
        ),
        raises=ValueError,
        strict=True,
    )
    def test_serdes(self, model: BaseChatModel, snapshot: Any) -> None:
        super().test_serdes(model, snapshot)

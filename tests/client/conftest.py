from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from client_harness import Mode


@pytest.fixture(params=["sync", "async"])
async def mode(request: pytest.FixtureRequest) -> AsyncIterator[Mode]:
    """Runs the test once through `Client` and once through `AsyncClient`."""
    harness = Mode(is_async=request.param == "async")
    yield harness
    await harness.cleanup()


@pytest.fixture(autouse=True)
def _no_cloud_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    # A developer's real keys must not change what these tests see.
    for name in (
        "OPENAI_API_KEY",
        "AZURE_OPENAI_API_KEY",
        "OPENROUTER_API_KEY",
        "DEEPSEEK_API_KEY",
        "GROQ_API_KEY",
        "TOGETHER_API_KEY",
        "MISTRAL_API_KEY",
        "FIREWORKS_API_KEY",
    ):
        monkeypatch.delenv(name, raising=False)

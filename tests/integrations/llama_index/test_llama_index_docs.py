"""The LlamaIndex section of the docs runs, as written, against the scripted server."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from oaicompat.llama_index import OpenAICompatible
from oaicompat.testing import ScriptedServer

DOC = Path(__file__).resolve().parents[3] / "docs" / "llama_index.md"
DOC_URL = "http://localhost:11434/v1"
PYTHON_BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)


@pytest.mark.usefixtures("owned_event_loop")
def test_every_python_example_runs(capsys: pytest.CaptureFixture[str]) -> None:
    blocks = PYTHON_BLOCK.findall(DOC.read_text(encoding="utf-8"))
    assert len(blocks) >= 5, "setup, query engine, agent, streaming and structured output"
    namespace: dict[str, object] = {}
    with ScriptedServer() as server:
        for block in blocks:
            exec(compile(block.replace(DOC_URL, server.base_url), str(DOC), "exec"), namespace)
        bodies = [request.json for request in server.chat_requests]
    llm = namespace["llm"]
    assert isinstance(llm, OpenAICompatible)
    llm.close()

    printed = capsys.readouterr().out
    assert "You said: Say hello" in printed
    assert "The capital of Freedonia is Fredville." in printed  # the engine sent the context
    assert "42" in printed  # the agent ran multiply(6, 7) and answered from the result
    assert "'prompt_tokens'" in printed
    assert any(body.get("stream") for body in bodies)
    assert any(message["role"] == "tool" for body in bodies for message in body["messages"])
    assert type(namespace["city"]).__name__ == "City"
    assert type(namespace["partial"]).__name__ == "City"

"""The LangChain section of the docs runs, as written, against the scripted server."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from oaicompat.langchain import ChatOpenAICompatible
from oaicompat.testing import ScriptedServer

DOC = Path(__file__).resolve().parents[3] / "docs" / "langchain.md"
DOC_URL = "http://localhost:11434/v1"
PYTHON_BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)


def test_every_python_example_runs(capsys: pytest.CaptureFixture[str]) -> None:
    blocks = PYTHON_BLOCK.findall(DOC.read_text(encoding="utf-8"))
    assert len(blocks) >= 5, "the chain, streaming, tools, structured output and errors examples"
    namespace: dict[str, object] = {}
    with ScriptedServer() as server:
        for block in blocks:
            assert DOC_URL in block or "llm" in block
            exec(compile(block.replace(DOC_URL, server.base_url), str(DOC), "exec"), namespace)
        asked = [request.json["messages"][-1] for request in server.chat_requests]
    llm = namespace["llm"]
    assert isinstance(llm, ChatOpenAICompatible)
    llm.close()
    printed = capsys.readouterr().out
    assert "What is an OpenAI-compatible server?" in printed
    assert "'input_tokens'" in printed
    assert "Sunny and 21 degrees in Paris" in printed
    assert any(message["role"] == "tool" for message in asked)
    city = namespace["city"]
    assert type(city).__name__ == "City"

"""``oaicompat models``, ``doctor`` and ``demo``; errors; the two entry points."""

from __future__ import annotations

import subprocess
import sys

import pytest
from cli_helpers import Run

from oaicompat import PRESETS
from oaicompat._cli.servers import capabilities
from oaicompat.discovery import ServerInfo
from oaicompat.testing import (
    RawReply,
    Reply,
    ScriptedServer,
    invalid_api_key,
    model_not_found,
    validation_error,
)

SECRET = "sk-test-never-print-me-0123456789"


def test_models_prints_one_id_per_line(run: Run, scripted_server: ScriptedServer) -> None:
    listing = {"object": "list", "data": [{"id": "llama3.1"}, {"id": "qwen3:0.6b"}]}
    scripted_server.enqueue(RawReply(200, listing), path="/v1/models")

    result = run("models", "--base-url", scripted_server.base_url)

    assert result.code == 0
    assert result.out.splitlines() == ["llama3.1", "qwen3:0.6b"]


def test_doctor_describes_the_given_server(run: Run, scripted_server: ScriptedServer) -> None:
    result = run("doctor", "--base-url", scripted_server.base_url)

    assert result.code == 0
    lines = result.out.splitlines()
    assert lines[0] == f"llamacpp scripted at {scripted_server.base_url}"
    rows = dict(line.strip().split(":", 1) for line in lines[1:])
    assert rows["models"].strip() == scripted_server.model
    assert (
        rows["context window"].strip()
        == f"{scripted_server.context_window} tokens (scripted-model)"
    )
    assert rows["profile"].strip() == "llamacpp"
    assert rows["tools"].strip().startswith("yes")
    assert "structured output" in rows


def test_doctor_shows_every_local_server(
    run: Run, scripted_server: ScriptedServer, local_servers: list[ServerInfo]
) -> None:
    local_servers.extend(
        [
            ServerInfo("ollama", "0.9.0", ("llama3.1:latest",), 4096, base_url="http://a/v1"),
            ServerInfo("vllm", None, ("Qwen/Qwen3-8B",), None, base_url="http://b/v1"),
        ]
    )

    result = run("doctor")

    assert result.code == 0
    assert "ollama 0.9.0 at http://a/v1" in result.out
    assert "vllm at http://b/v1" in result.out
    assert "4096 tokens" in result.out
    assert "context window:       not reported" in result.out
    assert "built-in" not in result.out + result.err


def test_doctor_falls_back_to_the_builtin_server_in_one_line(run: Run) -> None:
    result = run("doctor")

    assert result.code == 0
    assert len([line for line in result.err_lines if "built-in scripted server" in line]) == 1
    assert "scripted-model" in result.out


def test_capabilities_come_from_the_profile() -> None:
    ollama = dict(capabilities(PRESETS["ollama"]))
    assert ollama["tools"] == "yes; tool_choice: ignored by the server; parallel calls: no"
    assert "<think> tags split" in ollama["reasoning"]

    vllm = dict(capabilities(PRESETS["vllm"]))
    assert vllm["tools"] == "yes; tool_choice: auto, required, a named tool; parallel calls: yes"
    assert vllm["structured output"].startswith("json_schema")

    tgi = dict(capabilities(PRESETS["tgi"]))
    assert tgi["structured output"] == "json_object (json_schema: no, json_object: yes)"

    groq = dict(capabilities(PRESETS["groq"]))
    assert groq["never sent"] == "logit_bias, logprobs, top_logprobs"
    assert groq["max tokens sent as"] == "max_completion_tokens"
    assert dict(capabilities(PRESETS["mistral"]))["usage when streaming"].startswith("only if")


# demo -------------------------------------------------------------------------------


def test_demo_runs_every_section_against_the_server(
    run: Run, scripted_server: ScriptedServer
) -> None:
    result = run("demo", "--base-url", scripted_server.base_url)

    assert result.code == 0, result.out + result.err
    out = result.out
    for title in ("Core client", "tool-calling", "LangChain", "LlamaIndex"):
        assert f"== {title}" in out or title in out
    assert 'tool call: get_weather({"city": "Paris"})' in out
    assert "tool result: Sunny and 21 degrees in Paris" in out
    assert "The get_weather tool returned: Sunny and 21 degrees in Paris" in out
    assert "The capital of Freedonia is Fredville." in out.split("LlamaIndex", 1)[1]
    # Usage of each section, printed in line with the text: the core client's three
    # calls, the chain's stream and the query engine's answer.
    assert out.count(" total tokens") == 5
    assert "usage not reported" not in out
    bodies = [request.json for request in scripted_server.chat_requests]
    assert any(body.get("tools") for body in bodies)
    assert any(m["role"] == "tool" for body in bodies for m in body["messages"])
    assert sum(bool(body.get("stream")) for body in bodies) >= 3


def test_demo_reports_a_failed_section_and_goes_on(
    run: Run, scripted_server: ScriptedServer
) -> None:
    scripted_server.enqueue(Reply("first section"))  # the streamed answer
    scripted_server.enqueue(validation_error("tools"))  # the tool round is refused

    result = run("demo", "--base-url", scripted_server.base_url)

    assert result.code == 1
    assert "error: BadRequestError: 422" in result.out  # in line with the section it ended
    assert "== LangChain" in result.out
    assert "== LlamaIndex" in result.out


def test_demo_skips_a_framework_that_is_not_installed(
    run: Run, scripted_server: ScriptedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "langchain_core", None)  # makes the import fail

    result = run("demo", "--base-url", scripted_server.base_url)

    assert result.code == 0
    assert 'skipped: needs langchain_core: pip install "oaicompat[langchain]"' in result.out
    assert "== LlamaIndex" in result.out


def test_demo_without_a_server_uses_the_builtin_one(run: Run) -> None:
    result = run("demo")

    assert result.code == 0, result.out + result.err
    assert len([line for line in result.out.splitlines() if "built-in scripted" in line]) == 1


# Errors -------------------------------------------------------------------------------


def test_a_server_error_is_one_line_with_the_servers_message(
    run: Run, scripted_server: ScriptedServer
) -> None:
    scripted_server.enqueue(model_not_found("llama9"))

    result = run("chat", "hi", "--model", "llama9", "--base-url", scripted_server.base_url)

    assert result.code == 1
    assert len(result.err_lines) == 1
    assert result.err_lines[0].startswith("error: NotFoundError: 404 Not Found: The model `llama9`")
    assert "Traceback" not in result.err
    assert result.out == ""


def test_debug_adds_the_traceback(run: Run, scripted_server: ScriptedServer) -> None:
    scripted_server.enqueue(model_not_found("llama9"))

    result = run(
        "chat", "hi", "--debug", "--model", "llama9", "--base-url", scripted_server.base_url
    )

    assert result.code == 1
    assert "Traceback (most recent call last)" in result.err
    assert result.err_lines[-1].startswith("error: NotFoundError")


def test_debug_before_the_command_counts_too(run: Run, scripted_server: ScriptedServer) -> None:
    scripted_server.enqueue(model_not_found("llama9"))

    result = run("--debug", "chat", "hi", "--model", "x", "--base-url", scripted_server.base_url)

    assert "Traceback (most recent call last)" in result.err


def test_cannot_connect_says_what_to_check(run: Run) -> None:
    result = run("models", "--base-url", "http://127.0.0.1:9/v1", "--timeout", "2")

    assert result.code == 1
    assert len(result.err_lines) == 1
    assert "APIConnectionError" in result.err
    assert "is the server running?" in result.err


def test_a_bad_url_is_a_usage_error_line(run: Run) -> None:
    result = run("models", "--base-url", "localhost")

    assert result.code == 1
    assert result.err_lines == [
        "error: base_url must be an http(s) URL with a host, got 'localhost'"
    ]


@pytest.mark.parametrize("debug", [[], ["--debug"]])
def test_the_api_key_is_never_printed(
    run: Run, scripted_server: ScriptedServer, debug: list[str]
) -> None:
    # A careless server echoing the key back must not get it onto the screen either.
    scripted_server.enqueue(RawReply(401, {"error": {"message": f"Invalid key {SECRET}"}}))
    scripted_server.enqueue(invalid_api_key())

    failed = run("chat", "hi", "--api-key", SECRET, "--base-url", scripted_server.base_url, *debug)
    failed_again = run("models", "--api-key", SECRET, "--base-url", scripted_server.base_url)
    worked = run("doctor", "--api-key", SECRET, "--base-url", scripted_server.base_url, *debug)

    assert failed.code == 1
    assert "AuthenticationError" in failed.err
    assert "pass --api-key or set OAICOMPAT_API_KEY" in failed.err
    assert worked.code == 0
    for result in (failed, failed_again, worked):
        assert SECRET not in result.out + result.err
    assert scripted_server.requests[0].headers["authorization"] == f"Bearer {SECRET}"


def test_usage_errors_exit_2(run: Run) -> None:
    with pytest.raises(SystemExit) as exit_info:
        run("chat", "--timeout", "-1")
    assert exit_info.value.code == 2


# Entry points ---------------------------------------------------------------------------


def test_python_dash_m_runs_the_command() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "oaicompat", "chat", "ping", "--scripted"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert completed.returncode == 0, completed.stderr
    assert completed.stdout == "You said: ping\n"
    assert "Using the built-in scripted server" in completed.stderr


def test_version(run: Run, capsys: pytest.CaptureFixture[str]) -> None:
    from oaicompat import __version__

    with pytest.raises(SystemExit) as exit_info:
        run("--version")
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"oaicompat {__version__}"

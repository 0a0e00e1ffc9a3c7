"""``oaicompat chat``: one answer, options, the conversation loop, and server selection."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest
from cli_helpers import Run

from oaicompat.discovery import ServerInfo
from oaicompat.testing import Reply, ScriptedServer, validation_error

USAGE_LINE = re.compile(r"\[(\d+) in, (\d+) out, (\d+) total tokens")


def test_streams_the_answer_to_stdout_and_usage_to_stderr(
    run: Run, scripted_server: ScriptedServer
) -> None:
    result = run("chat", "Why is the sky blue?", "--base-url", scripted_server.base_url)

    assert result.code == 0
    assert result.out == "You said: Why is the sky blue?\n"
    (request,) = scripted_server.chat_requests
    assert request.json["stream"] is True
    assert request.json["stream_options"] == {"include_usage": True}
    usage = USAGE_LINE.search(result.err)
    assert usage is not None, result.err
    entered, produced, total = map(int, usage.groups())
    assert produced > 0
    assert total == entered + produced
    assert "first token after" in result.err


def test_no_stream_sends_one_request_without_streaming(
    run: Run, scripted_server: ScriptedServer
) -> None:
    result = run("chat", "hi", "--no-stream", "--base-url", scripted_server.base_url)

    assert result.code == 0
    assert result.out == "You said: hi\n"
    assert not scripted_server.chat_requests[0].json.get("stream")
    assert USAGE_LINE.search(result.err)


def test_system_message_model_and_sampling_options_are_sent(
    run: Run, scripted_server: ScriptedServer
) -> None:
    result = run(
        "chat", "hi", "--system", "Be brief.", "--model", "llama3.1",
        "--temperature", "0.2", "--max-tokens", "50", "--base-url", scripted_server.base_url,
    )  # fmt: skip

    assert result.code == 0
    body = scripted_server.chat_requests[0].json
    assert body["model"] == "llama3.1"
    assert body["messages"][0] == {"role": "system", "content": "Be brief."}
    assert body["temperature"] == 0.2
    assert body["max_tokens"] == 50


def test_reasoning_is_shown_aside_and_kept_out_of_the_answer(
    run: Run, scripted_server: ScriptedServer
) -> None:
    scripted_server.enqueue(Reply("The answer.", reasoning="Let me think about it."))

    result = run("chat", "hi", "--base-url", scripted_server.base_url)

    assert result.out == "The answer.\n"
    assert "thinking: Let me think about it." in result.err


def test_prompt_dash_reads_stdin(
    run: Run, scripted_server: ScriptedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("a question from a pipe\n"))

    result = run("chat", "-", "--base-url", scripted_server.base_url)

    assert result.out == "You said: a question from a pipe\n"


def test_json_schema_prints_the_validated_object(
    run: Run, scripted_server: ScriptedServer, tmp_path: Path
) -> None:
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string"}, "population": {"type": "integer"}},
        "required": ["city", "population"],
    }
    schema_file = tmp_path / "city.json"
    schema_file.write_text(json.dumps(schema), encoding="utf-8")

    result = run(
        "chat", "Name a big city", "--json-schema", str(schema_file),
        "--base-url", scripted_server.base_url,
    )  # fmt: skip

    assert result.code == 0, result.err
    printed = json.loads(result.out)
    assert isinstance(printed["city"], str)
    assert isinstance(printed["population"], int)
    sent = scripted_server.chat_requests[0].json["response_format"]
    assert sent["type"] == "json_schema"
    assert sent["json_schema"]["schema"]["required"] == ["city", "population"]


@pytest.mark.parametrize(
    ("content", "expected"),
    [(None, "cannot read the JSON schema file"), ("{not json", "is not valid JSON")],
)
def test_a_bad_schema_file_is_one_error_line_before_any_request(
    run: Run, scripted_server: ScriptedServer, tmp_path: Path, content: str | None, expected: str
) -> None:
    schema_file = tmp_path / "schema.json"
    if content is not None:
        schema_file.write_text(content, encoding="utf-8")

    result = run(
        "chat", "hi", "--json-schema", str(schema_file), "--base-url", scripted_server.base_url
    )

    assert result.code == 1
    assert result.err_lines == [result.err_lines[0]]
    assert result.err_lines[0].startswith("error: ")
    assert expected in result.err
    assert scripted_server.chat_requests == []


# The conversation loop ------------------------------------------------------------


def test_conversation_is_multi_turn_until_exit(
    run: Run, scripted_server: ScriptedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("first question\nsecond question\n/exit\nnever\n"))

    result = run("chat", "--system", "Be brief.", "--base-url", scripted_server.base_url)

    assert result.code == 0
    assert result.out.splitlines() == ["You said: first question", "You said: second question"]
    first, second = (request.json["messages"] for request in scripted_server.chat_requests)
    assert [m["role"] for m in first] == ["system", "user"]
    assert second == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "first question"},
        {"role": "assistant", "content": "You said: first question"},
        {"role": "user", "content": "second question"},
    ]
    assert len(USAGE_LINE.findall(result.err)) == 2


def test_reset_forgets_the_conversation_and_end_of_input_exits(
    run: Run, scripted_server: ScriptedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("one\n/reset\n\ntwo\n"))

    result = run("chat", "--base-url", scripted_server.base_url)

    assert result.code == 0
    last = scripted_server.chat_requests[-1].json["messages"]
    assert last == [{"role": "user", "content": "two"}]
    assert "Conversation cleared." in result.err


def test_an_error_ends_the_turn_not_the_conversation(
    run: Run, scripted_server: ScriptedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    scripted_server.enqueue(validation_error("messages"))
    monkeypatch.setattr("sys.stdin", io.StringIO("refused\naccepted\n/quit\n"))

    result = run("chat", "--base-url", scripted_server.base_url)

    assert result.code == 0
    assert result.out == "You said: accepted\n"
    assert "error: BadRequestError: 422 Unprocessable Entity: Field required" in result.err
    # The refused question is not part of the history the next turn sends.
    assert scripted_server.chat_requests[-1].json["messages"] == [
        {"role": "user", "content": "accepted"}
    ]


# Choosing the server --------------------------------------------------------------


def test_environment_selects_server_model_and_key(
    run: Run, scripted_server: ScriptedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OAICOMPAT_BASE_URL", scripted_server.base_url)
    monkeypatch.setenv("OAICOMPAT_MODEL", "qwen3:0.6b")
    monkeypatch.setenv("OAICOMPAT_API_KEY", "sk-env-secret-1234")

    result = run("chat", "hi")

    assert result.code == 0
    (request,) = scripted_server.chat_requests
    assert request.json["model"] == "qwen3:0.6b"
    assert request.headers["authorization"] == "Bearer sk-env-secret-1234"
    assert "sk-env-secret-1234" not in result.out + result.err


def test_flags_win_over_the_environment(
    run: Run, scripted_server: ScriptedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OAICOMPAT_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("OAICOMPAT_MODEL", "from-env")

    result = run("chat", "hi", "--base-url", scripted_server.base_url, "--model", "from-flag")

    assert result.code == 0
    assert scripted_server.chat_requests[0].json["model"] == "from-flag"


def test_without_a_server_the_builtin_one_answers_and_says_so_once(run: Run) -> None:
    result = run("chat", "hello")

    assert result.code == 0
    assert result.out == "You said: hello\n"
    notes = [line for line in result.err_lines if "built-in scripted server" in line]
    assert len(notes) == 1
    assert "No OpenAI-compatible server answered" in notes[0]


def test_a_detected_local_server_is_used(
    run: Run, scripted_server: ScriptedServer, local_servers: list[ServerInfo]
) -> None:
    local_servers.append(
        ServerInfo(
            kind="ollama",
            version="0.9.0",
            models=("llama3.1:latest", "qwen3:0.6b"),
            context_window=8192,
            base_url=scripted_server.base_url,
            model="llama3.1:latest",
        )
    )

    result = run("chat", "hi")

    assert result.code == 0
    assert f"Using ollama 0.9.0 at {scripted_server.base_url}." in result.err
    assert "built-in" not in result.err
    assert scripted_server.chat_requests[0].json["model"] == "llama3.1:latest"


def test_the_model_defaults_to_the_first_the_server_lists(
    run: Run, scripted_server: ScriptedServer
) -> None:
    result = run("chat", "hi", "--base-url", scripted_server.base_url)

    assert result.code == 0
    assert scripted_server.chat_requests[0].json["model"] == scripted_server.model


def test_a_hosted_api_needs_a_model_name(run: Run) -> None:
    result = run("chat", "hi", "--base-url", "https://api.openai.com/v1")

    assert result.code == 1
    assert result.err_lines == [
        "error: name a model with --model (or set OAICOMPAT_MODEL) for openai"
    ]


def test_a_profile_without_a_default_url_asks_for_one(run: Run) -> None:
    result = run("chat", "hi", "--profile", "azure", "--model", "gpt-4o")

    assert result.code == 1
    assert "profile 'azure' has no default URL: pass --base-url" in result.err

"""The README is accurate: its examples run, its commands parse, its tables match the code."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest

import oaicompat
from oaicompat import cli
from oaicompat._transport import DEFAULT_TIMEOUT
from oaicompat.errors import error_from_status
from oaicompat.profiles import PRESETS
from oaicompat.retry import DEFAULT_RETRY_STATUSES, RetryPolicy
from oaicompat.structured import StructuredOutputError
from oaicompat.testing import ScriptedServer

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
BENCH_RESULTS = ROOT / "bench" / "results" / "latest.md"
EXAMPLE_URL = "http://localhost:11434/v1"

MAIN_COMMAND = (
    'python3 -m venv .venv && .venv/bin/pip install -e ".[all]" && .venv/bin/oaicompat demo'
)
TEST_COMMAND = (
    'python3 -m venv .venv && .venv/bin/pip install -e ".[all,dev,live,bench]" && '
    ".venv/bin/python scripts/build_llama_servers.py && .venv/bin/python -m pytest"
)


def _blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", text, re.DOTALL)


def _sections() -> dict[str, str]:
    """The README's text under each ``## `` heading."""
    parts = re.split(r"^## (.+)$", README, flags=re.MULTILINE)
    return {title.strip(): body for title, body in zip(parts[1::2], parts[2::2], strict=True)}


def _tables(section: str) -> list[list[list[str]]]:
    """The rows of each Markdown table in a section, headers and rules left out."""
    tables: list[list[str]] = []
    previous = ""
    for line in _sections()[section].splitlines():
        if line.startswith("|"):
            if not previous.startswith("|"):
                tables.append([])
            tables[-1].append(line)
        previous = line
    return [[[cell.strip() for cell in row.strip("|").split("|")] for row in t[2:]] for t in tables]


def _table(section: str) -> list[list[str]]:
    """The rows of the first Markdown table in a section, header and rule left out."""
    return _tables(section)[0]


def test_the_two_commands_are_there_exactly() -> None:
    commands = [line.strip() for block in _blocks(README, "bash") for line in block.splitlines()]
    assert MAIN_COMMAND in commands
    assert TEST_COMMAND in commands


# Examples ----------------------------------------------------------------------------

EXPECTED_OUTPUT = {
    "Quick start: the client": [
        "You said: Why is the sky blue? One sentence.",
        "You said: Write a haiku about GPUs.",
        "The get_weather tool returned: Sunny and 21 degrees in Paris",
        "name=",  # the parsed City
        "You said: Count to three.",
        "http://localhost:11434/v1 vllm openai",
    ],
    "LangChain": ["You said: What is an OpenAI-compatible server?", "'input_tokens'", "42"],
    "LlamaIndex": ["The capital of Freedonia is Fredville.", "42"],
    "Jupyter": ["You said: Explain server-sent events in two sentences."],
    "Errors": [],
    "Testing your code": ["Hello from the script.\n2\n"],
}


def _close_everything(namespace: dict[str, Any]) -> None:
    for value in namespace.values():
        close = getattr(value, "close", None)
        if callable(close) and type(value).__module__.startswith("oaicompat"):
            close()


@pytest.mark.usefixtures("owned_event_loop")
@pytest.mark.parametrize("section", list(EXPECTED_OUTPUT))
def test_python_examples_run_against_the_scripted_server(
    section: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("OAICOMPAT_API_KEY", "OPENAI_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    blocks = _blocks(_sections()[section], "python")
    assert blocks, f"no Python example under {section!r}"
    namespace: dict[str, Any] = {"__name__": "readme"}
    with ScriptedServer() as server:
        base_url = server.base_url
        try:
            for block in blocks:
                code = block.replace(EXAMPLE_URL, base_url)
                exec(compile(code, f"README.md ({section})", "exec"), namespace)
        finally:
            _close_everything(namespace)
        answered = len(server.chat_requests)
    printed = capsys.readouterr().out.replace(base_url, EXAMPLE_URL)
    for expected in EXPECTED_OUTPUT[section]:
        assert expected in printed
    if section != "Testing your code":  # that one runs its own server
        assert answered > 0, "the examples must talk to the server they show"


def test_every_python_example_is_run() -> None:
    tested = sum(len(_blocks(_sections()[name], "python")) for name in EXPECTED_OUTPUT)
    assert tested == len(_blocks(README, "python"))


def _cli_invocations() -> list[list[str]]:
    invocations = []
    for block in _blocks(README, "bash"):
        for line in block.splitlines():
            for command in line.split("|"):
                words = shlex.split(command, comments=True)
                while words and re.fullmatch(r"[A-Z_]+=\S*", words[0]):
                    words.pop(0)  # environment assignments
                if words[:1] == ["oaicompat"]:
                    invocations.append(words[1:])
    return invocations


def test_every_command_line_shown_parses() -> None:
    invocations = _cli_invocations()
    assert {words[0] for words in invocations} >= {"chat", "models", "doctor", "demo"}
    parser = cli.build_parser()
    for words in invocations:
        parser.parse_args(words)  # exits (and fails the test) on an unknown option


# Tables --------------------------------------------------------------------------------


def test_server_table_matches_the_presets() -> None:
    rows = {row[2].strip("`"): row for row in _table("Servers")}
    assert set(rows) == set(PRESETS) - {"generic"}
    for name, (_, base_url, _, key) in rows.items():
        preset = PRESETS[name]
        if preset.default_base_url is None:
            assert "NAME" in base_url  # a per-resource URL, shown as a pattern
        else:
            assert base_url == f"`{preset.default_base_url}`"
        assert key == (f"`{preset.api_key_env}`" if preset.api_key_env else "-")


def test_error_table_matches_the_error_tree() -> None:
    rows = {row[0].strip("`"): row[1] for row in _table("Errors")}
    for name in rows:
        assert getattr(oaicompat, name, None) or name == StructuredOutputError.__name__
    assert set(oaicompat.__all__) >= set(rows) - {"StructuredOutputError"}
    for name, described in rows.items():
        leading = re.match(r"[\d, ]+", described)  # "400, 422", "429, or ...", "500 and above"
        for code in map(int, re.findall(r"\d{3}", leading.group() if leading else "")):
            assert type(error_from_status(code, {}, b"")).__name__ == name, (name, code)
    assert type(error_from_status(503, {}, b"")).__name__ == "InternalServerError"


def test_timeouts_and_retries_are_the_codes_defaults() -> None:
    text = " ".join(_sections()["Retries and timeouts"].split())
    assert DEFAULT_TIMEOUT.read == 300.0
    assert DEFAULT_TIMEOUT.connect == 10.0
    assert "300 s to read" in text
    assert "10 s to connect" in text
    policy = RetryPolicy()
    assert f"max_retries={policy.max_retries}" in text
    assert f"from {policy.initial_delay} s up to {policy.max_delay:g} s" in text
    assert f"up to {policy.jitter:.0%}".replace("%", " %") in text
    assert f"up to {policy.max_retry_after:g} s" in text
    statuses = sorted(DEFAULT_RETRY_STATUSES)
    listed = ", ".join(map(str, statuses[:-1])) + f" and {statuses[-1]}"
    assert listed in text


def test_install_lines_name_real_extras() -> None:
    tomllib = pytest.importorskip("tomllib")
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"][
        "optional-dependencies"
    ]
    shown = set(re.findall(r'oaicompat\[([a-z-]+)\]"', _sections()["Install"]))
    assert shown
    assert shown <= set(extras)


# Benchmarks -----------------------------------------------------------------------------

# README column -> the client each scenario measures for it (async clients for concurrency).
_COLUMNS = {
    "httpx (floor)": ("httpx", "httpx-async"),
    "oaicompat": ("oaicompat", "oaicompat-async"),
    "`openai`": ("openai", "openai-async"),
    "`ChatOpenAI`": ("langchain-openai", "langchain-openai"),
    "oaicompat LangChain": ("oaicompat-langchain", "oaicompat-langchain"),
    "`OpenAILike`": ("llamaindex-openailike", "llamaindex-openailike"),
    "oaicompat LlamaIndex": ("oaicompat-llamaindex", "oaicompat-llamaindex"),
}
_ROWS = {
    "one stream of": ("stream", 0),
    "sequential calls": ("sequential", 0),
    "200 concurrent streams": ("concurrent-200", 1),
    "1,000 concurrent streams": ("concurrent-1000", 1),
}
# The AsyncClient table: the same client with and without its own asyncio transport.
_ASYNC_COLUMNS = {
    "httpx-async (floor)": "httpx-async",
    "oaicompat `AsyncClient`": "oaicompat-async",
    "the same on httpx's transport": "oaicompat-async-httpx-transport",
    "`openai` async": "openai-async",
}
_ASYNC_ROWS = {
    "500 sequential calls, µs/request": "sequential",
    "one stream of 20,000 chunks, µs/chunk": "stream",
    "200 concurrent streams, µs/chunk": "concurrent-200",
    "1,000 concurrent streams, µs/chunk": "concurrent-1000",
}
_IMPORTS = {
    "httpx (floor)": "httpx",
    "oaicompat": "oaicompat",
    "`openai`": "openai",
    "`ChatOpenAI`": "langchain_openai",
    "oaicompat LangChain": "oaicompat.langchain",
    "`OpenAILike`": "llama_index.llms.openai_like",
    "oaicompat LlamaIndex": "oaicompat.llama_index",
}


def _results() -> tuple[dict[tuple[str, str], str], dict[str, str], list[str]]:
    """CPU per unit by (scenario, client), import CPU ms by module, and unmet targets."""
    cpu: dict[tuple[str, str], str] = {}
    imports: dict[str, str] = {}
    unmet: list[str] = []
    scenario = ""
    for line in BENCH_RESULTS.read_text(encoding="utf-8").splitlines():
        heading = re.match(r"## .*\(`([\w-]+)`\)", line)
        if heading:
            scenario = heading.group(1)
        elif line.startswith("## "):
            scenario = line[3:]
        cells = [cell.strip() for cell in line.strip("|").split("|")] if line[:1] == "|" else []
        if scenario == "Targets" and cells[-1:] == ["**no**"]:
            unmet.append(f"{cells[0]} ({cells[1].split(',')[0]})")
        elif scenario.startswith("Import") and cells and cells[0].startswith("`"):
            imports[cells[0].strip("`")] = cells[1]
        elif len(cells) > 3 and cells[2] == "ok":
            cpu[(scenario, cells[0])] = cells[3]
    return cpu, imports, unmet


@pytest.mark.skipif(not BENCH_RESULTS.exists(), reason="no full benchmark run published")
def test_benchmark_figures_are_those_of_the_published_run() -> None:
    cpu, imports, unmet = _results()
    section = _sections()["Benchmarks"]
    header = next(line for line in section.splitlines() if line.startswith("| CPU per unit"))
    columns = [cell.strip() for cell in header.strip("|").split("|")][1:]
    assert columns == list(_COLUMNS)
    for row in _table("Benchmarks"):
        label, figures = row[0], row[1:]
        if label.startswith("import"):
            expected = [imports[_IMPORTS[column]] for column in columns]
        else:
            scenario, variant = next(v for key, v in _ROWS.items() if key in label)
            expected = [cpu[(scenario, _COLUMNS[column][variant])] for column in columns]
        assert figures == expected, label
    if unmet:
        stated = re.search(r"Targets this run does not meet: (.*?)\.\n", section, re.DOTALL)
        assert stated is not None
        assert " ".join(stated.group(1).split()) == "; ".join(unmet)
    else:
        assert "target the project sets itself is met in this run" in " ".join(section.split())
    async_header = next(line for line in section.splitlines() if line.startswith("| async CPU"))
    async_columns = [cell.strip() for cell in async_header.strip("|").split("|")][1:]
    assert async_columns == list(_ASYNC_COLUMNS)
    async_rows = _tables("Benchmarks")[1]
    assert [row[0] for row in async_rows] == list(_ASYNC_ROWS)
    for row in async_rows:
        scenario = _ASYNC_ROWS[row[0]]
        assert row[1:] == [cpu[(scenario, _ASYNC_COLUMNS[column])] for column in async_columns]

"""Fixtures that run real llama.cpp servers on a generated tiny model.

``llama_server`` is the C++ ``llama-server`` built by ``scripts/build_llama_servers.py``;
``llama_cpp_python_server`` is ``python -m llama_cpp.server`` from
``llama-cpp-python[server]``. Both are session-scoped: started once, on a free loopback
port, and stopped at the end of the run.

When a server is not available, its tests skip with the command that builds it; with
``CI=true`` they fail instead, so that CI can never pass by skipping them.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import IO, NoReturn

import httpx
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPO_ROOT / "scripts" / "build_llama_servers.py"
BUILD_COMMAND = "python scripts/build_llama_servers.py"
MODEL_NAME = "tiny-llama"
CONTEXT_SIZE = 2048
# Four slots decode in one continuous batch; the other streams of a burst queue.
PARALLEL_SLOTS = 4
STARTUP_TIMEOUT_S = 120.0


@dataclass
class LiveServer:
    """A running server: ``base_url`` ends in ``/v1``, ``root_url`` is the bare origin."""

    name: str
    root_url: str
    base_url: str
    model: str
    context_size: int
    process: subprocess.Popen[bytes]
    log_path: Path

    def log_tail(self, lines: int = 40) -> str:
        return _tail(self.log_path, lines)


def _unavailable(reason: str) -> NoReturn:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI=true: live tests must run, not skip)", pytrace=False)
    pytest.skip(reason)


def _load_build_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("build_llama_servers", BUILD_SCRIPT)
    if spec is None or spec.loader is None:
        raise RuntimeError(f"cannot load {BUILD_SCRIPT}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _tail(path: Path, lines: int) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=15)


def _wait_ready(server: LiveServer, probe_path: str) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    last_problem = "no answer yet"
    with httpx.Client(timeout=5.0) as http:
        while time.monotonic() < deadline:
            if server.process.poll() is not None:
                pytest.fail(
                    f"{server.name} exited with code {server.process.returncode} while "
                    f"starting:\n{server.log_tail()}",
                    pytrace=False,
                )
            try:
                response = http.get(server.root_url + probe_path)
            except httpx.HTTPError as exc:
                last_problem = repr(exc)
            else:
                if response.status_code == 200:
                    return
                last_problem = f"HTTP {response.status_code}: {response.text[:200]}"
            time.sleep(0.25)
    pytest.fail(
        f"{server.name} not ready after {STARTUP_TIMEOUT_S:.0f}s ({last_problem}):\n"
        f"{server.log_tail()}",
        pytrace=False,
    )


@contextlib.contextmanager
def _running(
    name: str, command: list[str], port: int, log_path: Path, probe_path: str
) -> Iterator[LiveServer]:
    log: IO[bytes] = log_path.open("wb")
    # The log file, not a pipe: a pipe nobody reads fills up and stalls the server.
    process = subprocess.Popen(
        command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
    )
    root_url = f"http://127.0.0.1:{port}"
    server = LiveServer(
        name=name,
        root_url=root_url,
        base_url=root_url + "/v1",
        model=MODEL_NAME,
        context_size=CONTEXT_SIZE,
        process=process,
        log_path=log_path,
    )
    try:
        _wait_ready(server, probe_path)
        yield server
    finally:
        _stop(process)
        log.close()


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    try:
        from tiny_model import write_tiny_llama
    except ImportError as exc:
        _unavailable(f"the tiny model needs the `gguf` and `numpy` packages ({exc})")
    return write_tiny_llama(tmp_path_factory.mktemp("model") / "tiny-llama.gguf")


def _llama_server_binary() -> Path:
    configured = os.environ.get("OAICOMPAT_LLAMA_SERVER")
    if configured:
        return Path(configured)
    built: Path = _load_build_script().llama_server_path()
    return built


@pytest.fixture(scope="session")
def llama_server(
    tiny_model_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    binary = _llama_server_binary()
    if not (binary.is_file() and os.access(binary, os.X_OK)):
        _unavailable(f"llama-server is not built at {binary}; run `{BUILD_COMMAND}`")
    port = _free_port()
    command = [
        str(binary),
        "--model",
        str(tiny_model_path),
        "--alias",
        MODEL_NAME,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--jinja",
        "--ctx-size",
        str(CONTEXT_SIZE),
        "--parallel",
        str(PARALLEL_SLOTS),
        "--cont-batching",
        # Every slot may use the whole context, so one long prompt still fits.
        "--kv-unified",
        "--threads",
        "1",
        "--seed",
        "0",
    ]
    log_path = tmp_path_factory.mktemp("llama-server") / "server.log"
    with _running("llama-server", command, port, log_path, "/health") as server:
        yield server


@pytest.fixture(scope="session")
def llama_cpp_python_server(
    tiny_model_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    missing = [
        module
        for module in ("llama_cpp", "uvicorn", "fastapi", "sse_starlette")
        if importlib.util.find_spec(module) is None
    ]
    if missing:
        _unavailable(
            f"llama-cpp-python[server] is not installed (missing {', '.join(missing)}); "
            f"run `{BUILD_COMMAND}`"
        )
    port = _free_port()
    command = [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(tiny_model_path),
        "--model_alias",
        MODEL_NAME,
        "--chat_format",
        "chatml-function-calling",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_ctx",
        str(CONTEXT_SIZE),
        "--n_threads",
        "1",
        "--seed",
        "0",
    ]
    log_path = tmp_path_factory.mktemp("llama-cpp-python") / "server.log"
    with _running("llama_cpp.server", command, port, log_path, "/v1/models") as server:
        yield server

"""Starting, probing and stopping a server process for the live tests."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import socket
import subprocess
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


def unavailable(reason: str) -> NoReturn:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI=true: live tests must run, not skip)", pytrace=False)
    pytest.skip(reason)


def load_build_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("build_llama_servers", BUILD_SCRIPT)
    if spec is None or spec.loader is None:
        raise RuntimeError(f"cannot load {BUILD_SCRIPT}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def free_port() -> int:
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
def running(
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


def llama_server_binary() -> Path:
    configured = os.environ.get("OAICOMPAT_LLAMA_SERVER")
    if configured:
        return Path(configured)
    built: Path = load_build_script().llama_server_path()
    return built

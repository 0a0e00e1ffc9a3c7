"""Fixtures that run real llama.cpp servers on a generated tiny model.

``llama_server`` is the C++ ``llama-server`` built by ``scripts/build_llama_servers.py``;
``llama_cpp_python_server`` is ``python -m llama_cpp.server`` from
``llama-cpp-python[server]``. Both are session-scoped: started once, on a free loopback
port, and stopped at the end of the run.

When a server is not available, its tests skip with the command that builds it; with
``CI=true`` they fail instead, so that CI can never pass by skipping them.
``OAICOMPAT_LLAMA_SERVER`` points at another ``llama-server`` binary than the built one.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from live_servers import (
    BUILD_COMMAND,
    CONTEXT_SIZE,
    MODEL_NAME,
    PARALLEL_SLOTS,
    LiveServer,
    free_port,
    llama_server_binary,
    running,
    unavailable,
)


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    try:
        from tiny_model import write_tiny_llama
    except ImportError as exc:
        unavailable(f"the tiny model needs the `gguf` and `numpy` packages ({exc})")
    return write_tiny_llama(tmp_path_factory.mktemp("model") / "tiny-llama.gguf")


@pytest.fixture(scope="session")
def llama_server(
    tiny_model_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    binary = llama_server_binary()
    if not (binary.is_file() and os.access(binary, os.X_OK)):
        unavailable(f"llama-server is not built at {binary}; run `{BUILD_COMMAND}`")
    port = free_port()
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
    with running("llama-server", command, port, log_path, "/health") as server:
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
        unavailable(
            f"llama-cpp-python[server] is not installed (missing {', '.join(missing)}); "
            f"run `{BUILD_COMMAND}`"
        )
    port = free_port()
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
    with running("llama_cpp.server", command, port, log_path, "/v1/models") as server:
        yield server

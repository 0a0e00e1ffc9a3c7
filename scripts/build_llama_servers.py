#!/usr/bin/env python3
"""Build, or reuse, the two llama.cpp servers that the ``live`` tests run against.

1. The C++ ``llama-server``, compiled from the ``vendor/llama.cpp`` tree shipped inside
   the ``llama-cpp-python`` sdist (a registry package, so no git clone is needed). The
   binary is cached under ``$OAICOMPAT_CACHE_DIR`` (default ``~/.cache/oaicompat``),
   keyed by the sdist version: a second run only checks that the binary still starts.
2. ``llama-cpp-python[server]`` in the running interpreter's environment, which provides
   ``python -m llama_cpp.server``. pip keeps the wheel it compiles in its own cache, so a
   reinstall on the same machine is fast.

Usage::

    python scripts/build_llama_servers.py [--jobs N] [--skip-cpp] [--skip-python]

It prints where the binary is and exits non-zero when anything fails. The test fixtures
import this file to find the binary, so the version pin and the cache layout live here only.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

LLAMA_CPP_PYTHON_VERSION = "0.3.36"

# The binary must not depend on the build tree (static libs), must not bake in
# -march=native (a cache may outlive the CPU it was built on; a 64-wide test model
# needs no SIMD speed), and must not reach the network at configure time (the web
# UI is fetched from a model hub unless told otherwise; TLS is not needed on loopback).
CMAKE_CONFIGURE_FLAGS = (
    "-DCMAKE_BUILD_TYPE=Release",
    "-DBUILD_SHARED_LIBS=OFF",
    "-DGGML_NATIVE=OFF",
    "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF",
    "-DLLAMA_BUILD_TOOLS=ON",
    "-DLLAMA_BUILD_SERVER=ON",
    "-DLLAMA_BUILD_UI=OFF",
    "-DLLAMA_USE_PREBUILT_UI=OFF",
    "-DLLAMA_OPENSSL=OFF",
    "-DGGML_CCACHE=OFF",
)

# Passed to the sdist's own CMake build when pip compiles the Python package: the
# multimodal library is imported lazily and the tests never use it.
PIP_CMAKE_ARGS = "-DGGML_NATIVE=OFF -DLLAVA_BUILD=OFF"

BINARY_NAME = "llama-server"


def cache_root() -> Path:
    configured = os.environ.get("OAICOMPAT_CACHE_DIR")
    root = Path(configured) if configured else Path.home() / ".cache" / "oaicompat"
    return root.expanduser()


def llama_server_path(version: str = LLAMA_CPP_PYTHON_VERSION) -> Path:
    return cache_root() / f"llama-server-{version}" / BINARY_NAME


def _log(message: str) -> None:
    print(f"[build_llama_servers] {message}", flush=True)


def _run(command: list[str], *, cwd: Path | None = None, env: dict[str, str] | None = None) -> None:
    _log("$ " + " ".join(command))
    subprocess.run(command, cwd=cwd, env=env, check=True)


def binary_works(path: Path) -> bool:
    if not path.is_file() or not os.access(path, os.X_OK):
        return False
    try:
        result = subprocess.run(
            [str(path), "--version"], capture_output=True, timeout=60, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0


def download_sdist(version: str, dest: Path) -> Path:
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--no-binary",
            ":all:",
            "--dest",
            str(dest),
            f"llama-cpp-python=={version}",
        ]
    )
    archives = sorted(dest.glob("llama_cpp_python-*.tar.gz"))
    if not archives:
        raise RuntimeError(f"pip download left no llama_cpp_python sdist in {dest}")
    return archives[0]


def extract_vendored_llama_cpp(archive: Path, dest: Path) -> Path:
    with tarfile.open(archive) as tar:
        members = [m for m in tar.getmembers() if "/vendor/llama.cpp/" in m.name + "/"]
        if hasattr(tarfile, "data_filter"):
            tar.extractall(dest, members=members, filter="data")
        else:
            tar.extractall(dest, members=members)
    sources = sorted(dest.glob("*/vendor/llama.cpp"))
    if not sources or not (sources[0] / "CMakeLists.txt").is_file():
        raise RuntimeError(f"{archive.name} has no vendor/llama.cpp/CMakeLists.txt")
    return sources[0]


def build_llama_server(version: str, jobs: int) -> Path:
    target = llama_server_path(version)
    if binary_works(target):
        _log(f"llama-server {version} already built")
        return target

    target.parent.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="llama-build-", dir=target.parent.parent) as tmp:
        work = Path(tmp)
        archive = download_sdist(version, work / "sdist")
        source = extract_vendored_llama_cpp(archive, work / "src")
        build_dir = work / "build"
        _run(["cmake", "-S", str(source), "-B", str(build_dir), *CMAKE_CONFIGURE_FLAGS])
        _run(
            [
                "cmake",
                "--build",
                str(build_dir),
                "--config",
                "Release",
                "--target",
                BINARY_NAME,
                f"-j{jobs}",
            ]
        )
        built = build_dir / "bin" / BINARY_NAME
        if not built.is_file():
            raise RuntimeError(f"the build finished but {built} does not exist")
        # Copy next to the final place, then rename: a half-copied binary must never
        # look like a finished cache entry to a concurrent or later run.
        staging = work / "staging"
        staging.mkdir()
        shutil.copy2(built, staging / BINARY_NAME)
        if target.parent.exists():
            shutil.rmtree(target.parent)
        staging.rename(target.parent)

    if not binary_works(target):
        raise RuntimeError(f"{target} was built but `--version` fails")
    return target


def installed_version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def python_server_ready() -> bool:
    probe = "import llama_cpp, llama_cpp.server.app, uvicorn"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, check=False)
    return result.returncode == 0


def ensure_llama_cpp_python(version: str, jobs: int) -> None:
    if installed_version("llama_cpp_python") == version and python_server_ready():
        _log(f"llama-cpp-python[server]=={version} already installed")
        return
    env = dict(os.environ)
    env.setdefault("CMAKE_ARGS", PIP_CMAKE_ARGS)
    env.setdefault("CMAKE_BUILD_PARALLEL_LEVEL", str(jobs))
    _run(
        [sys.executable, "-m", "pip", "install", f"llama-cpp-python[server]=={version}"],
        env=env,
    )
    if not python_server_ready():
        raise RuntimeError("llama-cpp-python installed but `import llama_cpp.server.app` fails")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 2, help="build jobs")
    parser.add_argument("--skip-cpp", action="store_true", help="do not build llama-server")
    parser.add_argument(
        "--skip-python", action="store_true", help="do not install llama-cpp-python[server]"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    started = time.monotonic()
    try:
        if not args.skip_cpp:
            binary = build_llama_server(LLAMA_CPP_PYTHON_VERSION, args.jobs)
            _log(f"llama-server: {binary}")
        if not args.skip_python:
            ensure_llama_cpp_python(LLAMA_CPP_PYTHON_VERSION, args.jobs)
            _log(f"llama_cpp.server: {sys.executable} -m llama_cpp.server")
    except (subprocess.CalledProcessError, RuntimeError, OSError) as exc:
        _log(f"FAILED: {exc}")
        return 1
    _log(f"done in {time.monotonic() - started:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

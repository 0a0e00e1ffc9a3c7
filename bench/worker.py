"""One client, one scenario, in a process of its own.

The harness starts this module once per measurement, so each library's
imports, pools and memory are its own (``--small`` runs all scenarios of
one client in one process to save interpreter start-ups). CPU time is this process's
``getrusage`` (user + sys) around the measured part only: imports,
construction and a warm-up call happen before it. The result is one JSON
line per scenario, prefixed with ``RESULT_PREFIX``, on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import resource
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from bench.clients import BY_NAME
from bench.clients.base import BenchClient
from bench.payloads import expected_text, model_name
from bench.scenarios import Scenario

RESULT_PREFIX = "BENCH_RESULT "
_WARMUP_TOKENS = 8
_WARMUP_CALLS = 3


def _rss_mb() -> float:
    # ru_maxrss is in kilobytes on Linux (bytes on macOS; the bench targets Linux).
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Checker:
    """Compares what a client returned with what the server sent."""

    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        self.expected = expected_text(scenario.tokens)
        self.requests = 0
        self.chunks = 0
        self.failures: list[str] = []

    def _fail(self, message: str) -> None:
        if len(self.failures) < 5:
            self.failures.append(message)
        else:
            self.failures[-1] = f"... and more ({message})"

    def chat(self, text: str) -> None:
        self.requests += 1
        if text != self.expected:
            self._fail(f"chat text differs: {len(text)} chars, expected {len(self.expected)}")

    def stream(self, text: str, chunks: int) -> None:
        self.requests += 1
        self.chunks += chunks
        if chunks != self.scenario.tokens:
            self._fail(f"stream gave {chunks} text chunks, expected {self.scenario.tokens}")
        elif text != self.expected:
            self._fail(f"stream text differs: {len(text)} chars, expected {len(self.expected)}")

    def error(self, exc: BaseException) -> None:
        self.requests += 1
        self._fail(f"{type(exc).__name__}: {exc}"[:300])


class Meter:
    def __init__(self) -> None:
        self.cpu_s = self.user_s = self.sys_s = self.wall_s = 0.0
        self.rss_before_mb = 0.0

    @contextmanager
    def measure(self) -> Iterator[None]:
        gc.collect()
        self.rss_before_mb = _rss_mb()
        before = resource.getrusage(resource.RUSAGE_SELF)
        start = time.perf_counter()
        yield
        self.wall_s = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_SELF)
        self.user_s = after.ru_utime - before.ru_utime
        self.sys_s = after.ru_stime - before.ru_stime
        self.cpu_s = self.user_s + self.sys_s


def _warm_up_sync(cls: type[BenchClient], base_url: str) -> None:
    warm = cls(base_url, model_name(_WARMUP_TOKENS))
    try:
        warm.chat()
        warm.stream()
    finally:
        warm.close()


def run_sync(cls: type[BenchClient], scenario: Scenario, base_url: str, meter: Meter) -> Checker:
    _warm_up_sync(cls, base_url)
    client = cls(base_url, model_name(scenario.tokens), scenario.requests)
    checker = Checker(scenario)
    try:
        if scenario.kind == "sequential":
            for _ in range(_WARMUP_CALLS):
                client.chat()
            with meter.measure():
                for _ in range(scenario.requests):
                    checker.chat(client.chat())
        else:
            with meter.measure():
                checker.stream(*client.stream())
    finally:
        client.close()
    return checker


async def _warm_up_async(cls: type[BenchClient], base_url: str) -> None:
    warm = cls(base_url, model_name(_WARMUP_TOKENS))
    try:
        await warm.achat()
        await warm.astream()
    finally:
        await warm.aclose()


async def run_async(
    cls: type[BenchClient], scenario: Scenario, base_url: str, meter: Meter
) -> Checker:
    await _warm_up_async(cls, base_url)
    client = cls(base_url, model_name(scenario.tokens), scenario.requests)
    checker = Checker(scenario)
    try:
        if scenario.kind == "sequential":
            for _ in range(_WARMUP_CALLS):
                await client.achat()
            with meter.measure():
                for _ in range(scenario.requests):
                    checker.chat(await client.achat())
        elif scenario.kind == "stream":
            with meter.measure():
                checker.stream(*await client.astream())
        else:
            with meter.measure():
                outcomes = await asyncio.gather(
                    *(client.astream() for _ in range(scenario.requests)), return_exceptions=True
                )
            for outcome in outcomes:
                if isinstance(outcome, BaseException):
                    checker.error(outcome)
                else:
                    checker.stream(*outcome)
    finally:
        await client.aclose()
    return checker


def run(client_name: str, scenario: Scenario, base_url: str) -> dict[str, Any]:
    spec = BY_NAME[client_name]
    mode = spec.mode_for(scenario.needs_async)
    result: dict[str, Any] = {"client": client_name, "scenario": scenario.name, "mode": mode}
    if mode is None:
        return {**result, "status": "not-applicable"}
    try:
        cls = spec.load()
    except ImportError as exc:
        return {**result, "status": "unavailable", "reason": f"{type(exc).__name__}: {exc}"}
    meter = Meter()
    try:
        if mode == "sync":
            checker = run_sync(cls, scenario, base_url, meter)
        else:
            checker = asyncio.run(run_async(cls, scenario, base_url, meter))
    except Exception as exc:
        return {**result, "status": "error", "reason": f"{type(exc).__name__}: {exc}"[:500]}
    return {
        **result,
        "status": "failed" if checker.failures else "ok",
        "reason": "; ".join(checker.failures) or None,
        "cpu_s": meter.cpu_s,
        "user_s": meter.user_s,
        "sys_s": meter.sys_s,
        "wall_s": meter.wall_s,
        "requests": checker.requests,
        "chunks": checker.chunks,
        "peak_rss_mb": _rss_mb(),
        "rss_before_mb": meter.rss_before_mb,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run one client on one scenario.")
    parser.add_argument("--client", required=True, choices=sorted(BY_NAME))
    parser.add_argument(
        "--scenario",
        required=True,
        action="append",
        help="a Scenario as JSON; repeat to run several in this one process, in order",
    )
    parser.add_argument("--base-url", required=True)
    args = parser.parse_args(argv)
    for scenario_json in args.scenario:
        result = run(args.client, Scenario(**json.loads(scenario_json)), args.base_url)
        sys.stdout.write(RESULT_PREFIX + json.dumps(result) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()

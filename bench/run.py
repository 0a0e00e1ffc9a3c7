"""Run the benchmark: ``python -m bench.run`` (full) or ``python -m bench.run --small``.

Starts the bench server in its own process, then runs every (client,
scenario) pair in a fresh worker process, one at a time, round-robin over
the clients with the order rotated each repetition, so that drift on the
machine spreads evenly. Writes ``bench/results/latest.json`` and
``bench/results/latest.md`` (``bench/results/small/`` with ``--small``, or
``--out``).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import http.client
import json
import os
import platform
import statistics
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench import report
from bench.clients import CLIENTS, ClientSpec
from bench.scenarios import Scenario, scenarios
from bench.worker import RESULT_PREFIX

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = Path(__file__).resolve().parent / "results"
_HEAVY_MODULES = ("langchain_core", "llama_index", "openai", "pydantic")


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    # Tracing exporters would add network work to some clients and not others.
    for key in list(env):
        if key.startswith(("LANGSMITH_", "LANGCHAIN_")):
            del env[key]
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    return env


class BenchServer:
    """The bench server as a child process, and a way to read its CPU time."""

    def __init__(self, prebuild: list[int]) -> None:
        sizes = ",".join(map(str, prebuild))
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.server", "--port", "0", "--prebuild", sizes],
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env=_child_env(),
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line.startswith("PORT "):
            self.close()
            raise RuntimeError(f"bench server did not start: {line!r}")
        self.port = int(line.split()[1])
        self.base_url = f"http://127.0.0.1:{self.port}/v1"

    def cpu_seconds(self) -> float:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            connection.request("GET", "/stats")
            return float(json.loads(connection.getresponse().read())["cpu_s"])
        finally:
            connection.close()

    def close(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()


@contextlib.contextmanager
def bench_server(prebuild: list[int]) -> Iterator[BenchServer]:
    server = BenchServer(prebuild)
    try:
        yield server
    finally:
        server.close()


def run_worker(
    server: BenchServer, spec: ClientSpec, batch: list[Scenario], timeout_s: float
) -> list[dict[str, Any]]:
    """Run one client on the scenarios of ``batch`` in one worker process.

    The server's CPU time is attributed to a scenario only when the batch has
    one scenario (it is read before and after the process).
    """
    command = [sys.executable, "-m", "bench.worker", "--client", spec.name]
    for scenario in batch:
        command += ["--scenario", json.dumps(scenario.to_json())]
    command += ["--base-url", server.base_url]
    server_before = server.cpu_seconds()
    try:
        done = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=timeout_s * len(batch),
            cwd=ROOT,
            env=_child_env(),
            check=False,
        )
    except subprocess.TimeoutExpired:
        failure = {"status": "timeout", "reason": f"no result within {timeout_s:.0f} s"}
        return [{"client": spec.name, "scenario": s.name, **failure} for s in batch]
    server_cpu = server.cpu_seconds() - server_before
    results: dict[str, dict[str, Any]] = {}
    for line in done.stdout.splitlines():
        if line.startswith(RESULT_PREFIX):
            result = json.loads(line[len(RESULT_PREFIX) :])
            if len(batch) == 1:
                result["server_cpu_s"] = server_cpu
            results[result["scenario"]] = result
    tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
    crash = {"status": "crashed", "reason": f"exit {done.returncode}: {' | '.join(tail)}"}
    return [
        results.get(s.name) or {"client": spec.name, "scenario": s.name, **crash} for s in batch
    ]


def run_rounds(
    server: BenchServer,
    clients: list[ClientSpec],
    selected: list[Scenario],
    repetitions: int,
    timeout_s: float,
    one_process_per_client: bool = False,
) -> list[dict[str, Any]]:
    """Every client on every scenario, ``repetitions`` times, the client order
    rotated each time. A client found unavailable is not started again."""
    runs: list[dict[str, Any]] = []
    unavailable: set[str] = set()
    batches = [selected] if one_process_per_client else [[scenario] for scenario in selected]
    for repetition in range(repetitions):
        shift = repetition % len(clients)
        order = clients[shift:] + clients[:shift]
        for batch in batches:
            for spec in order:
                applicable = [s for s in batch if spec.mode_for(s.needs_async) is not None]
                if not applicable or spec.name in unavailable:
                    continue
                for result in run_worker(server, spec, applicable, timeout_s):
                    result["repetition"] = repetition
                    runs.append(result)
                    if result["status"] == "unavailable":
                        unavailable.add(spec.name)
                    _log(repetition, repetitions, result)
    return runs


def _log(repetition: int, repetitions: int, result: dict[str, Any]) -> None:
    figures = (
        f"cpu {result['cpu_s']:.3f} s, wall {result['wall_s']:.3f} s, "
        f"server cpu {result.get('server_cpu_s', 0):.3f} s"
        if "cpu_s" in result
        else ""
    )
    reason = result.get("reason") or ""
    print(
        f"[{repetition + 1}/{repetitions}] {result['scenario']:<16} {result['client']:<22} "
        f"{result['status']:<12} {figures} {reason[:160]}",
        file=sys.stderr,
        flush=True,
    )


_IMPORT_PROBE = """
import importlib, json, sys, time
wall, cpu = time.perf_counter(), time.process_time()
importlib.import_module(sys.argv[1])
wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
pulls = [m for m in sys.argv[2:] if m in sys.modules]
print(json.dumps({"wall_s": wall, "cpu_s": cpu, "pulls": pulls}))
"""


def measure_imports(packages: list[str], repeats: int) -> dict[str, Any]:
    """Median import time of each package, each in a fresh interpreter, interleaved.

    Both wall and CPU time: on a busy machine wall time is inflated by other
    processes, CPU time much less, so the target is judged on CPU time.
    """
    samples: dict[str, dict[str, list[float]]] = {p: {"wall_s": [], "cpu_s": []} for p in packages}
    outcome: dict[str, dict[str, Any]] = {package: {} for package in packages}
    for _ in range(repeats):
        for package in packages:
            if "error" in outcome[package]:
                continue
            done = subprocess.run(
                [sys.executable, "-c", _IMPORT_PROBE, package, *_HEAVY_MODULES],
                capture_output=True,
                text=True,
                cwd=ROOT,
                env=_child_env(),
                timeout=120,
                check=False,
            )
            if done.returncode != 0:
                last = (done.stderr.strip().splitlines() or ["failed"])[-1]
                outcome[package] = {"error": f"unavailable: {last[:200]}"}
                continue
            probe = json.loads(done.stdout.strip().splitlines()[-1])
            for figure, values in samples[package].items():
                values.append(probe[figure])
            outcome[package]["pulls"] = [m for m in probe["pulls"] if m != package]
    for package, figures in samples.items():
        if figures["wall_s"]:
            outcome[package].update(
                median_wall_s=statistics.median(figures["wall_s"]),
                median_cpu_s=statistics.median(figures["cpu_s"]),
                samples=figures,
            )
    return outcome


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", action="store_true", help="tiny sizes, one repetition (CI)")
    parser.add_argument("--repetitions", type=int, help="interleaved rounds (default 3; 1 small)")
    parser.add_argument("--clients", help="comma-separated client names (default: all)")
    parser.add_argument("--scenarios", help="comma-separated scenario names (default: all)")
    parser.add_argument("--import-repeats", type=int, help="default 7; 1 with --small")
    parser.add_argument(
        "--out", type=Path, help="results directory (default bench/results, or its small/)"
    )
    args = parser.parse_args(argv)

    repetitions = args.repetitions or (1 if args.small else 3)
    import_repeats = args.import_repeats
    if import_repeats is None:
        import_repeats = 1 if args.small else 7
    selected = scenarios(args.small)
    if args.scenarios:
        wanted = set(args.scenarios.split(","))
        selected = [scenario for scenario in selected if scenario.name in wanted]
    clients = list(CLIENTS)
    if args.clients:
        wanted = set(args.clients.split(","))
        unknown = wanted - {spec.name for spec in clients}
        if unknown:
            parser.error(f"unknown clients: {', '.join(sorted(unknown))}")
        clients = [spec for spec in clients if spec.name in wanted]
    timeout_s = 120.0 if args.small else 900.0

    prebuild = sorted({scenario.tokens for scenario in selected})
    with bench_server(prebuild) as server:
        runs = run_rounds(
            server, clients, selected, repetitions, timeout_s, one_process_per_client=args.small
        )
    packages = list(dict.fromkeys(spec.package for spec in clients))
    imports = measure_imports(packages, import_repeats) if import_repeats > 0 else {}

    results = report.build(selected, runs, imports)
    command = "python -m bench.run" + (" " + " ".join(argv or sys.argv[1:])).rstrip()
    meta = {
        "command": command,
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "repetitions": repetitions,
    }
    out = args.out or (RESULTS_DIR / "small" if args.small else RESULTS_DIR)
    out.mkdir(parents=True, exist_ok=True)
    document = {"meta": meta, **results, "runs": runs}
    (out / "latest.json").write_text(json.dumps(document, indent=2) + "\n")
    table = report.markdown(results, meta)
    (out / "latest.md").write_text(table)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Medians, ratios and the markdown table, from the raw runs of one benchmark.

Every ratio divides figures measured in the same benchmark run, on the same
server, by interleaved processes: absolute microseconds depend on the
machine, the ratios are what the targets are about.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from bench.clients import BY_NAME, CLIENTS, floor_for
from bench.scenarios import Scenario

_STATUS_ORDER = ("ok", "failed", "error", "crashed", "timeout", "unavailable", "not-applicable")


def _median(values: Iterable[float | None]) -> float | None:
    present = [value for value in values if value is not None]
    return statistics.median(present) if present else None


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return numerator / denominator


def summarize(scenario: Scenario, runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One client's runs of one scenario: medians over the successful ones."""
    statuses = [run["status"] for run in runs]
    ok_runs = [run for run in runs if run["status"] == "ok"]
    worst = max(statuses, key=_STATUS_ORDER.index) if statuses else "unavailable"
    summary: dict[str, Any] = {
        "mode": runs[0].get("mode") if runs else None,
        "status": "ok" if ok_runs and len(ok_runs) == len(runs) else worst,
        "runs": len(runs),
        "ok_runs": len(ok_runs),
        "reasons": sorted({run["reason"] for run in runs if run.get("reason")}),
    }
    if not ok_runs:
        return summary
    cpu = _median(run["cpu_s"] for run in ok_runs)
    wall = _median(run["wall_s"] for run in ok_runs)
    server_cpu = _median(run.get("server_cpu_s") for run in ok_runs)
    summary.update(
        cpu_s=cpu,
        wall_s=wall,
        cpu_us_per_unit=cpu * 1e6 / scenario.units if cpu is not None else None,
        wall_us_per_unit=wall * 1e6 / scenario.units if wall is not None else None,
        cpu_us_per_request=cpu * 1e6 / scenario.requests if cpu is not None else None,
        peak_rss_mb=_median(run["peak_rss_mb"] for run in ok_runs),
        scenario_rss_mb=_median(run["peak_rss_mb"] - run["rss_before_mb"] for run in ok_runs),
        server_cpu_s=server_cpu,
        server_to_client_cpu=_ratio(server_cpu, cpu),
        cpu_runs_s=[run["cpu_s"] for run in ok_runs],
    )
    return summary


def add_ratios(per_client: dict[str, dict[str, Any]]) -> None:
    """Each client's CPU, wall and RSS over its floor's, and its CPU over every other client's."""
    for name, summary in per_client.items():
        if summary.get("cpu_s") is None:
            continue
        floor = per_client.get(floor_for(summary["mode"]), {})
        summary["vs_floor"] = {
            "floor": floor_for(summary["mode"]),
            "cpu": _ratio(summary["cpu_s"], floor.get("cpu_s")),
            "wall": _ratio(summary["wall_s"], floor.get("wall_s")),
            "peak_rss": _ratio(summary["peak_rss_mb"], floor.get("peak_rss_mb")),
        }
        summary["cpu_vs"] = {
            other: _ratio(summary["cpu_s"], other_summary.get("cpu_s"))
            for other, other_summary in per_client.items()
            if other != name and other_summary.get("cpu_s") is not None
        }
        summary["peak_rss_vs"] = {
            other: _ratio(summary["peak_rss_mb"], other_summary.get("peak_rss_mb"))
            for other, other_summary in per_client.items()
            if other != name and other_summary.get("peak_rss_mb") is not None
        }


def build(
    scenarios: list[Scenario], runs: list[dict[str, Any]], imports: dict[str, Any]
) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for scenario in scenarios:
        per_client: dict[str, dict[str, Any]] = {}
        for spec in CLIENTS:
            mine = [r for r in runs if r["scenario"] == scenario.name and r["client"] == spec.name]
            if mine and all(run["status"] == "not-applicable" for run in mine):
                continue
            if mine:
                per_client[spec.name] = summarize(scenario, mine)
        add_ratios(per_client)
        results[scenario.name] = {"scenario": scenario.to_json(), "unit": scenario.unit}
        results[scenario.name]["clients"] = per_client
    return {"scenarios": results, "imports": imports, "targets": evaluate_targets(results, imports)}


@dataclass(frozen=True)
class Target:
    """A goal from the performance issue: ``client``'s CPU over ``baseline``'s at most ``limit``."""

    scenario: str
    client: str
    baseline: str
    limit: float
    figure: str = "cpu"


TARGETS = (
    Target("stream", "oaicompat", "httpx", 1.5),
    Target("stream", "oaicompat", "openai", 0.2),
    Target("sequential", "oaicompat", "httpx", 1.5),
    Target("sequential", "oaicompat", "openai", 0.4),
    Target("stream", "oaicompat-async", "httpx-async", 1.5),
    Target("stream", "oaicompat-async", "openai-async", 0.2),
    Target("sequential", "oaicompat-async", "httpx-async", 1.5),
    Target("sequential", "oaicompat-async", "openai-async", 0.4),
    Target("concurrent-200", "oaicompat-async", "openai-async", 0.2),
    Target("stream", "oaicompat-langchain", "langchain-openai", 0.6),
    Target("sequential", "oaicompat-langchain", "langchain-openai", 0.6),
    Target("concurrent-200", "oaicompat-langchain", "langchain-openai", 0.6),
    Target("stream", "oaicompat-llamaindex", "llamaindex-openailike", 0.5),
    Target("sequential", "oaicompat-llamaindex", "llamaindex-openailike", 0.5),
    Target("concurrent-200", "oaicompat-llamaindex", "llamaindex-openailike", 0.5),
    Target("concurrent-200", "oaicompat-async", "openai-async", 1.0, figure="peak_rss"),
)

IMPORT_LIMIT_S = 0.150
FRAMEWORK_MODULES = ("langchain_core", "llama_index")


def evaluate_targets(results: dict[str, Any], imports: dict[str, Any]) -> list[dict[str, Any]]:
    checks: list[dict[str, Any]] = []
    for target in TARGETS:
        clients = results.get(target.scenario, {}).get("clients", {})
        mine, theirs = clients.get(target.client, {}), clients.get(target.baseline, {})
        key = "cpu_s" if target.figure == "cpu" else "peak_rss_mb"
        ratio = _ratio(mine.get(key), theirs.get(key))
        checks.append(
            {
                "goal": f"{target.scenario}: {target.client} {target.figure} "
                f"<= {target.limit}x {target.baseline}",
                "measured": None if ratio is None else round(ratio, 3),
                "met": None if ratio is None else ratio <= target.limit,
            }
        )
    thousand = results.get("concurrent-1000", {}).get("clients", {}).get("oaicompat-async")
    checks.append(
        {
            "goal": "concurrent-1000: oaicompat-async receives every byte, no error",
            "measured": None if thousand is None else thousand["status"],
            "met": None if thousand is None else thousand["status"] == "ok",
        }
    )
    ours = imports.get("oaicompat", {})
    seconds = ours.get("median_cpu_s")
    pulled = [m for m in ours.get("pulls", []) if m in FRAMEWORK_MODULES]
    checks.append(
        {
            "goal": f"import oaicompat < {IMPORT_LIMIT_S * 1000:.0f} ms CPU, "
            "no LangChain/LlamaIndex",
            "measured": None if seconds is None else f"{seconds * 1000:.0f} ms, pulls {pulled}",
            "met": None if seconds is None else seconds < IMPORT_LIMIT_S and not pulled,
        }
    )
    return checks


def _fmt(value: float | None, digits: int = 1, suffix: str = "") -> str:
    return "-" if value is None else f"{value:,.{digits}f}{suffix}"


def _peer_ratios(name: str, summary: dict[str, Any]) -> str:
    spec = BY_NAME[name]
    ratios = summary.get("cpu_vs", {})
    return ", ".join(
        f"{_fmt(ratios.get(peer), 2)}x {peer}" for peer in spec.peers if peer in ratios
    )


def _peer_matrix(clients: dict[str, dict[str, Any]]) -> list[str]:
    """Each of our clients' CPU over each other library's, same scenario."""
    ours = [name for name in clients if BY_NAME[name].ours and clients[name].get("cpu_vs")]
    others = [name for name in clients if not BY_NAME[name].ours and clients[name].get("cpu_s")]
    if not ours or not others:
        return []
    lines = [
        "",
        "CPU time of ours over each other client's:",
        "",
        "| ours | " + " | ".join(others) + " |",
        "|---|" + "---:|" * len(others),
    ]
    for name in ours:
        ratios = clients[name]["cpu_vs"]
        lines.append(f"| {name} | " + " | ".join(_fmt(ratios.get(o), 2) for o in others) + " |")
    return lines


def markdown(report: dict[str, Any], meta: dict[str, Any]) -> str:
    lines = [
        "# Benchmark results",
        "",
        f"Produced by `{meta['command']}` on {meta['date']}: Python {meta['python']}, "
        f"{meta['cpus']} CPUs, {meta['repetitions']} interleaved repetition(s), medians shown.",
        "CPU is the client process's user+sys time around the measured part only; "
        "ratios compare figures from this same run.",
        "",
        "## Targets",
        "",
        "| goal | measured | met |",
        "|---|---|---|",
    ]
    for check in report["targets"]:
        met = {True: "yes", False: "**no**", None: "n/a"}[check["met"]]
        measured = "-" if check["measured"] is None else str(check["measured"])
        lines.append(f"| {check['goal']} | {measured} | {met} |")
    for name, result in report["scenarios"].items():
        scenario, unit = result["scenario"], result["unit"]
        lines += [
            "",
            f"## {scenario['title'] or name} (`{name}`)",
            "",
            f"| client | mode | status | CPU µs/{unit} | wall µs/{unit} | peak RSS MB "
            f"| CPU x floor | CPU x peer | server/client CPU |",
            "|---|---|---|---:|---:|---:|---:|---|---:|",
        ]
        for client, summary in result["clients"].items():
            status = summary["status"]
            if status != "ok":
                status = f"{status} ({summary['ok_runs']}/{summary['runs']})"
            lines.append(
                f"| {client} | {summary['mode'] or '-'} | {status} "
                f"| {_fmt(summary.get('cpu_us_per_unit'))} "
                f"| {_fmt(summary.get('wall_us_per_unit'))} "
                f"| {_fmt(summary.get('peak_rss_mb'))} "
                f"| {_fmt(summary.get('vs_floor', {}).get('cpu'), 2)} "
                f"| {_peer_ratios(client, summary)} "
                f"| {_fmt(summary.get('server_to_client_cpu'), 2)} |"
            )
        lines += _peer_matrix(result["clients"])
        problems = [
            f"- {client}: {'; '.join(summary['reasons'])}"
            for client, summary in result["clients"].items()
            if summary["reasons"]
        ]
        if problems:
            lines += ["", *problems]
    lines += ["", "## Import time (fresh interpreter, median)", ""]
    lines += [
        "| import | CPU ms | beyond httpx, CPU ms | wall ms | also imports |",
        "|---|---:|---:|---:|---|",
    ]
    httpx_cpu = report["imports"].get("httpx", {}).get("median_cpu_s")
    for package, figure in report["imports"].items():
        cpu, wall = figure.get("median_cpu_s"), figure.get("median_wall_s")
        beyond = None if cpu is None or httpx_cpu is None or package == "httpx" else cpu - httpx_cpu
        shown = figure.get("error") or ", ".join(figure.get("pulls", [])) or "-"
        lines.append(
            f"| `{package}` | {_fmt(None if cpu is None else cpu * 1000)} "
            f"| {_fmt(None if beyond is None else beyond * 1000)} "
            f"| {_fmt(None if wall is None else wall * 1000)} | {shown} |"
        )
    return "\n".join(lines) + "\n"

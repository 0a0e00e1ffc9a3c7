"""Profile one client on one scenario under cProfile.

``python -m bench.profile --client oaicompat --scenario stream [--small]``
starts the bench server, runs the scenario once in this process with the
profiler on around the measured part only, and prints the functions with the
most own time (``--sort cumulative`` for inclusive time). ``--save FILE``
keeps the raw stats for ``snakeviz``/``pstats``.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import pstats
import sys
from collections.abc import Iterator

from bench import worker
from bench.clients import BY_NAME
from bench.run import bench_server
from bench.scenarios import scenarios


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--client", default="oaicompat", choices=sorted(BY_NAME))
    parser.add_argument("--scenario", default="stream")
    parser.add_argument("--small", action="store_true")
    parser.add_argument("--sort", default="tottime", choices=["tottime", "cumulative"])
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--save", help="write the raw profile here")
    args = parser.parse_args(argv)
    scenario = next(s for s in scenarios(args.small) if s.name == args.scenario)

    profiler = cProfile.Profile()

    @contextlib.contextmanager
    def measure_with_profiler(self: worker.Meter) -> Iterator[None]:
        with original(self):
            profiler.enable()
            try:
                yield
            finally:
                profiler.disable()

    original = worker.Meter.measure
    worker.Meter.measure = measure_with_profiler  # type: ignore[method-assign]
    try:
        with bench_server([scenario.tokens]) as server:
            result = worker.run(args.client, scenario, server.base_url)
    finally:
        worker.Meter.measure = original  # type: ignore[method-assign]
    print(f"{args.client} on {scenario.name}: {result['status']}", result.get("reason") or "")
    if result["status"] != "ok":
        return 1
    per_unit = result["cpu_s"] * 1e6 / scenario.units
    print(f"cpu {result['cpu_s']:.3f} s under the profiler ({per_unit:.1f} µs/{scenario.unit})")
    if args.save:
        profiler.dump_stats(args.save)
    stats = pstats.Stats(profiler, stream=sys.stdout)
    stats.strip_dirs().sort_stats(args.sort).print_stats(args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Time a full ``plan`` sweep over the catalogue for one model, and the CLI's start-up.

    .venv/bin/python benchmarks/plan_sweep.py [MODEL] [--repeat N]

Quality bars (design.md §5): the sweep well under a second, the CLI start under half a second.
Each figure is the median of ``--repeat`` runs after one warm-up (catalogue load, caches).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

SWEEP_BAR_S = 1.0
STARTUP_BAR_S = 0.5
#: The sweeps timed: the default (cheapest, every quant from 4 bits up, three engines) and the
#: widest (fastest: every tensor-parallel degree, no early stop), plus the issue's example.
SWEEPS = (
    ("cheapest, quant any", {}),
    ("cheapest, quant 4bit", {"quant": "4bit"}),
    ("fastest, quant any", {"objective": "fastest"}),
    ("value, quant any, 8 users", {"objective": "value", "users": 8}),
)


def time_sweeps(model: str, repeat: int) -> list[tuple[str, float, int, int, int]]:
    from rigplan.planning import plan_rigs

    rows = []
    for label, kw in SWEEPS:
        plan_rigs(model, use_user_config=False, **kw)  # warm-up
        times = []
        for _ in range(repeat):
            started = time.perf_counter()
            plan = plan_rigs(model, use_user_config=False, **kw)
            times.append(time.perf_counter() - started)
        rows.append((label, statistics.median(times), plan.considered, plan.estimated, plan.qualified))
    return rows


def time_startup(args: list[str], repeat: int) -> float:
    code = f"from rigplan.cli import main\nmain({args!r})"
    times = []
    for _ in range(repeat + 1):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], capture_output=True, check=False)
        times.append(time.perf_counter() - started)
    return statistics.median(times[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", nargs="?", default="llama-2-70b")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    print(f"plan sweep for {args.model} (median of {args.repeat}; bar {SWEEP_BAR_S:g} s)")
    for label, seconds, considered, estimated, qualified in time_sweeps(args.model, args.repeat):
        mark = "ok" if seconds < SWEEP_BAR_S else "SLOW"
        print(
            f"  {label:28} {seconds * 1000:7.0f} ms  {considered:5} candidates, {estimated:4} estimates, "
            f"{qualified:4} qualify  [{mark}]"
        )
    print(f"CLI start-up (median of {args.repeat}; bar {STARTUP_BAR_S:g} s)")
    for argv in (["--help"], ["plan", "--help"], ["power", "rtx-4090", "--json"]):
        seconds = time_startup(argv, args.repeat)
        mark = "ok" if seconds < STARTUP_BAR_S else "SLOW"
        print(f"  rigplan {' '.join(argv):24} {seconds * 1000:7.0f} ms  [{mark}]")


if __name__ == "__main__":
    main()

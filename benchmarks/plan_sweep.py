"""Time a full ``plan`` sweep over the catalogue for one model, and the CLI's start-up.

    .venv/bin/python benchmarks/plan_sweep.py [MODEL] [--repeat N]

Quality bars (design.md §5, issue 15): the sweep under a second in-process, a whole
``rigplan plan MODEL`` under 1.5 s, the CLI start under half a second.  Each figure is the
median of ``--repeat`` runs after one warm-up (catalogue load, caches), as wall time and as CPU
time: on a shared machine the wall time says more about the neighbours than about rigplan.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

SWEEP_BAR_S = 1.0
STARTUP_BAR_S = 0.5
PLAN_CLI_BAR_S = 1.5
#: The sweeps timed: the default (cheapest, every quant from 4 bits up, three engines) and the
#: widest (fastest: every tensor-parallel degree, no early stop), plus the issue's example.
SWEEPS = (
    ("cheapest, quant any", {}),
    ("cheapest, quant 4bit", {"quant": "4bit"}),
    ("fastest, quant any", {"objective": "fastest"}),
    ("value, quant any, 8 users", {"objective": "value", "users": 8}),
)


def time_sweeps(model: str, repeat: int) -> list[tuple[str, float, float, int, int, int]]:
    """(label, wall s, CPU s, candidates, estimates, qualifying) per sweep."""
    from rigplan.planning import plan_rigs

    rows = []
    for label, kw in SWEEPS:
        plan_rigs(model, use_user_config=False, **kw)  # warm-up
        walls, cpus = [], []
        for _ in range(repeat):
            wall, cpu = time.perf_counter(), time.process_time()
            plan = plan_rigs(model, use_user_config=False, **kw)
            walls.append(time.perf_counter() - wall)
            cpus.append(time.process_time() - cpu)
        row = (label, statistics.median(walls), statistics.median(cpus))
        rows.append((*row, plan.considered, plan.estimated, plan.qualified))
    return rows


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _drop_package_bytecode() -> None:
    """Remove rigplan's own __pycache__ folders (third-party .pyc stay, as pip wrote them)."""
    import rigplan

    for cache in pathlib.Path(rigplan.__file__).parent.rglob("__pycache__"):
        shutil.rmtree(cache, ignore_errors=True)


def time_cli(args: list[str], repeat: int, *, bytecode: bool) -> tuple[float, float]:
    """(wall s, CPU s) of ``rigplan ARGS`` in a fresh interpreter (the first run is a warm-up).

    ``bytecode`` False compiles rigplan's modules on each run, as CI does
    (PYTHONDONTWRITEBYTECODE=1, rigplan's __pycache__ removed first); True reads .pyc files the
    warm-up wrote to a private pycache prefix."""
    code = f"from rigplan.cli import main\nmain({args!r})"
    walls, cpus = [], []
    prefix = tempfile.mkdtemp(prefix="rigplan-pyc-")
    env = dict(os.environ)
    if bytecode:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = prefix
    else:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    for _ in range(repeat + 1):
        if not bytecode:
            _drop_package_bytecode()
        wall, cpu = time.perf_counter(), _children_cpu_s()
        subprocess.run([sys.executable, "-c", code], capture_output=True, check=False, env=env)
        walls.append(time.perf_counter() - wall)
        cpus.append(_children_cpu_s() - cpu)
    shutil.rmtree(prefix, ignore_errors=True)
    return statistics.median(walls[1:]), statistics.median(cpus[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", nargs="?", default="llama-2-70b")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    print(f"plan sweep for {args.model} (median of {args.repeat}; bar {SWEEP_BAR_S:g} s of CPU)")
    for label, wall, cpu, considered, estimated, qualified in time_sweeps(args.model, args.repeat):
        mark = "ok" if cpu < SWEEP_BAR_S else "SLOW"
        print(
            f"  {label:28} {wall * 1000:7.0f} ms wall {cpu * 1000:7.0f} ms CPU  {considered:5} candidates, "
            f"{estimated:4} estimates, {qualified:4} qualify  [{mark}]"
        )
    runs = (["--help"], ["plan", "--help"], ["power", "rtx-4090", "--json"], ["plan", args.model])
    for bytecode, how in ((False, "no .pyc: every module compiled, as in CI"), (True, "with .pyc")):
        print(f"CLI, {how} (median of {args.repeat}; CPU time against the bar)")
        for argv in runs:
            wall, cpu = time_cli(argv, args.repeat, bytecode=bytecode)
            bar = PLAN_CLI_BAR_S if argv == ["plan", args.model] else STARTUP_BAR_S
            mark = "ok" if cpu < bar else "SLOW"
            timing = f"{wall * 1000:7.0f} ms wall {cpu * 1000:7.0f} ms CPU"
            print(f"  rigplan {' '.join(argv):24} {timing}  [{mark}, {bar:g} s]")


if __name__ == "__main__":
    main()

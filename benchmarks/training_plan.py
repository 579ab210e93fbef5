"""Time the training planner's sweep over the catalogue (moved here from tests: timings are not tests).

    .venv/bin/python benchmarks/training_plan.py [--repeat N]

Prints the median of ``--repeat`` runs after one warm-up for each task; the bar is the old test's
3 s on a loaded CI machine (typically ~0.2–0.5 s on an idle one).
"""

from __future__ import annotations

import argparse
import statistics
import time

PLAN_BAR_S = 3.0
CASES = (
    ("llama-3-70b pretrain 1e12 tokens", "llama-3-70b", {"task": "pretrain", "tokens": 1e12}),
    ("llama-3-70b qlora", "llama-3-70b", {"task": "qlora"}),
    ("llama-3-8b full 1e9 tokens, rank by rent", "llama-3-8b", {"task": "full", "tokens": 1e9, "objective": "rent"}),
)


def main() -> None:
    from rigplan.training import plan_training

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    plan_training("llama-3-8b", task="qlora")  # warm-up: catalogue, profiles, caches
    for label, model, kwargs in CASES:
        times = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            plan = plan_training(model, **kwargs)
            times.append(time.perf_counter() - start)
        median = statistics.median(times)
        verdict = "ok" if median < PLAN_BAR_S else "SLOW"
        print(f"{label:45} {median:6.2f} s  ({plan.rigs_considered} rigs)  {verdict} (bar {PLAN_BAR_S:g} s)")


if __name__ == "__main__":
    main()

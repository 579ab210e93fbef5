"""Time ``plan_training`` (it was a wall-clock assert in tests/training, flaky on a loaded machine).

    .venv/bin/python benchmarks/training_plan.py [--repeat N]

Prints the median of ``--repeat`` runs after one warm-up; typically ~0.2 s on a desktop CPU.
"""

from __future__ import annotations

import argparse
import statistics
import time

CASES = (
    ("llama-3-70b pretrain 1e12 tokens", "llama-3-70b", {"task": "pretrain", "tokens": 1e12}),
    ("llama-3-8b qlora", "llama-3-8b", {"task": "qlora"}),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    from rigplan.training import plan_training

    for label, model, kwargs in CASES:
        plan_training(model, **kwargs)  # warm-up: catalogue, profile
        times = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            plan_training(model, **kwargs)
            times.append(time.perf_counter() - start)
        print(f"{label:40} median {statistics.median(times):.3f} s over {args.repeat} runs")


if __name__ == "__main__":
    main()

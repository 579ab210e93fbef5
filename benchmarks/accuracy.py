"""Print rigplan's speed-model accuracy (leave-one-GPU-out) — a thin wrapper.

python benchmarks/accuracy.py            # stored held-out predictions (seconds)
python benchmarks/accuracy.py --refit    # refit every profile first (about a minute)
python benchmarks/accuracy.py --json
"""

from __future__ import annotations

import json
import sys

from rigplan.calibration.accuracy import accuracy_report, format_report


def main(argv: list[str]) -> int:
    report = accuracy_report(refit="--refit" in argv, log=print if "--verbose" in argv else None)
    if "--json" in argv:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(format_report(report))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

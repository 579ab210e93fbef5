"""docs/accuracy.md holds the accuracy report's figures, kept equal by this test.

Regenerate after refitting: RIGPLAN_UPDATE_DOCS=1 python -m pytest tests/calibration/test_accuracy_doc.py
"""

from __future__ import annotations

import re
from pathlib import Path

from cli_runner import check_generated
from rigplan.calibration.accuracy import accuracy_report, markdown_report

DOC = Path(__file__).resolve().parents[2] / "docs" / "accuracy.md"
BLOCK = re.compile(r"(<!-- generated: [^\n]*-->\n)(.*?)(<!-- end generated -->)", re.DOTALL)


def test_accuracy_doc_matches_the_report():
    text = DOC.read_text(encoding="utf-8")
    match = BLOCK.search(text)
    assert match, "docs/accuracy.md lost its generated block markers"
    fresh = markdown_report(accuracy_report())
    check_generated(DOC, text[: match.start(2)] + fresh + text[match.end(2) :], "see this file's docstring")

"""Integrity of measurements/llamacpp_current.csv: current llama.cpp llama-bench rows, one per figure.

The file is data for the llama.cpp speed fit (issue 12); these checks keep every row usable and sourced.
"""

from __future__ import annotations

import csv
import io
import re
from importlib import resources

import pytest


def _names(text: str) -> list[str]:
    return text.split()


COLUMNS = _names(
    "source source_id date build backend gpu n_gpus split_mode model model_printed quant size_gib params_b fa"
    " n_ubatch n_batch test depth tokens_per_s stddev notes"
)
POWER_COLUMNS = _names("source source_id date gpu engine test power_limit_w tokens_per_s notes")
# Two rows are the same figure when all of these agree.
FIGURE_KEY = _names("source build backend gpu n_gpus model_printed quant fa n_ubatch n_batch test tokens_per_s notes")
BACKENDS = {"cuda", "rocm", "vulkan", "metal", "sycl", "cpu"}
SPLIT_MODES = {"layer", "row", "tensor", "none"}
TEST = re.compile(r"^(pp\d+|tg\d+|pp\d+\+tg\d+)(@d(\d+))?$")


def _text(name: str) -> str:
    return resources.files("rigplan.calibration").joinpath("measurements", name).read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def rows() -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(_text("llamacpp_current.csv"))))


def test_columns_are_the_agreed_ones():
    header = next(csv.reader(io.StringIO(_text("llamacpp_current.csv"))))
    assert header == COLUMNS


def test_every_row_has_a_source_date_and_build(rows):
    for i, r in enumerate(rows, start=2):
        assert r["source"].startswith(("https://", "http://")), f"line {i}: source must be a URL"
        assert r["source_id"], f"line {i}: source_id missing"
        assert re.fullmatch(r"20\d\d-\d\d-\d\d", r["date"]), f"line {i}: date {r['date']!r}"
        assert r["date"] >= "2024-09-01", f"line {i}: {r['date']} is older than the late-2024 builds this file covers"
        assert r["build"], f"line {i}: build missing"


def test_numbers_are_positive_and_fields_known(rows):
    for i, r in enumerate(rows, start=2):
        assert float(r["tokens_per_s"]) > 0, f"line {i}"
        assert int(r["n_gpus"]) >= 1, f"line {i}"
        assert r["backend"] in BACKENDS, f"line {i}: backend {r['backend']!r}"
        assert r["split_mode"] in SPLIT_MODES, f"line {i}: split_mode {r['split_mode']!r}"
        assert (r["split_mode"] == "none") == (int(r["n_gpus"]) == 1), f"line {i}: split_mode vs n_gpus"
        assert r["fa"] in {"0", "1"}, f"line {i}: fa {r['fa']!r}"
        assert r["gpu"] and r["model"] and r["quant"] == r["quant"].lower(), f"line {i}"
        for col in ("size_gib", "params_b", "stddev"):
            assert r[col] == "" or float(r[col]) >= 0, f"line {i}: {col}"
        for col in ("n_ubatch", "n_batch"):
            assert r[col] == "" or int(r[col]) >= 1, f"line {i}: {col}"


def test_test_names_and_depths_agree(rows):
    for i, r in enumerate(rows, start=2):
        m = TEST.match(r["test"])
        assert m, f"line {i}: test {r['test']!r}"
        assert int(r["depth"]) == int(m.group(3) or 0), f"line {i}: depth {r['depth']} vs test {r['test']}"


def test_one_row_per_figure(rows):
    keys = [tuple(r[c] for c in FIGURE_KEY) for r in rows]
    assert len(keys) == len(set(keys)), "a figure is recorded twice"


def test_power_limit_sweeps_are_sourced():
    text = _text("power_limit_sweeps.csv")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert rows
    assert list(rows[0]) == POWER_COLUMNS
    for i, r in enumerate(rows, start=2):
        assert r["source"].startswith("https://") and r["source_id"] and r["date"], f"line {i}"
        assert float(r["power_limit_w"]) > 0 and float(r["tokens_per_s"]) > 0, f"line {i}"


#: Builds their sources print as a bare hash, with the build number llama.cpp reports for that
#: commit (the upstream commit count at it, read from the repository's history).
RESOLVED_BUILDS = {"35bee03": 8244, "c830f99": 8144, "23b8cc4": 8838}


@pytest.mark.parametrize(("commit", "number"), sorted(RESOLVED_BUILDS.items()))
def test_a_build_printed_as_a_hash_carries_its_number_and_says_so(rows, commit, number):
    found = [r for r in rows if r["build"].split()[0] == commit]
    assert found, commit
    for r in found:
        assert r["build"] == f"{commit} ({number})"
        assert f"build number {number}: the source prints only the hash" in r["notes"]

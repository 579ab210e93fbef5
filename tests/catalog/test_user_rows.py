"""GPUs and platforms a user adds in config.toml: validated like catalogue rows, then listed
and planned like them (issue 15)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from rigplan.catalog import load_catalog
from rigplan.cli import main
from rigplan.edge import load_user_catalog
from rigplan.errors import CatalogError

# A 48 GB RTX 4090 (the modded cards sold in China): its own row, priced in [prices].
USER_GPU = """
[[gpus]]
id = "rtx-4090-48gb"
name = "RTX 4090 48 GB (modded)"
vendor = "nvidia"
gpu_class = "consumer"
architecture = "ada"
launch_year = 2024
memory_gb = 48
memory_mib = 49140
memory_type = "GDDR6X"
bandwidth_gb_per_s = 1008.0
sm_count = 128
boost_clock_mhz = 2520
board_power_w = 450
power_connector = "12vhpwr"
power_connector_count = 1
slot_width = 2.0
cooling = "blower"
ecc = false
form_factor = "pcie"
nvlink = "none"
pcie_generation = 4
pcie_lanes = 16

[prices]
rtx-4090-48gb = 2900
"""


def _config(text: str) -> Path:
    path = Path(os.environ["XDG_CONFIG_HOME"]) / "rigplan" / "config.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_no_config_file_is_the_builtin_catalogue() -> None:
    assert load_user_catalog() is load_catalog()


def test_user_gpu_joins_the_catalogue_with_a_default_source() -> None:
    path = _config(USER_GPU)
    gpu = load_user_catalog().gpus["rtx-4090-48gb"]
    assert gpu.memory_gb == 48
    assert str(path) in gpu.source


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        pytest.param(("memory_gb = 48", 'memory_gb = "48"'), "gpus[0].memory_gb", id="wrong-type"),
        pytest.param(("ecc = false", "ecc = false\nhbm = true"), "gpus[0].hbm", id="unknown-key"),
        pytest.param(("bandwidth_gb_per_s = 1008.0\n", ""), "gpus[0].bandwidth_gb_per_s", id="missing"),
        pytest.param(('id = "rtx-4090-48gb"', 'id = "rtx-4090"'), "gpus[0].id", id="catalogue-id"),
        pytest.param(('cooling = "blower"', 'cooling = "water"'), "gpus[0].cooling", id="bad-choice"),
    ],
)
def test_bad_user_rows_name_the_file_and_field(edit: tuple[str, str], field: str) -> None:
    path = _config(USER_GPU.replace(*edit))
    with pytest.raises(CatalogError) as exc:
        load_user_catalog()
    assert str(exc.value).startswith(f"{path}: {field}:")


def test_user_gpu_is_listed_and_planned(capsys: pytest.CaptureFixture[str]) -> None:
    _config(USER_GPU)
    with pytest.raises(SystemExit):
        main(["gpus", "--json", "--min-memory", "48"])
    rows = {g["id"]: g for g in json.loads(capsys.readouterr().out)["gpus"]}
    assert rows["rtx-4090-48gb"]["memory_gb"] == 48
    with pytest.raises(SystemExit):
        main(
            [
                "plan",
                "llama-3-70b",
                "--quant",
                "q4_k_m",
                "--engine",
                "llama.cpp",
                "--class",
                "consumer",
                "--top",
                "40",
                "--json",
            ]
        )
    plan = json.loads(capsys.readouterr().out)
    rigs = [r["rig"] for r in plan["recommendations"]]
    assert "rtx-4090-48gb" in rigs  # one 48 GB card holds a 4-bit 70B; priced from [prices]


def test_bad_user_row_is_a_one_line_cli_error(capsys: pytest.CaptureFixture[str]) -> None:
    _config(USER_GPU.replace("memory_gb = 48", 'memory_gb = "48"'))
    with pytest.raises(SystemExit) as exc:
        main(["gpus"])
    err = capsys.readouterr().err
    assert exc.value.code != 0
    assert "gpus[0].memory_gb" in err and "Traceback" not in err

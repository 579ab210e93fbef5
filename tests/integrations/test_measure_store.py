"""`rigplan measure` without a GPU: the stored profile (measured.toml in the user config dir),
its errors, and the message a machine without torch or CUDA gets."""

from __future__ import annotations

import datetime as dt
import json
import sys

import pytest

from cli_runner import run
from rigplan.errors import DataFileError, DeviceError
from rigplan.integrations.measure import (
    AllReduceMeasurement,
    GPUMeasurement,
    MeasuredProfile,
    PairMeasurement,
    load_measured,
    measure,
    measured_path,
    save_measured,
    to_toml,
)

PROFILE = MeasuredProfile(
    measured_at=dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.UTC),
    torch_version="2.9.0+cu130",
    cuda_version="13.0",
    gpus=(
        GPUMeasurement(
            0,
            "NVIDIA H100 80GB HBM3",
            "h100-sxm",
            2950.5,
            {"fp32": 51.2, "tf32": 378.0, "fp16": 702.3, "bf16": 710.9, "fp8": 1302.0, "int8": 1100.0},
        ),
        GPUMeasurement(1, 'NVIDIA "quoted" GPU', None, 900.0, {"fp16": 150.0}),
    ),
    pairs=(PairMeasurement(0, 1, True, 365.2), PairMeasurement(1, 0, False, 24.1)),
    allreduce=AllReduceMeasurement(2, 18.4, 310.7),
)


def test_profile_round_trips_through_the_user_config_dir(isolated_home):
    path = save_measured(PROFILE)
    assert path == measured_path() and str(path).startswith(str(isolated_home))
    assert path.name == "measured.toml"
    assert load_measured() == PROFILE
    assert load_measured().gpu("h100-sxm").matmul_tflops["bf16"] == 710.9


def test_nothing_measured_yet():
    assert load_measured() is None


@pytest.mark.parametrize(
    "edit,field",
    [
        (
            lambda t: t.replace("memory_bandwidth_gb_per_s = 2950.5", 'memory_bandwidth_gb_per_s = "fast"'),
            "gpu[0].memory_bandwidth_gb_per_s",
        ),
        (lambda t: t.replace("[measured]", "[measurements]"), "measured"),
        (lambda t: t.replace("latency_us = 18.4\n", ""), "allreduce.latency_us"),
        (lambda t: t + "\n[[gpu\n", "toml"),
    ],
    ids=["string-bandwidth", "no-measured-table", "missing-latency", "bad-toml"],
)
def test_malformed_profile_names_the_field(edit, field):
    path = measured_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(edit(to_toml(PROFILE)), encoding="utf-8")
    with pytest.raises(DataFileError) as exc:
        load_measured()
    assert exc.value.field == field and exc.value.path == str(path)


def test_without_torch_the_message_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(DeviceError, match=r"install rigplan\[measure\]"):
        measure()


def test_importing_measure_does_not_import_torch():
    import subprocess

    code = "import sys, rigplan.integrations.measure, rigplan.cli.device_cmds; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_cli_measure_without_torch_is_one_line(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)
    code, _, err = run(capsys, "measure")
    assert code == 2 and "install rigplan[measure]" in err and "Traceback" not in err


def test_cli_measure_show(capsys):
    code, _, err = run(capsys, "measure", "--show")
    assert code == 2 and "run `rigplan measure`" in err
    save_measured(PROFILE)
    code, out, _ = run(capsys, "measure", "--show")
    assert code == 0 and "NVIDIA H100 80GB HBM3" in out and "2,950" in out and "710.9" in out
    assert "GPU 0 → 1: 365.2 GB/s (P2P)" in out and "all-reduce over 2 GPUs: 18.4 µs" in out
    code, out, _ = run(capsys, "measure", "--show", "--json")
    assert json.loads(out)["gpus"][0]["catalog_id"] == "h100-sxm"

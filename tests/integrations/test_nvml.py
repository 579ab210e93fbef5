"""GPU detection (integrations/nvml.py) against a fake NVML built from a real capture
(tests/fixtures/nvml-h100/nvml.json: one H100 SXM, driver 580.159.04, CUDA 13.0), copies of it
for multi-GPU and mixed rigs, and the real pynvml on this machine when it has no GPU."""

from __future__ import annotations

import json
import sys

import pytest
from nvml_fake import NVML_ERROR_DRIVER_NOT_LOADED, NVML_ERROR_LIBRARY_NOT_FOUND, nvml_data

from cli_runner import run
from rigplan.catalog import load_catalog
from rigplan.errors import DeviceError, UnknownGPUError
from rigplan.estimate import estimate
from rigplan.integrations.nvml import detect_gpus, detect_rig
from rigplan.units import MIB

# nvidia-smi names and NVML memory totals (bytes) of consumer cards: nvidia-smi shows
# 24564 MiB on an RTX 4090 and 24576 MiB on an RTX 3090.
RTX_4090 = {
    "name": "NVIDIA GeForce RTX 4090",
    "memory_total": 24564 * MIB,
    "pcie_gen_max": 4,
    "pcie_gen_gpu_max": 4,
    "pcie_gen_current": 1,
    "power_limit_mw": 450000,
    "power_default_limit_mw": 450000,
    "power_limit_constraints_mw": [150000, 600000],
    "cuda_capability": [8, 9],
    "mig_mode": [0, 0],
}
RTX_3090 = {
    **RTX_4090,
    "name": "NVIDIA GeForce RTX 3090",
    "memory_total": 24576 * MIB,
    "power_limit_mw": 350000,
    "power_default_limit_mw": 350000,
    "cuda_capability": [8, 6],
}


def test_h100_capture_is_read_field_by_field(fake_nvml):
    nvml = fake_nvml()
    d = detect_gpus()
    (g,) = d.gpus
    assert (d.driver_version, d.cuda_version, d.nvml_version) == ("580.159.04", "13.0", "13.580.159.04")
    assert (g.name, g.catalog_id, g.memory_bytes) == ("NVIDIA H100 80GB HBM3", "h100-sxm", 85_520_809_984)
    assert (g.pcie_generation_current, g.pcie_generation_max, g.pcie_width_current, g.pcie_width_max) == (5, 5, 16, 16)
    assert (g.power_limit_w, g.power_default_limit_w, g.power_limit_range_w) == (700.0, 700.0, (200.0, 700.0))
    assert g.compute_capability == (9, 0) and not g.mig_enabled
    # The capture's link 0 answers NVMLError_NotSupported: no NVLink on this VM.
    assert (g.nvlink_links, g.nvlink_peers) == (0, ())
    assert d.p2p == ((None,),) and g.notes == ()
    assert nvml.calls == {"init": 1, "shutdown": 1}


def test_local_rig_is_the_catalogue_gpu(fake_nvml):
    fake_nvml()
    catalog = load_catalog()
    rig = detect_rig(catalog)
    assert rig.describe() == "h100-sxm" and rig.gpus[0] is catalog.gpus["h100-sxm"]
    e = estimate("llama-3-8b", "local", engine="vllm")
    assert e.to_dict()["memory"]["per_gpu"][0]["capacity_bytes"] == 85_520_809_984


def test_two_gpus_with_nvlink_and_p2p(fake_nvml):
    a_bus, b_bus = "00000000:18:00.0", "00000000:2A:00.0"
    links_a = [{"link": i, "state": 1, "remote_bus_id": b_bus} for i in range(4)]
    links_b = [{"link": i, "state": 1, "remote_bus_id": a_bus} for i in range(4)]
    fake_nvml(
        nvml_data(
            {"pci_bus_id": a_bus, "nvlink": links_a},
            {"pci_bus_id": b_bus, "nvlink": links_b},
            p2p=[[True, True], [True, True]],
        )
    )
    d = detect_gpus()
    assert [(g.nvlink_links, g.nvlink_peers) for g in d.gpus] == [(4, (1,)), (4, (0,))]
    assert d.p2p == ((None, True), (True, None))
    assert detect_rig(load_catalog()).describe() == "2x h100-sxm"


def test_nvswitch_links_make_every_gpu_a_peer(fake_nvml):
    switch = [{"link": i, "state": 1, "remote_bus_id": f"00000000:{0xC0 + i:02X}:00.0"} for i in range(18)]
    fake_nvml(nvml_data(*({"nvlink": switch} for _ in range(4))))
    d = detect_gpus()
    assert d.gpus[0].nvlink_links == 18 and d.gpus[0].nvlink_peers == (1, 2, 3)
    assert "NVSwitch" in d.gpus[0].notes[0]


def test_mixed_consumer_rig(fake_nvml):
    fake_nvml(nvml_data(RTX_4090, RTX_3090, p2p=[[False, False], [False, False]]))
    d = detect_gpus()
    assert [g.catalog_id for g in d.gpus] == ["rtx-4090", "rtx-3090"]
    assert d.gpus[0].pcie_generation_current == 1  # idle link power saving; max is what counts
    assert d.p2p == ((None, False), (False, None))
    assert detect_rig(load_catalog()).describe() == "rtx-4090 + rtx-3090"


def test_other_memory_variant_uses_the_detected_size(fake_nvml):
    # The RTX 3080 12 GB: the catalogue's rtx-3080 is the 10 GB card.
    fake_nvml(nvml_data({**RTX_3090, "name": "NVIDIA GeForce RTX 3080", "memory_total": 12288 * MIB}))
    (g,) = detect_gpus().gpus
    assert g.catalog_id == "rtx-3080" and "another memory variant" in g.notes[0]
    (gpu,) = detect_rig(load_catalog()).gpus
    assert gpu.id == "rtx-3080" and gpu.memory_mib == 12288


def test_gpu_not_in_the_catalogue(fake_nvml):
    fake_nvml(nvml_data({"name": "NVIDIA A100-SXM4-40GB", "memory_total": 40960 * MIB}))
    (g,) = detect_gpus().gpus
    assert g.catalog_id is None and "not in the catalogue" in g.notes[0]
    with pytest.raises(UnknownGPUError, match="unknown GPU 'NVIDIA A100-SXM4-40GB'"):
        detect_rig(load_catalog())


def test_gpu_platform_limits_the_pcie_generation(fake_nvml):
    fake_nvml(nvml_data({"pcie_gen_max": 4, "pcie_gen_current": 4}))
    (g,) = detect_gpus().gpus
    assert g.pcie_generation_max == 4 and "supports PCIe Gen 5, the slot or platform only Gen 4" in g.notes[0]


@pytest.mark.parametrize(
    "code,match",
    [(NVML_ERROR_LIBRARY_NOT_FOUND, "no NVIDIA driver found"), (NVML_ERROR_DRIVER_NOT_LOADED, "not loaded")],
    ids=["no-driver", "driver-not-loaded"],
)
def test_no_driver_is_a_clear_device_error(fake_nvml, code, match):
    fake_nvml(nvml_data(init_error=code))
    with pytest.raises(DeviceError, match=match):
        detect_gpus()


def test_no_gpu(fake_nvml):
    fake_nvml(nvml_data(devices=[]))
    with pytest.raises(DeviceError, match="reports no GPU"):
        detect_gpus()


def test_without_nvidia_ml_py(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)
    with pytest.raises(DeviceError, match=r"pip install 'rigplan\[nvml\]'"):
        detect_gpus()


def test_real_nvml_on_this_machine():
    """Without a GPU (this CI machine) detection fails with a message; with one it works."""
    pynvml = pytest.importorskip("pynvml")
    try:
        pynvml.nvmlInit()
        pynvml.nvmlShutdown()
    except pynvml.NVMLError:
        with pytest.raises(DeviceError):
            detect_gpus()
        return
    assert detect_gpus().gpus


def test_cli_detect_table_and_json(fake_nvml, capsys):
    fake_nvml()
    code, out, _ = run(capsys, "detect")
    assert code == 0
    assert "driver 580.159.04 · CUDA 13.0 · 1 GPU(s)" in out
    row = next(line for line in out.splitlines() if line.startswith("0"))
    assert "NVIDIA H100 80GB HBM3" in row and "h100-sxm" in row and "79.6 GiB" in row and "Gen5 x16" in row
    code, out, _ = run(capsys, "detect", "--json")
    d = json.loads(out)
    assert code == 0 and d["gpus"][0]["catalog_id"] == "h100-sxm" and d["gpus"][0]["power_limit_w"] == 700.0


def test_cli_detect_without_driver_is_one_line(fake_nvml, capsys):
    fake_nvml(nvml_data(init_error=NVML_ERROR_LIBRARY_NOT_FOUND))
    code, _, err = run(capsys, "detect")
    assert code == 2 and err.startswith("rigplan: error: no NVIDIA driver found") and "Traceback" not in err


def test_cli_estimate_rig_local(fake_nvml, capsys):
    fake_nvml(nvml_data(RTX_4090, RTX_3090))
    code, out, _ = run(capsys, "estimate", "llama-3-8b", "--rig", "local", "--json")
    d = json.loads(out)
    assert code == 0 and [g["gpu"] for g in d["memory"]["per_gpu"]] == ["rtx-4090", "rtx-3090"]

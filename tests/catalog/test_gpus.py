"""Data integrity of the shipped GPU catalogue (src/rigplan/catalog/data/gpus.toml).

Each table row is one published fact with its source; the fact-check rows are the corrections of
the buyer's guide (reference gpu_factcheck.md) that the catalogue must keep.
"""

from __future__ import annotations

import datetime as dt
import re

import pytest

from rigplan.catalog import GPU, load_catalog

# design.md §3: the GPU ids other tools rely on.
DESIGN_IDS = (
    "rtx-3070", "rtx-3080", "rtx-3080-ti", "rtx-3090", "rtx-3090-ti", "rtx-4070-ti", "rtx-4080",
    "rtx-4080-super", "rtx-4090", "rtx-5080", "rtx-5090", "rtx-a4000", "rtx-a5000", "rtx-a6000",
    "quadro-rtx-8000", "rtx-4000-ada", "rtx-5000-ada", "rtx-6000-ada", "rtx-pro-6000", "tesla-p40",
    "t4", "a10", "l4", "a40", "l40", "l40s", "v100-pcie-32gb", "v100-sxm2-32gb", "a100-pcie-40gb",
    "a100-pcie-80gb", "a100-sxm-80gb", "h100-pcie", "h100-sxm", "h100-nvl", "h200-sxm", "h200-nvl",
    "b200", "mi300x", "rx-7900-xtx", "m1-max-64gb", "m2-ultra-192gb", "m3-max-64gb",
    "m3-ultra-512gb", "m4-max-128gb",
    # added in the second round (design.md section 3)
    "rtx-3060", "rtx-4060-ti-16gb", "rtx-5060-ti-16gb", "rtx-4070-ti-super", "rtx-5070-ti",
    "mi50-32gb", "rx-7900-xt", "rx-9070-xt", "radeon-pro-w7900", "rtx-pro-4500", "rtx-pro-5000",
    "rtx-pro-6000-max-q", "rtx-pro-6000-server", "dgx-spark", "ryzen-ai-max-395-128gb",
    "m3-ultra-256gb", "gb200", "b300",
)  # fmt: skip

ARCHITECTURES = {
    "pascal", "volta", "turing", "ampere", "ada", "hopper", "blackwell", "cdna3", "rdna3",
    "gcn5", "rdna3.5", "rdna4", "apple-m1", "apple-m2", "apple-m3", "apple-m4",
}  # fmt: skip
VENDORS = {"nvidia", "amd", "apple"}
FORM_FACTORS = {"pcie", "sxm", "oam", "soc"}
TENSOR_FIELDS = (
    "fp16_tensor_tflops",
    "fp16_acc16_tensor_tflops",
    "fp8_tensor_tflops",
    "int8_tensor_tops",
)


def _gpus() -> dict[str, GPU]:
    return load_catalog().gpus


def _names() -> dict[str, str]:
    """Every id and alias -> catalogue id (the test's own resolver, independent of the CLI's)."""
    out: dict[str, str] = {}
    for gpu_id, gpu in _gpus().items():
        for name in (gpu_id, *gpu.aliases):
            out[name] = gpu_id
    return out


def _normal(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


# ------------------------------------------------------------------ presence and provenance


@pytest.mark.parametrize("gpu_id", DESIGN_IDS)
def test_every_design_id_is_in_the_catalogue(gpu_id: str) -> None:
    assert gpu_id in _gpus()


def test_every_row_is_sourced_and_dated() -> None:
    today = dt.date.today()
    for gpu_id, gpu in _gpus().items():
        assert gpu.id == gpu_id
        assert gpu.source.strip(), gpu_id
        assert gpu.notes.strip(), gpu_id
        assert dt.date(2025, 1, 1) <= gpu.as_of <= today, gpu_id


def test_enumerated_fields_take_known_values() -> None:
    for gpu_id, gpu in _gpus().items():
        assert gpu.vendor in VENDORS, gpu_id
        assert gpu.architecture in ARCHITECTURES, gpu_id
        assert gpu.form_factor in FORM_FACTORS, gpu_id
        assert gpu.name.strip(), gpu_id


# ------------------------------------------------------------------ aliases


def test_aliases_are_lower_case_and_never_collide() -> None:
    seen: dict[str, str] = {}
    seen_normal: dict[str, str] = {}
    for gpu_id, gpu in _gpus().items():
        for name in (gpu_id, *gpu.aliases):
            assert name == name.lower().strip(), (gpu_id, name)
            assert seen.setdefault(name, gpu_id) == gpu_id, f"{name!r}: {seen[name]} and {gpu_id}"
            # also distinct once spaces, dashes and dots are dropped ("RTX-4090" == "rtx 4090")
            key = _normal(name)
            assert seen_normal.setdefault(key, gpu_id) == gpu_id, (
                f"{name!r} normalises like a name of {seen_normal[key]}"
            )
        assert gpu_id not in gpu.aliases, f"{gpu_id} lists its own id as an alias"


@pytest.mark.parametrize(
    ("typed", "gpu_id"),
    [
        pytest.param("4090", "rtx-4090", id="4090"),
        pytest.param("rtx 4090", "rtx-4090", id="rtx-4090-spaced"),
        pytest.param("nvidia geforce rtx 4090", "rtx-4090", id="nvidia-smi-4090"),
        pytest.param("3090", "rtx-3090", id="3090"),
        pytest.param("3090 ti", "rtx-3090-ti", id="3090-ti"),
        pytest.param("3080", "rtx-3080", id="3080-is-10gb"),
        pytest.param("4080 super", "rtx-4080-super", id="4080-super"),
        pytest.param("a6000", "rtx-a6000", id="a6000"),
        pytest.param("6000 ada", "rtx-6000-ada", id="6000-ada"),
        pytest.param("rtx pro 6000", "rtx-pro-6000", id="rtx-pro-6000"),
        pytest.param("rtx 8000", "quadro-rtx-8000", id="rtx-8000"),
        pytest.param("p40", "tesla-p40", id="p40"),
        pytest.param("tesla t4", "t4", id="tesla-t4"),
        pytest.param("h100", "h100-sxm", id="h100-is-sxm"),
        pytest.param("nvidia h100 80gb hbm3", "h100-sxm", id="nvidia-smi-h100"),
        pytest.param("h100 pcie", "h100-pcie", id="h100-pcie"),
        pytest.param("h200", "h200-sxm", id="h200-is-sxm"),
        pytest.param("a100", "a100-sxm-80gb", id="a100-is-sxm-80gb"),
        pytest.param("a100 40gb", "a100-pcie-40gb", id="a100-40gb"),
        pytest.param("mi300x", "mi300x", id="mi300x"),
        pytest.param("7900xtx", "rx-7900-xtx", id="7900xtx"),
        pytest.param("7900 xtx", "rx-7900-xtx", id="7900-xtx"),
        pytest.param("m2 ultra", "m2-ultra-192gb", id="m2-ultra"),
        pytest.param("m3 ultra", "m3-ultra-512gb", id="m3-ultra"),
        pytest.param("m4 max", "m4-max-128gb", id="m4-max"),
        pytest.param("3060", "rtx-3060", id="3060-is-12gb"),
        pytest.param("4060 ti", "rtx-4060-ti-16gb", id="4060-ti-is-16gb"),
        pytest.param("5070 ti", "rtx-5070-ti", id="5070-ti"),
        pytest.param("4070 ti super", "rtx-4070-ti-super", id="4070-ti-super"),
        pytest.param("7900 xt", "rx-7900-xt", id="7900-xt-not-xtx"),
        pytest.param("w7900", "radeon-pro-w7900", id="w7900"),
        pytest.param("strix halo", "ryzen-ai-max-395-128gb", id="strix-halo"),
        pytest.param("dgx spark", "dgx-spark", id="dgx-spark"),
        pytest.param("rtx pro 6000 max-q", "rtx-pro-6000-max-q", id="pro-6000-max-q"),
        pytest.param("mi50", "mi50-32gb", id="mi50"),
    ],
)
def test_loose_forms_resolve(typed: str, gpu_id: str) -> None:
    assert _names()[typed] == gpu_id


# ------------------------------------------------------------------ fact-check corrections


@pytest.mark.parametrize(
    ("gpu_id", "field", "expected"),
    [
        # 1: H100 NVL figures are per card and dense (the guide quoted a bridged pair, sparse)
        pytest.param("h100-nvl", "fp16_tensor_tflops", 835.5, id="h100-nvl-fp16-per-card-dense"),
        pytest.param("h100-nvl", "fp8_tensor_tflops", 1670.5, id="h100-nvl-fp8-per-card-dense"),
        pytest.param("h100-nvl", "memory_gb", 94, id="h100-nvl-94gb"),
        # 2: A100 40GB is HBM2, not HBM2e
        pytest.param("a100-pcie-40gb", "memory_type", "HBM2", id="a100-40gb-hbm2"),
        # 3, 5: no NVLink anywhere on Ada
        pytest.param("rtx-6000-ada", "nvlink", "none", id="rtx-6000-ada-no-nvlink"),
        pytest.param("rtx-5000-ada", "nvlink", "none", id="rtx-5000-ada-no-nvlink"),
        # 4: RTX 5000 Ada bandwidth
        pytest.param("rtx-5000-ada", "bandwidth_gb_per_s", 576.0, id="rtx-5000-ada-576"),
        # 6: the V100 row of the guide is two products
        pytest.param("v100-sxm2-32gb", "board_power_w", 300, id="v100-sxm2-300w"),
        pytest.param("v100-sxm2-32gb", "nvlink", "sxm", id="v100-sxm2-nvlink"),
        pytest.param("v100-sxm2-32gb", "nvlink_gb_per_s", 300.0, id="v100-sxm2-nvlink2-300"),
        pytest.param("v100-sxm2-32gb", "fp16_tensor_tflops", 125.0, id="v100-sxm2-125-tensor"),
        pytest.param("v100-pcie-32gb", "board_power_w", 250, id="v100-pcie-250w"),
        pytest.param("v100-pcie-32gb", "nvlink", "none", id="v100-pcie-no-nvlink"),
        pytest.param("v100-pcie-32gb", "fp16_tensor_tflops", 112.0, id="v100-pcie-112-tensor"),
        # 7: the 3090 Ti does have NVLink (medium confidence)
        pytest.param("rtx-3090-ti", "nvlink", "bridge", id="rtx-3090-ti-nvlink"),
        # 8, 9: Quadro RTX 8000 is Turing, 295 W max, NVLink 2 at 100 GB/s
        pytest.param("quadro-rtx-8000", "architecture", "turing", id="quadro-rtx-8000-turing"),
        pytest.param("quadro-rtx-8000", "board_power_w", 295, id="quadro-rtx-8000-295w"),
        pytest.param("quadro-rtx-8000", "nvlink_generation", 2, id="quadro-rtx-8000-nvlink2"),
        pytest.param("quadro-rtx-8000", "nvlink_gb_per_s", 100.0, id="quadro-rtx-8000-100gbs"),
        # 10: L4 is Ada (with FP8), not Ampere
        pytest.param("l4", "architecture", "ada", id="l4-ada"),
        pytest.param("l4", "fp8_tensor_tflops", 242.5, id="l4-fp8"),
        # 11: NVLink speeds, bidirectional per GPU
        pytest.param("a100-sxm-80gb", "nvlink_gb_per_s", 600.0, id="a100-nvlink3-600"),
        pytest.param("h100-sxm", "nvlink_gb_per_s", 900.0, id="h100-sxm-nvlink4-900"),
        pytest.param("h200-sxm", "nvlink_gb_per_s", 900.0, id="h200-sxm-nvlink4-900"),
        pytest.param("h200-nvl", "nvlink_gb_per_s", 900.0, id="h200-nvl-bridge-900"),
        pytest.param("b200", "nvlink_gb_per_s", 1800.0, id="b200-nvlink5-1800"),
        pytest.param("h100-pcie", "nvlink_gb_per_s", 600.0, id="h100-pcie-bridge-600"),
        pytest.param("rtx-3090", "nvlink_gb_per_s", 112.5, id="rtx-3090-bridge-112.5"),
        pytest.param("rtx-a6000", "nvlink_gb_per_s", 112.5, id="rtx-a6000-bridge-112.5"),
        pytest.param("a40", "nvlink_gb_per_s", 112.5, id="a40-bridge-112.5"),
        # 14: RTX 4080 bandwidth
        pytest.param("rtx-4080", "bandwidth_gb_per_s", 716.8, id="rtx-4080-716.8"),
        # 15: A100 PCIe takes a 2-GPU NVLink bridge
        pytest.param("a100-pcie-40gb", "nvlink", "bridge", id="a100-pcie-nvlink-bridge"),
        pytest.param("a100-pcie-40gb", "nvlink_max_gpus", 2, id="a100-pcie-bridge-2-gpus"),
    ],
)
def test_fact_check_corrections_hold(gpu_id: str, field: str, expected: object) -> None:
    assert getattr(_gpus()[gpu_id], field) == expected


def test_tesla_p40_is_pascal_without_tensor_cores() -> None:
    p40 = _gpus()["tesla-p40"]
    assert p40.architecture == "pascal"
    assert p40.memory_gb == 24
    assert p40.memory_type == "GDDR5"
    assert p40.bandwidth_gb_per_s == pytest.approx(347, abs=1)  # NVIDIA 346, TechPowerUp 347.1
    assert all(getattr(p40, name) is None for name in TENSOR_FIELDS)
    assert p40.fp32_tflops == 12.0
    assert p40.cooling == "passive"
    assert p40.board_power_w == 250


# ------------------------------------------------------------------ memory the driver exposes


@pytest.mark.parametrize(
    ("gpu_id", "mib"),
    [
        # nvidia-smi "Total" in the calibration notebooks and the reference NVML capture
        pytest.param("rtx-4090", 24564, id="rtx-4090"),
        pytest.param("rtx-3090", 24576, id="rtx-3090"),
        pytest.param("rtx-a6000", 49140, id="rtx-a6000"),
        pytest.param("h100-pcie", 81559, id="h100-pcie"),
        pytest.param("h100-sxm", 81559, id="h100-sxm"),
    ],
)
def test_memory_mib_matches_nvidia_smi(gpu_id: str, mib: int) -> None:
    gpu = _gpus()[gpu_id]
    assert gpu.memory_mib == mib
    assert gpu.memory_bytes == mib * 1024**2


def test_memory_mib_is_close_to_the_marketed_capacity() -> None:
    for gpu_id, gpu in _gpus().items():
        nominal_mib = gpu.memory_gb * 1024
        # ECC reservations on GDDR data-center cards take up to ~6.3 %; never more than nominal
        assert 0.93 * nominal_mib <= gpu.memory_mib <= nominal_mib, gpu_id


# ------------------------------------------------------------------ invariants across rows


def test_nvlink_fields_are_present_exactly_when_there_is_nvlink() -> None:
    for gpu_id, gpu in _gpus().items():
        link = (gpu.nvlink_generation, gpu.nvlink_gb_per_s, gpu.nvlink_max_gpus)
        if gpu.nvlink == "none":
            assert link == (None, None, None), gpu_id
        else:
            assert None not in link, gpu_id
            assert gpu.vendor == "nvidia", gpu_id


def test_ada_has_no_nvlink() -> None:
    for gpu_id, gpu in _gpus().items():
        if gpu.architecture == "ada":
            assert gpu.nvlink == "none", gpu_id


def test_module_form_factors_have_no_slot_or_cables() -> None:
    for gpu_id, gpu in _gpus().items():
        if gpu.form_factor == "sxm":
            assert gpu.nvlink == "sxm", gpu_id
            assert gpu.power_connector == "sxm", gpu_id
        if gpu.form_factor in ("sxm", "oam", "soc"):
            assert gpu.slot_width == 0, gpu_id
            assert gpu.power_connector_count == 0, gpu_id
        else:
            assert gpu.slot_width >= 1, gpu_id
            assert gpu.pcie_generation in (3, 4, 5), gpu_id
            # x8 cards: the RTX 4060 Ti and 5060 Ti (NVIDIA spec pages: PCIe 4.0 x8 / 5.0 x8).
            assert gpu.pcie_lanes in (8, 16), gpu_id


def test_peer_to_peer_follows_the_product_line() -> None:
    for gpu_id, gpu in _gpus().items():
        if gpu.vendor == "nvidia" and gpu.gpu_class == "consumer":
            assert gpu.p2p_stock_driver is False, gpu_id
        # a single-chip system (DGX Spark) has no peer to talk to
        if gpu.vendor == "nvidia" and gpu.gpu_class in ("workstation", "datacenter") and gpu.form_factor != "soc":
            assert gpu.p2p_stock_driver is True, gpu_id


def test_passive_cards_are_data_center_parts() -> None:
    for gpu_id, gpu in _gpus().items():
        if gpu.cooling == "passive":
            assert gpu.gpu_class == "datacenter", gpu_id


def test_tensor_figures_are_ordered() -> None:
    for gpu_id, gpu in _gpus().items():
        fp16, acc16 = gpu.fp16_tensor_tflops, gpu.fp16_acc16_tensor_tflops
        fp8 = gpu.fp8_tensor_tflops
        if acc16 is not None:
            assert fp16 is not None and acc16 > fp16, gpu_id  # only where it differs (GeForce)
        if fp8 is not None and fp16 is not None:
            assert fp8 >= fp16, gpu_id
        assert gpu.has_fp8 == (fp8 is not None)
        if gpu.architecture in ("pascal", "volta", "turing", "ampere"):
            assert fp8 is None, f"{gpu_id}: no FP8 before Ada/Hopper"


@pytest.mark.parametrize("gpu_id", [g for g in DESIGN_IDS if g.startswith(("m1-", "m2-", "m3-", "m4-"))])
def test_apple_rows_describe_an_soc(gpu_id: str) -> None:
    gpu = _gpus()[gpu_id]
    assert gpu.vendor == "apple" and gpu.gpu_class == "apple" and gpu.is_apple
    assert gpu.memory_mib == gpu.memory_gb * 1024  # total unified memory
    assert gpu.form_factor == "soc"
    assert gpu.cooling == "integrated"
    assert gpu.power_connector == "integrated" and gpu.power_connector_count == 0
    assert gpu.slot_width == 0
    assert gpu.nvlink == "none"
    assert gpu.pcie_generation is None
    assert gpu.board_power_w > 0


def test_launch_price_matches_the_price_table() -> None:
    catalog = load_catalog()
    for gpu_id, gpu in catalog.gpus.items():
        launch = [p.usd for p in catalog.prices.get(gpu_id, ()) if p.kind == "launch"]
        if gpu.launch_price_usd is not None:
            assert launch == [gpu.launch_price_usd], gpu_id

"""Training throughput against the published measurements it was fitted to, and beyond.

Rows of ``calibration/measurements/training_throughput.csv`` (llm-foundry on A100 40GB, torchtitan
on A100 80GB) and of ``training/profiles/llm_foundry_h100_bf16.csv`` (llm-foundry on H100).
"""

from __future__ import annotations

import pytest

from rigplan.training import estimate_training
from rigplan.training.fit import (
    hopper_rows_from_csv,
    mape,
    packaged_csv,
    packaged_hopper_csv,
    predict,
    rows_from_csv,
)
from rigplan.training.profile import load_profile

ROWS = rows_from_csv(packaged_csv())


def _row(size: str, gpus: int, seq_len: int, checkpointing: str | None = None):
    hits = [
        r
        for r in ROWS
        if r.size == size
        and r.gpus == gpus
        and r.seq_len == seq_len
        and (checkpointing is None or r.checkpointing == checkpointing)
    ]
    assert hits, (size, gpus, seq_len)
    return hits[0]


# (size, GPUs, seq_len, checkpointing, published tokens/s per GPU, tolerance) — each from the CSV row
# with that source: llm-foundry scripts/train/benchmarking/README.md @4952183 (A100 40GB, 1600 Gbps
# RoCE) and torchtitan docs/performance.md @0413364 (64 × A100 80GB, FSDP2).
ANCHORS = [
    pytest.param("MPT-70B", 128, 2048, None, 376, 0.15, id="llm-foundry-70b-128gpu"),
    pytest.param("MPT-30B", 128, 2048, None, 865, 0.15, id="llm-foundry-30b-128gpu"),
    pytest.param("MPT-13B", 64, 2048, None, 1976, 0.15, id="llm-foundry-13b-64gpu"),
    pytest.param("MPT-7B", 8, 2048, None, 3679, 0.15, id="llm-foundry-7b-8gpu"),
    pytest.param("MPT-7B", 8, 16384, None, 2249, 0.15, id="llm-foundry-7b-16k"),
    pytest.param("MPT-1B", 8, 2048, None, 19271, 0.15, id="llm-foundry-1b-8gpu"),
    pytest.param("MPT-125M", 8, 2048, None, 136334, 0.20, id="llm-foundry-125m-8gpu"),
    pytest.param("Llama-3-8B", 64, 8192, "selective", 2904, 0.15, id="torchtitan-llama3-8b-selective-layer"),
    pytest.param("Llama-3-70B", 64, 8192, "full", 331, 0.15, id="torchtitan-llama3-70b"),
    pytest.param("Llama-2-13B", 64, 4096, "none", 2162, 0.15, id="torchtitan-llama2-13b-no-ac"),
    pytest.param("Llama-2-70B", 64, 4096, "full", 353, 0.15, id="torchtitan-llama2-70b"),
]


@pytest.mark.parametrize(("size", "gpus", "seq_len", "ckpt", "published", "tol"), ANCHORS)
def test_published_tokens_per_s_per_gpu(size, gpus, seq_len, ckpt, published, tol):
    row = _row(size, gpus, seq_len, ckpt)
    assert row.tokens_per_s_per_gpu == published
    assert predict(row, load_profile()) == pytest.approx(published, rel=tol)


def test_every_calibration_row_within_25_percent():
    profile = load_profile()
    worst = max(abs(predict(r, profile) / r.tokens_per_s_per_gpu - 1) for r in ROWS)
    assert worst < 0.25


def test_h100_rows_with_hopper_factors():
    """llm-foundry's H100 BF16 table (52 rows): MAPE ≤ 10% with the fitted Hopper factors."""
    hopper = hopper_rows_from_csv(packaged_hopper_csv(), ROWS)
    assert len(hopper) == 52
    assert mape(hopper, load_profile()) <= 0.10


def test_torchtitan_llama3_8b_through_the_public_api():
    """torchtitan: Llama 3 8B, 64 × A100 80GB, FSDP2, local batch 1 × 8192, selective AC → 2,973 WPS."""
    e = estimate_training(
        "llama-3-8b",
        "8 nodes x 8x a100-sxm-80gb",
        network="ib-hdr",
        zero_stage="fsdp-full",
        seq_len=8192,
        activation_checkpointing="selective",
    )
    assert e.speed is not None
    assert e.speed.tokens_per_s_per_gpu == pytest.approx(2973, rel=0.15)
    assert e.speed.mfu == pytest.approx(0.582, abs=0.08)  # torchtitan reports MFU 58.2%


def test_speed_breakdown_sums_to_step():
    e = estimate_training(
        "llama-2-70b",
        "4 nodes x 8x h100-sxm",
        tensor_parallel=8,
        pipeline_parallel=2,
        zero_stage=1,
        global_batch=64,
        activation_checkpointing="selective",
    )
    assert e.speed is not None
    assert sum(e.speed.breakdown_s.values()) == pytest.approx(e.speed.step_time_s, rel=1e-9)
    assert e.speed.breakdown_s["pipeline_bubble"] > 0
    assert e.speed.breakdown_s["tensor_parallel"] > 0


def test_slower_network_never_faster():
    kw = dict(zero_stage=3, activation_checkpointing=True)
    a = estimate_training("llama-3-8b", "2 nodes x 8x h100-sxm", network="eth-10g", **kw)
    b = estimate_training("llama-3-8b", "2 nodes x 8x h100-sxm", network="ib-ndr", **kw)
    assert a.speed is not None and b.speed is not None
    assert a.speed.tokens_per_s < b.speed.tokens_per_s


def test_pcie_without_p2p_is_slower_for_zero3():
    a = estimate_training(
        "llama-3-8b", "8x rtx-4090", zero_stage=3, activation_checkpointing=True, optimizer="adamw-8bit"
    )
    b = estimate_training(
        "llama-3-8b", "8x rtx-6000-ada", zero_stage=3, activation_checkpointing=True, optimizer="adamw-8bit"
    )
    assert a.speed is not None and b.speed is not None
    share = a.speed.breakdown_s["data_parallel_exposed"] / a.speed.step_time_s
    assert share > b.speed.breakdown_s["data_parallel_exposed"] / b.speed.step_time_s


def test_lora_and_qlora_costs():
    """A frozen base skips weight gradients (4N not 6N per token): LoRA is faster than a full
    fine-tune on the same rig; QLoRA pays NF4 dequantisation on top of LoRA."""
    kw = dict(seq_len=2048, activation_checkpointing=True)
    full = estimate_training("llama-3-8b", "a100-sxm-80gb", method="full", optimizer="adamw-8bit", **kw)
    lora = estimate_training("llama-3-8b", "a100-sxm-80gb", method="lora", **kw)
    qlora = estimate_training("llama-3-8b", "a100-sxm-80gb", method="qlora", **kw)
    assert full.speed and lora.speed and qlora.speed
    assert lora.speed.tokens_per_s > full.speed.tokens_per_s
    assert qlora.speed.tokens_per_s < lora.speed.tokens_per_s
    assert qlora.speed.breakdown_s["dequantize"] > 0


def test_fp8_faster_than_bf16_but_not_twice():
    """llm-foundry H100: FP8 gains ×1.16–1.35 over BF16 end to end, not ×2."""
    kw = dict(zero_stage=3, seq_len=2048, micro_batch=8)
    bf16 = estimate_training("mpt-7b", "8x h100-sxm", precision="bf16", **kw)
    fp8 = estimate_training("mpt-7b", "8x h100-sxm", precision="fp8", **kw)
    assert bf16.speed and fp8.speed
    assert 1.05 < fp8.speed.tokens_per_s / bf16.speed.tokens_per_s < 1.6


def test_speed_unknown_on_apple_with_a_reason():
    e = estimate_training("llama-3.2-1b", "m2-ultra-192gb", method="lora")
    assert e.speed is None
    assert "MPS" in (e.speed_unavailable or "")
    assert e.to_dict()["speed"]["tokens_per_s"] is None


def test_geforce_rate_derived_when_catalogue_lacks_it():
    """RTX 3080 Ti has no tensor figure in the catalogue: 80 SMs × 1.665 GHz × 1024 FLOPs per
    SM-clock × ½ (FP32 accumulate on GeForce) = 68.2 TFLOPS, the GA102 class rate."""
    from rigplan.catalog import load_catalog
    from rigplan.training.speed import bf16_peak_flops

    gpu = load_catalog().gpus["rtx-3080-ti"]
    assert bf16_peak_flops(gpu) / 1e12 == pytest.approx(68.2, rel=0.02)

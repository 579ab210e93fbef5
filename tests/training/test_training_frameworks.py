"""Framework profiles, 4D parallelism, low-bit precisions and buy-vs-rent (issue 14).

Published anchors are tokens/s per GPU as printed; the tolerance is the framework profile's
printed range (leave-one-source-out), so a test fails when the estimate leaves its own promise.
"""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rigplan import estimate_training
from rigplan.catalog import load_catalog
from rigplan.catalog.rental import RENTAL_TIERS, load_rental
from rigplan.errors import InvalidValueError, UnsupportedError
from rigplan.training.frameworks import Framework, load_framework, parse_framework
from rigplan.training.setup import stage_layers
from rigplan.training.step import estimate_training_speed
from rigplan.training.validate import (
    error_summary,
    group_errors,
    hold_out_errors,
    leave_one_source_out,
    load_rows,
)


def test_405b_on_128_nodes_gives_an_estimate():
    """The issue's done-when call: PP 8 over 126 layers runs with uneven stages."""
    e = estimate_training(
        "llama-3.1-405b",
        "128 nodes x 8x h100-sxm",
        tensor_parallel=8,
        pipeline_parallel=8,
        precision="fp8",
        seq_len=8192,
    )
    assert e.speed is not None
    d = e.to_dict()
    assert d["speed"]["framework"] == "megatron" and d["speed"]["framework_default"] is True
    assert d["parallel"]["pipeline"] == 8
    lo, hi = d["speed"]["tokens_per_s_range"]
    assert lo < d["speed"]["tokens_per_s"] < hi


@pytest.mark.parametrize(
    ("kwargs", "published"),
    [
        pytest.param(
            dict(
                model="llama-3-70b",
                rig="8 nodes x 8x h100-sxm",
                tensor_parallel=4,
                pipeline_parallel=8,
                virtual_pipeline=5,
                precision="fp8",
                seq_len=8192,
                global_batch=128,
                framework="megatron",
                zero_stage=1,
            ),
            1602,
            id="mbridge-25.11-h100-llama3-70b-fp8",
        ),
        pytest.param(
            dict(
                model="llama-3-8b",
                rig="b200",
                precision="fp8",
                seq_len=8192,
                micro_batch=2,
                global_batch=16,
                framework="megatron",
            ),
            30624,
            id="mbridge-25.11-b200-llama3-8b-fp8-per-gpu",
        ),
        pytest.param(
            dict(
                model="llama-3.1-8b",
                rig="8x h100-sxm",
                zero_stage=3,
                activation_checkpointing="selective",
                seq_len=8192,
                micro_batch=2,
                framework="torchtitan",
            ),
            5762,
            id="torchtitan-h100-8b-bf16-fsdp",
        ),
        pytest.param(
            dict(model="llama-3.1-8b", rig="rtx-4090", method="qlora", seq_len=2048, micro_batch=2, framework="fsdp"),
            2413,
            id="torchtune-4090-qlora",
        ),
        pytest.param(
            dict(
                model="llama-3-70b",
                rig="8x h100-sxm",
                method="lora",
                tensor_parallel=2,
                pipeline_parallel=4,
                virtual_pipeline=20,
                precision="fp8",
                seq_len=4096,
                micro_batch=1,
                global_batch=32,
                framework="megatron",
            ),
            2643,
            id="mbridge-26.06-h100-llama3-70b-lora-fp8",
        ),
        pytest.param(
            dict(
                model="llama-3.1-70b",
                rig="32 nodes x 8x h100-sxm",
                tensor_parallel=8,
                zero_stage=3,
                activation_checkpointing="full",
                seq_len=8192,
                micro_batch=16,
                framework="torchtitan",
            ),
            597.3,
            id="torchtitan-asynctp-h100-70b-bf16-vanilla-tp",
        ),
    ],
)
def test_published_anchor_inside_the_printed_range(kwargs, published):
    """Sources: training_frameworks.csv rows (Megatron-Bridge docs/performance-summary.md
    @00b7660b and performance-summary-archive.md @067f987d [26.06 LoRA]; torchtitan
    benchmarks/llama3_h100_202412_torchtitan.md @31a17bfd and asyncTP_llama3_h100_2025-06_torchtitan.md
    @2887250b; torchtune README @0031bfb0)."""
    model, rig = kwargs.pop("model"), kwargs.pop("rig")
    e = estimate_training(model, rig, **kwargs)
    assert e.speed is not None and e.tokens_per_s_range is not None
    lo, hi = (x / e.rig.gpu_count for x in e.tokens_per_s_range)
    assert lo <= published <= hi, (lo, e.speed.tokens_per_s_per_gpu, hi)


def test_held_out_accuracy_does_not_regress():
    """Leave-one-source-out over training_frameworks.csv: dense MAPE 13.1% and MoE 23.1% on 125 /
    96 rows with Megatron-Bridge 26.04-26.08, NeMo 25.02-25.07 and torchtitan async TP added (14.4% /
    22.0% on the 82 / 54 rows before; targets 15% / 25%; AutoModel PP LoRA rows are the worst dense
    ones, 26.06 Blackwell MoE the worst MoE ones); guards at 20% and 30%."""
    rows, _ = load_rows()
    pairs = leave_one_source_out([r for r in rows])
    dense = error_summary([(r, p) for r, p in pairs if not r.moe])
    moe = error_summary([(r, p) for r, p in pairs if r.moe])
    assert dense["rows"] >= 55 and moe["rows"] >= 30
    assert dense["mape"] < 0.20
    assert moe["mape"] < 0.30
    # The ranges estimates print (shipped profiles, MoE bounds included) hold ≥ 80% of these rows.
    bounds = {
        n: (load_framework(Framework(n)).range_low, load_framework(Framework(n)).range_high)
        for n in ("fsdp", "megatron")
    }
    groups = group_errors(pairs, bounds)
    assert groups["dense"]["coverage"] >= 0.8
    assert groups["MoE"]["coverage"] >= 0.8


def test_gpu_and_framework_hold_outs_are_reported():
    """The profiles file stores the errors with a whole GPU type or framework held out, and they
    cover every scored row."""
    rows, _ = load_rows()
    groups = hold_out_errors(rows[:12], {"fsdp": (-0.3, 0.3), "megatron": (-0.3, 0.3)})
    assert {"one GPU held out: all", "one framework held out: all"} <= set(groups)
    assert groups["one GPU held out: all"]["rows"] == 12
    assert 0.0 <= groups["one GPU held out: all"]["coverage"] <= 1.0


def test_nvl72_rack_runs_expert_parallel_over_nvlink():
    """GB200 NVL72 joins 72 GPUs by NVLink (catalogue nvlink_max_gpus): EP64 all-to-all stays on
    NVLink there and crosses InfiniBand on DGX B200 nodes of 8 (the node NICs' share: the
    published runs overlap it, a per-NIC model fitted worse, 27% vs 24% MoE MAPE); the host-bound MoE routing time is
    counted off the rack only (the published GB200 recipes capture CUDA graphs)."""
    kw = dict(expert_parallel=64, precision="bf16", seq_len=4096, micro_batch=4, framework="megatron")
    rack = estimate_training("qwen3-30b-a3b", "8 nodes x 8x gb200", **kw)
    dgx = estimate_training("qwen3-30b-a3b", "8 nodes x 8x b200", **kw)
    assert rack.speed and dgx.speed
    assert "NVLink joins up to 72 GPUs" in rack.interconnect.description
    assert rack.speed.breakdown_s["expert_all_to_all"] < dgx.speed.breakdown_s["expert_all_to_all"]
    assert rack.speed.breakdown_s["expert_routing"] == 0.0 < dgx.speed.breakdown_s["expert_routing"]
    assert rack.speed.tokens_per_s_per_gpu > dgx.speed.tokens_per_s_per_gpu
    # Token drop at a fixed capacity has no token-count sync: no routing time (Megatron-Bridge
    # 25.09 token-drop runs are ~2x the 25.11 dropless ones on DGX B200, equal on GB200).
    drop = estimate_training_speed(
        dgx.shape,
        dataclasses.replace(dgx.setup, moe_dropless=False),
        dgx.layout,
        dgx.rig.gpus[0],
        dgx.interconnect,
        dgx.profile,
        dgx.framework,
    )
    assert drop.breakdown_s["expert_routing"] == 0.0
    assert drop.tokens_per_s_per_gpu > dgx.speed.tokens_per_s_per_gpu


def test_fp8_gain_larger_on_megatron_than_the_neutral_share():
    kw = dict(seq_len=8192, micro_batch=1, global_batch=16)
    bf16 = estimate_training("llama-3-8b", "8x h100-sxm", precision="bf16", framework="megatron", **kw)
    fp8 = estimate_training("llama-3-8b", "8x h100-sxm", precision="fp8", framework="megatron", **kw)
    assert bf16.speed and fp8.speed
    assert fp8.speed.tokens_per_s / bf16.speed.tokens_per_s > 1.3


def test_block_scaled_precisions_need_blackwell():
    with pytest.raises(UnsupportedError, match="Blackwell"):
        estimate_training("llama-3-8b", "h100-sxm", precision="mxfp8")
    fp8 = estimate_training("llama-3-8b", "b200", precision="fp8", framework="megatron")
    fp4 = estimate_training("llama-3-8b", "b200", precision="fp4", framework="megatron")
    assert fp8.speed and fp4.speed and fp4.speed.tokens_per_s > fp8.speed.tokens_per_s
    assert any("fp4" in w for w in fp4.warnings)


def test_context_parallel_splits_activations():
    one = estimate_training("llama-3.1-8b", "8x h100-sxm", seq_len=32768, zero_stage=3, activation_checkpointing=True)
    cp = estimate_training(
        "llama-3.1-8b", "8x h100-sxm", seq_len=32768, zero_stage=3, activation_checkpointing=True, context_parallel=4
    )
    assert cp.memory.peak.activations_bytes < one.memory.peak.activations_bytes / 3
    assert cp.layout.data_parallel == 2


def test_expert_parallel_splits_experts_and_adds_all_to_all():
    base = estimate_training("mixtral-8x7b", "8x h100-sxm", zero_stage=1, framework="megatron")
    ep = estimate_training("mixtral-8x7b", "8x h100-sxm", zero_stage=1, expert_parallel=8, framework="megatron")
    assert ep.memory.peak.weights_bytes < base.memory.peak.weights_bytes / 3
    assert ep.speed and ep.speed.breakdown_s["expert_all_to_all"] > 0
    with pytest.raises(InvalidValueError, match="no experts"):
        estimate_training("llama-3-8b", "8x h100-sxm", expert_parallel=2)


@given(st.integers(min_value=1, max_value=200), st.integers(min_value=1, max_value=64))
def test_stage_layers_cover_every_layer_evenly(layers, pp):
    if pp > layers:
        return
    stages = stage_layers(layers, pp)
    assert sum(stages) == layers and len(stages) == pp
    assert max(stages) - min(stages) <= 1


def test_frameworks_named_and_bad_names_refused():
    assert parse_framework("nemo") is Framework.MEGATRON
    assert parse_framework("axolotl") is Framework.HF_TRAINER
    with pytest.raises(InvalidValueError, match="framework"):
        parse_framework("jax")
    with pytest.raises(UnsupportedError, match="one GPU"):
        estimate_training("llama-3-8b", "2x rtx-4090", method="qlora", framework="unsloth")


def test_framework_speed_order_on_one_consumer_gpu():
    """Unsloth > torchtune-class FSDP > HF Trainer: the published ratios the profiles carry."""
    speeds = {
        f: estimate_training("llama-3-8b", "rtx-4090", method="qlora", framework=f).speed.tokens_per_s
        for f in ("unsloth", "fsdp", "hf-trainer")
    }
    assert speeds["unsloth"] > speeds["fsdp"] > speeds["hf-trainer"]
    assert load_framework(Framework.UNSLOTH).basis != "fitted"


def test_every_catalogue_gpu_has_an_estimate_or_a_reason():
    for gpu in load_catalog().gpus.values():
        e = estimate_training("llama-3.2-1b", gpu.id, method="lora", precision="f16", force=True)
        assert e.speed is not None or e.speed_unavailable, gpu.id


def test_rental_rows_are_sourced_and_dated():
    rentals, systems = load_rental()
    assert rentals and systems
    for r in rentals:
        assert r.tier in RENTAL_TIERS and r.usd_per_gpu_hour > 0 and r.source.startswith("http") and r.as_of
    for s in systems:
        assert s.usd > 0 and s.source.startswith("http") and s.gpu in load_catalog().gpus


def test_nvlink_link_beats_forced_pcie_for_tensor_parallel():
    kw = dict(tensor_parallel=8, seq_len=4096, framework="megatron")
    nv = estimate_training("llama-3-70b", "8x h100-sxm", **kw)
    pcie = estimate_training("llama-3-70b", "8x h100-sxm", link="pcie4", **kw)
    assert nv.speed and pcie.speed and nv.speed.tokens_per_s > pcie.speed.tokens_per_s
    assert "PCIe 4.0" in pcie.interconnect.description
    with pytest.raises(InvalidValueError, match="NVLink"):
        estimate_training("llama-3-8b", "4x rtx-4090", link="nvlink")


def test_request_path_carries_the_framework():
    """edge.training_request → core.evaluate_training passes ``framework`` through."""
    from rigplan.core import Context, evaluate_training
    from rigplan.edge import training_request

    req = training_request("llama-3-8b", "rtx-4090", framework="unsloth", method="qlora")
    e = evaluate_training(req, Context(catalog=load_catalog(), profiles={}))
    assert e.to_dict()["speed"]["framework"] == "unsloth"


def test_range_widens_on_a_gpu_without_training_rows():
    """H100 SXM has published rows (frameworks.toml calibrated_gpus); H100 NVL has none, so its
    estimate extrapolates and prints the bounds measured with one whole GPU type held out."""
    from rigplan.training.uncertainty import calibrated_gpus

    assert "h100-sxm" in calibrated_gpus() and "h100-nvl" not in calibrated_gpus()
    spans = {}
    for rig in ("8x h100-sxm", "8x h100-nvl"):
        e = estimate_training("llama-3-8b", rig, zero_stage=3, activation_checkpointing=True)
        assert e.speed is not None and e.tokens_per_s_range is not None
        lo, hi = e.tokens_per_s_range
        spans[rig] = (hi - lo) / e.speed.tokens_per_s
    assert spans["8x h100-nvl"] > spans["8x h100-sxm"]
    assert any("no published training run on this GPU" in w for w in e.warnings)


def test_gb300_rows_are_scored():
    """The 19 GB300 rows of Megatron-Bridge 25.11 / 26.02 (performance-summary.md @00b7660b,
    performance-summary-archive.md @0a25f911) need the catalogue's gb300 id (NVL72 domain).  GB300
    rows of models the catalogue lacks (Nemotron 3, Kimi K2; 26.04 / 26.06) stay data only."""
    rows, skipped = load_rows()
    assert sum(r.gpu_id == "gb300" for r in rows) >= 14
    assert not [label for label, why in skipped if "gb300" in label and "GPU" in why]


def test_rowwise_fp8_rows_are_data_only():
    """torchtitan's async-TP table (asyncTP_llama3_h100_2025-06_torchtitan.md @2887250b) prints
    float8 row-wise runs 26-42% slower than tensor-wise ones: a recipe rigplan's fp8 (per-tensor
    scaling) does not describe, so the four rows are kept as data with the reason, not scored."""
    rows, skipped = load_rows()
    rowwise = [why for label, why in skipped if label.startswith("torchtitan-asynctp") and "row-wise" in why]
    assert len(rowwise) == 4
    assert sum(r.source_id == "torchtitan-asynctp-h100-2025-06" for r in rows) == 8


def test_a_later_release_is_predicted_from_earlier_rows_only(monkeypatch):
    from rigplan.training import validate

    rows, _ = validate.load_rows()
    latest_fitted = []
    real = validate._fold

    def spy(rows_, held, profile):
        latest_fitted.append(max(r.date[:7] for r in rows_ if not held(r)))
        return real(rows_, held, profile)

    monkeypatch.setattr(validate, "_fold", spy)
    months = sorted({r.date[:7] for r, _ in validate.later_release_out(rows)})
    assert len(latest_fitted) == len(months) and all(a < m for a, m in zip(latest_fitted, months, strict=True))
    assert {r.date[:7] for r in rows} - set(months) == {min(r.date[:7] for r in rows)}  # nothing precedes the first


def test_every_estimate_reaches_the_later_release_bounds():
    from rigplan.catalog import load_catalog
    from rigplan.training.frameworks import Framework, load_framework
    from rigplan.training.shape import model_shape
    from rigplan.training.uncertainty import LATER_RELEASE, _hold_out_bounds, speed_range

    catalog = load_catalog()
    gpu = catalog.gpus["h100-sxm"]
    for model in ("llama-3-8b", "qwen3-30b-a3b"):
        shape = model_shape(catalog.models[model])
        later = _hold_out_bounds(LATER_RELEASE, shape.num_experts > 1)
        assert later is not None
        lo, hi = speed_range(load_framework(Framework.MEGATRON), shape, gpu)
        assert lo <= later[0] and hi >= later[1]

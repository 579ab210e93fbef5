"""``estimate_training``: inputs, errors, and the shape of ``to_dict()``."""

from __future__ import annotations

import json

import pytest

from rigplan.errors import InvalidValueError, RigplanError, UnknownGPUError, UnknownModelError, UnsupportedError
from rigplan.training import estimate_training

LLAMA_SHAPE = {
    "hidden_size": 4096,
    "num_layers": 32,
    "num_heads": 32,
    "num_kv_heads": 8,
    "ffn_size": 14336,
    "vocab_size": 128256,
}


def test_to_dict_contract():
    e = estimate_training(
        "llama-3-8b", "2 nodes x 8x h100-sxm", zero_stage=3, activation_checkpointing=True, tokens=1e9
    )
    d = e.to_dict()
    json.dumps(d)
    assert d["fits"] is True
    assert len(d["memory"]["per_gpu"]) == 16
    g = d["memory"]["per_gpu"][0]
    for key in (
        "weights_bytes",
        "gradients_bytes",
        "optimizer_states_bytes",
        "activations_bytes",
        "overhead_bytes",
        "total_bytes",
        "capacity_bytes",
    ):
        assert isinstance(g[key], int), key
    assert g["total_bytes"] <= g["capacity_bytes"]
    sp = d["speed"]
    assert sp["tokens_per_s"] == pytest.approx(sp["tokens_per_s_per_gpu"] * 16)
    assert 0 < sp["mfu"] < 1
    assert sp["tokens_per_s_range"][0] < sp["tokens_per_s"] < sp["tokens_per_s_range"][1]
    assert d["time_to_train_s"] == pytest.approx(1e9 / sp["tokens_per_s"])
    cost = d["cost"]
    # Two DGX H100 systems at the sourced $199,000 each; the IB network between them is unpriced.
    assert cost["machine_usd"] == pytest.approx(2 * 199_000)
    assert any("network" in u for u in cost["unpriced"])
    hours = d["time_to_train_s"] / 3600
    assert cost["rent_on_demand_usd"] == pytest.approx(4.76 * 16 * hours)
    assert cost["rent_spot_usd"] == pytest.approx(2.69 * 16 * hours)
    assert cost["electricity_usd"] == pytest.approx(cost["energy_kwh"] * cost["usd_per_kwh"])
    assert all(q["source"] and q["as_of"] for q in cost["rent"])
    assert sp["framework"] == "fsdp" and sp["framework_default"] is True
    assert d["provenance"]["memory.per_gpu.capacity_bytes"]["kind"] == "catalogue"
    assert d["provenance"]["speed.tokens_per_s"]["kind"] == "estimate"


def test_buy_cost_is_the_whole_machine():
    """Two RTX 3090s at the catalogue's $750 plus the platform and PSU the planner picks."""
    e = estimate_training("llama-3-8b", "2x rtx-3090", method="qlora", tokens=1e8)
    cost = e.to_dict()["cost"]
    items = {i["kind"]: i for i in cost["machine_items"]}
    assert items["used"]["usd"] == pytest.approx(2 * 750) or items.get("street", {}).get("usd")
    assert "platform" in items and "psu" in items
    assert cost["machine_usd"] == pytest.approx(sum(i["usd"] for i in cost["machine_items"]))
    assert cost["break_even_runs"] is not None and cost["break_even_runs"] >= 1


def test_user_prices_rent_and_electricity_override():
    e = estimate_training(
        "llama-3-8b",
        "rtx-4090",
        method="qlora",
        tokens=1e8,
        prices={"rtx-4090": 1000.0},
        rental={"rtx-4090": 1.0},
        kwh_price=0.5,
    )
    cost = e.to_dict()["cost"]
    assert cost["machine_items"][0]["usd"] == 1000.0 and cost["machine_items"][0]["kind"] == "yours"
    assert cost["rent"][0]["usd_per_gpu_hour"] == 1.0 and cost["rent"][0]["yours"]
    assert cost["usd_per_kwh"] == 0.5


def test_model_as_fields_dict():
    a = estimate_training(LLAMA_SHAPE, "h100-sxm", method="lora")
    b = estimate_training("llama-3-8b", "h100-sxm", method="lora")
    assert a.shape.total_params == b.shape.total_params
    assert a.memory.peak.total_bytes == b.memory.peak.total_bytes


def test_defaults_and_aliases():
    e = estimate_training("llama-3-8b", "8x h100-sxm", zero_stage="fsdp-hybrid")
    assert e.setup.zero_stage == 3 and e.setup.hybrid_shard
    assert e.global_batch == 8 and e.setup.grad_accumulation == 1
    q = estimate_training("llama-3-8b", "rtx-4090", method="qlora")
    assert q.setup.paged_optimizer


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        pytest.param({"tensor_parallel": 3}, InvalidValueError, "must divide the 32 attention heads", id="tp-heads"),
        pytest.param({"pipeline_parallel": 40}, InvalidValueError, "exceed the 32 layers", id="pp-layers"),
        pytest.param(
            {"tensor_parallel": 4, "pipeline_parallel": 4}, InvalidValueError, "must divide the rig", id="tp-pp-gpus"
        ),
        pytest.param({"micro_batch": 2, "global_batch": 12}, InvalidValueError, "not a multiple", id="global-batch"),
        pytest.param({"method": "dpo"}, InvalidValueError, "method: must be one of", id="method"),
        pytest.param({"precision": "int4"}, InvalidValueError, "precision", id="precision"),
        pytest.param({"optimizer": "lion"}, InvalidValueError, "optimizer", id="optimizer"),
        pytest.param({"zero_stage": 4}, InvalidValueError, "zero_stage", id="zero"),
        pytest.param({"zero_stage": True}, InvalidValueError, "zero_stage", id="zero-bool"),
        pytest.param(
            {"activation_checkpointing": "sometimes"}, InvalidValueError, "activation_checkpointing", id="ckpt"
        ),
        pytest.param({"seq_len": 0}, InvalidValueError, "seq_len", id="seq-zero"),
        pytest.param({"seq_len": 10**7}, InvalidValueError, "exceeds", id="seq-too-long"),
        pytest.param({"micro_batch": 1.5}, InvalidValueError, "micro_batch", id="mb-float"),
        pytest.param({"offload": "nvme"}, InvalidValueError, "offload", id="offload-kind"),
        pytest.param({"offload": "cpu"}, InvalidValueError, "zero_stage ≥ 1", id="offload-zero0"),
        pytest.param({"method": "lora", "lora_rank": 0}, InvalidValueError, "lora_rank", id="lora-rank"),
        pytest.param({"method": "lora", "lora_targets": "mlp"}, InvalidValueError, "lora_targets", id="lora-targets"),
        pytest.param({"tokens": -1}, InvalidValueError, "tokens", id="tokens-negative"),
        pytest.param({"tokens": float("nan")}, InvalidValueError, "tokens", id="tokens-nan"),
        pytest.param({"pipeline_parallel": 2, "zero_stage": 3}, UnsupportedError, "ZeRO-1", id="pp-zero3"),
        pytest.param({"method": "qlora", "precision": "f32"}, UnsupportedError, "QLoRA", id="qlora-f32"),
    ],
)
def test_bad_inputs(kwargs, error, match):
    with pytest.raises(error, match=match):
        estimate_training("llama-3-8b", "8x a100-sxm-80gb", **kwargs)


@pytest.mark.parametrize(
    ("model", "rig", "error", "match"),
    [
        pytest.param("llama-9", "rtx-4090", UnknownModelError, "unknown model", id="model"),
        pytest.param("llama-3-8b", "rtx-4900", UnknownGPUError, "rtx-4090", id="gpu"),
        pytest.param("llama-3-8b", "rtx-4090 + rtx-3090", UnsupportedError, "identical GPUs", id="mixed"),
        pytest.param("llama-3-8b", "rtx-4090", UnsupportedError, "fp8", id="fp8-no-tensor-cores"),
    ],
)
def test_bad_names_and_rigs(model, rig, error, match):
    kwargs = {"precision": "fp8"} if match == "fp8" else {}
    if match == "fp8":
        rig = "rtx-3090"
    with pytest.raises(error, match=match):
        estimate_training(model, rig, **kwargs)


def test_errors_are_rigplan_errors():
    with pytest.raises(RigplanError):
        estimate_training("llama-3-8b", "rtx-4090", micro_batch=-1)


def test_multi_node_rig_and_network():
    e = estimate_training(
        "llama-3-70b", "16 nodes x 8x h100-sxm", zero_stage=3, activation_checkpointing=True, network="roce-400g"
    )
    assert e.layout.gpus == 128 and e.rig.nodes == 16
    assert "roce-400g" in e.interconnect.description


@pytest.mark.parametrize(
    ("rig", "kw", "field", "why"),
    [
        ("rtx-4090", {"method": "full", "lora_rank": 64}, "lora_rank", "applies to LoRA and QLoRA"),
        ("rtx-4090", {"method": "pretrain", "lora_targets": "qv"}, "lora_targets", "applies to LoRA and QLoRA"),
        ("rtx-4090", {"method": "lora", "link": "pcie4"}, "link", "one GPU per node"),
        ("8x h100-sxm", {"method": "lora", "network": "ib-ndr"}, "network", "is one node"),
    ],
)
def test_an_option_that_does_not_apply_is_refused_with_the_reason(rig, kw, field, why):
    with pytest.raises(InvalidValueError, match=why) as err:
        estimate_training("llama-3-8b", rig, **kw)
    assert err.value.field == field


@pytest.mark.parametrize("price", [0, -0.1, True, "0.3"])
def test_an_electricity_price_must_be_above_zero(price):
    with pytest.raises(InvalidValueError, match="kwh_price"):
        estimate_training("llama-3-8b", "rtx-4090", method="qlora", kwh_price=price)

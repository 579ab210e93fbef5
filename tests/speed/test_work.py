"""What each GPU reads per step (speed/work.py), against published figures."""

from __future__ import annotations

import pytest

from rigplan import load_catalog
from rigplan.engines import get_engine
from rigplan.placement import place
from rigplan.quant import get_quant
from rigplan.rig import parse_rig
from rigplan.speed.work import experts_active_fraction, experts_read_fraction, forward_work, model_weights, weight_class


def model(model_id: str):
    return load_catalog().models[model_id]


def work(model_id: str, rig: str, quant: str, engine: str = "llama.cpp", **kw):
    cat = load_catalog()
    m = cat.models[model_id]
    placement = place(m, parse_rig(rig, cat), get_engine(engine), **kw)
    return forward_work(m, get_quant(quant), placement)


def test_llama_3_8b_bf16_reads_15_gb_per_step():
    # perf-model.md §3.1 [M]: "Llama-3-8B: 15.01 GB of 16.06 GB read per step" (all weights
    # but the input-embedding table, which is only gathered).
    w = model_weights(model("llama-3-8b"), get_quant("bf16"))
    read = sum(layer.dense.nbytes for layer in w.layers) + w.output.nbytes
    assert read / 1e9 == pytest.approx(15.01, abs=0.01)
    assert (read + w.embedding_bytes) / 1e9 == pytest.approx(16.06, abs=0.01)


def test_tied_embeddings_are_read_as_the_output_head():
    m = model("gemma-2-9b")
    w = model_weights(m, get_quant("bf16"))
    assert w.output.nbytes >= w.embedding_bytes


def test_layer_split_divides_the_weights_and_tensor_parallel_shards_them():
    one = work("llama-3-70b", "2x rtx-4090", "q4_k_m")
    assert len(one.stages) == 2 and all(len(s) == 1 for s in one.stages)
    tp = work("llama-3-70b", "2x rtx-4090", "int4", engine="vllm")
    assert len(tp.stages) == 1 and len(tp.stages[0]) == 2
    full = model_weights(model("llama-3-70b"), get_quant("int4"))
    total = sum(layer.dense.nbytes for layer in full.layers) + full.output.nbytes
    assert tp.stages[0][0].all_weights.nbytes == pytest.approx(total / 2, rel=1e-9)


def test_kv_bytes_follow_context_and_tp_shard():
    w = work("llama-3-8b", "rtx-4090", "q4_k_m")
    dev = w.stages[0][0]
    # 128 KiB per token at f16 (perf-model.md §1.3): 8192 tokens = 1 GiB.
    assert dev.kv_bytes(8192, 2.0) == 2**30
    tp = work("llama-3-8b", "2x h100-sxm", "bf16", engine="vllm").stages[0][0]
    assert tp.kv_bytes(8192, 2.0) == 2**29


def test_sliding_window_layers_stop_growing():
    w = work("gemma-2-9b", "rtx-4090", "q4_k_m").stages[0][0]
    grow_short = w.kv_bytes(8192, 2.0) - w.kv_bytes(4096, 2.0)
    # Half the layers are local (window 4096): past it only the global half grows.
    assert grow_short == pytest.approx((w.kv_bytes(4096, 2.0) - 0) / 2, rel=1e-6)


@pytest.mark.parametrize(
    ("tokens", "fraction"),
    [
        # Mixtral: k = 2 of E = 8; one token reads 2/8, large batches nearly all (perf-model §3.1).
        pytest.param(1, 0.25, id="batch-1"),
        pytest.param(2, 1 - 0.75**2, id="batch-2"),
        pytest.param(512, 1.0, id="prompt"),
    ],
)
def test_moe_experts_read(tokens, fraction):
    assert experts_read_fraction(model("mixtral-8x7b"), tokens) == pytest.approx(fraction, rel=1e-6)
    assert experts_active_fraction(model("mixtral-8x7b")) == 0.25


@pytest.mark.parametrize(
    ("storage", "cls"),
    [
        ("q4_k", "k4"),
        ("q6_k", "k6"),
        ("q3_k", "k_low"),
        ("q4_0", "legacy"),
        ("f16", "float"),
        ("int4-g128", "int4"),
        ("exl2-4.0", "exl2"),
        ("iq4_xs", "iquant"),
        ("fp8", "fp8"),
        ("nf4", "nf4"),
    ],
)
def test_weight_class(storage, cls):
    assert weight_class(storage) == cls

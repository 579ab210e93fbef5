"""Invariants of the training memory and speed models (hypothesis)."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from rigplan.catalog import load_catalog
from rigplan.training.memory import estimate_training_memory
from rigplan.training.profile import load_profile
from rigplan.training.setup import Checkpointing, Layout, Method, Optimizer, Precision, TrainingSetup
from rigplan.training.shape import model_shape
from rigplan.training.speed import interconnect_for
from rigplan.training.step import estimate_training_speed

CATALOG = load_catalog()
MODELS = [m for m in CATALOG.models.values() if m.architecture != "Qwen3MoeForCausalLM"]
GPU = CATALOG.gpus["h100-sxm"]
SETTINGS = settings(max_examples=60, deadline=None)

models = st.sampled_from([m.id for m in MODELS])
methods = st.sampled_from(list(Method))
ckpts = st.sampled_from(list(Checkpointing))
optimizers = st.sampled_from(list(Optimizer))


def _setup(method, seq_len=2048, mb=1, zero=3, ckpt=Checkpointing.NONE, opt=Optimizer.ADAMW, flash=True):
    return TrainingSetup(
        method=method,
        precision=Precision.BF16,
        optimizer=opt,
        seq_len=seq_len,
        micro_batch=mb,
        grad_accumulation=1,
        zero_stage=zero,
        hybrid_shard=False,
        checkpointing=ckpt,
        offload=None,
        lora_rank=0 if method.trains_base else 16,
        lora_targets="all-linear",
        flash_attention=flash,
    )


def _mem(model_id, setup, dp, tp=1, pp=1):
    shape = model_shape(CATALOG.models[model_id])
    gpn = min(8, dp * tp * pp)
    return estimate_training_memory(shape, setup, Layout(tp, pp, dp, gpn, max(1, dp * tp * pp // gpn)), GPU)


@SETTINGS
@given(models, methods, st.sampled_from([2, 4, 8, 16, 64, 256]), st.sampled_from([0, 1, 2, 3]))
def test_more_gpus_with_zero_never_more_memory_per_gpu(model_id, method, dp, zero):
    """Doubling the data-parallel ranks never raises a GPU's memory under any ZeRO stage."""
    setup = _setup(method, zero=zero)
    a, b = _mem(model_id, setup, dp), _mem(model_id, setup, 2 * dp)
    assert b.peak.total_bytes <= a.peak.total_bytes
    if zero == 3:
        assert b.peak.weights_bytes <= a.peak.weights_bytes


@SETTINGS
@given(models, methods, st.sampled_from([512, 2048, 8192]), st.sampled_from([1, 2, 8]), st.booleans())
def test_checkpointing_never_more_activation_memory(model_id, method, seq_len, mb, flash):
    kept = [
        _mem(model_id, _setup(method, seq_len, mb, ckpt=c, flash=flash), 8).peak.activations_bytes
        for c in (Checkpointing.NONE, Checkpointing.SELECTIVE, Checkpointing.FULL)
    ]
    assert kept[0] >= kept[1] >= kept[2]


@SETTINGS
@given(models, methods, ckpts, st.integers(min_value=64, max_value=16384), st.integers(min_value=1, max_value=4096))
def test_longer_sequences_never_less_memory(model_id, method, ckpt, seq_len, extra):
    a = _mem(model_id, _setup(method, seq_len, ckpt=ckpt), 8)
    b = _mem(model_id, _setup(method, seq_len + extra, ckpt=ckpt), 8)
    assert b.peak.total_bytes >= a.peak.total_bytes


@SETTINGS
@given(models, methods, ckpts, optimizers, st.sampled_from([1, 2, 4, 16]), st.sampled_from([1, 8, 64]))
def test_never_negative_or_nan(model_id, method, ckpt, opt, mb, dp):
    setup = _setup(method, mb=mb, ckpt=ckpt, opt=opt, zero=3 if dp > 1 else 0)
    mem = _mem(model_id, setup, dp)
    for g in mem.stages:
        for v in (g.weights_bytes, g.gradients_bytes, g.optimizer_bytes, g.activations_bytes, g.total_bytes):
            assert v >= 0
    shape = model_shape(CATALOG.models[model_id])
    gpn = min(8, dp)
    layout = Layout(1, 1, dp, gpn, max(1, dp // gpn))
    speed = estimate_training_speed(
        shape, setup, layout, GPU, interconnect_for((GPU,) * gpn, "ib-ndr", layout.nodes), load_profile()
    )
    assert math.isfinite(speed.tokens_per_s) and speed.tokens_per_s > 0
    assert 0 < speed.mfu < 1


@SETTINGS
@given(models, st.sampled_from([Method.FULL, Method.LORA]))
def test_lora_never_needs_more_than_full(model_id, method):
    full = _mem(model_id, _setup(Method.FULL, zero=0), 1)
    other = _mem(model_id, _setup(method, zero=0), 1)
    qlora = _mem(model_id, _setup(Method.QLORA, zero=0), 1)
    assert qlora.peak.total_bytes <= other.peak.total_bytes <= full.peak.total_bytes

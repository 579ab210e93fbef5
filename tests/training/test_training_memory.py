"""Training memory against published anchors (ZeRO, Korthikanti, LoRA, QLoRA papers).

Each row is one published number with its source and tolerance.
"""

from __future__ import annotations

import pytest

from rigplan.training import estimate_training
from rigplan.training.memory import activation_bytes_per_token_layer, optimizer_bytes_per_param
from rigplan.training.setup import Checkpointing, Method, Optimizer, Precision, TrainingSetup
from rigplan.training.shape import lora_parameters, model_shape
from rigplan.units import GB, GIB

# A GPT-shaped model of 7.4997B parameters: the ZeRO paper's "7.5B" example.
ZERO_7_5B = {
    "hidden_size": 4096,
    "num_layers": 36,
    "num_heads": 32,
    "num_kv_heads": 32,
    "ffn_size": 16384,
    "ffn_kind": "plain",
    "vocab_size": 30720,
}
# LLaMA-65B (Touvron et al. 2023, Table 2: dim 8192, 80 layers, 64 heads; SwiGLU 22016; vocab 32000).
LLAMA_65B = {
    "hidden_size": 8192,
    "num_layers": 80,
    "num_heads": 64,
    "num_kv_heads": 64,
    "ffn_size": 22016,
    "vocab_size": 32000,
}
# GPT-3 175B (Brown et al. 2020, Table 2.1: d 12288, 96 layers, 96 heads; FFN 4d; vocab 50257).
GPT3_175B = {
    "hidden_size": 12288,
    "num_layers": 96,
    "num_heads": 96,
    "num_kv_heads": 96,
    "ffn_size": 49152,
    "ffn_kind": "plain",
    "vocab_size": 50257,
    "tie_embeddings": True,
}


def _states(e) -> int:
    g = e.memory.stages[0]
    return g.weights_bytes + g.gradients_bytes + g.optimizer_bytes


@pytest.mark.parametrize(
    ("zero_stage", "paper_gb"),
    [
        pytest.param(0, 120.0, id="baseline-16psi"),
        pytest.param(1, 31.4, id="P_os-4psi+12psi/Nd"),
        pytest.param(2, 16.6, id="P_os+g-2psi+14psi/Nd"),
        pytest.param(3, 1.9, id="P_os+g+p-16psi/Nd"),
    ],
)
def test_zero_paper_model_states(zero_stage, paper_gb):
    """ZeRO (Rajbhandari et al. 2019, Figure 1): 7.5B, N_d = 64, K = 12 → 120 / 31.4 / 16.6 / 1.9 GB.
    Tolerance 1% (the paper rounds to 0.1 GB)."""
    e = estimate_training(ZERO_7_5B, "8 nodes x 8x a100-sxm-80gb", zero_stage=zero_stage)
    assert e.layout.data_parallel == 64
    assert _states(e) / GB == pytest.approx(paper_gb, rel=0.01, abs=0.05)


@pytest.mark.parametrize(
    ("precision", "optimizer", "k"),
    [
        pytest.param(Precision.BF16, Optimizer.ADAMW, 12, id="mixed-adam-K12-ZeRO"),
        pytest.param(Precision.BF16, Optimizer.ADAMW_8BIT, 6.004, id="8bit-adam-6-TM101"),
        pytest.param(Precision.BF16, Optimizer.SGD, 8, id="sgd-momentum-8-TM101"),
        pytest.param(Precision.F32, Optimizer.ADAMW, 8, id="fp32-adam-no-master"),
    ],
)
def test_optimizer_bytes_per_param(precision, optimizer, k):
    """ZeRO §3.1 (K = 12) and Transformer Math 101 (8-bit Adam 6, SGD + momentum 8)."""
    assert optimizer_bytes_per_param(precision, optimizer) == pytest.approx(k, abs=1e-3)


def test_full_fine_tune_is_16_bytes_per_parameter():
    """ZeRO §3.1: mixed-precision Adam needs 16Ψ bytes of model states (GPT-2 1.5B → 24 GB)."""
    e = estimate_training("llama-3-8b", "h100-sxm")
    assert _states(e) == pytest.approx(16 * e.shape.total_params, rel=1e-6)


def _gpt3_setup(**kw) -> TrainingSetup:
    base = dict(
        method=Method.PRETRAIN,
        precision=Precision.F16,
        optimizer=Optimizer.ADAMW,
        seq_len=2048,
        micro_batch=1,
        grad_accumulation=1,
        zero_stage=0,
        hybrid_shard=False,
        checkpointing=Checkpointing.NONE,
        offload=None,
        lora_rank=0,
        lora_targets="all-linear",
        flash_attention=False,
        sequence_parallel=False,
    )
    return TrainingSetup(**{**base, **kw})


@pytest.mark.parametrize(
    ("tp", "sequence_parallel", "expected"),
    [
        pytest.param(1, False, lambda s, h, a, t: 34 + 5 * a * s / h, id="no-TP-34+5as/h"),
        pytest.param(8, False, lambda s, h, a, t: 10 + 24 / t + 5 * a * s / (h * t), id="TP-10+24/t+5as/ht"),
        pytest.param(8, True, lambda s, h, a, t: (34 + 5 * a * s / h) / t, id="TP+SP-(34+5as/h)/t"),
    ],
)
def test_korthikanti_activations_per_layer(tp, sequence_parallel, expected):
    """Korthikanti et al. 2022 Table 2 (GPT-3 with dropout, 16-bit activations): bytes per
    layer = s·b·h × the coefficient.  Exact for a GPT-3-shaped model."""
    shape = model_shape_of(GPT3_175B)
    setup = _gpt3_setup(sequence_parallel=sequence_parallel)
    full, _ = activation_bytes_per_token_layer(shape, setup, tp, dropout=True)
    s, h, a = 2048, 12288, 96
    assert full / h == pytest.approx(expected(s, h, a, tp), rel=1e-9)


def test_korthikanti_selective_recompute():
    """Korthikanti et al. Table 2: selective recomputation with TP + SP keeps 34·s·b·h/t."""
    shape = model_shape_of(GPT3_175B)
    _, selective = activation_bytes_per_token_layer(shape, _gpt3_setup(sequence_parallel=True), 8, dropout=True)
    assert selective / 12288 == pytest.approx(34 / 8, rel=1e-9)


def model_shape_of(fields):
    from rigplan.edge import model_from_fields

    return model_shape(model_from_fields(fields))


def test_lora_paper_gpt3():
    """LoRA (Hu et al. 2021, §4.2): on GPT-3 175B, training VRAM 1.2 TB → 350 GB (frozen fp16 base)
    and the checkpoint 350 GB → ~35 MB with r = 4 on W_q and W_v.  Tolerance 10%."""
    shape = model_shape_of(GPT3_175B)
    assert lora_parameters(shape, 4, "qv") * 2 / 1e6 == pytest.approx(35, rel=0.10)
    e = estimate_training(
        GPT3_175B, "8 nodes x 8x a100-sxm-80gb", method="lora", lora_rank=4, lora_targets="qv", precision="f16"
    )
    frozen = e.memory.stages[0].weights_bytes * e.layout.gpus  # ZeRO-0: every GPU holds the base
    assert frozen / e.layout.gpus / GB == pytest.approx(350, rel=0.02)


def test_qlora_65b_fits_one_48gb_gpu():
    """QLoRA (Dettmers et al. 2023, abstract): "finetune a 65B parameter model on a single 48GB
    GPU" — Guanaco 65B: r = 64 on all linear layers, gradient checkpointing, paged AdamW, batch 1,
    ~512 tokens (qlora.py defaults: source 16 + target 512).  On the A6000 the paged optimizer
    moves a few hundred MiB to host RAM — the spike QLoRA's paged optimizers exist for."""
    for gpu in ("rtx-a6000", "a40"):
        e = estimate_training(LLAMA_65B, gpu, method="qlora", seq_len=528, lora_rank=64, activation_checkpointing=True)
        assert e.fits, gpu
        assert e.memory.peak.total_bytes < 48 * GIB


def test_qlora_65b_full_fine_tune_needs_more_than_780gb():
    """QLoRA abstract: 16-bit full fine-tuning of a 65B model needs "more than 780GB" of GPU memory."""
    e = estimate_training(LLAMA_65B, "h100-sxm", method="full")
    assert _states(e) / GB > 780


def test_qlora_7b_nf4_double_quant_bits():
    """QLoRA §3: NF4 with double quantisation stores 4 + 8/64 + 32/(64·256) = 4.127 bits per
    weight (0.127 bits of constants instead of 0.5)."""
    shape = model_shape_of(
        {**LLAMA_65B, "hidden_size": 4096, "num_layers": 32, "num_heads": 32, "num_kv_heads": 32, "ffn_size": 11008}
    )
    assert shape.nf4_linear_bytes * 8 / shape.block_linear_params == pytest.approx(4.127, abs=0.001)


def test_qlora_7b_fits_a_consumer_gpu():
    """QLoRA 7B: the NF4 base is ~3.9 GB (6.5B linear weights at 4.127 bits + 0.26B 16-bit embedding
    and head rows each); with r = 64 adapters it fits a 12 GB card at 512 tokens."""
    e = estimate_training(
        "llama-2-7b", "rtx-3080-ti", method="qlora", seq_len=512, lora_rank=64, activation_checkpointing=True
    )
    base = e.memory.stages[0].weights_bytes - e.memory.trainable_params * 2
    assert base / GB == pytest.approx(3.87, rel=0.02)
    assert e.fits


def test_cpu_offload_moves_optimizer_to_host():
    on_gpu = estimate_training("llama-3-8b", "8x a100-sxm-80gb", zero_stage=2)
    offloaded = estimate_training("llama-3-8b", "8x a100-sxm-80gb", zero_stage=2, offload="cpu")
    assert offloaded.memory.stages[0].optimizer_bytes == 0
    assert offloaded.memory.host_bytes >= on_gpu.memory.stages[0].optimizer_bytes * 8 * 0.99
    assert offloaded.memory.peak.total_bytes < on_gpu.memory.peak.total_bytes


def test_logits_large_vocabulary():
    """perf-model.md §1.4: training logits b·s·V·4 B × 2 — Llama-3 vocab 128k at s = 4096 ≈ 4 GB."""
    e = estimate_training("llama-3-8b", "h100-sxm", method="lora", seq_len=4096)
    assert e.memory.stages[0].logits_bytes / GB == pytest.approx(4.2, rel=0.02)


def test_pipeline_first_stage_holds_in_flight_microbatches():
    """Korthikanti §4.2.3 / 1F1B: the first stage keeps p micro-batches of activations."""
    e = estimate_training(
        "llama-2-70b", "8x h100-sxm", tensor_parallel=2, pipeline_parallel=4, global_batch=64, zero_stage=1
    )
    first, last = e.memory.stages[0], e.memory.stages[-1]
    assert first.activations_bytes > last.activations_bytes
    assert last.logits_bytes > 0 and first.logits_bytes == 0

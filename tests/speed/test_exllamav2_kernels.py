"""ExLlamaV2's kernels as its source has them (turboderp/exllamav2 q_gemm.cu, config.h): prompts
dequantise to FP16 and call cublasHgemm (FP16 accumulate); decode batches of up to 32 sequences
run its own quantised kernel on the CUDA cores, one pass over the weights per 4 sequences; past 32
each quantised matrix is written out as FP16 for cuBLAS every step.  No batched ExLlamaV2 row
exists to check these against, so the tests hold the mechanism, not a published figure."""

from __future__ import annotations

import dataclasses

import pytest

from one_device import one_device
from rigplan.calibration import priors
from rigplan.catalog import load_catalog
from rigplan.estimate import estimate
from rigplan.speed.decode import device_step, own_kernel_passes

CAT = load_catalog()
EXL2 = priors.EXLLAMAV2


def _device(model_id: str = "llama-2-7b", rig: str = "rtx-4090"):
    return one_device(model_id, rig, "exl2-4.0", engine="exllamav2")


def _step_s(batch: int, behaviour=EXL2.behaviour, rig: str = "rtx-4090") -> float:
    m, dev = _device(rig=rig)
    return device_step(EXL2.parameters, behaviour, dev, m, 2.0, 512, batch).total_s


def test_the_prior_says_what_the_source_says():
    b = EXL2.behaviour
    assert b.fp16_accumulate and b.quantized_gemm_max_rows == 32 and b.quantized_gemm_rows_per_pass == 4
    for p in (priors.LLAMA_CPP_CUDA, priors.VLLM):
        assert p.behaviour.quantized_gemm_max_rows == 0, p.name


@pytest.mark.parametrize(("batch", "passes"), [(1, 1), (4, 1), (5, 2), (18, 5), (32, 8), (33, 0)])
def test_one_pass_over_the_weights_per_four_sequences_up_to_32(batch, passes):
    _, dev = _device()
    weights = dev.step_weights(1.0)
    assert own_kernel_passes(EXL2.behaviour, dev.gpu, weights, batch) == passes


def test_one_sequence_is_priced_as_before():
    """The fitted single-stream rows never reach the batched kernels."""
    tensor_cores = dataclasses.replace(EXL2.behaviour, quantized_gemm_max_rows=0)
    assert _step_s(1) == pytest.approx(_step_s(1, tensor_cores))


def test_small_batches_are_slower_than_the_tensor_cores_would_be():
    tensor_cores = dataclasses.replace(EXL2.behaviour, quantized_gemm_max_rows=0)
    for batch in (8, 16, 32):
        assert _step_s(batch) > _step_s(batch, tensor_cores)
    assert _step_s(32) > 1.25 * _step_s(32, tensor_cores)  # 8 passes of unpacking on the CUDA cores


@pytest.mark.parametrize("gpu", ["rtx-3090", "rtx-4090", "rtx-5090", "rx-7900-xtx"])
def test_no_cliff_where_the_engine_switches_to_cublas(gpu):
    """The author put the switch where the two paths are level on the consumer cards it was
    tuned on: output per step within 1.6x.  (On A100 / H100 the model prices cuBLAS at 33 rows
    about 2x faster than the own kernel at 32: the fixed switch is not tuned for them.)"""
    at_32, at_33 = 32 / _step_s(32, rig=gpu), 33 / _step_s(33, rig=gpu)
    assert 1 / 1.6 < at_33 / at_32 < 1.6


@pytest.mark.parametrize(("gpu", "ratio"), [("rtx-4090", 1.0), ("a100-sxm-80gb", 4.0), ("h100-sxm", 2.0)])
def test_the_own_kernel_runs_at_each_chips_half2_rate(gpu, ratio):
    from rigplan.speed import hardware

    g = CAT.gpus[gpu]
    assert hardware.vector_fp16_flops(g) == pytest.approx(ratio * hardware.fp32_flops(g))


def test_prompts_run_at_the_fp16_accumulate_rate_on_geforce():
    fast = estimate("llama-2-7b", "rtx-4090", engine="exllamav2", quant="exl2-4.0", prompt_tokens=2048)
    assert CAT.gpus["rtx-4090"].fp16_acc16_tensor_tflops == pytest.approx(
        2 * CAT.gpus["rtx-4090"].fp16_tensor_tflops, rel=1e-3
    )
    assert fast.speed.prefill_tokens_per_s > 8000  # ~10k: at the FP32-accumulate rate it was ~5k

"""`rigplan measure` on a real GPU: runs only where torch sees CUDA, skipped elsewhere.

On one GPU it checks bandwidth and matmul; P2P and all-reduce need two or more.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
if not torch.cuda.is_available():
    pytest.skip("no CUDA GPU: `rigplan measure` needs one", allow_module_level=True)

from rigplan.catalog import load_catalog  # noqa: E402
from rigplan.integrations.measure import load_measured, measure, save_measured  # noqa: E402

pytestmark = pytest.mark.gpu

# A measured copy reaches 40-95 % of the catalogue's peak bandwidth on every GPU rigplan lists,
# and matmuls stay under the dense tensor peak (with 10 % slack for boost clocks).
BANDWIDTH_FLOOR, PEAK_SLACK = 0.4, 1.1


def test_measure_one_gpu_bandwidth_and_matmul():
    profile = measure(quick=True)
    g = profile.gpus[0]
    assert g.memory_bandwidth_gb_per_s > 0 and g.matmul_tflops["fp16"] > 0 and g.matmul_tflops["fp32"] > 0
    if g.catalog_id:
        gpu = load_catalog().gpus[g.catalog_id]
        bandwidth = g.memory_bandwidth_gb_per_s
        assert BANDWIDTH_FLOOR * gpu.bandwidth_gb_per_s < bandwidth < PEAK_SLACK * gpu.bandwidth_gb_per_s
        if gpu.fp16_tensor_tflops:
            assert g.matmul_tflops["fp16"] < PEAK_SLACK * max(gpu.fp16_tensor_tflops, gpu.fp16_acc16_tensor_tflops or 0)
    save_measured(profile)
    assert load_measured() == profile


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="P2P and all-reduce need two GPUs")
def test_measure_pairs_and_allreduce():
    profile = measure(quick=True)
    n = torch.cuda.device_count()
    assert len(profile.pairs) == n * (n - 1) and all(p.bandwidth_gb_per_s > 0 for p in profile.pairs)
    assert profile.allreduce is not None and profile.allreduce.latency_us > 0

"""Prior serving profiles read from calibration/serving_prior_profiles/*.toml (issue 11)."""

from __future__ import annotations

from pathlib import Path

import pytest

from rigplan.calibration import serving_priors
from rigplan.errors import DataFileError

VLLM_FILE = Path(serving_priors.__file__).parent / serving_priors.PRIOR_FOLDER / "vllm-serving.toml"


def test_scheduler_defaults_are_the_engines_own() -> None:
    # vllm/engine/arg_utils.py get_batch_defaults: 1024 seqs / 8192 tokens on ≥ 70 GiB GPUs,
    # 256 / 2048 on others; TensorRT-LLM max_batch_size 2048, max_num_tokens 8192.
    v, t = serving_priors.VLLM.behaviour, serving_priors.TENSORRT_LLM.behaviour
    assert (v.max_num_seqs_large_gpu, v.max_num_batched_tokens_large_gpu) == (1024, 8192)
    assert (v.max_num_seqs_small_gpu, v.max_num_batched_tokens_small_gpu) == (256, 2048)
    assert (t.max_num_seqs_large_gpu, t.max_num_batched_tokens_small_gpu) == (2048, 8192)


def test_sglang_builds_on_vllm() -> None:
    s, v = serving_priors.SGLANG, serving_priors.VLLM
    assert s.parameters == v.parameters and s.prior_log_sd == v.prior_log_sd
    assert s.behaviour.max_num_seqs_large_gpu == 4096
    assert s.behaviour.max_num_batched_tokens_small_gpu == v.behaviour.max_num_batched_tokens_small_gpu
    assert s.engines == ("sglang",)


def test_every_engine_has_one_prior() -> None:
    engines = [e for p in serving_priors.SERVING_PRIORS for e in p.engines]
    assert sorted(engines) == ["sglang", "tensorrt-llm", "vllm"]


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        ("tensor_efficiency = 0.55", "tensor_efficency = 0.55", "parameters"),
        ("expert_parallel = false\n", "", "behaviour"),
        ("[prior_log_sd]", "[prior_log_sd_unused]", "prior_log_sd"),
    ],
)
def test_a_bad_file_names_the_file_and_the_table(tmp_path: Path, old: str, new: str, field: str) -> None:
    text = VLLM_FILE.read_text(encoding="utf-8")
    assert old in text
    (tmp_path / "vllm-serving.toml").write_text(text.replace(old, new), encoding="utf-8")
    with pytest.raises(DataFileError, match=f"vllm-serving.toml: {field}:"):
        serving_priors.load_serving_priors(root=tmp_path)

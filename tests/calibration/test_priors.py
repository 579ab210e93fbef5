"""The prior profiles are data (issue 11): prior_profiles/*.toml, read by one loader."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pytest

from rigplan.calibration import fit_doc, fit_specs, priors
from rigplan.calibration.load import load_profiles, parse_behaviour
from rigplan.calibration.prior_files import read_prior_docs
from rigplan.errors import DataFileError

FOLDER = Path(priors.__file__).with_name(priors.PRIOR_FOLDER)


def test_every_prior_file_is_read_once_under_its_own_name():
    stems = sorted(p.stem for p in FOLDER.glob("*.toml"))
    assert stems == sorted(p.name for p in priors.PRIORS)
    assert len({p.name for p in priors.PRIORS}) == len(priors.PRIORS)


@pytest.mark.parametrize(
    ("name", "based_on", "differs"),
    [
        # ROCm: HIP MMQ on RDNA4's WMMA; both: the per-expert call of 16-bit MoE experts.
        ("llama.cpp-rocm", "llama.cpp-cuda", {"name", "backend", "source", "behaviour", "parameters"}),
        # Vulkan also: the prior width of its AMD coopmat tiles' gain.
        (
            "llama.cpp-vulkan",
            "llama.cpp-cuda",
            {"name", "backend", "source", "behaviour", "parameters", "prior_log_sd"},
        ),
        ("sglang", "vllm", {"name", "engines", "source", "notes"}),
        ("tensorrt-llm", "vllm", {"name", "engines", "source", "notes", "parameters"}),
    ],
)
def test_a_prior_built_on_another_differs_only_where_its_file_says(name, based_on, differs):
    a, b = dataclasses.asdict(priors.load_priors()[name]), dataclasses.asdict(priors.load_priors()[based_on])
    assert {k for k in a if a[k] != b[k]} == differs


def test_values_as_published_in_the_files():
    # Spot checks of values whose sources the files quote (perf-model.md §3.2, §4; [M]).
    assert priors.VLLM.parameters.memory_efficiency_hbm == 0.78
    assert priors.TENSORRT_LLM.parameters.step_overhead_s == pytest.approx(0.2e-3)
    # The 2024 Metal fit plus the per-expert decode cost and the flash-attention K/V re-reads
    # (8 query rows per threadgroup) its file adds.
    assert priors.LLAMA_CPP_METAL.parameters == priors.LLAMA_CPP_METAL_2024.parameters.with_values(
        {"active_expert_overhead_s": 5e-6, "flash_kv_reads_per_query": 0.125}
    )
    assert priors.LLAMA_CPP_VULKAN.behaviour.int8_mma_prefill is False
    assert priors.TRANSFORMERS.range_log == pytest.approx(math.log(1.8))
    assert priors.EXLLAMAV2.range_log == priors.PRIOR_RANGE
    assert priors.CURRENT_ERA_FIRST_BUILD == 4000
    assert priors.LLAMA_CPP_CUDA_2024.alternative_starts == (
        {"sm_cycles_per_weight.float": 0.37, "memory_efficiency_hbm": 0.8},
    )


def _write(tmp_path: Path, name: str, text: str) -> None:
    (tmp_path / f"{name}.toml").write_text(text, encoding="utf-8")


def test_based_on_merges_tables_key_by_key(tmp_path):
    _write(tmp_path, "a", 'name = "a"\nx = 1\n[parameters]\np = 1\nq = 2\n[parameters.t]\nu = 1\n')
    _write(tmp_path, "b", 'name = "b"\nbased_on = "a"\n[parameters]\nq = 3\n[parameters.t]\nv = 2\n')
    docs = read_prior_docs("x", root=tmp_path)
    assert docs["b"] == {"name": "b", "x": 1, "parameters": {"p": 1, "q": 3, "t": {"v": 2}}}


@pytest.mark.parametrize(
    ("files", "key"),
    [
        ({"a": 'name = "a"\nbased_on = "nope"\n'}, "based_on"),
        ({"a": 'name = "a"\nbased_on = "b"\n', "b": 'name = "b"\nbased_on = "a"\n'}, "based_on"),
        ({"a": 'name = "a"\nparameters_from = 3\n'}, "parameters_from"),
        ({"a": "x = 1\n"}, "name"),
        ({"a": 'name = "a"\n', "b": 'name = "a"\n'}, "name"),
        ({"a": "name = \n"}, "toml"),
    ],
)
def test_bad_prior_files_are_refused_with_file_and_key(tmp_path, files, key):
    for name, text in files.items():
        _write(tmp_path, name, text)
    with pytest.raises(DataFileError, match=key):
        read_prior_docs("x", root=tmp_path)


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"speed": 1}, "speed"),
        ({"range_factor": 0.9}, "range_factor"),
        ({"prior_log_sd": {"tensor_efficency": 0.3}}, "tensor_efficency"),
        ({"parameters": {"memory_efficiency_hbm": "fast"}}, "memory_efficiency_hbm"),
        ({"behaviour": {"cuda_graph": True}}, "cuda_graph"),
    ],
)
def test_bad_prior_values_are_refused(change, key):
    doc = read_prior_docs(priors.PRIOR_FOLDER)["vllm"]
    for k, v in change.items():
        doc[k] = {**doc[k], **v} if isinstance(v, dict) and k in doc else v
    with pytest.raises(DataFileError, match=key):
        priors.parse_prior("prior_profiles/vllm.toml", doc)


@pytest.mark.parametrize("spec", fit_specs.FITS, ids=lambda s: s.prior.name)
def test_a_fitted_profile_keeps_every_behaviour_fact_of_its_prior(spec):
    # The fit prices its rows with the prior's behaviour; the written profile must read back the
    # same, or `estimate` would price what `accuracy` never checked (the eighth session's Vulkan
    # profile lost amd_coopmat_tiles_build this way).
    assert load_profiles()[spec.prior.name].behaviour == spec.prior.behaviour


@pytest.mark.parametrize("prior", priors.PRIORS, ids=lambda p: p.name)
def test_a_behaviour_table_reads_back_to_the_same_behaviour(prior):
    assert parse_behaviour("p.toml", fit_doc._behaviour_doc(prior.behaviour)) == prior.behaviour

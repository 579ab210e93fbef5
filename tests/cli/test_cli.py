"""The CLI on real output: tables, JSON, exit codes, and one-line errors (never a traceback)."""

from __future__ import annotations

import json

import pytest

from cli_runner import run
from rigplan.catalog import load_catalog

DESIGN_GPU_IDS = [
    "rtx-3070",
    "rtx-3080",
    "rtx-3080-ti",
    "rtx-3090",
    "rtx-3090-ti",
    "rtx-4070-ti",
    "rtx-4080",
    "rtx-4080-super",
    "rtx-4090",
    "rtx-5080",
    "rtx-5090",
    "rtx-a4000",
    "rtx-a5000",
    "rtx-a6000",
    "quadro-rtx-8000",
    "rtx-4000-ada",
    "rtx-5000-ada",
    "rtx-6000-ada",
    "rtx-pro-6000",
    "tesla-p40",
    "t4",
    "a10",
    "l4",
    "a40",
    "l40",
    "l40s",
    "v100-pcie-32gb",
    "v100-sxm2-32gb",
    "a100-pcie-40gb",
    "a100-pcie-80gb",
    "a100-sxm-80gb",
    "h100-pcie",
    "h100-sxm",
    "h100-nvl",
    "h200-sxm",
    "h200-nvl",
    "b200",
    "mi300x",
    "rx-7900-xtx",
    "m1-max-64gb",
    "m2-ultra-192gb",
    "m3-max-64gb",
    "m3-ultra-512gb",
    "m4-max-128gb",
]


def test_gpus_json_lists_every_design_id_with_source(capsys):
    code, out, _ = run(capsys, "gpus", "--json")
    assert code == 0
    rows = {g["id"]: g for g in json.loads(out)["gpus"]}
    assert set(DESIGN_GPU_IDS) <= set(rows)
    assert all(g["source"] and g["as_of"] for g in rows.values())


def test_gpus_table_flags_guide_errors(capsys):
    code, out, _ = run(capsys, "gpus", "--class", "workstation")
    assert code == 0
    line = next(x for x in out.splitlines() if x.startswith("rtx-6000-ada"))
    assert "no NVLink" in line


def test_gpus_table_gives_the_reason_an_unpriced_gpu_has_no_price(capsys):
    from rigplan import load_catalog

    gaps = load_catalog().price_gaps
    code, out, _ = run(capsys, "gpus", "--sort", "name")
    assert code == 0 and "price unknown" not in out
    assert any(x.startswith("gb200 ") and "no price" in x for x in out.splitlines())
    assert "why no price: sold only as GB200 NVL72 racks" in " ".join(out.split())  # the note may wrap
    _, out, _ = run(capsys, "gpus", "--json")
    rows = {g["id"]: g for g in json.loads(out)["gpus"]}
    assert rows["gb200"]["price"] is None and rows["gb200"]["price_gap"]["reason"] == gaps["gb200"][0].reason
    assert all((g["price"] is None) or g["price_gap"] is None for g in rows.values())


def test_gpus_filters(capsys):
    _, out, _ = run(capsys, "gpus", "--json", "--min-memory", "48", "--nvlink")
    rows = json.loads(out)["gpus"]
    assert rows and all(g["memory_gb"] >= 48 and g["nvlink"] != "none" for g in rows)


def test_models_json_lists_every_model_with_source(capsys):
    code, out, _ = run(capsys, "models", "--json")
    rows = json.loads(out)["models"]
    assert code == 0 and {m["id"] for m in rows} >= set(load_catalog().models) - set()
    assert all(m["source"] and m["as_of"] for m in rows)


def test_estimate_json_is_the_api_dict(capsys):
    code, out, _ = run(capsys, "estimate", "llama-3-8b", "--rig", "rtx-4090", "--json")
    d = json.loads(out)
    assert code == 0 and d["fits"] is True and d["memory"]["per_gpu"][0]["gpu"] == "rtx-4090"


def test_estimate_exit_1_when_it_does_not_fit(capsys):
    code, out, _ = run(capsys, "estimate", "llama-3-70b", "--rig", "rtx-4090", "--quant", "f16")
    assert code == 1 and "DOES NOT FIT" in out


def test_estimate_table_shows_per_gpu_rows(capsys):
    code, out, _ = run(
        capsys, "estimate", "llama-2-70b", "--rig", "2x rtx-4090", "--quant", "4bit", "--context", "4096"
    )
    assert code == 0
    assert "0: rtx-4090" in out and "1: rtx-4090" in out and "fits" in out


def test_estimate_explain_prints_derivations(capsys):
    _, out, _ = run(capsys, "estimate", "llama-3-8b", "--rig", "rtx-4090", "--explain")
    assert "how each figure was made" in out and "memory.weights_bytes [formula]" in out


def test_vram_table(capsys):
    code, out, _ = run(capsys, "vram", "llama-2-70b", "--context", "4096", "--json")
    rows = json.loads(out)["rows"]
    assert code == 0 and [r["quant"] for r in rows] == ["q4_k_m", "q8_0", "f16"]
    assert all(r["smallest_rigs"]["datacenter"] for r in rows)


@pytest.mark.parametrize(
    ("args", "match"),
    [
        pytest.param(["estimate", "llama-3-8b", "--rig", "rtx4900"], "did you mean rtx-4090", id="unknown-gpu"),
        pytest.param(["estimate", "lama-3-8b", "--rig", "rtx-4090"], "did you mean", id="unknown-model"),
        pytest.param(["estimate", "llama-3-8b", "--rig", "0x rtx-4090"], "at least 1", id="zero-gpus"),
        pytest.param(
            ["estimate", "llama-3-8b", "--rig", "rtx-4090", "--output-tokens", "-3"],
            "--output-tokens",
            id="negative-tokens",
        ),
        pytest.param(
            ["estimate", "llama-3-8b", "--rig", "rtx-4090", "--context", "10", "--prompt-tokens", "512"],
            "smaller than",
            id="context-too-small",
        ),
        pytest.param(
            ["estimate", "llama-2-7b", "--rig", "rtx-4090", "--context", "100000"], "--force", id="beyond-max-context"
        ),
        pytest.param(
            ["estimate", "llama-3-8b", "--rig", "rtx-4090", "--quant", "q5_k_z"], "did you mean", id="unknown-quant"
        ),
        pytest.param(
            ["estimate", "llama-3-8b", "--rig", "rtx-4090", "--engine", "vlm"], "did you mean vllm", id="unknown-engine"
        ),
        pytest.param(
            ["estimate", "llama-3-8b", "--rig", "rtx-4090", "--gpu-layers", "lots"], "gpu_layers", id="bad-gpu-layers"
        ),
        pytest.param(["estimate", "llama-3-8b"], "rig", id="missing-rig"),
        pytest.param(["gpus", "--sort", "colour"], "sort", id="bad-sort"),
        pytest.param(["nonsense"], "No such command", id="unknown-command"),
        pytest.param(["estimate", "llama-3-8b", "--rig", "1000000000000x rtx-4090"], "at most 16", id="huge-count"),
        pytest.param(["estimate", "llama-3-8b", "--rig", "rtx-4090", "--host-ram", "nan"], "--host-ram", id="nan-ram"),
        pytest.param(
            ["estimate", "llama-3-8b", "--rig", "rtx-4090", "--gpu-layers", "10", "--host-ram-bandwidth", "0"],
            "--host-ram-bandwidth",
            id="zero-host-bandwidth",
        ),
        pytest.param(
            ["estimate", "llama-3-8b", "--rig", "2x rtx-4090", "--engine", "vllm", "--tensor-parallel", "0"],
            "--tensor-parallel",
            id="zero-tp",
        ),
        pytest.param(["estimate", "llama-3-8b", "--rig", "rtx-4090", "--lanes", "0"], "lanes", id="zero-lanes"),
        pytest.param(["power", "m2-ultra-192gb", "--power-limit", "70%"], "cannot be capped", id="apple-cap"),
        pytest.param(["launch", "llama-3-8b", "--rig", "rtx-4090", "--out", "/dev/null"], "cannot write", id="bad-out"),
        pytest.param(["launch", "llama-3-8b", "--rig", "rtx-4090", "--context", "0"], "context", id="launch-ctx-0"),
        pytest.param(["compare", "llama-3-8b", "--rig", "rtx-4090", "--rig", "rtx-4909"], "did you mean", id="compare"),
        pytest.param(["plan", "llama-3-8b", "--task", "lora", "--price", "rtx-3090=700"], "no effect", id="task-price"),
        pytest.param(["plan", "llama-3-8b", "--task", "full", "--deadline", "24"], "deadline", id="deadline-unit"),
        pytest.param(["gpus", "--class", "datacentre"], "did you mean datacenter", id="class-typo"),
        pytest.param(["estimate", "llama-3-8b", "--rig", "h100-sxm + rtx-4090"], "baseboard", id="sxm-with-pcie"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(capsys, args, match):
    code, out, err = run(capsys, *args)
    assert code == 2
    assert match in err
    assert "Traceback" not in err + out


def test_quants_words_a_mix_as_the_page_does(capsys):
    """One wording for q4_k_m: main tensors 4.5 bits, ~4.9 over a whole Llama 3 8B (its
    estimate's weights: 4.6 GiB over 8.03 B weights)."""
    from rigplan import estimate

    code, out, _ = run(capsys, "quants")
    assert code == 0
    row = next(line for line in out.splitlines() if line.startswith("q4_k_m "))
    assert "4.5 bits main tensors, ~4.9 model average" in row
    est = estimate("llama-3-8b", "rtx-4090", quant="q4_k_m").to_dict()
    params = load_catalog().models["llama-3-8b"].published_param_count
    assert 8 * est["memory"]["weights_bytes"] / params == pytest.approx(4.9, abs=0.05)

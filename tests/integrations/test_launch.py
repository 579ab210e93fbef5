"""Launch commands (integrations/launch.py): single, multi-GPU, mixed and multi-node rigs on
each engine, the training forms, and the layout rules with their refusals.

Flags are the engines' documented spellings (vLLM engine args, llama.cpp server README and
docs/multi-gpu.md, SGLang server arguments, Ollama Modelfile and envconfig, torchrun docs).
"""

from __future__ import annotations

import json
import shlex

import pytest
from model_files import LLAMA_3_8B, gptq_tensors, write_gguf, write_model_folder

from cli_runner import run
from rigplan.catalog import load_catalog
from rigplan.edge import model_from_fields
from rigplan.errors import InvalidValueError, UnsupportedError
from rigplan.estimate import estimate
from rigplan.integrations.launch import (
    check_layout,
    launch_plan,
    layout_problems,
    training_plan,
    valid_tensor_parallel,
)
from rigplan.units import GIB


def argv(plan, i=-1):
    return list(plan.commands[i].argv)


def flag(args, name):
    """The value after ``name`` in an argv (None when absent)."""
    return args[args.index(name) + 1] if name in args else None


# ------------------------------------------------------------------------------- vLLM / SGLang

VLLM_CASES = [
    # model, rig, quant, expected TP, PP, extra flags that must be present
    ("llama-3-8b", "rtx-4090", "bf16", 1, 1, {"--dtype": "bfloat16"}),
    ("llama-3-70b", "4x a100-sxm-80gb", "bf16", 4, 1, {"--dtype": "bfloat16"}),
    ("llama-3-70b", "2x h100-sxm", "fp8", 2, 1, {"--quantization": "fp8"}),
    ("llama-3-8b", "rtx-4090 + rtx-3090", "bf16", 2, 1, {}),
]
#: The chat checkpoints served by default (huggingface.co repository names).
INSTRUCT = {"llama-3-8b": "meta-llama/Meta-Llama-3-8B-Instruct", "llama-3-70b": "meta-llama/Meta-Llama-3-70B-Instruct"}


@pytest.mark.parametrize("model,rig,quant,tp,pp,extra", VLLM_CASES, ids=[c[1] for c in VLLM_CASES])
def test_vllm_serve(model, rig, quant, tp, pp, extra):
    plan = launch_plan(model, rig, engine="vllm", quant=quant)
    args = argv(plan)
    assert args[:3] == ["vllm", "serve", INSTRUCT[model]]
    assert flag(args, "--tensor-parallel-size") == str(tp)
    assert flag(args, "--pipeline-parallel-size") == (str(pp) if pp > 1 else None)
    # Llama 3's whole 8,192-token context fits the pool on each of these rigs.
    assert flag(args, "--max-model-len") == "8192" and flag(args, "--gpu-memory-utilization") == "0.90"
    assert plan.estimate["kv_pool_tokens"] >= 8192
    assert all(flag(args, k) == v for k, v in extra.items())
    assert plan.fits and (plan.tensor_parallel, plan.pipeline_parallel) == (tp, pp)
    assert plan.rig == rig


@pytest.mark.parametrize(
    "model,rig,quant,users",
    [
        ("llama-3.1-8b", "rtx-4090", "bf16", 1),
        ("llama-3.1-70b", "2x rtx-4090", "int4", 1),
        ("qwen2.5-7b", "l40s", "bf16", 8),
    ],
)
def test_vllm_max_model_len_is_the_longest_the_pool_holds(model, rig, quant, users):
    """vLLM refuses to start when max_model_len exceeds the KV pool; rigplan picks the largest that
    does not (in steps of 1,024), up to the model's own maximum."""
    plan = launch_plan(model, rig, engine="vllm", quant=quant, users=users)
    ctx, pool = int(flag(argv(plan), "--max-model-len")), plan.estimate["kv_pool_tokens"]
    assert plan.fits and plan.context == ctx
    assert ctx * users <= pool
    assert ctx == load_catalog().models[model].max_context or (ctx + 1024) * users > pool
    assert any("the longest the KV pool" in n for n in plan.notes)


def test_launch_serves_the_instruct_checkpoint_and_trains_the_base():
    assert argv(launch_plan("llama-3.1-8b", "h100-sxm", engine="vllm"))[2] == "meta-llama/Llama-3.1-8B-Instruct"
    plan = launch_plan("qwen3-8b", "h100-sxm", engine="sglang")
    assert flag(argv(plan), "--model-path") == "Qwen/Qwen3-8B"  # Qwen3's repository is the chat model


def test_vllm_suggests_fp8_kv_when_the_pool_limits_the_context():
    plan = launch_plan("llama-3.1-70b", "2x rtx-4090", engine="vllm", quant="int4")
    assert "--kv-cache-dtype" not in argv(plan)
    assert any(n.startswith("--kv-dtype fp8") for n in plan.notes)
    fp8 = launch_plan("llama-3.1-70b", "2x rtx-4090", engine="vllm", quant="int4", kv_dtype="fp8")
    assert flag(argv(fp8), "--kv-cache-dtype") == "fp8"
    assert fp8.context > plan.context and not any(n.startswith("--kv-dtype fp8") for n in fp8.notes)


def test_vllm_mixed_gpus_say_the_smallest_bounds_the_pool():
    plan = launch_plan("llama-3-8b", "rtx-4090 + rtx-3090", engine="vllm", quant="bf16")
    assert any("smallest GPU bounds the KV pool" in n for n in plan.notes)


def test_vllm_users_kv_and_context():
    plan = launch_plan("llama-3.1-8b", "l40s", engine="vllm", quant="bf16", context=16384, users=16, kv_dtype="fp8")
    args = argv(plan)
    assert flag(args, "--max-model-len") == "16384" and flag(args, "--max-num-seqs") == "16"
    assert flag(args, "--kv-cache-dtype") == "fp8"
    assert plan.estimate["max_concurrent_sequences"] >= 16


def test_vllm_multi_node_uses_a_ray_cluster():
    plan = launch_plan("llama-3.1-405b", "2 nodes x 8x h100-sxm", engine="vllm", quant="fp8")
    assert [c.where for c in plan.commands] == ["head node", "each other node", "head node"]
    assert argv(plan, 0) == ["ray", "start", "--head", "--port=6379"]
    assert argv(plan, 1) == ["ray", "start", "--address=HEAD_NODE_IP:6379"]
    args = argv(plan)
    assert flag(args, "--tensor-parallel-size") == "8" and flag(args, "--pipeline-parallel-size") == "2"
    assert flag(args, "--distributed-executor-backend") == "ray"


def test_vllm_4bit_needs_a_quantised_checkpoint():
    plan = launch_plan("llama-3-70b", "2x a100-sxm-80gb", engine="vllm", quant="4bit")
    assert "--quantization" not in argv(plan)
    assert any("needs an AWQ or GPTQ INT4 checkpoint" in n for n in plan.notes)


def test_vllm_gptq_folder_reads_the_method_from_its_config(tmp_path):
    config = {**LLAMA_3_8B, "quantization_config": {"quant_method": "gptq", "bits": 4, "group_size": 128}}
    folder = write_model_folder(tmp_path / "Llama-3-8B-GPTQ", config, gptq_tensors(config), shards=1)
    plan = launch_plan(str(folder), "rtx-4090", engine="vllm")
    args = argv(plan)
    assert args[2] == str(folder) and "--quantization" not in args and "--dtype" not in args
    assert plan.estimate["quant"] == "int4"
    assert any("already int4" in n for n in plan.notes)


def test_vllm_nf4_is_bitsandbytes():
    plan = launch_plan("llama-3-8b", "rtx-4070-ti", engine="vllm", quant="nf4")
    assert flag(argv(plan), "--quantization") == "bitsandbytes"


def test_vllm_too_small_does_not_fit_and_says_why():
    plan = launch_plan("llama-3-70b", "2x rtx-4090", engine="vllm", quant="bf16")
    assert not plan.fits
    assert plan.notes[0].startswith("DOES NOT FIT")


SGLANG_CASES = [
    ("llama-3-8b", "rtx-4090", 1, 1),
    ("llama-3-70b", "4x a100-sxm-80gb", 4, 1),
    ("llama-3-70b", "2x a100-pcie-80gb + 2x a100-pcie-40gb", 4, 1),
]


@pytest.mark.parametrize("model,rig,tp,pp", SGLANG_CASES, ids=["single", "multi", "mixed"])
def test_sglang_launch_server(model, rig, tp, pp):
    plan = launch_plan(model, rig, engine="sglang", quant="bf16")
    args = argv(plan)
    assert args[:5] == ["python", "-m", "sglang.launch_server", "--model-path", INSTRUCT[model]]
    assert flag(args, "--tp-size") == str(tp) and "--pp-size" not in args
    assert flag(args, "--context-length") == "8192"
    assert 0.75 < float(flag(args, "--mem-fraction-static")) < 0.9


def test_sglang_fraction_is_sglangs_own_default():
    """RTX 4090: 24,564 MiB less 450 for the driver; SGLang reserves 512 + 1.5 × 2048 (chunked
    prefill) + 2 × 24 (graph batch) + 1/8 × 1024 (TP 1) = 3,760 MiB → (24,114 − 3,760) / 24,114."""
    args = argv(launch_plan("llama-3-8b", "rtx-4090", engine="sglang", quant="bf16"))
    assert flag(args, "--mem-fraction-static") == "0.844"


def test_sglang_multi_node_has_one_command_per_rank():
    plan = launch_plan("llama-3-70b", "2 nodes x 4x a100-sxm-80gb", engine="sglang", quant="bf16", kv_dtype="fp8")
    assert [c.where for c in plan.commands] == ["node 0", "node 1"]
    for rank, c in enumerate(plan.commands):
        args = list(c.argv)
        assert flag(args, "--tp-size") == "4" and flag(args, "--pp-size") == "2"
        assert flag(args, "--dist-init-addr") == "HEAD_NODE_IP:50000" and flag(args, "--nnodes") == "2"
        assert flag(args, "--node-rank") == str(rank) and flag(args, "--kv-cache-dtype") == "fp8_e4m3"


def test_sglang_many_nodes_use_a_rank_placeholder():
    plan = launch_plan("llama-3-70b", "5 nodes x 8x a100-sxm-80gb", engine="sglang", quant="bf16")
    assert [flag(list(c.argv), "--node-rank") for c in plan.commands] == ["0", "RANK"]


# ------------------------------------------------------------------------------ llama.cpp / Ollama


def test_llama_server_single_gpu():
    plan = launch_plan("llama-3-8b", "rtx-4090", engine="llama.cpp")
    args = argv(plan)
    assert args[:3] == ["llama-server", "-m", "llama-3-8b-Q4_K_M.gguf"]
    assert (flag(args, "-c"), flag(args, "-np"), flag(args, "-ngl")) == ("8192", "1", "999")
    assert "-sm" not in args and "-ts" not in args and "-ctk" not in args
    assert any("stands for a GGUF file" in n for n in plan.notes)


def test_llama_server_identical_gpus_layer_split_without_ratios():
    args = argv(launch_plan("llama-3-70b", "2x rtx-3090", engine="llama.cpp", context=4096))
    assert flag(args, "-sm") == "layer" and "-ts" not in args


def test_llama_server_mixed_gpus_ratios_reproduce_the_placement():
    plan = launch_plan("llama-3-70b", "a100-pcie-80gb + rtx-3090", engine="llama.cpp", context=4096)
    args = argv(plan)
    ratios = [int(x) for x in flag(args, "-ts").split(",")]
    e = estimate("llama-3-70b", "a100-pcie-80gb + rtx-3090", engine="llama.cpp", context=4096)
    assert ratios == [len(d.layers) + (1 if d.holds_output else 0) for d in e.memory.placement.devices]
    assert sum(ratios) == 81 and ratios[0] > ratios[1]  # the 80 GB card takes the larger share


def test_llama_server_partial_offload():
    plan = launch_plan("llama-3-70b", "rtx-4090", engine="llama.cpp", gpu_layers="auto")
    ngl = int(flag(argv(plan), "-ngl"))
    assert 0 < ngl < 81 and plan.fits
    assert any(f"(-ngl {ngl})" in n and "host RAM" in n for n in plan.notes)


def test_llama_server_users_quantised_cache_and_flash_attention():
    args = argv(launch_plan("llama-3-8b", "rtx-4090", engine="llama.cpp", users=4, context=8192, kv_dtype="q8_0"))
    assert flag(args, "-c") == "32768" and flag(args, "-np") == "4"  # -c is shared by the 4 slots
    assert (flag(args, "-ctk"), flag(args, "-ctv"), flag(args, "-fa")) == ("q8_0", "q8_0", "on")


def test_llama_server_row_split_is_flagged_deprecated():
    plan = launch_plan("llama-3-70b", "2x rtx-3090", engine="llama.cpp", split="row", context=4096)
    assert flag(argv(plan), "-sm") == "row"
    assert any("deprecated" in n for n in plan.notes)


def test_llama_server_runs_a_gguf_file(tmp_path):
    from test_gguf_file import MOSTLY_Q4_K_M, tiny_metadata, tiny_tensors

    path = tmp_path / "tiny-Q4_K_M.gguf"
    write_gguf(path, "llama", tiny_metadata(), tiny_tensors(), file_type=MOSTLY_Q4_K_M)
    plan = launch_plan(str(path), "rtx-4090", engine="llama.cpp", context=2048)
    assert flag(argv(plan), "-m") == str(path) and flag(argv(plan), "-ngl") == "999"
    assert not any("stands for" in n for n in plan.notes)


def test_ollama_modelfile_and_server_environment():
    plan = launch_plan("llama-3-8b", "2x rtx-3090", engine="ollama", users=4, kv_dtype="q8_0", context=8192)
    (modelfile,) = plan.files
    assert modelfile.name == "Modelfile"
    assert modelfile.text.splitlines() == [
        "FROM ./llama-3-8b-Q4_K_M.gguf",
        "PARAMETER num_ctx 8192",
        "PARAMETER num_gpu 33",
    ]
    serve = plan.commands[0]
    assert serve.argv == ("ollama", "serve")
    assert dict(serve.env) == {
        "OLLAMA_NUM_PARALLEL": "4",
        "OLLAMA_FLASH_ATTENTION": "1",
        "OLLAMA_KV_CACHE_TYPE": "q8_0",
        "OLLAMA_SCHED_SPREAD": "1",
    }
    assert [c.argv[:2] for c in plan.commands[1:]] == [("ollama", "create"), ("ollama", "run")]


@pytest.mark.parametrize("rig,spread", [("rtx-4090", False), ("rtx-4090 + rtx-3090", True)], ids=["single", "mixed"])
def test_ollama_spreads_only_over_several_gpus(rig, spread):
    plan = launch_plan("llama-3-8b", rig, engine="ollama")
    env = dict(plan.commands[0].env)
    assert ("OLLAMA_SCHED_SPREAD" in env) is spread and "OLLAMA_NUM_PARALLEL" not in env
    assert "PARAMETER num_gpu 33" in plan.files[0].text


def test_command_text_is_valid_shell():
    plan = launch_plan("llama-3-8b", "rtx-4090", engine="llama.cpp")
    c = plan.commands[0]
    assert shlex.split(c.text().replace("\\\n", " ")) == list(c.argv)
    assert shlex.split(c.text(multiline=False)) == list(c.argv)


# ----------------------------------------------------------------------------------- refusals

REFUSALS = [
    ("llama-3-8b", "3x rtx-4090", {}, r"TP 3 does not divide the 32 attention heads.*TP that works: 1, 2"),
    ("qwen2.5-7b", "7x rtx-4090", {}, r"TP 7 and the 4 KV heads do not divide one another"),
    (
        "llama-3-8b",
        "3x rtx-4090",
        {"tensor_parallel": 1, "pipeline_parallel": 3},
        r"PP 3 does not divide the 32 layers.*PP that works: 1, 2",
    ),
]


@pytest.mark.parametrize("model,rig,kw,match", REFUSALS, ids=["tp-heads", "tp-kv-heads", "pp-layers"])
@pytest.mark.parametrize("engine", ["vllm", "sglang"])
def test_layouts_are_refused_with_the_reason(model, rig, kw, match, engine):
    with pytest.raises(UnsupportedError, match=match):
        launch_plan(model, rig, engine=engine, quant="bf16", **kw)


def test_layout_rules_one_by_one():
    catalog = load_catalog()
    llama = catalog.models["llama-3-8b"]
    odd_vocab = model_from_fields(
        {
            "hidden_size": 4096,
            "num_layers": 32,
            "num_heads": 32,
            "num_kv_heads": 8,
            "ffn_size": 14336,
            "vocab_size": 32001,
        }
    )
    assert layout_problems(llama, 8, 4) == []
    assert layout_problems(llama, 16, 1) == []  # 8 KV heads divide TP 16: replicated
    assert layout_problems(odd_vocab, 2, 1) == ["TP 2 does not divide the vocabulary of 32,001 tokens"]
    assert valid_tensor_parallel(catalog.models["qwen2.5-7b"], 8) == [1, 2, 4]
    # MLA caches one latent: the KV-head rule does not apply.
    assert layout_problems(catalog.models["deepseek-v3"], 16, 1) == []
    with pytest.raises(UnsupportedError, match="refused for llama-3-8b"):
        check_layout(llama, 6, 1)


@pytest.mark.parametrize(
    "engine,kv,match",
    [
        ("vllm", "q8_0", "vllm has no q8_0 KV cache"),
        ("llama.cpp", "fp8", "llama.cpp has no fp8 KV cache"),
        ("ollama", "bf16", "ollama has no bf16 KV cache"),
    ],
    ids=["vllm-q8_0", "llama.cpp-fp8", "ollama-bf16"],
)
def test_kv_cache_types_the_engine_lacks(engine, kv, match):
    with pytest.raises(UnsupportedError, match=match):
        launch_plan("llama-3-8b", "rtx-4090", engine=engine, kv_dtype=kv)


def test_engines_without_a_launch_form():
    with pytest.raises(UnsupportedError, match=r"writes commands for vllm, sglang, llama\.cpp, ollama"):
        launch_plan("llama-3-8b", "rtx-4090", engine="exllamav2")
    with pytest.raises(InvalidValueError, match="users"):
        launch_plan("llama-3-8b", "rtx-4090", users=0)


# ----------------------------------------------------------------------------------- training

TRAINING_CASES = [
    # task, model, rig, ZeRO stage, optimizer offload, parameter offload — the lowest layout at
    # which rigplan's training memory model (activation checkpointing on) fits every GPU
    ("lora", "llama-3-8b", "rtx-4090", 0, False, False),
    ("qlora", "llama-3-8b", "rtx-3090", 0, False, False),
    # 70B QLoRA on two 24 GB cards needs CPU offload (as Answer.AI's FSDP+QLoRA runs did)
    ("qlora", "llama-3-70b", "2x rtx-3090", 3, True, True),
    ("full", "llama-3-8b", "8x a100-sxm-80gb", 1, False, False),
    ("full", "llama-3-8b", "4x rtx-4090", 3, True, True),
    ("full", "llama-3-70b", "2 nodes x 8x h100-sxm", 3, True, True),
    ("lora", "llama-3-70b", "8x rtx-6000-ada", 3, False, False),
    ("lora", "llama-3-70b", "4x rtx-4090", 3, True, True),
]


@pytest.mark.parametrize(
    "task,model,rig,stage,offload,offload_params", TRAINING_CASES, ids=[f"{c[0]}-{c[1]}-{c[2]}" for c in TRAINING_CASES]
)
def test_training_picks_the_lowest_zero_stage_that_fits(task, model, rig, stage, offload, offload_params):
    plan = training_plan(model, rig, task=task)
    ds = json.loads(next(f.text for f in plan.files if f.name == "ds_config.json"))
    assert ds["zero_optimization"]["stage"] == stage
    assert ("offload_optimizer" in ds["zero_optimization"]) is offload
    assert ("offload_param" in ds["zero_optimization"]) is offload_params
    assert any("stream from host RAM" in n for n in plan.notes) is offload_params
    assert ds["bf16"] == {"enabled": "auto"} and ds["train_micro_batch_size_per_gpu"] == "auto"
    assert plan.estimate["zero_stage"] == stage


def test_training_single_node_torchrun_and_accelerate():
    plan = training_plan("llama-3-8b", "8x a100-sxm-80gb", task="full")
    assert argv(plan, 0) == [
        "torchrun",
        "--standalone",
        "--nproc-per-node",
        "8",
        "train.py",
        "--deepspeed",
        "ds_config.json",
    ]
    assert argv(plan, 1) == ["accelerate", "launch", "--config_file", "accelerate_config.yaml", "train.py"]
    yaml = next(f.text for f in plan.files if f.name == "accelerate_config.yaml")
    assert "distributed_type: DEEPSPEED" in yaml and "num_processes: 8" in yaml and "num_machines: 1" in yaml


def test_training_multi_node_rendezvous():
    plan = training_plan("llama-3-70b", "2 nodes x 8x h100-sxm", task="full")
    args = argv(plan, 0)
    assert plan.commands[0].where == "every node"
    assert (flag(args, "--nnodes"), flag(args, "--nproc-per-node")) == ("2", "8")
    assert (flag(args, "--rdzv-backend"), flag(args, "--rdzv-endpoint")) == ("c10d", "HEAD_NODE_IP:29500")
    yaml = next(f.text for f in plan.files if f.name == "accelerate_config.yaml")
    assert "main_process_ip: HEAD_NODE_IP" in yaml and "num_processes: 16" in yaml and "zero3_init_flag: true" in yaml


def test_training_on_gpus_without_bf16_uses_fp16():
    plan = training_plan("llama-3-8b", "2x v100-sxm2-32gb", task="lora")
    ds = json.loads(plan.files[0].text)
    assert "fp16" in ds and "bf16" not in ds


def test_training_refusals():
    with pytest.raises(InvalidValueError, match="task"):
        training_plan("llama-3-8b", "rtx-4090", task="pretrain")
    with pytest.raises(UnsupportedError, match="NVIDIA"):
        training_plan("llama-3-8b", "m2-ultra-192gb", task="lora")


def test_training_launch_agrees_with_the_training_estimate():
    """The ZeRO stage comes from rigplan's training memory model, so launch and train agree."""
    from rigplan import estimate_training

    plan = training_plan("llama-3-8b", "rtx-4090", task="lora")
    stage = json.loads(plan.files[0].text)["zero_optimization"]["stage"]
    est = estimate_training("llama-3-8b", "rtx-4090", method="lora", zero_stage=stage, activation_checkpointing=True)
    assert plan.fits == est.fits
    full = training_plan("llama-3-70b", "2x rtx-4090", task="full")
    # 70B full fine-tune on 48 GB: only with every state streamed from host RAM
    assert full.estimate["offload_params"] and any("stream from host RAM" in n for n in full.notes)


# ---------------------------------------------------------------------------------------- CLI


def test_cli_launch_prints_the_command(capsys):
    code, out, _ = run(
        capsys, "launch", "llama-3-70b", "--rig", "4x a100-sxm-80gb", "--engine", "vllm", "--quant", "bf16"
    )
    assert code == 0
    assert "vllm serve meta-llama/Meta-Llama-3-70B" in out and "--tensor-parallel-size 4" in out
    assert "TP 4 × PP 1" in out and "— fits" in out


def test_cli_launch_json_and_files(capsys, tmp_path):
    code, out, _ = run(
        capsys,
        "launch",
        "llama-3-8b",
        "--rig",
        "rtx-4090",
        "--engine",
        "ollama",
        "--json",
        "--out",
        str(tmp_path / "cfg"),
    )
    d = json.loads(out)
    assert code == 0 and d["engine"] == "ollama" and d["commands"][0]["shell"] == "ollama serve"
    assert (tmp_path / "cfg" / "Modelfile").read_text().startswith("FROM ")


def test_cli_launch_training(capsys):
    code, out, _ = run(capsys, "launch", "llama-3-8b", "--rig", "2x rtx-4090", "--task", "qlora")
    assert code == 0 and "# ds_config.json" in out and "torchrun" in out and "--nproc-per-node 2" in out


def test_cli_launch_refusal_is_one_line(capsys):
    code, _, err = run(capsys, "launch", "llama-3-8b", "--rig", "3x rtx-4090", "--engine", "vllm")
    assert code == 2 and err.startswith("rigplan: error: layout TP 3 × PP 1 refused") and "Traceback" not in err


def test_cli_launch_exit_1_when_it_does_not_fit(capsys):
    code, out, _ = run(capsys, "launch", "llama-3-70b", "--rig", "rtx-4090", "--quant", "f16")
    assert code == 1 and "DOES NOT FIT" in out and f"{24564 * 2**20 / GIB:.1f} GiB" in out

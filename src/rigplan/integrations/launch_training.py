"""Training launch forms: ``torchrun`` (or ``accelerate launch``) with a DeepSpeed ZeRO config."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ..catalog.records import Catalog, Model
from ..errors import InvalidValueError, UnsupportedError
from ..rig import Rig
from ..training.estimate import NO_BF16_ARCHITECTURES
from ..units import GIB
from .launch_common import HEAD_NODE, TORCH_RDZV_PORT, Command, ConfigFile, LaunchPlan, _resolve_model

# ---------------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ZeroChoice:
    stage: int
    offload_optimizer: bool
    offload_params: bool
    state_bytes_per_gpu: int


# ZeRO layouts tried, lowest first (then optimizer offload to CPU): full fine-tunes shard
# optimizer states (1), gradients (2), parameters (3); LoRA/QLoRA have only a frozen base to shard.
ZERO_LADDER = {
    "full": ((0, None), (1, None), (2, None), (3, None), (3, "cpu")),
    "lora": ((0, None), (3, None), (3, "cpu")),
    "qlora": ((0, None), (3, None), (3, "cpu")),
}


def choose_zero(model: Model, rig: Rig, task: str, *, bf16: bool, catalog: Catalog) -> tuple[ZeroChoice, bool]:
    """The lowest ZeRO stage (then CPU offload) at which ``rigplan.estimate_training`` says the
    job fits, with activation checkpointing; returns the choice and whether anything fits."""
    from ..errors import RigplanError
    from ..training import estimate_training

    last: ZeroChoice | None = None
    for stage, offload in ZERO_LADDER[task]:
        try:
            est = estimate_training(
                model,
                rig,
                method=task,
                zero_stage=stage,
                offload=offload,
                activation_checkpointing=True,
                precision="bf16" if bf16 else "f16",
                catalog=catalog,
            )
        except RigplanError:
            continue
        peak = est.memory.peak.total_bytes
        # rigplan's CPU offload at ZeRO-3 moves parameters too (DeepSpeed offload_param).
        last = ZeroChoice(stage, offload is not None, offload is not None and stage >= 3, peak)
        if est.fits:
            return last, True
    return last or ZeroChoice(3, True, False, 0), False


def _deepspeed_config(choice: ZeroChoice, bf16: bool) -> dict[str, Any]:
    zero: dict[str, Any] = {"stage": choice.stage}
    if choice.stage >= 2:
        zero |= {"overlap_comm": True, "contiguous_gradients": True}
    if choice.offload_optimizer:
        zero["offload_optimizer"] = {"device": "cpu", "pin_memory": True}
    if choice.offload_params:
        zero["offload_param"] = {"device": "cpu", "pin_memory": True}
    if choice.stage == 3:
        zero["stage3_gather_16bit_weights_on_model_save"] = True
    return {
        "bf16" if bf16 else "fp16": {"enabled": "auto"},
        "zero_optimization": zero,
        "gradient_accumulation_steps": "auto",
        "gradient_clipping": "auto",
        "train_batch_size": "auto",
        "train_micro_batch_size_per_gpu": "auto",
    }


def _accelerate_yaml(nodes: int, processes: int, zero3: bool) -> str:
    lines = [
        "compute_environment: LOCAL_MACHINE",
        "distributed_type: DEEPSPEED",
        "deepspeed_config:",
        "  deepspeed_config_file: ds_config.json",
        f"  zero3_init_flag: {'true' if zero3 else 'false'}",
        "machine_rank: 0",
        f"num_machines: {nodes}",
        f"num_processes: {processes}",
    ]
    if nodes > 1:
        lines += [
            f"main_process_ip: {HEAD_NODE}",
            f"main_process_port: {TORCH_RDZV_PORT}",
            "rdzv_backend: static",
            "same_network: true",
        ]
    lines += ["use_cpu: false", ""]
    return "\n".join(lines)


def training_plan(
    model: str,
    rig: str | Any,
    *,
    task: str = "lora",
    script: str = "train.py",
    network: str | None = None,
    catalog: Catalog | None = None,
) -> LaunchPlan:
    """torchrun (and accelerate) commands with a DeepSpeed ZeRO config for fine-tuning.

    The ZeRO stage is the lowest at which :func:`rigplan.estimate_training` (with activation
    checkpointing) says the job fits on every GPU.

    Raises:
        InvalidValueError: an unknown task.
        UnsupportedError: Apple or AMD GPUs (DeepSpeed + NCCL need NVIDIA CUDA here).
    """
    from ..catalog import load_catalog
    from ..edge import resolve_rig_input

    if task not in ("full", "lora", "qlora"):
        raise InvalidValueError("task", f"must be full, lora or qlora, got {task!r}")
    catalog = catalog or load_catalog()
    m = _resolve_model(model, catalog)
    the_rig = resolve_rig_input(rig, catalog, network)
    if any(g.vendor != "nvidia" for g in the_rig.gpus):
        raise UnsupportedError("training launch commands target NVIDIA GPUs (CUDA, NCCL, DeepSpeed)")
    bf16 = not any(g.architecture in NO_BF16_ARCHITECTURES for g in the_rig.gpus)
    choice, fits = choose_zero(m.model, the_rig, task, bf16=bf16, catalog=catalog)
    notes = _training_notes(the_rig, task, script, choice, fits=fits, bf16=bf16)
    commands = _training_commands(the_rig, script, notes)
    files = [
        ConfigFile("ds_config.json", json.dumps(_deepspeed_config(choice, bf16), indent=2) + "\n"),
        ConfigFile("accelerate_config.yaml", _accelerate_yaml(the_rig.nodes, the_rig.gpu_count, choice.stage == 3)),
    ]
    return LaunchPlan(
        engine="deepspeed",
        task=task,
        model=m.model.id,
        rig=the_rig.describe(),
        fits=fits,
        tensor_parallel=1,
        pipeline_parallel=1,
        context=0,
        users=0,
        commands=tuple(commands),
        files=tuple(files),
        notes=tuple(notes),
        estimate={
            "zero_stage": choice.stage,
            "offload_optimizer": choice.offload_optimizer,
            "offload_params": choice.offload_params,
            "state_bytes_per_gpu": choice.state_bytes_per_gpu,
            "parameters": m.model.published_param_count,
            "precision": "bf16" if bf16 else "fp16",
        },
    )


def _training_notes(rig: Rig, task: str, script: str, choice: ZeroChoice, *, fits: bool, bf16: bool) -> list[str]:
    smallest = min(g.memory_bytes for g in rig.gpus)
    notes = [
        f"ZeRO stage {choice.stage}"
        + (" with optimizer offload to CPU" if choice.offload_optimizer else "")
        + (" and parameter offload to CPU" if choice.offload_params else "")
        + f", activation checkpointing: about {choice.state_bytes_per_gpu / GIB:.1f} GiB per GPU of "
        f"{smallest / GIB:.1f} GiB (rigplan train gives the breakdown)"
        + ("" if fits else "; it does not fit even so: more or larger GPUs, or LoRA/QLoRA"),
        f"{script} is your training script (Hugging Face Trainer or accelerate); it reads "
        '--deepspeed ds_config.json, whose "auto" values come from the script\'s arguments',
    ]
    if task == "qlora" and choice.stage == 3:
        notes.append("QLoRA under ZeRO-3 needs bnb_4bit_quant_storage set to the compute dtype in the script")
    if not bf16:
        notes.append("these GPUs have no bf16 tensor cores: fp16 with loss scaling")
    if rig.is_mixed:
        notes.append("mixed GPUs: every rank gets the same share, the smallest GPU bounds it")
    if choice.offload_params:
        notes.append(
            "parameters stream from host RAM every step (slow, and host RAM must hold the "
            "model states): more GPUs, or a LoRA/QLoRA task, fit on the GPUs"
        )
    return notes


def _training_commands(rig: Rig, script: str, notes: list[str]) -> list[Command]:
    per_node, nodes = rig.gpus_per_node, rig.nodes
    script_args = (script, "--deepspeed", "ds_config.json")
    if nodes == 1:
        commands = [Command(("torchrun", "--standalone", "--nproc-per-node", str(per_node), *script_args))]
    else:
        endpoint = f"{HEAD_NODE}:{TORCH_RDZV_PORT}"
        rendezvous = ("--rdzv-backend", "c10d", "--rdzv-endpoint", endpoint, "--rdzv-id", "rigplan")
        argv = ("torchrun", "--nnodes", str(nodes), "--nproc-per-node", str(per_node), *rendezvous, *script_args)
        commands = [Command(argv, where="every node")]
        notes.append("the c10d rendezvous assigns node ranks; every node runs the same command")
    commands.append(
        Command(
            ("accelerate", "launch", "--config_file", "accelerate_config.yaml", script),
            where="or, with accelerate" + (" (set machine_rank per node)" if nodes > 1 else ""),
        )
    )
    return commands

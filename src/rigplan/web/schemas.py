"""Request models of the web API: one pydantic model per operation, shared by GET (query
parameters) and POST (JSON body), with bounds on every number and no unknown keys.

Options the request records of :mod:`rigplan.requests` declare take their default, minimum and
help from there (:func:`option_field`; tests/web/test_schema_source.py keeps every shared name
equal); the web adds the maxima that keep one request cheap.  The core still checks what it
alone knows (a context beyond the model's maximum, a rig the grammar refuses) and says why.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from rigplan import (
    CAPACITY_OPTIONS,
    INFERENCE_OPTIONS,
    LAUNCH_OPTIONS,
    PLAN_OPTIONS,
    POWER_OPTIONS,
    TRAINING_OPTIONS,
    VRAM_OPTIONS,
    Option,
)

# Bounds on client input.  Generous for any real rig or workload, small enough that no single
# request can make the server compute for long.
MAX_NAME_CHARS = 200  # a model id, path or repo id; a rig string
MAX_ID_CHARS = 40  # quant, engine and other short ids
MAX_TOKENS = 2**24  # 16 M tokens of context, prompt or output
MAX_BATCH = 65_536
MAX_PARALLEL = 16_384  # 1024 nodes × 16 GPUs, the rig grammar's limits
MAX_LAYERS = 100_000
MAX_HOST_RAM_GB = 1_000_000.0
MAX_BANDWIDTH_GB_PER_S = 100_000.0
MAX_LIST_ITEMS = 8  # quants, contexts, GPU types or owned GPUs in one request
MAX_GPUS_PER_TYPE = 8  # the x axis of "tok/s vs number of GPUs"
MAX_USD = 1e9
MAX_WATTS = 1e7
MAX_TOP = 50
MAX_USERS = 4096
MAX_PLAN_GPUS = 64
MAX_PRICES = 16
MAX_TOKENS_PER_S = 1e6
MAX_TOKENS_PER_CAPACITY_USER = 10_000.0  # per-user output speed asked of a serving rig
MAX_KWH_PRICE = 100.0
MAX_GLOBAL_BATCH = 2**20
MAX_LORA_RANK = 4096
MAX_TRAIN_TOKENS = 1e15
MAX_DEADLINE_HOURS = 1e5
MAX_TRAIN_GPUS = 16_384

# GPU=USD, as the planner's parse_price_overrides reads it.
PRICE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9 ._-]*=[0-9]{1,9}(\.[0-9]{1,2})?$"


def option_field(option: Option, *, maximum: float | None = None, **extra: Any) -> Any:
    """A request field generated from its record in :mod:`rigplan.requests` (default, minimum,
    exclusive or not, and help); the web adds only the ``maximum`` that bounds one request's work.

    >>> option_field(INFERENCE_OPTIONS["prompt_tokens"], maximum=10).default
    512
    """
    if option.many:  # a list: the web's item type bounds each value
        default = list(option.default or ())
        return Field(default_factory=lambda: list(default), description=option.help, **extra)
    bounds: dict[str, Any] = {}
    if option.choices or option.kind == "int-or-name":
        # The web's type states these: its Literal / enum of the choices, or an int with its
        # bounds beside the names ("max", "auto").
        return Field(option.default, description=option.help, **extra)
    if option.minimum is not None:
        minimum = int(option.minimum) if option.kind == "int" else option.minimum
        bounds["gt" if option.exclusive else "ge"] = minimum
    if maximum is not None:
        bounds["le"] = maximum
    if option.kind == "number":
        bounds["allow_inf_nan"] = False
    return Field(option.default, description=option.help, **bounds, **extra)


INFERENCE = INFERENCE_OPTIONS
PLAN = PLAN_OPTIONS
VRAM = VRAM_OPTIONS
POWER = POWER_OPTIONS
LAUNCH = LAUNCH_OPTIONS
CAPACITY = CAPACITY_OPTIONS
TRAINING = TRAINING_OPTIONS

Name = Annotated[str, Field(min_length=1, max_length=MAX_NAME_CHARS)]
ShortId = Annotated[str, Field(min_length=1, max_length=MAX_ID_CHARS)]
Tokens = Annotated[int, Field(ge=0, le=MAX_TOKENS)]
Context = Annotated[int, Field(ge=1, le=MAX_TOKENS)]

MODEL_HELP = (
    "Catalogue model id (GET /api/models lists them). Paths and Hugging Face repo ids only when "
    "the server runs with --allow-paths / --allow-network."
)
RIG_HELP = "Rig string: 'rtx-4090', '2x rtx-3090', 'rtx-4090 + 2x rtx-3090', '2 nodes x 8x h100-sxm'."
QUANT_HELP = "Quant id (GET /api/quants) or 4bit / 8bit / 16bit; default: the engine's."
ENGINE_HELP = "llama.cpp, ollama, vllm, sglang, tensorrt-llm, exllamav2 or transformers."

KvDtype = Literal["f16", "bf16", "fp8", "q8_0", "q4_0"]
ServingKvDtype = Literal["bf16", "f16", "fp8"]  # vLLM-class engines'
Split = Literal["layer", "row", "tensor", "pipeline"]
LinkKind = Literal["nvlink", "xgmi", "pcie3", "pcie4", "pcie5"]


class LaneCount(IntEnum):
    """PCIe lanes per GPU. An int enum, not a Literal: a query string's "16" must validate."""

    X16 = 16
    X8 = 8
    X4 = 4


Lanes = LaneCount
Network = Literal["ib-ndr", "ib-hdr", "roce-400g", "eth-100g", "eth-25g", "eth-10g"]
GpuClass = Literal["consumer", "workstation", "datacenter", "apple"]
PlatformClass = Literal["desktop", "hedt", "server"]
Circuit = Literal["120v15a", "120v20a", "230v10a", "230v16a"]
Objective = Literal["cheapest", "fastest", "value", "efficiency"]
Vendor = Literal["nvidia", "amd", "apple"]
LaunchTask = Literal["serve", "full", "lora", "qlora"]
TrainMethod = Literal["full", "lora", "qlora", "pretrain"]
ZeroStage = Annotated[int, Field(ge=0, le=3)] | Literal["fsdp-full", "fsdp-grad-op", "fsdp-hybrid"]
Checkpointing = Literal["none", "selective", "full"]
TrainPrecision = Literal["bf16", "f16", "fp8", "mxfp8", "fp4", "f32"]
TrainOptimizer = Literal["adamw", "adamw-8bit", "sgd"]
LoraTargets = Literal["all-linear", "attention", "qv"]
TrainFramework = Literal["torchtitan", "fsdp", "megatron", "deepspeed", "hf-trainer", "unsloth"]
GpuSort = Literal["memory", "bandwidth", "fp16", "power", "price", "year", "name"]


class Request(BaseModel):
    """Base of every request: unknown keys are an error, never ignored."""

    model_config = ConfigDict(extra="forbid")


class Workload(Request):
    """What every inference request shares: the model and how it is run."""

    model: Name = Field(description=MODEL_HELP, examples=["llama-3-70b"])
    quant: ShortId | None = option_field(INFERENCE["quant"], examples=["4bit"])
    engine: ShortId = option_field(INFERENCE["engine"])
    context: int | None = option_field(INFERENCE["context"], maximum=MAX_TOKENS)
    batch: Annotated[int, Field(ge=1, le=MAX_BATCH)] | Literal["max"] = option_field(INFERENCE["batch"])
    prompt_tokens: int = option_field(INFERENCE["prompt_tokens"], maximum=MAX_TOKENS)
    output_tokens: int = option_field(INFERENCE["output_tokens"], maximum=MAX_TOKENS)


class EstimateRequest(Workload):
    """``rigplan.estimate``: memory per GPU, speed with ranges and power of a model on a rig."""

    rig: Name = Field(description=RIG_HELP, examples=["2x rtx-4090"])
    kv_dtype: KvDtype | None = option_field(INFERENCE["kv_dtype"])
    split: Split | None = option_field(INFERENCE["split"])
    tensor_parallel: int | None = option_field(INFERENCE["tensor_parallel"], maximum=MAX_PARALLEL)
    pipeline_parallel: int | None = option_field(INFERENCE["pipeline_parallel"], maximum=MAX_PARALLEL)
    gpu_layers: Annotated[int, Field(ge=0, le=MAX_LAYERS)] | Literal["auto"] | None = option_field(
        INFERENCE["gpu_layers"]
    )
    link: LinkKind | None = option_field(INFERENCE["link"])
    lanes: Lanes | None = option_field(INFERENCE["lanes"])
    host_ram_gb: float | None = option_field(INFERENCE["host_ram_gb"], maximum=MAX_HOST_RAM_GB)
    host_memory_bandwidth_gb_per_s: float | None = option_field(
        INFERENCE["host_memory_bandwidth_gb_per_s"], maximum=MAX_BANDWIDTH_GB_PER_S
    )
    network: Network | None = Field(None, description="Between nodes (multi-node rigs).")
    force: bool = option_field(INFERENCE["force"])


class CapacityRequest(Request):
    """Users one rig serves at once at a per-user speed (`rigplan capacity`)."""

    model: Name = Field(description=MODEL_HELP, examples=["llama-3.3-70b"])
    rig: Name = Field(description=RIG_HELP, examples=["8x h100-sxm"])
    engine: ShortId = option_field(CAPACITY["engine"])
    quant: ShortId | None = option_field(CAPACITY["quant"])
    users: int = option_field(CAPACITY["users"], maximum=MAX_BATCH)
    context: int = option_field(CAPACITY["context"], maximum=MAX_TOKENS)
    min_tok_s: float = option_field(CAPACITY["min_tokens_per_s"], maximum=MAX_TOKENS_PER_CAPACITY_USER)
    prompt_tokens: int = option_field(CAPACITY["prompt_tokens"], maximum=MAX_TOKENS)
    output_tokens: int = option_field(CAPACITY["output_tokens"], maximum=MAX_TOKENS)
    kv_dtype: ServingKvDtype | None = option_field(CAPACITY["kv_dtype"])


class CompareRequest(Workload):
    """Several rigs side by side for one model (`rigplan compare`)."""

    rig: list[Name] = Field(
        min_length=1,
        max_length=MAX_LIST_ITEMS,
        description=RIG_HELP + " Repeat for each rig.",
        examples=[["2x rtx-3090", "rtx-5090"]],
    )


class ScalingRequest(Workload):
    """Decode speed and fit of 1…max_gpus GPUs of each type: the tok/s-vs-GPU-count chart."""

    gpu: list[ShortId] = Field(
        min_length=1,
        max_length=MAX_LIST_ITEMS,
        description="GPU ids, one line each.",
        examples=[["rtx-4090", "rtx-3090"]],
    )
    max_gpus: int = Field(MAX_GPUS_PER_TYPE, ge=1, le=MAX_GPUS_PER_TYPE)


class LaunchRequest(Request):
    """The command (and config files) that run one setup (`rigplan launch`)."""

    model: Name = Field(description=MODEL_HELP, examples=["llama-3-70b"])
    rig: Name = Field(description=RIG_HELP, examples=["2x rtx-4090"])
    task: LaunchTask = option_field(LAUNCH["task"])
    engine: ShortId = option_field(LAUNCH["engine"])
    quant: ShortId | None = option_field(LAUNCH["quant"])
    context: int | None = option_field(LAUNCH["context"], maximum=MAX_TOKENS)
    users: int = option_field(LAUNCH["users"], maximum=MAX_BATCH)
    kv_dtype: KvDtype | None = option_field(LAUNCH["kv_dtype"])
    split: Split | None = option_field(LAUNCH["split"])
    tensor_parallel: int | None = option_field(LAUNCH["tensor_parallel"], maximum=MAX_PARALLEL)
    pipeline_parallel: int | None = option_field(LAUNCH["pipeline_parallel"], maximum=MAX_PARALLEL)
    gpu_layers: Annotated[int, Field(ge=0, le=MAX_LAYERS)] | Literal["auto"] | None = option_field(LAUNCH["gpu_layers"])
    network: Network | None = option_field(LAUNCH["network"])
    script: str = Field(
        "train.py", pattern=r"^[A-Za-z0-9_][A-Za-z0-9_./-]{0,99}$", description="Training script (fine-tunes)."
    )


class PlanRequest(Request):
    """Ranked rigs for a model under constraints (`rigplan plan`)."""

    model: Name = Field(description=MODEL_HELP, examples=["llama-2-70b"])
    quant: ShortId = option_field(PLAN["quant"])
    context: int | None = option_field(PLAN["context"], maximum=MAX_TOKENS)
    users: int = option_field(PLAN["users"], maximum=MAX_USERS)
    min_tokens_per_s: float | None = option_field(PLAN["min_tokens_per_s"], maximum=MAX_TOKENS_PER_S)
    prompt_tokens: int = option_field(PLAN["prompt_tokens"], maximum=MAX_TOKENS)
    output_tokens: int = option_field(PLAN["output_tokens"], maximum=MAX_TOKENS)
    budget: float | None = option_field(PLAN["budget_usd"], maximum=MAX_USD)
    max_watts: float | None = option_field(PLAN["max_watts"], maximum=MAX_WATTS)
    circuit: Circuit | None = option_field(PLAN["circuit"])
    max_gpus: int | None = option_field(PLAN["max_gpus"], maximum=MAX_PLAN_GPUS)
    gpu_class: GpuClass | None = option_field(PLAN["gpu_class"])
    platform: PlatformClass | None = option_field(PLAN["platform"])
    nvlink: bool = option_field(PLAN["nvlink"])
    have: list[Annotated[str, Field(min_length=1, max_length=MAX_ID_CHARS)]] = Field(
        default_factory=list, max_length=MAX_LIST_ITEMS, description="GPUs you own ('rtx-3090', '2x rtx-3090')."
    )
    engine: ShortId | None = Field(None, description="One engine (default: llama.cpp, vllm and exllamav2).")
    objective: Objective = option_field(PLAN["objective"])
    top: int = option_field(PLAN["top"], maximum=MAX_TOP)
    price: list[Annotated[str, Field(min_length=3, max_length=MAX_ID_CHARS, pattern=PRICE_PATTERN)]] = Field(
        default_factory=list, max_length=MAX_PRICES, description="Your price for a GPU: GPU=USD, e.g. rtx-3090=700."
    )
    kwh_price: float | None = option_field(PLAN["kwh_price"], maximum=MAX_KWH_PRICE)


class PowerRequest(Request):
    """Power of a rig: PSU, connectors, wall circuits, a power limit and electricity (`rigplan power`)."""

    rig: Name = Field(description=RIG_HELP, examples=["2x rtx-3090"])
    platform: ShortId | None = option_field(POWER["platform"])
    circuit: Circuit | None = option_field(POWER["circuit"])
    power_limit: str | None = option_field(POWER["power_limit"], pattern=r"^\d{1,5}(\.\d{1,4})?%?$")
    kwh_price: float | None = option_field(POWER["kwh_price"], maximum=MAX_KWH_PRICE)
    model: Name | None = option_field(POWER["model"])
    quant: ShortId | None = option_field(POWER["quant"])
    engine: ShortId = option_field(POWER["engine"])


class TrainRequest(Request):
    """Training memory per GPU, tokens/s, time to train and cost (`rigplan train`)."""

    model: Name = Field(description=MODEL_HELP, examples=["llama-3-8b"])
    rig: Name = Field(description=RIG_HELP, examples=["2x rtx-3090"])
    method: TrainMethod = option_field(TRAINING["method"])
    seq_len: int = option_field(TRAINING["seq_len"], maximum=MAX_TOKENS)
    micro_batch: int = option_field(TRAINING["micro_batch"], maximum=MAX_BATCH)
    global_batch: int | None = option_field(TRAINING["global_batch"], maximum=MAX_GLOBAL_BATCH)
    zero_stage: ZeroStage = option_field(TRAINING["zero_stage"])
    activation_checkpointing: Checkpointing = option_field(TRAINING["activation_checkpointing"])
    precision: TrainPrecision = option_field(TRAINING["precision"])
    optimizer: TrainOptimizer = option_field(TRAINING["optimizer"])
    lora_rank: int = option_field(TRAINING["lora_rank"], maximum=MAX_LORA_RANK)
    lora_targets: LoraTargets = option_field(TRAINING["lora_targets"])
    offload: Literal["cpu"] | None = option_field(TRAINING["offload"])
    tensor_parallel: int = option_field(TRAINING["tensor_parallel"], maximum=MAX_PARALLEL)
    pipeline_parallel: int = option_field(TRAINING["pipeline_parallel"], maximum=MAX_PARALLEL)
    context_parallel: int = option_field(TRAINING["context_parallel"], maximum=MAX_PARALLEL)
    expert_parallel: int = option_field(TRAINING["expert_parallel"], maximum=MAX_PARALLEL)
    virtual_pipeline: int = option_field(TRAINING["virtual_pipeline"], maximum=MAX_PARALLEL)
    framework: TrainFramework | None = option_field(TRAINING["framework"])
    tokens: float | None = option_field(TRAINING["tokens"], maximum=MAX_TRAIN_TOKENS)
    network: Network | None = option_field(TRAINING["network"])
    link: LinkKind | None = option_field(TRAINING["link"])
    kwh_price: float | None = option_field(TRAINING["kwh_price"], maximum=MAX_KWH_PRICE)
    force: bool = option_field(TRAINING["force"])


class TrainPlanRequest(Request):
    """Rigs ranked for a training job: cost to buy against time to train (`rigplan plan --task`)."""

    model: Name = Field(description=MODEL_HELP, examples=["llama-3-8b"])
    task: TrainMethod = "lora"
    tokens: float | None = Field(None, gt=0, le=MAX_TRAIN_TOKENS, allow_inf_nan=False)
    deadline_hours: float | None = Field(None, gt=0, le=MAX_DEADLINE_HOURS, allow_inf_nan=False)
    budget: float | None = Field(None, gt=0, le=MAX_USD, allow_inf_nan=False)
    max_gpus: int | None = Field(None, ge=1, le=MAX_TRAIN_GPUS)
    gpu_class: GpuClass | None = None
    gpu: list[ShortId] = Field(default_factory=list, max_length=MAX_LIST_ITEMS, description="Only these GPU ids.")
    seq_len: int = Field(2048, ge=1, le=MAX_TOKENS)
    objective: Literal["cheapest", "fastest"] = "cheapest"
    allow_offload: bool = False
    limit: int = Field(10, ge=1, le=MAX_TOP)


class VramRequest(Request):
    """The guide's VRAM table: memory per quant and context, smallest rig per GPU class."""

    model: Name = Field(description=MODEL_HELP, examples=["llama-2-70b"])
    quant: list[ShortId] = option_field(VRAM["quants"], min_length=1, max_length=MAX_LIST_ITEMS)
    context: list[Context] = option_field(VRAM["contexts"], max_length=MAX_LIST_ITEMS)
    engine: ShortId = option_field(VRAM["engine"])
    rigs: bool = option_field(VRAM["with_rigs"])


class GpusRequest(Request):
    """Filters and order of the GPU catalogue."""

    min_memory_gb: float | None = Field(None, ge=0, le=MAX_HOST_RAM_GB, allow_inf_nan=False)
    nvlink: bool = False
    vendor: Vendor | None = None
    gpu_class: GpuClass | None = None
    sort: GpuSort = "memory"


MAX_SWEEP_POINTS = 12  # points of one context or batch sweep (one estimate each)
MAX_FIT_ROWS = 100  # rows of "what can my GPUs run?" (rigplan.what_fits.MAX_LIMIT)
UPLOAD_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9 ._-]*$"  # a name shown for an uploaded model
MAX_UPLOAD_CHARS = 60_000  # a config.json is a few KB; the body limit is 64 KiB in all


class WhatFitsRequest(Request):
    """The reverse question: which catalogue models and quants a rig runs, and how fast."""

    rig: Name = Field(description=RIG_HELP, examples=["2x rtx-3090"])
    engine: ShortId = Field("llama.cpp", description=ENGINE_HELP)
    quant: list[ShortId] = Field(
        default_factory=list, max_length=MAX_LIST_ITEMS, description="Quant ids to try (default 4, 8 and 16 bits)."
    )
    model: list[Name] = Field(
        default_factory=list, max_length=MAX_LIST_ITEMS, description="Models to consider (default: all)."
    )
    min_tokens_per_s: float | None = Field(None, gt=0, le=MAX_TOKENS_PER_S, allow_inf_nan=False)
    limit: int = Field(20, ge=1, le=MAX_FIT_ROWS, description="Rows returned (biggest models first).")


class SweepRequest(Workload):
    """Speed and memory of one setup as context or batch grows: the sweep chart."""

    rig: Name = Field(description=RIG_HELP, examples=["2x rtx-3090"])
    axis: Literal["context", "batch"] = Field("context", description="What grows along the x axis.")
    values: list[Annotated[int, Field(ge=1, le=MAX_TOKENS)]] = Field(
        default_factory=list,
        max_length=MAX_SWEEP_POINTS,
        description="Points of the axis (default: powers of two up to the model's maximum context, or batch 1–64).",
    )


class UploadRequest(Request):
    """A model's config.json, as text: parsed with depth and size limits, never executed."""

    name: Annotated[str, Field(min_length=1, max_length=MAX_ID_CHARS, pattern=UPLOAD_NAME_PATTERN)] = Field(
        "uploaded", description="A name to show for the model."
    )
    config: Annotated[str, Field(min_length=2, max_length=MAX_UPLOAD_CHARS)] = Field(
        description="The text of a Hugging Face config.json."
    )

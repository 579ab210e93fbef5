"""Requests in: frozen request records, validated once, and the one table of their options.

Each option's name, type, default, range and help live in :data:`INFERENCE_OPTIONS`,
:data:`TRAINING_OPTIONS` and :data:`PLAN_OPTIONS`, and for the commands without a request record
in :data:`VRAM_OPTIONS`, :data:`POWER_OPTIONS`, :data:`LAUNCH_OPTIONS` and
:data:`CAPACITY_OPTIONS` (the CLI's flags and the web's schema are built from them); the
records check their values against those tables when they are built, so the pure core
(``rigplan.core``) receives values it can trust.
The edge (``rigplan.edge``) turns names, paths and repo ids into the :class:`Model` and
:class:`Rig` a request holds.

>>> from rigplan.requests import INFERENCE_OPTIONS
>>> INFERENCE_OPTIONS["batch"].default
1
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any, Literal

from .catalog.query import CONDITIONS
from .catalog.records import GPU, Model
from .errors import InvalidValueError
from .headroom import DEFAULT_MARGIN
from .memory import WeightBytes
from .owned_host import OwnedHost
from .platforms import PLATFORM_CLASSES
from .power import CIRCUITS
from .rig import NETWORKS, Rig
from .speed.comm import LINKS
from .speed.settings import SpeedSettings
from .training.setup import (
    DEFAULT_LORA_RANK,
    DEFAULT_LORA_TARGETS,
    OFFLOADS,
    Checkpointing,
    Method,
    Optimizer,
    Precision,
)
from .training.shape import LORA_TARGETS

#: ``batch="max"``: the largest batch the KV pool and the engine's ``max_num_seqs`` allow.
BATCH_MAX = "max"
LANES = (16, 8, 4)
SPLITS = ("layer", "row", "tensor", "pipeline")
#: llama.cpp's ggml backends; None = the GPU vendor's usual one (design.md §3, second round).
BACKENDS = ("cuda", "rocm", "vulkan", "metal", "sycl", "cpu")
#: Training frameworks of design.md §3 (second round); None = the default, named in the result.
FRAMEWORKS = ("torchtitan", "fsdp", "megatron", "deepspeed", "hf-trainer", "unsloth")

OBJECTIVES = ("cheapest", "fastest", "value", "efficiency")
GPU_CLASSES = ("consumer", "workstation", "datacenter", "apple")

Kind = Literal["name", "int", "number", "bool", "int-or-name"]


@dataclass(frozen=True, slots=True)
class Option:
    """One request option: what it is called, what it holds, its default, range and help."""

    name: str
    kind: Kind
    default: Any
    help: str
    minimum: float | None = None
    choices: tuple[Any, ...] = ()
    #: words an ``int-or-name`` option also takes ("auto", "max")
    words: tuple[str, ...] = ()
    #: the minimum itself is refused (prices, budgets, rates: > 0)
    exclusive: bool = False
    #: the name errors use when it differs from the keyword (``class`` for ``gpu_class``)
    label: str = ""
    #: the option takes a list of such values (``rigplan vram --quant 4bit --quant 8bit``)
    many: bool = False

    @property
    def field(self) -> str:
        return self.label or self.name

    def check(self, value: Any) -> None:
        """Refuse a value of the wrong type or outside the range (None means the default)."""
        if value is None:
            return
        if self.many:
            if isinstance(value, str) or not isinstance(value, (list, tuple)):
                raise InvalidValueError(self.field, f"must be a list, got {value!r}")
            for item in value:
                self._check_one(item)
            return
        self._check_one(value)

    def _check_one(self, value: Any) -> None:
        if self.kind == "bool":
            if not isinstance(value, bool):
                raise InvalidValueError(self.field, f"must be true or false, got {value!r}")
            return
        if self.kind == "name" or (self.kind == "int-or-name" and isinstance(value, str)):
            self._check_name(value)
            return
        self._check_number(value)

    def _check_name(self, value: Any) -> None:
        if not isinstance(value, str):
            raise InvalidValueError(self.field, f"must be a name, got {value!r}")
        if self.kind == "int-or-name" and value not in self.words:
            self._check_number(value)  # says "a whole number ≥ N or 'auto'"
        if self.kind == "name" and self.choices and value not in self.choices:
            raise InvalidValueError(self.field, f"must be one of {', '.join(map(str, self.choices))}, got {value!r}")

    def _check_number(self, value: Any) -> None:
        integer = self.kind in ("int", "int-or-name")
        kinds = (int,) if integer else (int, float)
        low = -math.inf if self.minimum is None else self.minimum
        bad = isinstance(value, bool) or not isinstance(value, kinds) or not math.isfinite(value)
        if bad or value < low or (self.exclusive and value == low):
            what = "a whole number" if integer else "a number"
            words = "".join(f" or {w!r}" for w in self.words)
            bound = f"> {low:g}" if self.exclusive else f"≥ {low:g}"
            raise InvalidValueError(self.field, f"must be {what} {bound}{words}, got {value!r}")
        if self.choices and value not in self.choices:
            raise InvalidValueError(self.field, f"must be one of {', '.join(map(str, self.choices))}, got {value}")


def _values(kind: Any) -> tuple[str, ...]:
    """An enum's values, as the option's choices."""
    return tuple(m.value for m in kind)


def _options(*items: Option) -> dict[str, Option]:
    return {o.name: o for o in items}


#: Every option of an inference estimate (``rigplan.estimate``, ``rigplan estimate``, the web API).
INFERENCE_OPTIONS: dict[str, Option] = _options(
    Option("quant", "name", None, "Quant id (rigplan quants) or 4bit/8bit/16bit; default: the engine's."),
    Option("engine", "name", "llama.cpp", "llama.cpp, ollama, vllm, sglang, tensorrt-llm, exllamav2 or transformers."),
    Option("context", "int", None, "Tokens of context per sequence (default prompt + output).", minimum=1),
    Option(
        "batch",
        "int-or-name",
        1,
        "Sequences at once, or 'max' (what the KV pool allows).",
        minimum=1,
        words=(BATCH_MAX,),
    ),
    Option("prompt_tokens", "int", 512, "Prompt length (llama-bench pp N).", minimum=0),
    Option("output_tokens", "int", 128, "Generated tokens (llama-bench tg N).", minimum=0),
    Option("kv_dtype", "name", None, "f16, bf16, fp8, q8_0 or q4_0."),
    Option("split", "name", None, "layer, row, tensor or pipeline.", choices=SPLITS),
    Option("tensor_parallel", "int", None, "Tensor-parallel degree.", minimum=1),
    Option("pipeline_parallel", "int", None, "Pipeline-parallel degree.", minimum=1),
    Option(
        "gpu_layers",
        "int-or-name",
        None,
        "Layers on GPUs (llama.cpp -ngl): a number or 'auto'.",
        minimum=0,
        words=("auto",),
    ),
    Option("link", "name", None, "nvlink, xgmi (AMD OAM modules), pcie3, pcie4 or pcie5.", choices=LINKS),
    Option("lanes", "int", None, "PCIe lanes per GPU: 16, 8 or 4.", minimum=1, choices=LANES),
    Option("host_ram_gb", "number", None, "Host RAM available for offloaded layers, GiB.", minimum=0),
    Option("host_memory_bandwidth_gb_per_s", "number", None, "Host memory bandwidth, GB/s.", minimum=1),
    Option("engine_version", "name", None, "llama.cpp build, e.g. b2843 or b6400; default: the newest profile."),
    Option(
        "backend", "name", None, "cuda, rocm, vulkan, metal, sycl or cpu; default: the GPU vendor's.", choices=BACKENDS
    ),
    Option("flash_attention", "bool", None, "Flash attention; default: the build's default."),
    Option("use_user_calibration", "bool", True, "Use your `rigplan calibrate` results."),
    Option("force", "bool", False, "Allow a context beyond the model's maximum."),
)


def check_options(table: Mapping[str, Option], values: Mapping[str, Any]) -> None:
    """Check each value against its option (unknown names are a programming error)."""
    for name, value in values.items():
        table[name].check(value)


@dataclass(frozen=True, slots=True)
class InferenceRequest:
    """One model on one rig for one workload, names already resolved by the edge.

    ``file_weights`` holds the per-tensor bytes read from a model file (None for catalogue models).
    """

    model: Model
    rig: Rig
    quant: str | None = None
    engine: str = "llama.cpp"
    context: int | None = None
    batch: int | str = 1
    prompt_tokens: int = 512
    output_tokens: int = 128
    kv_dtype: str | None = None
    split: str | None = None
    tensor_parallel: int | None = None
    pipeline_parallel: int | None = None
    gpu_layers: int | str | None = None
    link: str | None = None
    lanes: int | None = None
    host_ram_gb: float | None = None
    host_memory_bandwidth_gb_per_s: float | None = None
    engine_version: str | None = None
    backend: str | None = None
    flash_attention: bool | None = None
    use_user_calibration: bool = True
    force: bool = False
    file_weights: WeightBytes | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        check_options(INFERENCE_OPTIONS, self.options())
        needed = self.prompt_tokens + self.output_tokens
        if self.context is None and needed < 1:
            raise InvalidValueError("context", f"must be a whole number ≥ 1, got {needed!r}")
        if self.context is not None and self.context < needed:
            raise InvalidValueError(
                "context", f"{self.context} is smaller than prompt_tokens + output_tokens = {needed}"
            )

    def options(self) -> dict[str, Any]:
        """The option values (everything but model, rig and file data)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name in INFERENCE_OPTIONS}

    @property
    def resolved_context(self) -> int:
        """``context``, or prompt + output tokens (as llama-bench allocates)."""
        return self.context if self.context is not None else self.prompt_tokens + self.output_tokens

    @property
    def speed_settings(self) -> SpeedSettings:
        return SpeedSettings(self.engine_version, self.backend, self.flash_attention)


#: Options of a training estimate that the request records carry beyond the training model's own.
TRAINING_OPTIONS: dict[str, Option] = _options(
    Option("method", "name", "full", "full, lora, qlora or pretrain.", choices=_values(Method)),
    Option("seq_len", "int", 2048, "Tokens per sequence.", minimum=1),
    Option("micro_batch", "int", 1, "Sequences per GPU per forward/backward.", minimum=1),
    Option("global_batch", "int", None, "Sequences per optimizer step (default micro-batch × DP).", minimum=1),
    Option(
        # stages above 3 are refused by the training model (training.setup.parse_zero)
        "zero_stage", "int-or-name", 0, "0-3, fsdp-full, fsdp-grad-op or fsdp-hybrid.", minimum=0,
        words=("fsdp-full", "fsdp-grad-op", "fsdp-hybrid"),
    ),
    # the Python API also takes False / True for none / full
    Option(
        "activation_checkpointing", "name", "none", "none, selective or full recomputation.",
        choices=_values(Checkpointing), label="checkpointing",
    ),
    Option("precision", "name", "bf16", "bf16, f16, fp8, mxfp8, fp4 (NVFP4) or f32.", choices=_values(Precision)),
    Option("optimizer", "name", "adamw", "adamw, adamw-8bit or sgd.", choices=_values(Optimizer)),
    Option("lora_rank", "int", DEFAULT_LORA_RANK, "LoRA rank r.", minimum=1),
    Option("lora_targets", "name", DEFAULT_LORA_TARGETS, "all-linear, attention or qv.", choices=LORA_TARGETS),
    Option("offload", "name", None, "cpu: optimizer states (and more at ZeRO-2/3) in host RAM.", choices=OFFLOADS),
    Option("tensor_parallel", "int", 1, "Tensor-parallel degree.", minimum=1),
    Option("pipeline_parallel", "int", 1, "Pipeline-parallel degree.", minimum=1),
    Option("context_parallel", "int", 1, "Context-parallel degree (ring attention).", minimum=1),
    Option("expert_parallel", "int", 1, "Expert-parallel degree (MoE models).", minimum=1),
    Option("virtual_pipeline", "int", 1, "Interleaved pipeline chunks per rank.", minimum=1),
    Option(
        "framework", "name", None,
        "fsdp (torchtitan), megatron, deepspeed, hf-trainer or unsloth; default named in the output.",
        choices=FRAMEWORKS,
    ),
    Option(
        "tokens", "number", None, "Training tokens for the time to train: 1e9, 500M, 2B.", minimum=0, exclusive=True
    ),
    Option(
        "network", "name", None, "Between nodes: ib-ndr, ib-hdr, roce-400g, eth-100g, eth-25g, eth-10g.",
        choices=NETWORKS,
    ),
    Option("link", "name", None, "Between a node's GPUs: nvlink, xgmi (AMD OAM), pcie3/4/5.", choices=LINKS),
    Option("kwh_price", "number", None, "Electricity price per kWh.", minimum=0, exclusive=True),
    Option("force", "bool", False, "Allow a sequence length beyond the model's maximum."),
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class TrainingRequest:
    """Training ``model`` on ``rig``: the training model's settings pass through as ``settings``.

    The settings are the keyword arguments of :func:`rigplan.estimate_training` (method, seq_len,
    zero_stage, ...), which the training model validates itself.
    """

    model: Model
    rig: Rig
    framework: str | None = None
    force: bool = False
    settings: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_options(TRAINING_OPTIONS, {"framework": self.framework, "force": self.force})


#: One request of ``rigplan plan --users`` and ``rigplan capacity`` (one workload for both):
#: ``prompt_tokens`` NEW prompt tokens, a chat turn whose earlier context the engine's prefix
#: cache keeps (vLLM V1 and SGLang cache prefixes by default, llama-server keeps each slot's
#: cache: docs/planner.md), and ``output_tokens`` generated: 128, llama-bench's tg 128 and the
#: output length of ``vllm bench serve``'s random dataset; a short answer is the stricter case,
#: since every output token then carries more of the prompts' prefill.  The context per user
#: sizes the KV cache.  A RAG-style user prices fresh long prompts (``--prompt-tokens 7680``).
SERVING_PROMPT_TOKENS = 512
SERVING_OUTPUT_TOKENS = 128


def check_request_tokens(context: int, prompt_tokens: int, output_tokens: int) -> None:
    """Refuse a request (new prompt + generated tokens) that a user's context cannot hold."""
    needed = prompt_tokens + output_tokens
    if needed > context:
        raise InvalidValueError(
            "context",
            f"{context:,} tokens per user cannot hold a request of prompt_tokens + output_tokens = {needed:,}: "
            "give a larger context or fewer prompt / output tokens",
        )


#: Every option of a rig plan (``rigplan.plan_rigs``, ``rigplan plan``, the web API).
PLAN_OPTIONS: dict[str, Option] = _options(
    Option("quant", "name", "any", "'any' (4 bits and up), 4bit/8bit/16bit, or a quant id."),
    Option("context", "int", None, "Tokens of context per user (default 4096, capped at the model's).", minimum=1),
    Option("users", "int", 1, "Users served at once, each with the full context.", minimum=1),
    Option("min_tokens_per_s", "number", None, "Output speed each user must get.", minimum=0, exclusive=True),
    Option(
        "budget_usd",
        "number",
        None,
        "Whole-rig budget in USD (GPUs, platform, PSU).",
        minimum=0,
        exclusive=True,
        label="budget",
    ),
    Option("max_watts", "number", None, "Limit on the machine's rated draw.", minimum=0, exclusive=True),
    Option(
        "circuit",
        "name",
        None,
        "Wall circuit that must carry the machine: 120v15a, 120v20a, 230v10a or 230v16a.",
        choices=tuple(CIRCUITS),
    ),
    Option("max_gpus", "int", None, "Most GPUs in the rig.", minimum=1),
    Option(
        "gpu_class",
        "name",
        None,
        "GPU class: consumer, workstation, datacenter or apple.",
        choices=GPU_CLASSES,
        label="class",
    ),
    Option("platform", "name", None, "Platform class: desktop, hedt or server.", choices=PLATFORM_CLASSES),
    Option("nvlink", "bool", False, "Only rigs whose GPUs all share NVLink."),
    Option("engine", "name", None, "One engine (default: llama.cpp, vllm and exllamav2)."),
    Option(
        "objective",
        "name",
        "cheapest",
        "cheapest, fastest, value (tok/s per $) or efficiency (tokens per joule).",
        choices=OBJECTIVES,
    ),
    Option("top", "int", 5, "How many rigs to show.", minimum=1),
    Option(
        "kwh_price", "number", None, "Electricity price per kWh, for the cost of tokens.", minimum=0, exclusive=True
    ),
    Option(
        "prompt_tokens",
        "int",
        SERVING_PROMPT_TOKENS,
        "New prompt tokens per request (earlier turns stay in the prefix cache); 7680 for fresh RAG prompts.",
        minimum=0,
    ),
    Option("output_tokens", "int", SERVING_OUTPUT_TOKENS, "Generated tokens per request.", minimum=1),
    Option("use_user_calibration", "bool", True, "Use your `rigplan calibrate` results in the speed estimates."),
    Option("condition", "name", None, "Buy GPUs 'new' (street, else launch) or 'used'.", choices=CONDITIONS),
    Option("include_discontinued", "bool", False, "Also plan parts withdrawn from sale."),
    Option("margin", "number", DEFAULT_MARGIN, "Share of each GPU's memory kept free (0.05 = 5 %).", minimum=0),
)


@dataclass(frozen=True, slots=True)
class PlanRequest:
    """What to plan for: the model (resolved), constraints, objective, prices and owned GPUs.

    ``prices`` are already merged (the user's config file, then explicit overrides) and checked
    against the catalogue; ``have`` are the owned GPUs, resolved.
    """

    model: Model
    quant: str = "any"
    context: int | None = None
    users: int = 1
    min_tokens_per_s: float | None = None
    budget_usd: float | None = None
    max_watts: float | None = None
    circuit: str | None = None
    max_gpus: int | None = None
    gpu_class: str | None = None
    platform: str | None = None
    nvlink: bool = False
    engine: str | None = None
    objective: str = "cheapest"
    top: int = 5
    kwh_price: float | None = None
    prompt_tokens: int = SERVING_PROMPT_TOKENS
    output_tokens: int = SERVING_OUTPUT_TOKENS
    use_user_calibration: bool = True
    have: tuple[GPU, ...] = ()
    prices: Mapping[str, float] = field(default_factory=dict)
    condition: str | None = None
    include_discontinued: bool = False
    margin: float = DEFAULT_MARGIN
    host: OwnedHost | None = None  # the PC the buyer owns: GPUs are added to it, only added parts paid

    def __post_init__(self) -> None:
        check_options(PLAN_OPTIONS, self.options())

    def options(self) -> dict[str, Any]:
        """The option values (everything but model, owned GPUs and prices)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name in PLAN_OPTIONS}


def _like(table: Mapping[str, Option], name: str, **changes: Any) -> Option:
    """Option ``name`` of ``table`` with some fields changed (one help text, two defaults)."""
    return replace(table[name], **changes)


#: The guide's three precisions, ``rigplan vram``'s default rows.
GUIDE_QUANTS = ("4bit", "8bit", "16bit")
#: What ``rigplan launch`` writes: a serving command, or a torchrun + DeepSpeed fine-tune.
LAUNCH_TASKS = ("serve", "full", "lora", "qlora")
#: KV-cache types of any engine (llama.cpp and vLLM-class), and of vLLM-class engines alone.
KV_DTYPES = ("f16", "bf16", "fp8", "q8_0", "q4_0")
SERVING_KV_DTYPES = ("bf16", "f16", "fp8")

#: Options of the VRAM table (``rigplan.vram_table``, ``rigplan vram``, the web's VRAM table).
VRAM_OPTIONS: dict[str, Option] = _options(
    Option(
        "quants", "name", GUIDE_QUANTS, "Quant ids to show (repeat); default 4bit, 8bit, 16bit.", many=True,
        label="quant",
    ),
    Option(
        "contexts", "int", None, "Context lengths to show (repeat).", minimum=1, many=True, label="context"
    ),
    INFERENCE_OPTIONS["engine"],
    Option("with_rigs", "bool", True, "Also find the smallest rig of each GPU class (slower)."),
)  # fmt: skip

#: Options of a rig's power report (``rigplan.power_report``, ``rigplan power``, the web API).
POWER_OPTIONS: dict[str, Option] = _options(
    PLAN_OPTIONS["circuit"],
    PLAN_OPTIONS["kwh_price"],
    Option("power_limit", "name", None, "A cap to evaluate: 70%, 0.7 or watts per GPU (default: the suggested cap)."),
    Option("platform", "name", None, "Platform id (see platforms.toml) or class: desktop, hedt, server."),
    Option("model", "name", None, "A model, for tokens/s and the electricity per million tokens."),
    Option("quant", "name", None, "Quant for --model (default: the engine's)."),
    Option("engine", "name", "llama.cpp", "Engine for --model."),
)

#: Options of a launch plan (``rigplan.launch_plan``, ``rigplan launch``, the web API).
LAUNCH_OPTIONS: dict[str, Option] = _options(
    Option("engine", "name", "llama.cpp", "vllm, sglang, llama.cpp or ollama (serving)."),
    Option(
        "task", "name", "serve", "serve, or full / lora / qlora for a torchrun + DeepSpeed fine-tune.",
        choices=LAUNCH_TASKS,
    ),
    Option("quant", "name", None, "Quant id or 4bit/8bit/16bit; default: the file's, else the engine's."),
    Option("context", "int", None, "Tokens of context per user (default 8192, capped at the model's).", minimum=1),
    Option("users", "int", 1, "Users served at once (llama.cpp slots, vLLM/SGLang running requests).", minimum=1),
    Option(
        "kv_dtype", "name", None, "KV cache: f16, bf16, fp8, q8_0 or q4_0 (each engine has some).", choices=KV_DTYPES
    ),
    INFERENCE_OPTIONS["split"],
    INFERENCE_OPTIONS["tensor_parallel"],
    INFERENCE_OPTIONS["pipeline_parallel"],
    INFERENCE_OPTIONS["gpu_layers"],
    Option(
        "network", "name", None, "Between nodes: ib-ndr, ib-hdr, roce-400g, eth-100g, eth-25g, eth-10g.",
        choices=NETWORKS,
    ),
)  # fmt: skip

#: Options of a serving-capacity question (``rigplan.capacity``, ``rigplan capacity``, the web API).
CAPACITY_OPTIONS: dict[str, Option] = _options(
    Option("users", "int", 1, "Users to serve at once.", minimum=1),
    # capacity() refuses context 1: a request needs a prompt token and an output token
    Option("context", "int", 8192, "Tokens of context per user (earlier turns, prompt and generated).", minimum=2),
    Option("min_tokens_per_s", "number", 20.0, "Output tok/s each user must get.", minimum=0),
    _like(INFERENCE_OPTIONS, "engine", default="vllm"),
    INFERENCE_OPTIONS["quant"],
    PLAN_OPTIONS["prompt_tokens"],
    PLAN_OPTIONS["output_tokens"],
    Option("kv_dtype", "name", None, "bf16, f16 or fp8.", choices=SERVING_KV_DTYPES),
)

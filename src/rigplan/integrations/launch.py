"""Launch commands and configs for the setup rigplan estimated.

Serving: vLLM (``vllm serve``), SGLang (``python -m sglang.launch_server``), llama.cpp
(``llama-server``) and Ollama (a Modelfile).  Training: ``torchrun`` (or ``accelerate launch``)
with a DeepSpeed ZeRO config.  Multi-node forms: a Ray cluster for vLLM, ``--dist-init-addr``
/ ``--nnodes`` for SGLang, a c10d rendezvous for torchrun.

Layout rules are checked before anything is estimated, and a refused layout says why.

Flags follow the engines' own documentation (checked 2026):

- vLLM engine arguments: https://docs.vllm.ai/en/latest/configuration/engine_args.html
  (``--tensor-parallel-size``, ``--pipeline-parallel-size``, ``--max-model-len``,
  ``--gpu-memory-utilization``, ``--kv-cache-dtype {auto,bfloat16,fp8,…}``, ``--quantization``,
  ``--max-num-seqs``, ``--distributed-executor-backend ray``); multi-node:
  https://docs.vllm.ai/en/latest/serving/parallelism_scaling.html (``ray start --head`` /
  ``ray start --address``).
- llama.cpp server README (tools/server/README.md) and docs/multi-gpu.md: ``-m``, ``-c``,
  ``-np``, ``-ngl``, ``-sm {none,layer,row,tensor}``, ``-ts``, ``-fa {on,off,auto}``,
  ``-ctk``/``-ctv``, ``-fit {on,off}`` (``-sm tensor`` needs ``-fa on``, unquantised KV and
  ``-fit off``; a quantised V cache needs flash attention).
- SGLang server arguments (docs/advanced_features/server_arguments.md): ``--model-path``,
  ``--tp-size``, ``--pp-size``, ``--context-length``, ``--mem-fraction-static``,
  ``--kv-cache-dtype {auto,fp8_e5m2,fp8_e4m3,bf16}``, ``--quantization``,
  ``--max-running-requests``, ``--dist-init-addr``, ``--nnodes``, ``--node-rank``.
- Ollama: Modelfile ``FROM`` / ``PARAMETER num_ctx`` / ``PARAMETER num_gpu`` (docs/modelfile.md;
  ``num_gpu`` is a Runner option in api/types.go), server environment ``OLLAMA_NUM_PARALLEL``,
  ``OLLAMA_FLASH_ATTENTION``, ``OLLAMA_KV_CACHE_TYPE``, ``OLLAMA_SCHED_SPREAD``
  (envconfig/config.go).
- torchrun: https://docs.pytorch.org/docs/stable/elastic/run.html (``--standalone``,
  ``--nnodes``, ``--nproc-per-node``, ``--rdzv-backend c10d``, ``--rdzv-endpoint``,
  ``--rdzv-id``); DeepSpeed ZeRO config keys: https://www.deepspeed.ai/docs/config-json/;
  "auto" values: the Hugging Face DeepSpeed integration docs; accelerate config keys:
  https://huggingface.co/docs/accelerate/usage_guides/deepspeed.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..catalog.records import Catalog, Model
from ..engines import VLLM, get_engine
from ..errors import InvalidValueError, UnsupportedError
from ..memory import serving
from ..rig import Rig
from ..training.estimate import NO_BF16_ARCHITECTURES
from ..units import GIB

SERVE_ENGINES = ("vllm", "sglang", "llama.cpp", "ollama")
TASKS = ("serve", "full", "lora", "qlora")
# Context a launch asks for when none is given: enough for most chat and RAG prompts without
# sizing the KV cache for a 128k-token model maximum (vLLM refuses to start when one
# max-length sequence does not fit).  Capped at the model's own maximum.
DEFAULT_LAUNCH_CONTEXT = 8192
# Placeholders the user replaces in multi-node commands.
HEAD_NODE = "HEAD_NODE_IP"
RAY_PORT = 6379  # Ray's default GCS port (ray start --head)
SGLANG_DIST_PORT = 50000  # the port in SGLang's multi-node example
TORCH_RDZV_PORT = 29500  # torch.distributed's default MASTER_PORT
# Nodes listed one by one in multi-node commands; more get one command with a rank placeholder.
MAX_LISTED_NODES = 4
# Commands up to this many words print on one line; longer ones one flag per line.
MULTILINE_MIN_WORDS = 6
# KV cache types each engine accepts, by rigplan kv dtype -> the engine's spelling.
#: The chat / instruction-tuned checkpoint `rigplan launch` serves by default where the
#: catalogue's ``hf_repo`` is the base model (repository names as published on huggingface.co;
#: models whose ``hf_repo`` is already the post-trained checkpoint, e.g. Qwen3, DeepSeek, gpt-oss,
#: are absent).  ``--model`` with a repository or path serves that instead.
INSTRUCT_REPOS = {
    "llama-2-7b": "meta-llama/Llama-2-7b-chat-hf",
    "llama-2-13b": "meta-llama/Llama-2-13b-chat-hf",
    "llama-2-70b": "meta-llama/Llama-2-70b-chat-hf",
    "codellama-34b": "codellama/CodeLlama-34b-Instruct-hf",
    "llama-3-8b": "meta-llama/Meta-Llama-3-8B-Instruct",
    "llama-3-70b": "meta-llama/Meta-Llama-3-70B-Instruct",
    "llama-3.1-8b": "meta-llama/Llama-3.1-8B-Instruct",
    "llama-3.1-70b": "meta-llama/Llama-3.1-70B-Instruct",
    "llama-3.1-405b": "meta-llama/Llama-3.1-405B-Instruct",
    "llama-3.2-1b": "meta-llama/Llama-3.2-1B-Instruct",
    "llama-3.2-3b": "meta-llama/Llama-3.2-3B-Instruct",
    "llama-4-scout": "meta-llama/Llama-4-Scout-17B-16E-Instruct",
    "mistral-7b": "mistralai/Mistral-7B-Instruct-v0.1",
    "mistral-7b-v0.3": "mistralai/Mistral-7B-Instruct-v0.3",
    "mistral-nemo-12b": "mistralai/Mistral-Nemo-Instruct-2407",
    "mixtral-8x7b": "mistralai/Mixtral-8x7B-Instruct-v0.1",
    "mixtral-8x22b": "mistralai/Mixtral-8x22B-Instruct-v0.1",
    "falcon-40b": "tiiuae/falcon-40b-instruct",
    "mpt-7b": "mosaicml/mpt-7b-instruct",
    "mpt-30b": "mosaicml/mpt-30b-instruct",
    "qwen2.5-3b": "Qwen/Qwen2.5-3B-Instruct",
    "qwen2.5-7b": "Qwen/Qwen2.5-7B-Instruct",
    "qwen2.5-14b": "Qwen/Qwen2.5-14B-Instruct",
    "qwen2.5-32b": "Qwen/Qwen2.5-32B-Instruct",
    "qwen2.5-72b": "Qwen/Qwen2.5-72B-Instruct",
    "gemma-2-2b": "google/gemma-2-2b-it",
    "gemma-2-9b": "google/gemma-2-9b-it",
    "gemma-2-27b": "google/gemma-2-27b-it",
}
#: `--max-model-len` (vLLM) / `--context-length` (SGLang) is rounded down to a multiple of this
#: when rigplan picks it from the KV pool.
CONTEXT_STEP = 1024

_VLLM_KV = {"fp8": "fp8", "bf16": None, "f16": None}
_SGLANG_KV = {"fp8": "fp8_e4m3", "bf16": None, "f16": None}
_LLAMA_CPP_KV = {"f16": None, "bf16": "bf16", "q8_0": "q8_0", "q4_0": "q4_0"}
_OLLAMA_KV = {"f16": None, "q8_0": "q8_0", "q4_0": "q4_0"}
_QUANTISED_KV = frozenset({"q8_0", "q4_0"})
_FLOAT_DTYPES = {"bf16": "bfloat16", "f16": "float16", "f32": "float32"}


@dataclass(frozen=True, slots=True)
class Command:
    """One command line, where it runs (``where``: "" = this machine) and its environment."""

    argv: tuple[str, ...]
    where: str = ""
    env: tuple[tuple[str, str], ...] = ()

    def text(self, *, multiline: bool = True) -> str:
        """The shell form: environment, program, then one flag (and its value) per line."""
        env = " ".join(f"{k}={shlex.quote(v)}" for k, v in self.env)
        words = [shlex.quote(a) for a in self.argv]
        if not multiline:
            return " ".join(filter(None, [env, *words]))
        if len(words) <= MULTILINE_MIN_WORDS:
            return " ".join(filter(None, [env, *words]))
        # The program and its subcommand or positionals stay on the first line
        # ("vllm serve MODEL", "python -m sglang.launch_server").
        program = (
            3
            if self.argv[:2] == ("python", "-m")
            else next((i for i, w in enumerate(words) if w.startswith("-") and not _is_number(w)), len(words))
        )
        # One flag and its value per line; a further word (a script, a positional) starts a line.
        lines: list[list[str]] = [words[:program]]
        for w in words[program:]:
            is_flag = w.startswith("-") and not _is_number(w)
            if is_flag or len(lines[-1]) >= 2 or not lines[-1][0].startswith("-"):
                lines.append([w])
            else:
                lines[-1].append(w)
        head = f"{env} " if env else ""
        return head + " \\\n    ".join(" ".join(line) for line in lines)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


@dataclass(frozen=True, slots=True)
class ConfigFile:
    """A file the commands read (Modelfile, DeepSpeed JSON, accelerate YAML)."""

    name: str
    text: str


@dataclass(frozen=True, slots=True)
class LaunchPlan:
    """The commands and files that run one estimated setup, with what they rely on."""

    engine: str
    task: str
    model: str
    rig: str
    fits: bool
    tensor_parallel: int
    pipeline_parallel: int
    context: int
    users: int
    commands: tuple[Command, ...]
    files: tuple[ConfigFile, ...] = ()
    notes: tuple[str, ...] = ()
    estimate: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "engine": self.engine,
            "task": self.task,
            "model": self.model,
            "rig": self.rig,
            "fits": self.fits,
            "tensor_parallel": self.tensor_parallel,
            "pipeline_parallel": self.pipeline_parallel,
            "context": self.context,
            "users": self.users,
            "commands": [
                {"where": c.where, "argv": list(c.argv), "env": dict(c.env), "shell": c.text(multiline=False)}
                for c in self.commands
            ],
            "files": [{"name": f.name, "text": f.text} for f in self.files],
            "notes": list(self.notes),
            "estimate": dict(self.estimate),
        }


# ---------------------------------------------------------------------------------------------
# Layout rules
# ---------------------------------------------------------------------------------------------


def layout_problems(model: Model, tensor_parallel: int, pipeline_parallel: int) -> list[str]:
    """Why a TP × PP layout cannot shard ``model`` (empty when it can).

    - TP divides the attention heads: each rank computes whole heads (vLLM asserts
      ``total_num_heads % tp_size == 0``).
    - KV heads: TP divides them, or they divide TP and are replicated (vLLM's
      QKVParallelLinear rule); MLA caches one latent per token, so there is nothing to split.
    - TP divides the vocabulary: the embedding and the output head are split by rows
      (Megatron-style; engines that pad the vocabulary would accept more, rigplan does not
      model the padding).
    - PP divides the layers, as the issue asks of a launch layout (rigplan's estimate accepts
      uneven stages, as vLLM does, and sizes the largest).
    """
    tp, pp = tensor_parallel, pipeline_parallel
    problems = []
    if tp > 1:
        if model.num_heads % tp:
            problems.append(f"TP {tp} does not divide the {model.num_heads} attention heads")
        kv = model.num_kv_heads
        if not model.is_mla and kv % tp and tp % kv:
            problems.append(f"TP {tp} and the {kv} KV heads do not divide one another")
        if model.vocab_size % tp:
            problems.append(f"TP {tp} does not divide the vocabulary of {model.vocab_size:,} tokens")
    if pp > 1 and model.num_layers % pp:
        problems.append(f"PP {pp} does not divide the {model.num_layers} layers")
    return problems


def valid_tensor_parallel(model: Model, up_to: int) -> list[int]:
    """TP degrees from 1 to ``up_to`` that pass :func:`layout_problems`."""
    return [t for t in range(1, up_to + 1) if not layout_problems(model, t, 1)]


def check_layout(model: Model, tensor_parallel: int, pipeline_parallel: int) -> None:
    """Refuse a layout the model cannot be sharded in, saying why and what would work.

    Raises:
        UnsupportedError: with every broken rule and the TP / PP degrees that work.
    """
    problems = layout_problems(model, tensor_parallel, pipeline_parallel)
    if not problems:
        return
    gpus = tensor_parallel * pipeline_parallel
    tps = valid_tensor_parallel(model, max(gpus, 1))
    pps = [p for p in range(1, max(gpus, 1) + 1) if model.num_layers % p == 0]
    raise UnsupportedError(
        f"layout TP {tensor_parallel} × PP {pipeline_parallel} refused for {model.id}: "
        + "; ".join(problems)
        + f" (TP that works: {', '.join(map(str, tps))}; PP that works: {', '.join(map(str, pps))})"
    )


def _serving_layout(rig: Any, split: str | None, tp: int | None, pp: int | None) -> tuple[int, int]:
    """The TP × PP a vLLM-class estimate will use (placement.place's defaults)."""
    total = rig.gpu_count
    t = tp or (rig.gpus_per_node if split in (None, "tensor") else 1)
    p = pp or max(1, total // t)
    return t, p


# ---------------------------------------------------------------------------------------------
# Model input
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _ModelInput:
    model: Model
    text: str
    kind: str  # catalogue | config | folder | gguf | hf
    launch_path: str
    quant_id: str | None


def _resolve_model(text: str, catalog: Catalog, *, instruct: bool = False) -> _ModelInput:
    """The model and what to pass the engine (``instruct``: the chat checkpoint of a catalogue model)."""
    from ..rig import resolve_model

    try:
        m = resolve_model(text, catalog)
        repo = m.hf_repo or m.id
        return _ModelInput(m, text, "catalogue", INSTRUCT_REPOS.get(m.id, repo) if instruct else repo, None)
    except LookupError:
        from .sources import resolve_source

        source = resolve_source(text)
        if source is None:
            raise
        return _ModelInput(source.model, text, source.kind, source.launch_path, source.quant_id)


def _gguf_placeholder(m: _ModelInput, quant_id: str) -> str:
    return f"{m.model.id.split('/')[-1]}-{quant_id.upper()}.gguf"


# ---------------------------------------------------------------------------------------------
# Serving
# ---------------------------------------------------------------------------------------------


def launch_plan(
    model: str,
    rig: str | Any,
    *,
    engine: str = "llama.cpp",
    quant: str | None = None,
    context: int | None = None,
    users: int = 1,
    kv_dtype: str | None = None,
    split: str | None = None,
    tensor_parallel: int | None = None,
    pipeline_parallel: int | None = None,
    gpu_layers: int | str | None = None,
    network: str | None = None,
    catalog: Catalog | None = None,
) -> LaunchPlan:
    """The command (and config) that serves ``model`` on ``rig`` as rigplan estimated it.

    >>> plan = launch_plan("llama-3-70b", "2x rtx-4090", engine="vllm", quant="4bit")  # doctest: +SKIP
    >>> plan.commands[0].argv[:3]
    ('vllm', 'serve', 'meta-llama/Meta-Llama-3-70B-Instruct')

    Args:
        context: tokens per sequence; None: for vLLM/SGLang the largest context the KV pool
            holds for ``users`` sequences at once (up to the model's), else 8,192.
        users: sequences served at once (llama.cpp slots, vLLM/SGLang running requests).

    Raises:
        UnsupportedError: an engine without a launch form, a refused layout (with the rule),
            a KV cache type the engine does not have.
        RigplanError: whatever :func:`rigplan.estimate.estimate` raises.
    """
    from ..catalog import load_catalog
    from ..edge import resolve_rig_input

    catalog = catalog or load_catalog()
    eng = get_engine(engine)
    if eng.id not in SERVE_ENGINES:
        raise UnsupportedError(f"rigplan launch writes commands for {', '.join(SERVE_ENGINES)}; not for {eng.name}")
    if isinstance(users, bool) or not isinstance(users, int) or users < 1:
        raise InvalidValueError("users", f"must be a whole number ≥ 1, got {users!r}")
    m = _resolve_model(model, catalog, instruct=True)
    the_rig = resolve_rig_input(rig, catalog, network)
    kv = kv_dtype or eng.default_kv_dtype
    _check_kv(eng.id, kv)
    if eng.family == VLLM:
        tp, pp = _serving_layout(the_rig, split, tensor_parallel, pipeline_parallel)
        check_layout(m.model, tp, pp)

    def estimate_at(ctx: int) -> Any:
        from ..estimate import estimate

        prompt = min(512, ctx // 2)
        return estimate(
            model,
            the_rig,
            quant=quant or m.quant_id,
            engine=eng.id,
            context=ctx,
            batch=users,
            prompt_tokens=prompt,
            output_tokens=min(128, ctx - prompt),
            kv_dtype=kv_dtype,
            split=split,
            tensor_parallel=tensor_parallel,
            pipeline_parallel=pipeline_parallel,
            gpu_layers=gpu_layers,
            network=network,
            catalog=catalog,
        )

    notes: list[str] = []
    ctx, est = _serving_context(m.model, eng, context, users, estimate_at, notes)
    if not est.fits:
        notes.insert(0, _does_not_fit(est, ctx))
    if eng.family == VLLM:
        commands, files = _vllm_class(eng.id, m, est, ctx, users, kv, notes)
    elif eng.id == "ollama":
        commands, files = _ollama(m, est, ctx, users, kv, notes)
    else:
        commands, files = _llama_server(m, est, ctx, users, kv, notes)
    return _serve_plan(eng, m, the_rig, est, ctx, users, commands, files, notes)


def largest_context(max_context: int, pool_tokens: int | None, users: int) -> int | None:
    """The longest context ``users`` sequences can each have at once in a KV pool of
    ``pool_tokens`` (rounded down to :data:`CONTEXT_STEP`), capped at the model's; None when
    the pool cannot hold one token per user.

    >>> largest_context(131072, 476016, 4), largest_context(8192, 476016, 1)
    (118784, 8192)
    """
    if pool_tokens is None or pool_tokens // users < 1:
        return None
    per_user = pool_tokens // users
    if per_user >= max_context:
        return max_context
    return per_user // CONTEXT_STEP * CONTEXT_STEP if per_user >= CONTEXT_STEP else per_user


def _serving_context(
    model: Model, eng: Any, context: int | None, users: int, estimate_at: Any, notes: list[str]
) -> tuple[int, Any]:
    """The context to launch with and the estimate at it (see :func:`launch_plan`'s ``context``)."""
    default = min(model.max_context, DEFAULT_LAUNCH_CONTEXT)
    if context is not None or eng.family != VLLM:
        ctx = default if context is None else context
        return ctx, estimate_at(ctx)
    probe = estimate_at(default)  # the pool does not depend on the context (vLLM-class)
    ctx = largest_context(model.max_context, probe.memory.kv_pool_tokens, users)
    if ctx is None or ctx == default:
        return default, probe
    who = "one sequence" if users == 1 else f"{users} sequences at once"
    notes.append(
        f"context {ctx:,}: the longest the KV pool ({probe.memory.kv_pool_tokens:,} tokens) holds for {who}"
        + (" (the model's maximum)" if ctx == model.max_context else "")
        + "; --context sets another"
    )
    return ctx, estimate_at(ctx)


def _serve_plan(
    eng: Any,
    m: _ModelInput,
    rig: Any,
    est: Any,
    ctx: int,
    users: int,
    commands: list[Command],
    files: list[ConfigFile],
    notes: list[str],
) -> LaunchPlan:
    placement = est.memory.placement
    summary = {
        "quant": est.quant.id,
        "kv_dtype": est.workload.kv_dtype,
        "weights_bytes": est.memory.weights_bytes,
        "per_gpu_total_bytes": [d.total_bytes for d in est.memory.devices],
        "kv_pool_tokens": est.memory.kv_pool_tokens,
        "max_concurrent_sequences": est.memory.max_concurrent_sequences,
    }
    return LaunchPlan(
        engine=eng.id,
        task="serve",
        model=m.model.id,
        rig=rig.describe(),
        fits=est.fits,
        tensor_parallel=placement.tensor_parallel if eng.family == VLLM else 1,
        pipeline_parallel=placement.pipeline_parallel if eng.family == VLLM else 1,
        context=ctx,
        users=users,
        commands=tuple(commands),
        files=tuple(files),
        notes=tuple(notes),
        estimate=summary,
    )


def _does_not_fit(est: Any, ctx: int) -> str:
    mem = est.memory
    if mem.kv_pool_tokens is not None and (mem.max_concurrent_sequences or 0) < 1:
        return (
            f"DOES NOT FIT: after weights and buffers the KV pool holds {mem.kv_pool_tokens:,} "
            f"tokens, less than one sequence of {ctx:,}; the engine would refuse to start"
        )
    fullest = max(mem.devices, key=lambda d: d.total_bytes / max(d.usable_bytes, 1))
    return (
        f"DOES NOT FIT: GPU {fullest.gpu.id} needs {fullest.total_bytes / GIB:.1f} GiB of "
        f"{fullest.usable_bytes / GIB:.1f} GiB usable; the command would run out of memory"
    )


def _check_kv(engine_id: str, kv: str) -> None:
    table = {"vllm": _VLLM_KV, "sglang": _SGLANG_KV, "llama.cpp": _LLAMA_CPP_KV, "ollama": _OLLAMA_KV}[engine_id]
    if kv not in table:
        raise UnsupportedError(f"{engine_id} has no {kv} KV cache; it offers {', '.join(table)}")


def _quant_flags(engine_id: str, m: _ModelInput, q: str, notes: list[str]) -> tuple[str | None, str | None]:
    """(--quantization, --load-format) for quant ``q`` of a checkpoint that may not be in it."""
    if m.quant_id == q:
        notes.append(f"the checkpoint is already {q}; the engine reads the method from its quantization_config")
    elif q == "fp8":
        return "fp8", None  # dynamic FP8 from a 16-bit checkpoint (both engines' docs)
    elif q == "nf4":
        # in-flight 4-bit: vLLM --quantization bitsandbytes; SGLang --load-format bitsandbytes
        return ("bitsandbytes", None) if engine_id == "vllm" else (None, "bitsandbytes")
    elif q in ("int4", "int8"):
        kind = "an AWQ or GPTQ INT4" if q == "int4" else "a W8A8 INT8 (llm-compressor)"
        notes.append(
            f"{q} needs {kind} checkpoint of {m.model.name}: replace {m.launch_path} with one; "
            "the engine reads the method from its config.json"
        )
    return None, None


def _vllm_argv(m: _ModelInput, est: Any, ctx: int, users: int, kv: str, quant_flag: str | None) -> list[str]:
    placement = est.memory.placement
    tp, pp, q = placement.tensor_parallel, placement.pipeline_parallel, est.quant.id
    argv = ["vllm", "serve", m.launch_path, "--tensor-parallel-size", str(tp)]
    if pp > 1:
        argv += ["--pipeline-parallel-size", str(pp)]
    argv += ["--max-model-len", str(ctx), "--gpu-memory-utilization", f"{est.engine.memory_utilization:.2f}"]
    if q in _FLOAT_DTYPES:
        argv += ["--dtype", _FLOAT_DTYPES[q]]
    if _VLLM_KV[kv]:
        argv += ["--kv-cache-dtype", str(_VLLM_KV[kv])]
    if quant_flag:
        argv += ["--quantization", quant_flag]
    if users > 1:
        argv += ["--max-num-seqs", str(users)]
    return argv


def _sglang_argv(
    m: _ModelInput, est: Any, ctx: int, users: int, kv: str, flags: tuple[str | None, str | None]
) -> list[str]:
    placement = est.memory.placement
    tp, pp, q = placement.tensor_parallel, placement.pipeline_parallel, est.quant.id
    # SGLang's own default fraction for the smallest GPU, as rigplan's memory estimate used it.
    fraction = min(serving.sglang_mem_fraction_static(g, tp, pp) for g in est.rig.gpus)
    argv = ["python", "-m", "sglang.launch_server", "--model-path", m.launch_path, "--tp-size", str(tp)]
    if pp > 1:
        argv += ["--pp-size", str(pp)]
    argv += ["--context-length", str(ctx), "--mem-fraction-static", f"{fraction:.3f}"]
    if q in _FLOAT_DTYPES:
        argv += ["--dtype", _FLOAT_DTYPES[q]]
    if _SGLANG_KV[kv]:
        argv += ["--kv-cache-dtype", str(_SGLANG_KV[kv])]
    quant_flag, load_format = flags
    if quant_flag:
        argv += ["--quantization", quant_flag]
    if load_format:
        argv += ["--load-format", load_format]
    if users > 1:
        argv += ["--max-running-requests", str(users)]
    return argv


def _pool_notes(est: Any, ctx: int, users: int, kv: str, notes: list[str]) -> None:
    concurrent = est.memory.max_concurrent_sequences
    if concurrent is not None and concurrent < users:
        notes.append(f"the KV pool holds {concurrent} sequences of {ctx:,} tokens, fewer than {users} users")
    short = ctx < est.model.max_context or (concurrent is not None and concurrent < users)
    fp8_gpus = all(g.fp8_tensor_tflops for g in est.rig.gpus)
    if kv != "fp8" and short and fp8_gpus and est.memory.kv_pool_tokens:
        notes.append(
            f"--kv-dtype fp8 stores the KV cache in 1 byte: about {2 * est.memory.kv_pool_tokens:,} tokens "
            "instead of " + f"{est.memory.kv_pool_tokens:,} (these GPUs have FP8)"
        )


def _vllm_class(
    engine_id: str, m: _ModelInput, est: Any, ctx: int, users: int, kv: str, notes: list[str]
) -> tuple[list[Command], list[ConfigFile]]:
    rig = est.rig
    flags = _quant_flags(engine_id, m, est.quant.id, notes)
    if engine_id == "vllm":
        argv = _vllm_argv(m, est, ctx, users, kv, flags[0])
    else:
        argv = _sglang_argv(m, est, ctx, users, kv, flags)
    if rig.is_mixed:
        notes.append(
            "mixed GPUs under tensor parallelism: every rank gets the same share, so the "
            "smallest GPU bounds the KV pool"
        )
    _pool_notes(est, ctx, users, kv, notes)
    if rig.nodes == 1:
        return [Command(tuple(argv))], []
    if engine_id == "vllm":
        notes.append(
            f"every node needs the same model path and Python environment; NCCL between nodes runs over {rig.network}"
        )
        return [
            Command(("ray", "start", "--head", f"--port={RAY_PORT}"), where="head node"),
            Command(("ray", "start", f"--address={HEAD_NODE}:{RAY_PORT}"), where="each other node"),
            Command((*argv, "--distributed-executor-backend", "ray"), where="head node"),
        ], []
    dist = ["--dist-init-addr", f"{HEAD_NODE}:{SGLANG_DIST_PORT}", "--nnodes", str(rig.nodes)]
    if rig.nodes <= MAX_LISTED_NODES:
        return [Command((*argv, *dist, "--node-rank", str(r)), where=f"node {r}") for r in range(rig.nodes)], []
    return [
        Command((*argv, *dist, "--node-rank", "0"), where="node 0"),
        Command((*argv, *dist, "--node-rank", "RANK"), where=f"node RANK (1…{rig.nodes - 1})"),
    ], []


def _llama_cpp_layers(est: Any) -> tuple[int, list[int]]:
    """llama.cpp -ngl (blocks on GPUs + 1 for the output head) and blocks per GPU for -ts."""
    placement = est.memory.placement
    ngl = placement.gpu_layers + (0 if placement.output_on_host else 1)
    counts = [len(d.layers) + (1 if d.holds_output else 0) for d in placement.devices]
    return ngl, counts


def _gguf_path(m: _ModelInput, est: Any, notes: list[str]) -> str:
    if m.kind == "gguf":
        return m.launch_path
    path = _gguf_placeholder(m, est.quant.id)
    notes.append(
        f"{path} stands for a GGUF file of {m.model.name} at {est.quant.id.upper()}: download one "
        f"or convert with llama.cpp's convert_hf_to_gguf.py and llama-quantize"
    )
    return path


def _llama_server(
    m: _ModelInput, est: Any, ctx: int, users: int, kv: str, notes: list[str]
) -> tuple[list[Command], list[ConfigFile]]:
    placement = est.memory.placement
    n_gpus = len(placement.devices)
    ngl, counts = _llama_cpp_layers(est)
    total_layers = m.model.num_layers + 1
    argv = [
        "llama-server",
        "-m",
        _gguf_path(m, est, notes),
        # -c is the whole KV cache; with -np N each slot gets c / N tokens.
        "-c",
        str(ctx * users),
        "-np",
        str(users),
        "-ngl",
        "999" if ngl >= total_layers else str(ngl),
    ]
    split = placement.split
    if n_gpus > 1:
        sm = {"layer": "layer", "pipeline": "layer", "row": "row", "tensor": "tensor"}[split]
        argv += ["-sm", sm]
        if sm == "row":
            notes.append("-sm row is deprecated in current llama.cpp in favour of -sm tensor")
        if est.rig.is_mixed and sm in ("layer", "row"):
            # layer: blocks per GPU, which reproduces rigplan's placement exactly;
            # row: rows in proportion to memory (GiB).
            ratios = counts if sm == "layer" else [round(d.gpu.memory_mib / 1024) for d in placement.devices]
            argv += ["-ts", ",".join(map(str, ratios))]
        if sm == "tensor":
            argv += ["-fa", "on", "-fit", "off"]
            if kv in _QUANTISED_KV:
                raise UnsupportedError("llama.cpp -sm tensor needs an unquantised KV cache (f16, bf16)")
    ctk = _LLAMA_CPP_KV[kv]
    if ctk:
        argv += ["-ctk", ctk, "-ctv", ctk]
        if kv in _QUANTISED_KV and "-fa" not in argv:
            argv += ["-fa", "on"]  # a quantised V cache needs flash attention
    if placement.host_layers:
        notes.append(
            f"{len(placement.host_layers)} of {m.model.num_layers} layers stay in host RAM "
            f"(-ngl {ngl}); decode runs at host memory speed for those"
        )
    return [Command(tuple(argv))], []


def _ollama(
    m: _ModelInput, est: Any, ctx: int, users: int, kv: str, notes: list[str]
) -> tuple[list[Command], list[ConfigFile]]:
    ngl, _ = _llama_cpp_layers(est)
    name = (m.model.id.split("/")[-1].removesuffix(".gguf").lower().replace(" ", "-") or "model") + "-rigplan"
    path = _gguf_path(m, est, notes)
    modelfile = "\n".join(
        [
            f"FROM {path if path.startswith(('/', '.')) else './' + path}",
            f"PARAMETER num_ctx {ctx}",
            f"PARAMETER num_gpu {ngl}",
            "",
        ]
    )
    env: list[tuple[str, str]] = []
    if users > 1:
        env.append(("OLLAMA_NUM_PARALLEL", str(users)))
    if _OLLAMA_KV[kv]:
        env += [("OLLAMA_FLASH_ATTENTION", "1"), ("OLLAMA_KV_CACHE_TYPE", _OLLAMA_KV[kv])]  # type: ignore[list-item]
    if len(est.memory.placement.devices) > 1:
        env.append(("OLLAMA_SCHED_SPREAD", "1"))
        notes.append(
            "Ollama chooses its own split across GPUs (no tensor-split option); "
            "OLLAMA_SCHED_SPREAD=1 makes it use every GPU as rigplan assumed"
        )
    commands = [
        Command(("ollama", "serve"), where="server", env=tuple(env)),
        Command(("ollama", "create", name, "-f", "Modelfile")),
        Command(("ollama", "run", name)),
    ]
    return commands, [ConfigFile("Modelfile", modelfile)]


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
    per_node, nodes = the_rig.gpus_per_node, the_rig.nodes
    n_gpus = the_rig.gpu_count
    smallest = min(g.memory_bytes for g in the_rig.gpus)
    bf16 = not any(g.architecture in NO_BF16_ARCHITECTURES for g in the_rig.gpus)
    choice, fits = choose_zero(m.model, the_rig, task, bf16=bf16, catalog=catalog)
    ds = json.dumps(_deepspeed_config(choice, bf16), indent=2) + "\n"
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
    if the_rig.is_mixed:
        notes.append("mixed GPUs: every rank gets the same share, the smallest GPU bounds it")
    if choice.offload_params:
        notes.append(
            "parameters stream from host RAM every step (slow, and host RAM must hold the "
            "model states): more GPUs, or a LoRA/QLoRA task, fit on the GPUs"
        )
    script_args = (script, "--deepspeed", "ds_config.json")
    if nodes == 1:
        torchrun = Command(("torchrun", "--standalone", "--nproc-per-node", str(per_node), *script_args))
        commands = [torchrun]
    else:
        torchrun = Command(
            (
                "torchrun",
                "--nnodes",
                str(nodes),
                "--nproc-per-node",
                str(per_node),
                "--rdzv-backend",
                "c10d",
                "--rdzv-endpoint",
                f"{HEAD_NODE}:{TORCH_RDZV_PORT}",
                "--rdzv-id",
                "rigplan",
                *script_args,
            ),
            where="every node",
        )
        commands = [torchrun]
        notes.append("the c10d rendezvous assigns node ranks; every node runs the same command")
    commands.append(
        Command(
            ("accelerate", "launch", "--config_file", "accelerate_config.yaml", script),
            where="or, with accelerate" + (" (set machine_rank per node)" if nodes > 1 else ""),
        )
    )
    files = [
        ConfigFile("ds_config.json", ds),
        ConfigFile("accelerate_config.yaml", _accelerate_yaml(nodes, n_gpus, choice.stage == 3)),
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


__all__ = [
    "Command",
    "ConfigFile",
    "LaunchPlan",
    "ZeroChoice",
    "check_layout",
    "choose_zero",
    "launch_plan",
    "layout_problems",
    "training_plan",
    "valid_tensor_parallel",
]

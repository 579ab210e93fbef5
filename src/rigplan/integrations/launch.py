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

import functools
from typing import Any

from ..catalog.records import Catalog, Model
from ..engines import VLLM, get_engine
from ..errors import InvalidValueError, UnsupportedError
from ..memory import serving
from ..units import GIB
from .launch_common import (
    _FLOAT_DTYPES,
    _LLAMA_CPP_KV,
    _OLLAMA_KV,
    _SGLANG_KV,
    _VLLM_KV,
    CONTEXT_STEP,
    DEFAULT_LAUNCH_CONTEXT,
    HEAD_NODE,
    INSTRUCT_REPOS,
    MAX_LISTED_NODES,
    RAY_PORT,
    SERVE_ENGINES,
    SGLANG_DIST_PORT,
    TASKS,
    Command,
    ConfigFile,
    LaunchPlan,
    _ModelInput,
    _resolve_model,
    _serving_layout,
    check_layout,
    layout_problems,
    valid_tensor_parallel,
)
from .launch_local import _llama_server, _ollama
from .launch_training import ZERO_LADDER, ZeroChoice, choose_zero, training_plan

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
    _check_engine_and_users(eng, users)
    m = _resolve_model(model, catalog, instruct=True)
    the_rig = resolve_rig_input(rig, catalog, network)
    kv = kv_dtype or eng.default_kv_dtype
    _check_kv(eng.id, kv)
    if eng.family == VLLM:
        check_layout(m.model, *_serving_layout(the_rig, split, tensor_parallel, pipeline_parallel))
    options = dict(quant=quant or m.quant_id, engine=eng.id, kv_dtype=kv_dtype, split=split, gpu_layers=gpu_layers)
    options.update(tensor_parallel=tensor_parallel, pipeline_parallel=pipeline_parallel, network=network)
    options["catalog"] = catalog
    estimate_at = functools.partial(_estimate_serving, model, the_rig, users=users, options=options)
    notes: list[str] = []
    ctx, est = _serving_context(m.model, eng, context, users, estimate_at, notes)
    if not est.fits:
        notes.insert(0, _does_not_fit(est, ctx))
    commands, files = _engine_commands(eng, m, est, ctx, users, kv, notes)
    return _serve_plan(eng, m, the_rig, est, ctx, users, commands, files, notes)


def _check_engine_and_users(eng: Any, users: object) -> None:
    """Refuse an engine without a launch form and a user count that is not a whole number ≥ 1."""
    if eng.id not in SERVE_ENGINES:
        raise UnsupportedError(f"rigplan launch writes commands for {', '.join(SERVE_ENGINES)}; not for {eng.name}")
    if isinstance(users, bool) or not isinstance(users, int) or users < 1:
        raise InvalidValueError("users", f"must be a whole number ≥ 1, got {users!r}")


def _engine_commands(
    eng: Any, m: _ModelInput, est: Any, ctx: int, users: int, kv: str, notes: list[str]
) -> tuple[list[Command], list[ConfigFile]]:
    """The commands and files of ``eng``'s launch form."""
    if eng.family == VLLM:
        return _vllm_class(eng.id, m, est, ctx, users, kv, notes)
    if eng.id == "ollama":
        return _ollama(m, est, ctx, users, kv, notes)
    return _llama_server(m, est, ctx, users, kv, notes)


def _estimate_serving(model: str, rig: Any, ctx: int, *, users: int, options: dict[str, Any]) -> Any:
    """The estimate a launch at context ``ctx`` stands on: ``users`` sequences of a 512-token
    prompt (at most half the context) and up to 128 output tokens."""
    from ..estimate import estimate

    prompt = min(512, ctx // 2)
    return estimate(
        model, rig, context=ctx, batch=users, prompt_tokens=prompt, output_tokens=min(128, ctx - prompt), **options
    )


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


__all__ = [
    "CONTEXT_STEP",
    "INSTRUCT_REPOS",
    "SERVE_ENGINES",
    "TASKS",
    "ZERO_LADDER",
    "Command",
    "ConfigFile",
    "LaunchPlan",
    "ZeroChoice",
    "check_layout",
    "choose_zero",
    "largest_context",
    "launch_plan",
    "layout_problems",
    "training_plan",
    "valid_tensor_parallel",
]

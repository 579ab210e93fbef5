"""What every launch form shares: the command and plan records, the constants and engine
flag tables, the layout rules and how a model argument becomes a path for the engine.
(:mod:`rigplan.integrations.launch` documents the flags and their sources.)"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..catalog.records import Catalog, Model
from ..errors import UnsupportedError

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

"""What to try on a GPU set: the engines, each engine's quant ladder, which GPU counts can
hold the model (a cached lower bound of the memory it needs), and which engines run there."""

from __future__ import annotations

import math
from collections.abc import Sequence

from ..backends import default_backend
from ..catalog.records import GPU, Model
from ..catalog.support import load_support_rules
from ..engines import LLAMA_CPP, VLLM, get_engine
from ..errors import RigplanError, UnsupportedError
from ..memory import usable_capacity
from ..memory.kv_cache import kv_bytes
from ..placement import tensor_parallel_problems
from ..quant import Quant, engine_supports, get_quant, resolve_quant, weights_bytes
from ..support import check_support
from .sweep import Inputs

#: Engines swept when the user names none: one of each family that behaves differently.
#: SGLang and TensorRT-LLM plan like vLLM (same family); transformers is rarely the fast choice.
DEFAULT_ENGINES = ("llama.cpp", "vllm", "exllamav2")

#: ``quant="any"``: the formats swept per engine family, widest first.  The floor is 4 bits per
#: weight: below it quality falls off quickly (llama.cpp k-quants PR #1684 perplexity table,
#: perf-model.md [S:KQ]); name a lower quant (``--quant q3_k_m``) to plan with it.
QUANT_LADDERS: dict[str, tuple[str, ...]] = {
    LLAMA_CPP: ("f16", "q8_0", "q6_k", "q5_k_m", "q4_k_m"),
    VLLM: ("bf16", "fp8", "int8", "int4"),
    "exllamav2": ("exl2-8.0", "exl2-6.0", "exl2-5.0", "exl2-4.0"),
    "transformers": ("bf16", "int8", "nf4"),
}

#: GPUs per box: the 8-GPU servers of platforms.toml are the largest single machines.
MAX_GPUS_PER_BOX = 8
#: Nodes of 8 datacentre GPUs tried when one box cannot hold the model (Llama 3.1 405B and
#: DeepSeek V3 at 16-bit need two H100 nodes).
MAX_NODES = 4


def engines_for(engine: str | None, owned: Sequence[GPU]) -> tuple[str, ...]:
    """The engine named (as its canonical id), else :data:`DEFAULT_ENGINES`."""
    if engine:
        return (get_engine(engine).id,)
    return DEFAULT_ENGINES


def ladder(engine: str, quant: str, gpus: Sequence[GPU]) -> tuple[Quant, ...]:
    """Quants to try for ``engine`` on ``gpus``: the ladder for "any", else the one named."""
    eng = get_engine(engine)
    has_fp8 = all(g.has_fp8 for g in gpus)
    if quant.strip().lower() != "any":
        try:
            q = resolve_quant(quant, eng.id, gpu_has_fp8=has_fp8)
        except RigplanError:
            return ()
        return (q,) if engine_supports(q, eng.id) else ()
    ladder = QUANT_LADDERS.get(eng.family, ())
    out = []
    for qid in ladder:
        if qid == "fp8" and not has_fp8:
            continue
        if qid == "int8" and has_fp8 and "fp8" in ladder:
            continue
        q = get_quant(qid)
        if engine_supports(q, eng.id):
            out.append(q)
    return tuple(out)


def engine_runs_on(engine: str, gpus: Sequence[GPU], quant: str = "f16") -> bool:
    """Whether the engine × hardware table lets ``engine`` run on ``gpus`` (a refused
    combination is never ranked; estimate() refuses it too)."""
    eng = get_engine(engine)
    backend = default_backend(gpus) if eng.family == LLAMA_CPP else None
    try:
        check_support(load_support_rules(), eng.id, gpus, quant, backend)
    except UnsupportedError:
        return False
    return True


def valid_tp(model: Model, n: int) -> bool:
    return not tensor_parallel_problems(model, n)


def _embedding_share(model: Model) -> float:
    """Share of the parameters in the token-embedding table (llama.cpp keeps it in host RAM)."""
    total = model.published_param_count or 1
    return min(0.5, model.vocab_size * model.hidden_size / total)


class Bounds:
    """Cached lower bounds of what one GPU set must hold, per (quant, kv dtype)."""

    def __init__(self, inputs: Inputs) -> None:
        self.inputs = inputs
        self._weights: dict[str, int] = {}
        self._kv: dict[str, int] = {}
        self.embedding_share = _embedding_share(inputs.model)

    def need_bytes(self, quant: Quant, engine: str) -> float:
        """A lower bound of the bytes the GPUs hold: weights (less the embedding table where the
        engine keeps it on the host) plus one KV cache per user."""
        m = self.inputs.model
        if quant.id not in self._weights:
            self._weights[quant.id] = weights_bytes(m, quant)
        eng = get_engine(engine)
        kv_dtype = eng.default_kv_dtype
        if kv_dtype not in self._kv:
            self._kv[kv_dtype] = kv_bytes(m, range(m.num_layers), self.inputs.context, kv_dtype)
        weights = float(self._weights[quant.id])
        if eng.family != VLLM:
            weights *= 1 - self.embedding_share
        return weights + self._kv[kv_dtype] * self.inputs.users


def min_count(need: float, gpu: GPU, engine: str) -> int:
    """The fewest ``gpu`` that hold ``need`` bytes under ``engine``'s reservations."""
    usable = usable_capacity(gpu, get_engine(engine))
    return max(1, math.ceil(need / usable)) if usable > 0 else 10**6


#: SXM and OAM modules come on 4- and 8-GPU baseboards (NVIDIA HGX H100 4-GPU and 8-GPU).
BASEBOARD_GPU_COUNTS = (4, 8)


def gpu_counts(model: Model, gpu: GPU, engine: str, start: int, limit: int) -> list[int]:
    """GPU counts from ``start`` to ``limit`` that tensor parallel can split the model over
    (vLLM-class) and that come as a baseboard (SXM / OAM)."""
    fam = get_engine(engine).family
    counts = [n for n in range(max(1, start), limit + 1) if fam != VLLM or valid_tp(model, n)]
    if gpu.form_factor in ("sxm", "oam"):
        counts = [n for n in counts if n in BASEBOARD_GPU_COUNTS]
    return counts


# ---------------------------------------------------------------------------------------------
# The sweep
# ---------------------------------------------------------------------------------------------

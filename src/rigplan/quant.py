"""Quantisation formats: how many bytes each weight tensor takes, per engine and format.

Facts as code (style rule 5): the layouts engines load (fp8, int8, GPTQ/AWQ int4, bitsandbytes
NF4, EXL2) here; ggml block layouts in :mod:`rigplan.ggml_types`; llama.cpp's per-tensor GGUF
mixes (``Q4_K_M`` …) in :mod:`rigplan.quant_mix`.

>>> q = get_quant("Q4_K_M")
>>> q.id, q.family, q.bits_per_weight
('q4_k_m', <QuantFamily.GGUF: 'gguf'>, 4.5)
>>> resolve_quant("8bit", "vllm", gpu_has_fp8=True).id
'fp8'
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from . import arch
from .arch import Tensor
from .catalog.records import Model
from .engines import EXLLAMAV2, LLAMA_CPP, get_engine
from .errors import InvalidValueError, UnknownQuantError, closest
from .ggml_types import (
    FLOAT32,
    HALF,
    GGMLType,
    ggml_tensor_bytes,
    kv_cache_bytes,
)
from .ggml_types import GGML_BLOCK as GGML_BLOCK  # re-exported
from .ggml_types import ggml_bits_per_weight as ggml_bits_per_weight  # re-exported
from .quant_mix import ggml_types_of
from .quant_mix import use_more_bits as use_more_bits  # re-exported: the mix rules live there


class QuantFamily(StrEnum):
    """How a format stores weights.

    FLOAT: the matmul reads the stored floats directly (f32, f16, bf16, and fp8 with its scales);
    INT: integer weights with scales (int8, GPTQ/AWQ int4); GGUF: llama.cpp's ggml types and
    mixes; NF4: bitsandbytes 4-bit NormalFloat; EXL2: exllamav2's variable-bit format.
    """

    FLOAT = "float"
    INT = "int"
    GGUF = "gguf"
    NF4 = "nf4"
    EXL2 = "exl2"


# ---------------------------------------------------------------------------------------------
# The Quant record and the formats other engines load
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Quant:
    """A weight format: an id the CLI accepts and what it stores.

    ``bits_per_weight`` is nominal for the big linear layers (GGUF mixes: their main ggml type;
    EXL2: the target average).  ``ggml_type`` is the main ggml type of a GGUF mix (or the float
    type of f32/f16/bf16), None for formats llama.cpp does not read.
    """

    id: str
    family: QuantFamily
    bits_per_weight: float
    description: str
    ggml_type: GGMLType | None = None

    @property
    def is_gguf(self) -> bool:
        return self.family is QuantFamily.GGUF


# Bytes of the 16-bit tensors that quantised checkpoints leave alone (embeddings, lm_head,
# norms, MoE routers): bf16 or fp16 both take two bytes.
SIXTEEN_BIT_BYTES = 2

# FP8 (vLLM Fp8LinearMethod, llm-compressor FP8 / FP8_DYNAMIC): one byte per weight plus one
# float32 scale per output channel (per-tensor checkpoints store one scale per tensor, which is
# less; per-channel is the upper bound).  Embedding and lm_head stay 16-bit.
FP8_WEIGHT_BYTES = 1
FP8_SCALE_BYTES_PER_ROW = FLOAT32

# INT8 weight-only / W8A8 (vLLM, TensorRT-LLM, SmoothQuant-style): one byte per weight plus an
# fp16 scale per output channel.
INT8_WEIGHT_BYTES = 1
INT8_SCALE_BYTES_PER_ROW = HALF

# INT4 GPTQ/AWQ (AutoAWQ GEMM layout: qweight int32 packs 8 weights, scales fp16 and qzeros
# int32-packed 4-bit, one of each per group of 128 input features).  GPTQ adds a g_idx int32
# per input feature (0.1% on a 4096-wide layer), left out.
INT4_BITS = 4
INT4_GROUP_SIZE = 128  # the group size of nearly every published GPTQ/AWQ checkpoint
INT4_SCALE_BITS = 16  # fp16 scale per group
INT4_ZERO_BITS = 4  # packed 4-bit zero point per group
INT4_BITS_PER_WEIGHT = INT4_BITS + (INT4_SCALE_BITS + INT4_ZERO_BITS) / INT4_GROUP_SIZE  # 4.15625

# NVFP4 (NVIDIA ModelOpt, the nvidia/*-FP4 checkpoints): 4-bit E2M1 values, one FP8 E4M3 scale
# per 16 weights and one fp32 scale per tensor: 4 + 8/16 = 4.5 bits per weight [S: NVIDIA
# "Introducing NVFP4" blog, 2025-06; TensorRT-LLM / ModelOpt docs].  Every linear layer (MoE
# experts included) is FP4; embeddings and lm_head stay 16-bit.
FP4_BITS = 4
NVFP4_BLOCK_SIZE = 16
NVFP4_SCALE_BITS = 8
NVFP4_BITS_PER_WEIGHT = FP4_BITS + NVFP4_SCALE_BITS / NVFP4_BLOCK_SIZE  # 4.5
# MXFP4 (OCP Microscaling spec v1.0): E2M1 values with one E8M0 scale per 32 = 4.25 bits per
# weight.  gpt-oss ships only its MoE expert weights so (OpenAI gpt-oss model card §2: "MXFP4
# ... for the MoE weights"); attention, router and embeddings stay bf16.  A dense model given
# mxfp4 here has every linear in MXFP4.
MXFP4_BLOCK_SIZE = 32
MXFP4_SCALE_BITS = 8
MXFP4_BITS_PER_WEIGHT = FP4_BITS + MXFP4_SCALE_BITS / MXFP4_BLOCK_SIZE  # 4.25
#: Quant ids stored as 4-bit floats; GPUs with FP4 tensor cores (Blackwell) multiply them
#: natively, others dequantise to 16-bit (vLLM's Marlin FP4 / MXFP4 weight-only kernels).
FP4_QUANTS = frozenset({"fp4", "mxfp4"})

# NF4 with double quantisation (bitsandbytes, QLoRA paper arXiv:2305.14314 §3): 4-bit codes,
# one absmax per block of 64 weights, itself quantised to 8 bits in blocks of 256 absmaxes
# with one fp32 second-level constant: 4 + 8/64 + 32/(64*256) = 4.127 bits per weight.
NF4_BITS = 4
NF4_BLOCK_SIZE = 64
NF4_ABSMAX_BITS = 8  # after double quantisation (32 without it: 4.5 bpw)
NF4_ABSMAX_BLOCK_SIZE = 256
NF4_SECOND_LEVEL_BITS = 32
NF4_BITS_PER_WEIGHT = (
    NF4_BITS + NF4_ABSMAX_BITS / NF4_BLOCK_SIZE + NF4_SECOND_LEVEL_BITS / (NF4_BLOCK_SIZE * NF4_ABSMAX_BLOCK_SIZE)
)

# EXL2 (exllamav2 convert.py): linear layers average the target bpw (scales included); the
# output head gets ``--head_bits``, default 6; embeddings and norms stay fp16.
EXL2_MIN_BPW = 2.0  # lowest target convert.py's measured options reach
EXL2_MAX_BPW = 8.0  # highest (8-bit layers throughout)
EXL2_HEAD_BITS = 6.0  # convert.py -hb/--head_bits default
EXL2_EXAMPLE_BPW = (2.5, 3.0, 3.5, 4.0, 4.65, 5.0, 6.0, 8.0)  # listed by `rigplan quants`

_LINEAR_ROLES = frozenset({arch.ATTENTION, arch.FFN, arch.EXPERT, arch.SHARED_EXPERT})


def _q(quant_id: str, family: QuantFamily, bpw: float, description: str, t: GGMLType | None = None) -> Quant:
    return Quant(id=quant_id, family=family, bits_per_weight=bpw, description=description, ggml_type=t)


_FLOAT_QUANTS = (
    _q("f32", QuantFamily.FLOAT, 32.0, "float32 weights (llama.cpp: GGUF ALL_F32)", GGMLType.F32),
    _q("f16", QuantFamily.FLOAT, 16.0, "float16 weights (llama.cpp: GGUF F16)", GGMLType.F16),
    _q("bf16", QuantFamily.FLOAT, 16.0, "bfloat16 weights (llama.cpp: GGUF BF16)", GGMLType.BF16),
    _q("fp8", QuantFamily.FLOAT, 8.0, "FP8 E4M3 linears, per-channel scales; 16-bit embeddings"),
)
_OTHER_QUANTS = (
    _q("int8", QuantFamily.INT, 8.0, "INT8 linears, per-channel fp16 scales; 16-bit embeddings"),
    _q(
        "int4",
        QuantFamily.INT,
        INT4_BITS_PER_WEIGHT,
        "GPTQ/AWQ INT4, group 128 (fp16 scale + 4-bit zero per group); 16-bit embeddings",
    ),
    _q(
        "fp4",
        QuantFamily.FLOAT,
        NVFP4_BITS_PER_WEIGHT,
        "NVFP4 (ModelOpt): E2M1 linears, FP8 scale per 16 weights; 16-bit embeddings and head",
    ),
    _q(
        "mxfp4",
        QuantFamily.FLOAT,
        MXFP4_BITS_PER_WEIGHT,
        "MXFP4 (OCP, gpt-oss native): E2M1 with an E8M0 scale per 32; MoE experts only, rest 16-bit",
    ),
    _q(
        "nf4",
        QuantFamily.NF4,
        NF4_BITS_PER_WEIGHT,
        "bitsandbytes NF4 with double quantisation (QLoRA); 16-bit embeddings",
    ),
)

# llama.cpp file types: id -> (main ggml type, description).  The main type is
# llama_ftype_get_default_type(); llama_tensor_get_type() then changes some tensors (below).
_GGUF_MIXES: dict[str, tuple[GGMLType, str]] = {
    "q8_0": (GGMLType.Q8_0, "8-bit round-to-nearest, block 32"),
    "q6_k": (GGMLType.Q6_K, "6-bit k-quant"),
    "q5_k_m": (GGMLType.Q5_K, "5-bit k-quant; attn_v/ffn_down q6_k on 'more bits' layers"),
    "q5_k_s": (GGMLType.Q5_K, "5-bit k-quant"),
    "q5_1": (GGMLType.Q5_1, "5-bit legacy with min, block 32"),
    "q5_0": (GGMLType.Q5_0, "5-bit legacy, block 32"),
    "q4_k_m": (GGMLType.Q4_K, "4-bit k-quant; attn_v/ffn_down q6_k on 'more bits' layers"),
    "q4_k_s": (GGMLType.Q4_K, "4-bit k-quant; first layers' attn_v/ffn_down q5_k"),
    "q4_1": (GGMLType.Q4_1, "4-bit legacy with min, block 32"),
    "q4_0": (GGMLType.Q4_0, "4-bit legacy, block 32"),
    "iq4_nl": (GGMLType.IQ4_NL, "4-bit non-linear, block 32"),
    "iq4_xs": (GGMLType.IQ4_XS, "4.25-bit non-linear i-quant"),
    "mxfp4_moe": (GGMLType.MXFP4, "MXFP4 experts, q8_0 elsewhere (gpt-oss style)"),
    "q3_k_l": (GGMLType.Q3_K, "3-bit k-quant; attn_v/ffn_down/attn_output q5_k"),
    "q3_k_m": (GGMLType.Q3_K, "3-bit k-quant; attn_v/attn_output/ffn_down q4_k-q5_k"),
    "q3_k_s": (GGMLType.Q3_K, "3-bit k-quant"),
    "iq3_m": (GGMLType.IQ3_S, "3.66-bit i-quant mix"),
    "iq3_s": (GGMLType.IQ3_S, "3.44-bit i-quant"),
    "iq3_xs": (GGMLType.IQ3_S, "3.3-bit i-quant mix"),
    "iq3_xxs": (GGMLType.IQ3_XXS, "3.06-bit i-quant (needs an imatrix)"),
    "q2_k": (GGMLType.Q2_K, "2-bit k-quant; attn_v/ffn_down/attn_output q3_k-q4_k"),
    "q2_k_s": (GGMLType.Q2_K, "2-bit k-quant, smaller mix (needs an imatrix)"),
    "iq2_m": (GGMLType.IQ2_S, "2.7-bit i-quant mix (needs an imatrix)"),
    "iq2_s": (GGMLType.IQ2_XS, "2.5-bit i-quant mix (needs an imatrix)"),
    "iq2_xs": (GGMLType.IQ2_XS, "2.31-bit i-quant (needs an imatrix)"),
    "iq2_xxs": (GGMLType.IQ2_XXS, "2.06-bit i-quant (needs an imatrix)"),
    "tq2_0": (GGMLType.TQ2_0, "2.06-bit ternary (for ternary-trained models)"),
    "tq1_0": (GGMLType.TQ1_0, "1.69-bit ternary (for ternary-trained models)"),
    "iq1_m": (GGMLType.IQ1_M, "1.75-bit i-quant (needs an imatrix)"),
    "iq1_s": (GGMLType.IQ1_S, "1.56-bit i-quant (needs an imatrix)"),
}

_GGUF_QUANTS = tuple(
    _q(mix_id, QuantFamily.GGUF, ggml_bits_per_weight(t), f"GGUF {mix_id.upper()}: {desc}", t)
    for mix_id, (t, desc) in _GGUF_MIXES.items()
)

_QUANTS: dict[str, Quant] = {q.id: q for q in (*_FLOAT_QUANTS, *_OTHER_QUANTS, *_GGUF_QUANTS)}

# Other spellings people type.  llama-quantize itself accepts Q3_K/Q4_K/Q5_K for the _M mixes
# (tools/quantize/quantize.cpp QUANT_OPTIONS "alias for Q4_K_M").
_ALIASES: dict[str, str] = {
    "fp32": "f32",
    "float32": "f32",
    "fp16": "f16",
    "float16": "f16",
    "half": "f16",
    "bfloat16": "bf16",
    "fp8_e4m3": "fp8",
    "float8": "fp8",
    "w8a8": "int8",
    "int4-awq": "int4",
    "int4-gptq": "int4",
    "awq": "int4",
    "gptq": "int4",
    "w4a16": "int4",
    "nvfp4": "fp4",
    "mx-fp4": "mxfp4",
    "bnb-nf4": "nf4",
    "bnb-4bit": "nf4",
    "q3_k": "q3_k_m",
    "q4_k": "q4_k_m",
    "q5_k": "q5_k_m",
}

_EXL2_RE = re.compile(r"^exl2[-_]?(\d+(?:\.\d+)?)(?:bpw)?$")


def _exl2_id(bpw: float) -> str:
    text = f"{bpw:.2f}".rstrip("0")
    return text + "0" if text.endswith(".") else text


def _exl2(bpw: float) -> Quant:
    return _q(
        f"exl2-{_exl2_id(bpw)}",
        QuantFamily.EXL2,
        bpw,
        f"EXL2 at {bpw:g} bits per weight on average; head {EXL2_HEAD_BITS:g}-bit, embeddings fp16",
    )


def quant_ids() -> tuple[str, ...]:
    """Every quant id ``rigplan quants`` lists (EXL2 as a few examples: any 2.0-8.0 parses)."""
    return (*_QUANTS, *(_exl2(b).id for b in EXL2_EXAMPLE_BPW))


def get_quant(quant_id: str) -> Quant:
    """Look up a quant by id, case-insensitively; ``exl2-<bpw>`` takes any bpw from 2.0 to 8.0.

    >>> get_quant("EXL2-4.65").bits_per_weight
    4.65

    Raises:
        UnknownQuantError: no such id (with the nearest ids).
        InvalidValueError: an EXL2 bpw outside 2.0-8.0.
    """
    key = quant_id.strip().lower().replace(" ", "")
    key = _ALIASES.get(key, key)
    if key in _QUANTS:
        return _QUANTS[key]
    match = _EXL2_RE.match(key)
    if match:
        bpw = round(float(match.group(1)), 2)
        if not EXL2_MIN_BPW <= bpw <= EXL2_MAX_BPW:
            raise InvalidValueError(
                "quant",
                f"EXL2 bits per weight must be {EXL2_MIN_BPW:g} to {EXL2_MAX_BPW:g}, got {bpw:g}",
            )
        return _exl2(bpw)
    raise UnknownQuantError(quant_id, closest(key, (*quant_ids(), *_ALIASES)))


# ---------------------------------------------------------------------------------------------
# Engines
# ---------------------------------------------------------------------------------------------

# The guide's "4bit" / "8bit" / "16bit" per engine family (design.md §3); "8bit" elsewhere is
# fp8 where the GPU has FP8 tensor cores, else int8.
_BITS_WORDS = {"4bit": 4, "8bit": 8, "16bit": 16, "4-bit": 4, "8-bit": 8, "16-bit": 16}
_LLAMA_CPP_BITS = {4: "q4_k_m", 8: "q8_0", 16: "f16"}
_EXLLAMA_BITS = {4: "exl2-4.0", 8: "exl2-8.0", 16: "f16"}
# Engines whose bitsandbytes integration loads NF4 checkpoints.
_NF4_ENGINES = frozenset({"vllm", "transformers"})


#: The quant ids that load a model's released weights as shipped, best first, by release format.
#: DeepSeek V3/R1 ship FP8 (block-scaled e4m3): vLLM-class engines load them as fp8 (Marlin
#: weight-only FP8 on GPUs without FP8 tensor cores).  gpt-oss ships MXFP4 experts: the quant id
#: mxfp4 where this build has it; else int4 (a 4-bit format with group scales, 4.125 bits against
#: MXFP4's 4.25) stands in for its size on vLLM-class engines.  llama.cpp has no FP8 GGUF, so an
#: fp8 release keeps the engine default there.
NATIVE_QUANTS: dict[str, tuple[str, ...]] = {"fp8": ("fp8",), "mxfp4": ("mxfp4", "int4")}


def native_quant(model: Model, engine: str) -> Quant | None:
    """The quant ``model`` is released in, where ``engine`` loads it as shipped; None for 16/32-bit
    releases (the engine's default applies) or where no candidate runs on the engine.

    >>> from rigplan.catalog import load_catalog
    >>> native_quant(load_catalog().models["deepseek-r1"], "vllm").id
    'fp8'
    >>> native_quant(load_catalog().models["deepseek-r1"], "llama.cpp") is None
    True
    """
    for qid in NATIVE_QUANTS.get(model.release_dtype, ()):
        if qid not in _QUANTS:
            continue
        q = get_quant(qid)
        if engine_supports(q, engine):
            return q
    return None


def resolve_quant(name: str | None, engine: str, *, gpu_has_fp8: bool = False, model: Model | None = None) -> Quant:
    """The quant a user means on ``engine``: None is the model's released format where the engine
    loads it (:func:`native_quant`), else the engine default; "4bit"/"8bit"/"16bit" follow the
    guide.  Whether the engine can load it is :func:`engine_supports`' question.

    >>> resolve_quant(None, "ollama").id
    'q4_k_m'
    >>> resolve_quant("4bit", "vllm").id
    'int4'

    Raises:
        UnknownEngineError, UnknownQuantError, InvalidValueError.
    """
    eng = get_engine(engine)
    if name is None:
        native = native_quant(model, eng.id) if model is not None else None
        return native or get_quant(eng.default_quant)
    bits = _BITS_WORDS.get(name.strip().lower().replace(" ", ""))
    if bits is None:
        return get_quant(name)
    if eng.family == LLAMA_CPP:
        return get_quant(_LLAMA_CPP_BITS[bits])
    if eng.family == EXLLAMAV2:
        return get_quant(_EXLLAMA_BITS[bits])
    if bits == 4:
        return get_quant("int4")
    if bits == 8:
        return get_quant("fp8" if gpu_has_fp8 else "int8")
    return get_quant("bf16")


def engine_supports(quant: Quant, engine: str) -> bool:
    """Whether ``engine`` loads weights in ``quant``.

    llama.cpp/ollama: GGUF types and f32/f16/bf16; exllamav2: EXL2, GPTQ int4 and f16/bf16;
    vLLM-class engines and transformers: f32/f16/bf16/fp8/int8/int4, and NF4 on vLLM
    (bitsandbytes) and transformers.

    Raises:
        UnknownEngineError.
    """
    eng = get_engine(engine)
    fam = quant.family
    if eng.family == LLAMA_CPP:
        return fam is QuantFamily.GGUF or quant.id in ("f32", "f16", "bf16")
    if eng.family == EXLLAMAV2:
        return fam is QuantFamily.EXL2 or quant.id in ("f16", "bf16", "int4")
    if fam in (QuantFamily.FLOAT, QuantFamily.INT):
        return True
    return fam is QuantFamily.NF4 and eng.id in _NF4_ENGINES


def kv_bytes_per_element(kv_dtype: str) -> float:
    """Bytes per cached K or V element: f16/bf16 2, fp8 1, q8_0 34/32, q4_0 18/32, f32 4.

    Raises:
        InvalidValueError: a cache type no engine offers.
    """
    key = kv_dtype.strip().lower()
    return kv_cache_bytes(_ALIASES.get(key, key), kv_dtype)


# ---------------------------------------------------------------------------------------------
# Per-tensor storage of every format
# ---------------------------------------------------------------------------------------------


def _rows(tensor: Tensor) -> int:
    return tensor.n_elements // tensor.row_size


def _other_type_and_bytes(tensor: Tensor, quant: Quant, moe: bool = False) -> tuple[str, int]:
    """Storage type name and bytes of one tensor in a non-ggml format."""
    n = tensor.n_elements
    sixteen = ("f16", n * SIXTEEN_BIT_BYTES)
    if quant.family is QuantFamily.EXL2:
        if tensor.role == arch.OUTPUT:
            return f"exl2-{_exl2_id(EXL2_HEAD_BITS)}", math.ceil(n * EXL2_HEAD_BITS / 8)
        if tensor.role in _LINEAR_ROLES:
            return quant.id, math.ceil(n * quant.bits_per_weight / 8)
        return sixteen
    if tensor.role not in _LINEAR_ROLES:
        return ("bf16", n * SIXTEEN_BIT_BYTES) if quant.id != "int4" else sixteen
    if quant.id == "fp8":
        return "fp8", n * FP8_WEIGHT_BYTES + _rows(tensor) * FP8_SCALE_BYTES_PER_ROW
    if quant.id == "int8":
        return "int8", n * INT8_WEIGHT_BYTES + _rows(tensor) * INT8_SCALE_BYTES_PER_ROW
    if quant.id in FP4_QUANTS:
        if quant.id == "mxfp4" and moe and tensor.role != arch.EXPERT:
            return "bf16", n * SIXTEEN_BIT_BYTES
        block, scale_bits = (
            (NVFP4_BLOCK_SIZE, NVFP4_SCALE_BITS) if quant.id == "fp4" else (MXFP4_BLOCK_SIZE, MXFP4_SCALE_BITS)
        )
        nbytes = math.ceil(n * FP4_BITS / 8) + math.ceil(n / block) * scale_bits // 8
        return f"fp4-{quant.id}", nbytes
    if quant.id == "int4":
        groups = _rows(tensor) * math.ceil(tensor.row_size / INT4_GROUP_SIZE)
        nbytes = math.ceil(n * INT4_BITS / 8) + math.ceil(groups * (INT4_SCALE_BITS + INT4_ZERO_BITS) / 8)
        return f"int4-g{INT4_GROUP_SIZE}", nbytes
    if quant.family is QuantFamily.NF4:
        blocks = math.ceil(n / NF4_BLOCK_SIZE)
        absmax_blocks = math.ceil(blocks / NF4_ABSMAX_BLOCK_SIZE)
        nbytes = (
            math.ceil(n * NF4_BITS / 8) + blocks * NF4_ABSMAX_BITS // 8 + absmax_blocks * NF4_SECOND_LEVEL_BITS // 8
        )
        return "nf4", nbytes
    raise AssertionError(f"no storage rule for {quant.id}")  # pragma: no cover


def tensor_types(tensors: Sequence[Tensor], quant: Quant, model: Model) -> tuple[str, ...]:
    """Storage type of each tensor, in order: a ggml type name for GGUF and f32/f16/bf16
    ("q6_k", "f32"), else "bf16", "fp8", "int8", "int4-g128", "nf4", "exl2-4.65" …

    >>> from rigplan.catalog import load_catalog
    >>> m = load_catalog().models["llama-2-7b"]
    >>> tensor_types(arch.tensors(m)[:4], get_quant("q4_k_m"), m)
    ('q4_k', 'q4_k', 'q4_k', 'q6_k')
    """
    if quant.ggml_type is not None:
        return tuple(t.type_name for t in ggml_types_of(tensors, quant, model))
    return tuple(_other_type_and_bytes(t, quant, model.is_moe)[0] for t in tensors)


def tensor_bytes(tensors: Sequence[Tensor], quant: Quant, model: Model) -> tuple[int, ...]:
    """Bytes of each tensor, in order (GGUF: exactly ``ggml_nbytes``; padding not included)."""
    if quant.ggml_type is not None:
        types = ggml_types_of(tensors, quant, model)
        return tuple(ggml_tensor_bytes(g, t.shape) for g, t in zip(types, tensors, strict=True))
    return tuple(_other_type_and_bytes(t, quant, model.is_moe)[1] for t in tensors)


@functools.lru_cache(maxsize=512)
def tensor_storage(model: Model, quant: Quant) -> tuple[tuple[Tensor, ...], tuple[str, ...], tuple[int, ...]]:
    """Every tensor of ``model`` with its storage type and bytes in ``quant``, computed once per
    pair (:func:`tensor_types` and :func:`tensor_bytes` of ``arch.tensors(model)``): the weight
    sums of the memory and speed models and :func:`weights_bytes` all read it."""
    ts = arch.tensors(model)
    if quant.ggml_type is not None:
        types = ggml_types_of(ts, quant, model)
        nbytes = tuple(ggml_tensor_bytes(g, t.shape) for g, t in zip(types, ts, strict=True))
        return ts, tuple(g.type_name for g in types), nbytes
    pairs = [_other_type_and_bytes(t, quant, model.is_moe) for t in ts]
    return ts, tuple(p[0] for p in pairs), tuple(p[1] for p in pairs)


@functools.lru_cache(maxsize=4096)
def weights_bytes(model: Model, quant: Quant) -> int:
    """Bytes of all of ``model``'s weights in ``quant`` (GGUF: the tensor data of the file).

    >>> from rigplan.catalog import load_catalog
    >>> weights_bytes(load_catalog().models["llama-2-7b"], get_quant("q4_0"))
    3825065984
    """
    return sum(tensor_storage(model, quant)[2])

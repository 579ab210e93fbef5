"""ggml tensor types and their block layouts: the arithmetic of ``ggml/src/ggml-common.h``
(the same table as gguf-py's ``GGML_QUANT_SIZES``), as code (style rule 5).

>>> ggml_bits_per_weight(GGMLType.Q4_K)
4.5
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from enum import IntEnum

from .errors import InvalidValueError

# ---------------------------------------------------------------------------------------------
# ggml tensor types (ggml/include/ggml.h enum ggml_type; values are the ids stored in GGUF files)
# ---------------------------------------------------------------------------------------------


class GGMLType(IntEnum):
    """Every ggml tensor type a GGUF file can hold; the value is the on-disk type id."""

    F32 = 0
    F16 = 1
    Q4_0 = 2
    Q4_1 = 3
    # 4, 5 (Q4_2, Q4_3) were removed from ggml.
    Q5_0 = 6
    Q5_1 = 7
    Q8_0 = 8
    Q8_1 = 9
    Q2_K = 10
    Q3_K = 11
    Q4_K = 12
    Q5_K = 13
    Q6_K = 14
    Q8_K = 15
    IQ2_XXS = 16
    IQ2_XS = 17
    IQ3_XXS = 18
    IQ1_S = 19
    IQ4_NL = 20
    IQ3_S = 21
    IQ2_S = 22
    IQ4_XS = 23
    I8 = 24
    I16 = 25
    I32 = 26
    I64 = 27
    F64 = 28
    IQ1_M = 29
    BF16 = 30
    # 31-33 (Q4_0_4_4 …) and 36-38 (IQ4_NL_4_4 …) were repacking types, removed from GGUF files.
    TQ1_0 = 34
    TQ2_0 = 35
    MXFP4 = 39

    @property
    def type_name(self) -> str:
        """The name ggml prints (``ggml_type_name``): ``"q4_k"``, ``"bf16"``."""
        return self.name.lower()


# Block constants of ggml/src/ggml-common.h (ggml-org/llama.cpp @01243c58).
QK_K = 256  # weights per super-block of every k-quant and i-quant
K_SCALE_SIZE = 12  # bytes of packed 6-bit scales and mins in q4_K / q5_K
QK4_0 = QK4_1 = QK5_0 = QK5_1 = QK8_0 = QK8_1 = 32  # weights per block of the legacy types
QK4_NL = 32  # weights per iq4_nl block
QK_MXFP4 = 32  # weights per MXFP4 block (OCP Microscaling spec: one E8M0 scale per 32)
HALF = 2  # sizeof(ggml_half): an IEEE fp16 block scale
FLOAT32 = 4  # sizeof(float)
E8M0 = 1  # sizeof(uint8_t) MXFP4 shared exponent

#: (weights per block, bytes per block) of every ggml type, written as ggml-common.h's structs
#: (each ``static_assert(sizeof(block_x) == ...)`` there), like gguf-py's GGML_QUANT_SIZES.
GGML_BLOCK: dict[GGMLType, tuple[int, int]] = {
    GGMLType.F32: (1, 4),
    GGMLType.F16: (1, 2),
    GGMLType.BF16: (1, 2),
    GGMLType.F64: (1, 8),
    GGMLType.I8: (1, 1),
    GGMLType.I16: (1, 2),
    GGMLType.I32: (1, 4),
    GGMLType.I64: (1, 8),
    # d, qs[QK/2]
    GGMLType.Q4_0: (QK4_0, HALF + QK4_0 // 2),
    # d, m, qs[QK/2]
    GGMLType.Q4_1: (QK4_1, 2 * HALF + QK4_1 // 2),
    # d, qh (uint32 of 5th bits), qs[QK/2]
    GGMLType.Q5_0: (QK5_0, HALF + 4 + QK5_0 // 2),
    # d, m, qh, qs[QK/2]
    GGMLType.Q5_1: (QK5_1, 2 * HALF + 4 + QK5_1 // 2),
    # d, qs[QK] int8
    GGMLType.Q8_0: (QK8_0, HALF + QK8_0),
    # d, s, qs[QK]
    GGMLType.Q8_1: (QK8_1, 2 * HALF + QK8_1),
    # d, dmin, scales[QK_K/16], qs[QK_K/4]  -> 2.625 bpw
    GGMLType.Q2_K: (QK_K, 2 * HALF + QK_K // 16 + QK_K // 4),
    # d, hmask[QK_K/8], qs[QK_K/4], scales[12]  -> 3.4375 bpw
    GGMLType.Q3_K: (QK_K, HALF + QK_K // 4 + QK_K // 8 + 12),
    # d, dmin, scales[K_SCALE_SIZE], qs[QK_K/2]  -> 4.5 bpw
    GGMLType.Q4_K: (QK_K, 2 * HALF + K_SCALE_SIZE + QK_K // 2),
    # d, dmin, scales[K_SCALE_SIZE], qh[QK_K/8], qs[QK_K/2]  -> 5.5 bpw
    GGMLType.Q5_K: (QK_K, 2 * HALF + K_SCALE_SIZE + QK_K // 2 + QK_K // 8),
    # ql[QK_K/2], qh[QK_K/4], scales[QK_K/16], d  -> 6.5625 bpw
    GGMLType.Q6_K: (QK_K, HALF + QK_K // 16 + 3 * QK_K // 4),
    # float d, qs[QK_K] int8, bsums[QK_K/16] int16 (an intermediate type, never in files)
    GGMLType.Q8_K: (QK_K, FLOAT32 + QK_K + QK_K // 16 * 2),
    # d, qs[QK_K/8] uint16  -> 2.0625 bpw
    GGMLType.IQ2_XXS: (QK_K, HALF + QK_K // 8 * 2),
    # d, qs[QK_K/8] uint16, scales[QK_K/32]  -> 2.3125 bpw
    GGMLType.IQ2_XS: (QK_K, HALF + QK_K // 8 * 2 + QK_K // 32),
    # d, qs[QK_K/4], scales[QK_K/16]  -> 2.5625 bpw
    GGMLType.IQ2_S: (QK_K, HALF + QK_K // 4 + QK_K // 16),
    # d, qs[3*QK_K/8]  -> 3.0625 bpw
    GGMLType.IQ3_XXS: (QK_K, HALF + 3 * (QK_K // 8)),
    # d, qs[QK_K/4], qh[QK_K/32], signs[QK_K/8], scales[QK_K/64]  -> 3.4375 bpw
    GGMLType.IQ3_S: (QK_K, HALF + 13 * (QK_K // 32) + QK_K // 64),
    # d, qs[QK_K/8], qh[QK_K/32] uint16  -> 1.5625 bpw
    GGMLType.IQ1_S: (QK_K, HALF + QK_K // 8 + QK_K // 16),
    # qs[QK_K/8], qh[QK_K/16], scales[QK_K/32] (no fp16 d)  -> 1.75 bpw
    GGMLType.IQ1_M: (QK_K, QK_K // 8 + QK_K // 16 + QK_K // 32),
    # d, qs[QK4_NL/2]  -> 4.5 bpw
    GGMLType.IQ4_NL: (QK4_NL, HALF + QK4_NL // 2),
    # d, scales_h (uint16), scales_l[QK_K/64], qs[QK_K/2]  -> 4.25 bpw
    GGMLType.IQ4_XS: (QK_K, HALF + 2 + QK_K // 64 + QK_K // 2),
    # qs[(QK_K - 4*QK_K/64)/5] base-3 packed, qh[QK_K/64], d  -> 1.6875 bpw
    GGMLType.TQ1_0: (QK_K, HALF + QK_K // 64 + (QK_K - 4 * QK_K // 64) // 5),
    # qs[QK_K/4], d  -> 2.0625 bpw
    GGMLType.TQ2_0: (QK_K, HALF + QK_K // 4),
    # e (E8M0 exponent), qs[QK/2] FP4 E2M1  -> 4.25 bpw
    GGMLType.MXFP4: (QK_MXFP4, E8M0 + QK_MXFP4 // 2),
}


def ggml_bits_per_weight(ggml_type: GGMLType) -> float:
    """Bits one weight takes in ``ggml_type``, block overhead included (q4_K: 4.5)."""
    weights, nbytes = GGML_BLOCK[ggml_type]
    return nbytes * 8 / weights


def ggml_tensor_bytes(ggml_type: GGMLType, shape: Sequence[int]) -> int:
    """Bytes of a tensor of ``shape`` (innermost last) stored as ``ggml_type`` (``ggml_nbytes``).

    Raises:
        InvalidValueError: the innermost dimension is not a whole number of blocks.
    """
    weights, nbytes = GGML_BLOCK[ggml_type]
    row = shape[-1]
    if row % weights:
        raise InvalidValueError("shape", f"rows of {row} are not a multiple of {ggml_type.type_name}'s {weights}")
    return math.prod(shape[:-1]) * (row // weights) * nbytes


#: Bytes per KV-cache element by cache dtype (llama.cpp -ctk/-ctv types, vLLM --kv-cache-dtype).
_KV_TYPES: dict[str, GGMLType | None] = {
    "f32": GGMLType.F32,
    "f16": GGMLType.F16,
    "bf16": GGMLType.BF16,
    "q8_0": GGMLType.Q8_0,
    "q5_1": GGMLType.Q5_1,
    "q5_0": GGMLType.Q5_0,
    "q4_1": GGMLType.Q4_1,
    "q4_0": GGMLType.Q4_0,
    "iq4_nl": GGMLType.IQ4_NL,
    "fp8": None,  # one byte: E4M3 or E5M2
    "fp8_e4m3": None,
    "fp8_e5m2": None,
}
FP8_KV_BYTES = 1.0


def kv_cache_bytes(key: str, asked: str) -> float:
    """Bytes per cached K or V element of cache type ``key`` (``asked``: as the user wrote it).

    Raises:
        InvalidValueError: a cache type no engine offers.
    """
    if key not in _KV_TYPES:
        raise InvalidValueError("kv_dtype", f"unknown cache type {asked!r} (one of: {', '.join(_KV_TYPES)})")
    ggml_type = _KV_TYPES[key]
    if ggml_type is None:
        return FP8_KV_BYTES
    weights, nbytes = GGML_BLOCK[ggml_type]
    return nbytes / weights

"""llama.cpp's file-type mixes (``Q4_K_M`` …): which ggml type each tensor of a model gets,
reproduced from ``llama_tensor_get_type`` in ``src/llama-quant.cpp``.

>>> use_more_bits(0, 32), use_more_bits(5, 32), use_more_bits(6, 32)
(True, False, True)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from . import arch
from .arch import Tensor
from .catalog.records import Model
from .ggml_types import GGML_BLOCK, GGMLType

if TYPE_CHECKING:
    from .quant import Quant

# ---------------------------------------------------------------------------------------------
# llama.cpp's per-tensor choice (src/llama-quant.cpp, llama_tensor_get_type)
# ---------------------------------------------------------------------------------------------
#
# Reproduced from ggml-org/llama.cpp src/llama-quant.cpp @007dbbf3 and its 2024-2025
# predecessors, with two deliberate readings:
#  * attn_qkv (Falcon, Phi-2) follows the dedicated attn_qkv rule of the name-matching code
#    that quantised nearly every published Falcon GGUF; the 2025 refactor into tensor
#    categories routes attn_qkv and attn_kv_b through the attn_v branch first, which leaves
#    that rule unreachable (Falcon-40B Q4_K_M differs by under 1% between the two).
#  * Layer positions come from tensor names: llama.cpp's loader sorts tensors by block number,
#    so its running counters (i_attention_wv, i_ffn_down) equal the layer index on dense
#    models; the one counter that runs ahead on MoE models with shared experts is emulated.

# Importance matrix (imatrix) assumed for every i-quant mix and Q2_K_S, none for k-quants and
# legacy types.  The IQ1/IQ2/IQ3_XXS/IQ3_XS mixes and Q2_K_S cannot be made without one
# (tensor_requires_imatrix); IQ4_XS/IQ4_NL and IQ3_S/IQ3_M are published almost only as imatrix
# quants (dranger003's Llama-3-70B set matches only with it, ±0.05%).  With an imatrix,
# IQ4_XS/IQ4_NL drop the q5_k ffn_down of the first eighth of layers (-0.9% on Llama-3-70B)
# and Q4_0/Q5_0 would move it to q4_1/q5_1.
IMATRIX_MIXES = frozenset(
    {
        "iq1_s",
        "iq1_m",
        "iq2_xxs",
        "iq2_xs",
        "iq2_s",
        "iq2_m",
        "iq3_xxs",
        "iq3_xs",
        "iq3_s",
        "iq3_m",
        "iq4_xs",
        "iq4_nl",
        "q2_k_s",
    }
)
# n_gqa() at or above which attn_v gets more bits in the low-bit mixes (attn_v is then n_gqa
# times smaller than attn_q, so the extra bits cost little).
GQA_BUMP = 4
# llama.cpp's "8-expert model" rules (Mixtral): attn_v/attn_k to q8_0, attn_output to q5_k.
EIGHT_EXPERTS = 8
# IQ1/IQ2 mixes bump attn_v to q4_k from this many experts.
IQ2_ATTN_V_EXPERTS = 4
# llama.cpp sets LLM_TYPE_70B for 80-layer Llama with GQA and 80-layer Qwen2 (llama-model.cpp);
# its attn_v q3_k/q4_k becomes q5_k.
LLAMA_70B_LAYERS = 80
_70B_ARCHITECTURES = frozenset({"LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM"})

_IQ2_FAMILY = frozenset({"iq2_xxs", "iq2_xs", "iq1_s", "iq2_s", "iq2_m", "iq1_m"})
_IQ_OUTPUT_Q5_K = frozenset({"iq2_xxs", "iq2_xs", "iq3_xxs", "iq1_s", "iq2_s", "iq2_m", "iq1_m"})
_EIGHT_EXPERT_ATTN_OUTPUT_Q5_K = frozenset(
    {
        "q2_k",
        "iq3_xs",
        "iq3_xxs",
        "q3_k_s",
        "q3_k_m",
        "iq4_nl",
        "q4_k_s",
        "q4_k_m",
        "iq3_s",
        "iq3_m",
        "iq4_xs",
    }
)

# tensor_type_fallback(): the type a tensor gets when its rows are not whole blocks of the
# chosen one (e.g. Qwen2-72B's ffn_down rows of 29568).  F16 if even that does not fit.
_FALLBACK: dict[GGMLType, GGMLType] = {
    GGMLType.IQ1_S: GGMLType.IQ4_NL,
    GGMLType.IQ1_M: GGMLType.IQ4_NL,
    GGMLType.IQ2_XXS: GGMLType.IQ4_NL,
    GGMLType.IQ2_XS: GGMLType.IQ4_NL,
    GGMLType.IQ2_S: GGMLType.IQ4_NL,
    GGMLType.IQ3_XXS: GGMLType.IQ4_NL,
    GGMLType.IQ3_S: GGMLType.IQ4_NL,
    GGMLType.IQ4_XS: GGMLType.IQ4_NL,
    GGMLType.Q2_K: GGMLType.Q4_0,
    GGMLType.Q3_K: GGMLType.Q4_0,
    GGMLType.TQ1_0: GGMLType.Q4_0,
    GGMLType.TQ2_0: GGMLType.Q4_0,
    GGMLType.Q4_K: GGMLType.Q5_0,
    GGMLType.Q5_K: GGMLType.Q5_1,
    GGMLType.Q6_K: GGMLType.Q8_0,
}


def use_more_bits(i_layer: int, n_layers: int) -> bool:
    """llama.cpp's choice of layers that get more bits: the first and last eighth, and every
    third layer in between."""
    return i_layer < n_layers // 8 or i_layer >= 7 * n_layers // 8 or (i_layer - n_layers // 8) % 3 == 2


@dataclass(frozen=True, slots=True)
class _MixContext:
    mix: str
    default: GGMLType
    n_layer: int
    n_gqa: int
    n_expert: int
    is_70b: bool
    is_falcon: bool
    tied: bool
    imatrix: bool


def _mix_context(quant: Quant, model: Model) -> _MixContext:
    assert quant.ggml_type is not None
    return _MixContext(
        mix=quant.id,
        default=quant.ggml_type,
        n_layer=model.num_layers,
        n_gqa=model.num_heads // max(model.num_kv_heads, 1),
        n_expert=model.moe_num_experts,
        is_70b=(
            model.num_layers == LLAMA_70B_LAYERS
            and model.architecture in _70B_ARCHITECTURES
            and (model.architecture == "Qwen2ForCausalLM" or model.num_heads != model.num_kv_heads)
        ),
        is_falcon=arch.is_falcon(model),
        tied=model.tie_embeddings,
        imatrix=quant.id in IMATRIX_MIXES,
    )


def _ffn_down_ordinal(model: Model, tensor: Tensor) -> int:
    """llama.cpp's i_ffn_down counter at ``tensor``: ffn_down tensors seen before it, in the
    loader's order (by block, then by name: ffn_down_exps before ffn_down_shexp)."""
    assert tensor.layer is not None
    per_moe_layer = 2 if model.moe_shared_experts else 1
    before = sum(per_moe_layer if arch.is_moe_layer(model, i) else 1 for i in range(tensor.layer))
    return before + (1 if tensor.name.endswith("_shexp") else 0)


def _short_name(tensor: Tensor) -> str:
    return tensor.name.rsplit(".", 1)[-1] if tensor.layer is not None else tensor.name


def _gguf_choice(tensor: Tensor, ctx: _MixContext, model: Model) -> GGMLType:
    """llama_tensor_get_type() for one 2-D or 3-D weight, before the shape fallback."""
    if tensor.role == arch.OUTPUT or (ctx.tied and tensor.role == arch.EMBEDDING):
        return _output_choice(tensor, ctx)
    if ctx.mix == "mxfp4_moe":
        return GGMLType.MXFP4 if len(tensor.shape) == 3 else GGMLType.Q8_0
    if tensor.role == arch.EMBEDDING:
        return _embedding_choice(ctx)
    if ctx.mix in _IQ2_FAMILY:
        return _iq2_choice(tensor, ctx, model)
    name = _short_name(tensor)
    layer = tensor.layer if tensor.layer is not None else 0
    if name == "attn_v":
        return _attn_v_choice(ctx, layer)
    if name in ("attn_k", "attn_q"):
        return _attn_qk_choice(ctx, name)
    if "ffn_down" in name:
        return _ffn_down_choice(ctx, layer)
    if name == "attn_output":
        return _attn_output_choice(ctx)
    if name == "attn_qkv":
        return _ATTN_QKV.get(ctx.mix, ctx.default)
    n = ctx.n_layer
    if ("ffn_gate" in name or "ffn_up" in name) and ctx.mix == "iq3_xs" and n // 8 <= layer < 7 * n // 8:
        return GGMLType.IQ3_XXS
    return ctx.default


def _output_choice(tensor: Tensor, ctx: _MixContext) -> GGMLType:
    """output.weight (and a tied token embedding)."""
    new = ctx.default
    if ctx.mix == "mxfp4_moe" or ctx.is_falcon or tensor.row_size % GGML_BLOCK[new][0]:
        return GGMLType.Q8_0
    if ctx.mix in _IQ_OUTPUT_Q5_K:
        return GGMLType.Q5_K
    return new if new == GGMLType.Q8_0 else GGMLType.Q6_K


def _embedding_choice(ctx: _MixContext) -> GGMLType:
    if ctx.mix in ("iq2_xxs", "iq2_xs", "iq1_s", "iq1_m"):
        return GGMLType.Q2_K
    if ctx.mix in ("iq2_s", "iq2_m", "iq3_xxs"):
        return GGMLType.IQ3_S
    if ctx.mix in ("tq1_0", "tq2_0"):
        return GGMLType.Q4_K
    return ctx.default


def _iq2_choice(tensor: Tensor, ctx: _MixContext, model: Model) -> GGMLType:
    """The IQ1/IQ2 mixes' own branch, taken before the per-tensor rules."""
    mix, name = ctx.mix, _short_name(tensor)
    iq3s_or_q2k = GGMLType.IQ3_S if mix in ("iq2_s", "iq2_m") else GGMLType.Q2_K
    if name == "attn_v":
        if ctx.n_gqa >= GQA_BUMP or ctx.n_expert >= IQ2_ATTN_V_EXPERTS:
            return GGMLType.Q4_K
        return iq3s_or_q2k
    if ctx.n_expert == EIGHT_EXPERTS and name == "attn_k":
        return GGMLType.Q4_K
    if "ffn_down" in name:
        # this branch uses the raw counter, not the layer parsed from the name
        return iq3s_or_q2k if _ffn_down_ordinal(model, tensor) < ctx.n_layer // 8 else ctx.default
    if name == "attn_output":
        if ctx.n_expert == EIGHT_EXPERTS:
            return GGMLType.Q5_K
        if mix in ("iq1_s", "iq1_m"):
            return GGMLType.IQ2_XXS
        if mix in ("iq2_s", "iq2_m"):
            return GGMLType.IQ3_S
    return ctx.default


def _attn_v_mix_choice(ctx: _MixContext, layer: int) -> GGMLType:
    """attn_v by mix, before the 70B and 8-expert overrides."""
    mix, gqa = ctx.mix, ctx.n_gqa >= GQA_BUMP
    if mix == "q2_k":
        return GGMLType.Q4_K if gqa else GGMLType.Q3_K
    if mix == "q2_k_s" and gqa:
        return GGMLType.Q4_K
    if mix == "iq3_xxs":
        return GGMLType.Q4_K if gqa else (GGMLType.IQ3_XXS if ctx.imatrix else GGMLType.IQ3_S)
    if (mix in ("iq3_xs", "iq3_s") and gqa) or mix == "iq3_m":
        return GGMLType.Q4_K
    if mix == "q3_k_m":
        return GGMLType.Q5_K if layer < 2 else GGMLType.Q4_K
    if mix == "q3_k_l" or (mix in ("iq4_nl", "iq4_xs") and gqa):
        return GGMLType.Q5_K
    if mix in ("q4_k_m", "q5_k_m") and use_more_bits(layer, ctx.n_layer):
        return GGMLType.Q6_K
    if mix == "q4_k_s" and layer < 4:
        return GGMLType.Q5_K
    return ctx.default


def _attn_v_choice(ctx: _MixContext, layer: int) -> GGMLType:
    new = _attn_v_mix_choice(ctx, layer)
    if ctx.is_70b and new in (GGMLType.Q3_K, GGMLType.Q4_K):
        new = GGMLType.Q5_K
    if ctx.n_expert == EIGHT_EXPERTS:
        new = GGMLType.Q8_0
    return new


def _attn_qk_choice(ctx: _MixContext, name: str) -> GGMLType:
    if name == "attn_k" and ctx.n_expert == EIGHT_EXPERTS:
        return GGMLType.Q8_0
    if ctx.mix == "iq3_xs":
        return GGMLType.IQ3_XXS
    if ctx.mix == "iq3_xxs":
        return GGMLType.IQ2_S
    return ctx.default


def _ffn_down_low_bit_choice(ctx: _MixContext, layer: int) -> GGMLType | None:
    """ffn_down in the 2- and 3-bit mixes; None when no rule of theirs applies."""
    mix, n = ctx.mix, ctx.n_layer
    if mix == "q2_k":
        return GGMLType.Q3_K
    if mix == "q2_k_s":
        return GGMLType.Q4_K if layer < n // 8 else ctx.default
    if mix == "iq3_xxs" and not ctx.imatrix:
        return GGMLType.Q4_K if layer < n // 8 else GGMLType.Q3_K
    if mix == "q3_k_m":
        if layer < n // 16:
            return GGMLType.Q5_K
        return GGMLType.Q4_K if not ctx.is_falcon or use_more_bits(layer, n) else GGMLType.Q3_K
    if mix == "iq3_m" and (layer < n // 8 or (ctx.n_expert == EIGHT_EXPERTS and use_more_bits(layer, n))):
        return GGMLType.Q4_K
    if mix == "q3_k_l":
        return GGMLType.Q4_K if ctx.is_falcon else GGMLType.Q5_K
    return None


def _ffn_down_choice(ctx: _MixContext, layer: int) -> GGMLType:
    low = _ffn_down_low_bit_choice(ctx, layer)
    if low is not None:
        return low
    mix, n = ctx.mix, ctx.n_layer
    if mix == "q4_k_m":
        if ctx.is_falcon:
            if layer < n // 16:
                return GGMLType.Q6_K
            return GGMLType.Q5_K if use_more_bits(layer, n) else GGMLType.Q4_K
        return GGMLType.Q6_K if use_more_bits(layer, n) else ctx.default
    if layer < n // 8 and mix in ("iq4_nl", "iq4_xs") and not ctx.imatrix:
        return GGMLType.Q5_K
    if mix == "q5_k_m" and use_more_bits(layer, n):
        return GGMLType.Q6_K
    if mix == "q4_k_s" and not ctx.is_falcon and layer < n // 8:
        return GGMLType.Q5_K
    if mix in ("q4_0", "q5_0") and ctx.imatrix and layer < n // 8:
        return GGMLType.Q4_1 if mix == "q4_0" else GGMLType.Q5_1
    return ctx.default


def _attn_output_choice(ctx: _MixContext) -> GGMLType:
    mix, new = ctx.mix, ctx.default
    if ctx.is_falcon:
        return GGMLType.Q4_K if mix == "q3_k_l" else new
    if ctx.n_expert == EIGHT_EXPERTS:
        return GGMLType.Q5_K if mix in _EIGHT_EXPERT_ATTN_OUTPUT_Q5_K else new
    return _ATTN_OUTPUT.get(mix, new)


_ATTN_OUTPUT: dict[str, GGMLType] = {
    "q2_k": GGMLType.Q3_K,
    "iq3_xxs": GGMLType.IQ3_S,
    "q3_k_m": GGMLType.Q4_K,
    "q3_k_l": GGMLType.Q5_K,
    "iq3_m": GGMLType.Q4_K,
}
_ATTN_QKV: dict[str, GGMLType] = {
    "q3_k_m": GGMLType.Q4_K,
    "q3_k_l": GGMLType.Q4_K,
    "iq3_m": GGMLType.Q4_K,
    "q4_k_m": GGMLType.Q5_K,
    "q5_k_m": GGMLType.Q6_K,
}


def _fallback(ggml_type: GGMLType, row: int) -> GGMLType:
    if row % GGML_BLOCK[ggml_type][0] == 0:
        return ggml_type
    fallback = _FALLBACK.get(ggml_type, GGMLType.F16)
    return fallback if row % GGML_BLOCK[fallback][0] == 0 else GGMLType.F16


def _is_float_kept(tensor: Tensor) -> bool:
    """Tensors llama.cpp's converter writes as f32 and quantize never touches: 1-D norms and
    biases, and MoE routers (convert_hf_to_gguf keeps FFN_GATE_INP in f32)."""
    return tensor.role in (arch.NORM, arch.ROUTER) or len(tensor.shape) < 2


def _gguf_type(tensor: Tensor, quant: Quant, ctx: _MixContext | None, model: Model) -> GGMLType:
    assert quant.ggml_type is not None
    if _is_float_kept(tensor):
        return GGMLType.F32
    if ctx is None:  # f32 / f16 / bf16 files: every matrix in the file's type
        return quant.ggml_type
    return _fallback(_gguf_choice(tensor, ctx, model), tensor.row_size)


def ggml_types_of(tensors: Sequence[Tensor], quant: Quant, model: Model) -> list[GGMLType]:
    """The ggml type llama.cpp stores each of ``tensors`` in for ``quant`` (a GGUF mix, or a
    float type that keeps every matrix in it)."""
    ctx = _mix_context(quant, model) if quant.is_gguf else None
    return [_gguf_type(t, quant, ctx, model) for t in tensors]

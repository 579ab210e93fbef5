"""What training needs to know about a model's shapes, computed once per model.

Everything here is arithmetic on :mod:`rigplan.arch`: parameter counts split into the parts
that are sharded differently (embedding, output head, blocks), the widths activations scale
with, and the linear layers LoRA adapters attach to.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from .. import arch
from ..catalog.records import Model
from ..errors import InvalidValueError
from ..quant import get_quant, tensor_bytes

# LoRA target sets.  "all-linear" is PEFT's ``target_modules="all-linear"``: every linear layer
# of the blocks, not the output head (peft/tuners/tuners_utils.py, _maybe_include_all_linear_layers).
# "attention" = q, k, v, o; "qv" = the original LoRA paper's choice (Hu et al. 2021, §4.2).
LORA_TARGETS = ("all-linear", "attention", "qv")
_QV_SUFFIXES = ("attn_q", "attn_v", "attn_qkv", "attn_q_b", "attn_kv_b")

# bf16/f16 element size: activations, frozen 16-bit weights, dequantised NF4 buffers.
SIXTEEN_BIT_BYTES = 2


@dataclass(frozen=True, slots=True)
class Linear:
    """One adaptable linear layer of a block: name, input and output width, copies (experts)."""

    name: str
    in_features: int
    out_features: int
    copies: int = 1


@dataclass(frozen=True, slots=True)
class ModelShape:
    """Sizes training memory and speed are computed from (all counts are parameters)."""

    model_id: str
    total_params: int
    embedding_params: int  # the input token embedding (a gather, not a matmul)
    output_params: int  # the output head (0 when tied: the embedding is reused)
    block_params: int  # every block together
    final_norm_params: int
    layer_params: int  # the largest block (ZeRO-3 gathers one block at a time)
    matmul_params_per_token: float  # parameters one token multiplies with (MoE: k experts)
    num_layers: int
    hidden_size: int
    num_heads: int
    num_kv_heads: int
    q_width: int  # n_heads · d_head
    kv_width: int  # n_kv · d_head
    attention_width: int  # the width attention FLOPs scale with (MLA: nope + rope)
    ffn_activation_width: int  # FFN width each token's activations have (MoE: k experts + shared)
    ffn_gated: bool
    vocab_size: int
    tie_embeddings: bool
    linears: tuple[Linear, ...]  # the adaptable linears of one block
    largest_linear_params: int
    nf4_linear_bytes: int  # every block linear in NF4 with double quantisation
    nf4_other_bytes: int  # embeddings, head, norms, routers kept 16-bit by bitsandbytes
    block_linear_params: int
    num_experts: int = 0  # routed experts per MoE layer (0: dense)
    active_experts: int = 0  # routed experts each token uses (top-k)
    expert_params: int = 0  # every routed expert of every layer: what expert parallelism splits
    moe_layers: int = 0
    expert_ffn_width: int = 0  # one routed expert's FFN width

    @property
    def block_params_per_layer(self) -> float:
        return self.block_params / self.num_layers


def _linear_of(t: arch.Tensor) -> Linear | None:
    if t.role in (arch.ATTENTION, arch.FFN, arch.SHARED_EXPERT) and len(t.shape) == 2:
        return Linear(t.name.split(".", 2)[2], t.shape[1], t.shape[0])
    if t.role == arch.EXPERT and len(t.shape) == 3:
        return Linear(t.name.split(".", 2)[2], t.shape[2], t.shape[1], t.shape[0])
    return None


@functools.lru_cache(maxsize=256)
def _ffn_activation_width(model: Model) -> int:
    """Width of the FFN activations a token keeps: the routed + shared experts it uses (and the
    dense FFN of a MoE model's first layers where wider)."""
    if not model.is_moe:
        return model.ffn_size
    width = model.moe_ffn_size * (model.moe_active_experts + model.moe_shared_experts)
    return max(width, model.ffn_size if model.moe_first_dense_layers else 0)


def model_shape(model: Model) -> ModelShape:
    """The :class:`ModelShape` of ``model`` (cached: models are frozen records).

    >>> from rigplan.catalog import load_catalog
    >>> s = model_shape(load_catalog().models["llama-3-8b"])
    >>> s.num_layers, s.total_params
    (32, 8030261248)
    """
    tensors = arch.tensors(model)
    embedding = sum(t.n_elements for t in tensors if t.role == arch.EMBEDDING)
    output = sum(t.n_elements for t in tensors if t.role == arch.OUTPUT)
    per_layer = [0] * model.num_layers
    for t in tensors:
        if t.layer is not None:
            per_layer[t.layer] += t.n_elements
    total = arch.count_parameters(model)
    final_norm = total - embedding - output - sum(per_layer)
    # Adaptable linears of the largest block (MoE models: a MoE block).
    big = max(range(model.num_layers), key=lambda i: per_layer[i])
    linears = tuple(lin for t in arch.layer_tensors(model, big) if (lin := _linear_of(t)) is not None)
    block_linear = [t for t in tensors if t.layer is not None and _linear_of(t) is not None]
    nf4 = get_quant("nf4")
    sizes = tensor_bytes(tensors, nf4, model)
    linear_names = {t.name for t in block_linear}
    nf4_linear = sum(b for t, b in zip(tensors, sizes, strict=True) if t.name in linear_names)
    hd = arch.head_dim(model)
    return ModelShape(
        model_id=model.id,
        total_params=total,
        embedding_params=embedding,
        output_params=output,
        block_params=sum(per_layer),
        final_norm_params=final_norm,
        layer_params=per_layer[big],
        matmul_params_per_token=arch.active_parameters(model, 1),
        num_layers=model.num_layers,
        hidden_size=model.hidden_size,
        num_heads=model.num_heads,
        num_kv_heads=model.num_kv_heads,
        q_width=model.num_heads * hd,
        kv_width=model.num_kv_heads * hd,
        attention_width=arch.attention_width(model),
        ffn_activation_width=_ffn_activation_width(model),
        ffn_gated=model.ffn_kind == "gated",
        vocab_size=model.vocab_size,
        tie_embeddings=model.tie_embeddings,
        linears=linears,
        largest_linear_params=max(lin.in_features * lin.out_features for lin in linears),
        nf4_linear_bytes=nf4_linear,
        nf4_other_bytes=sum(sizes) - nf4_linear,
        block_linear_params=sum(t.n_elements for t in block_linear),
        num_experts=model.moe_num_experts,
        active_experts=model.moe_active_experts,
        expert_params=sum(t.n_elements for t in tensors if t.role == arch.EXPERT),
        moe_layers=(model.num_layers - model.moe_first_dense_layers) if model.is_moe else 0,
        expert_ffn_width=model.moe_ffn_size if model.is_moe else 0,
    )


def lora_linears(shape: ModelShape, targets: str) -> tuple[Linear, ...]:
    """The linears of one block that ``targets`` adapts.

    Raises:
        InvalidValueError: an unknown target set.
    """
    if targets == "all-linear":
        return shape.linears
    if targets == "attention":
        return tuple(lin for lin in shape.linears if lin.name.startswith("attn_"))
    if targets == "qv":
        return tuple(lin for lin in shape.linears if lin.name in _QV_SUFFIXES)
    raise InvalidValueError("lora_targets", f"must be one of {', '.join(LORA_TARGETS)}, got {targets!r}")


def lora_parameters(shape: ModelShape, rank: int, targets: str) -> int:
    """Trainable LoRA parameters: r · (in + out) per adapted linear (A is r×in, B is out×r).

    >>> from rigplan.catalog import load_catalog
    >>> s = model_shape(load_catalog().models["llama-2-7b"])
    >>> lora_parameters(s, 8, "qv")  # 32 layers × 2 × 8 × (4096 + 4096)
    4194304
    """
    per_layer = sum(lin.copies * rank * (lin.in_features + lin.out_features) for lin in lora_linears(shape, targets))
    return per_layer * shape.num_layers

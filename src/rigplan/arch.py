"""A model's shapes: its tensors, parameter counts, KV-cache size and bytes read per token.

Tensor names follow GGUF (``token_embd``, ``blk.N.attn_q`` …) so that quantisation recipes,
which llama.cpp keys by those names, apply directly.  Everything here is arithmetic on the
architecture fields of a :class:`~rigplan.catalog.records.Model`.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator
from dataclasses import dataclass

from .catalog.records import Model
from .errors import UnsupportedError

SUPPORTED_ARCHITECTURES = frozenset(
    {
        "LlamaForCausalLM",
        "MistralForCausalLM",
        "MixtralForCausalLM",
        "Qwen2ForCausalLM",
        "Qwen2MoeForCausalLM",
        "Qwen3ForCausalLM",
        "Qwen3MoeForCausalLM",
        "MPTForCausalLM",
        "Gemma2ForCausalLM",
        "GemmaForCausalLM",
        "FalconForCausalLM",
        "RWForCausalLM",
        "DeepseekV3ForCausalLM",
        "DeepseekV2ForCausalLM",
        "Phi3ForCausalLM",
        # Mapped onto the generic shapes; what the mapping leaves out is in each catalogue row's
        # notes: gpt-oss attention sinks and expert biases (~0.03%), GLM-4.5's MTP layer (not in
        # the published count either), Llama 4's and Gemma 3's vision towers (text decoder only).
        "GptOssForCausalLM",
        "Glm4MoeForCausalLM",
        "Llama4ForConditionalGeneration",
        "Llama4ForCausalLM",
        "Gemma3ForConditionalGeneration",
        "Gemma3ForCausalLM",
    }
)

#: Gemma 2 and 3 add post-attention and post-FFN norms (four RMSNorms per block).
GEMMA_FOUR_NORMS = frozenset({"Gemma2ForCausalLM", "Gemma3ForCausalLM", "Gemma3ForConditionalGeneration"})

# Tensor roles.  "embedding" rows are gathered, not read whole, per token; "norm" tensors
# (norm weights and biases) stay f32 in GGUF files and are tiny.
EMBEDDING, OUTPUT, NORM, ATTENTION, FFN, EXPERT, ROUTER, SHARED_EXPERT = (
    "embedding",
    "output",
    "norm",
    "attention",
    "ffn",
    "expert",
    "router",
    "shared_expert",
)


@dataclass(frozen=True, slots=True)
class Tensor:
    """One weight tensor: GGUF-style name, role, layer (None outside blocks) and shape."""

    name: str
    role: str
    layer: int | None
    shape: tuple[int, ...]

    @property
    def n_elements(self) -> int:
        return math.prod(self.shape)

    @property
    def row_size(self) -> int:
        """Length of the innermost dimension (the one quant blocks run along)."""
        return self.shape[-1]


def check_supported(model: Model) -> None:
    """Refuse architectures whose shapes rigplan does not know, rather than guess."""
    if model.architecture not in SUPPORTED_ARCHITECTURES:
        raise UnsupportedError(
            f"model {model.id!r}: architecture {model.architecture} is not supported "
            f"(supported: {', '.join(sorted(SUPPORTED_ARCHITECTURES))})"
        )


# Sanity bounds on architecture fields from files or dicts: far beyond any published model
# (DeepSeek V3: 61 layers, 129k vocabulary; Llama 3.1 405B: 126 layers, 16,384 hidden), and
# small enough that enumerating tensors stays instant.
SHAPE_LIMITS = {
    "num_layers": 1024,
    "hidden_size": 1 << 17,
    "num_heads": 4096,
    "num_kv_heads": 4096,
    "ffn_size": 1 << 20,
    "vocab_size": 1 << 23,
    "moe_num_experts": 4096,
    "max_context": 1 << 24,
}


def check_shapes(model: Model) -> Model:
    """Refuse shapes that are zero or absurd (a corrupt config would hang or divide by zero)."""
    from .errors import InvalidValueError

    for name, limit in SHAPE_LIMITS.items():
        value = getattr(model, name)
        floor = 0 if name == "moe_num_experts" else 1
        if not floor <= value <= limit:
            raise InvalidValueError(f"{model.id}.{name}", f"must be {floor}–{limit:,}, got {value:,}")
    return model


def head_dim(model: Model) -> int:
    return model.head_dim or model.hidden_size // model.num_heads


def is_falcon(model: Model) -> bool:
    return model.architecture in ("FalconForCausalLM", "RWForCausalLM")


def _norms_per_layer(model: Model) -> int:
    # Gemma 2 adds post-attention and post-FFN norms; Falcon's LayerNorms carry a bias too.
    if model.architecture in GEMMA_FOUR_NORMS:
        return 4
    if is_falcon(model):
        return 4
    return 2


def is_moe_layer(model: Model, layer: int) -> bool:
    return model.is_moe and layer >= model.moe_first_dense_layers


def _attention_tensors(model: Model, i: int) -> Iterator[Tensor]:
    d = model.hidden_size
    p = f"blk.{i}."
    if model.is_mla:
        qk_head = model.qk_nope_head_dim + model.qk_rope_head_dim
        if model.q_lora_rank:
            yield Tensor(p + "attn_q_a", ATTENTION, i, (model.q_lora_rank, d))
            yield Tensor(p + "attn_q_a_norm", NORM, i, (model.q_lora_rank,))
            yield Tensor(p + "attn_q_b", ATTENTION, i, (model.num_heads * qk_head, model.q_lora_rank))
        else:
            yield Tensor(p + "attn_q", ATTENTION, i, (model.num_heads * qk_head, d))
        yield Tensor(p + "attn_kv_a_mqa", ATTENTION, i, (model.kv_lora_rank + model.qk_rope_head_dim, d))
        yield Tensor(p + "attn_kv_a_norm", NORM, i, (model.kv_lora_rank,))
        kv_b_rows = model.num_heads * (model.qk_nope_head_dim + model.v_head_dim)
        yield Tensor(p + "attn_kv_b", ATTENTION, i, (kv_b_rows, model.kv_lora_rank))
        yield Tensor(p + "attn_output", ATTENTION, i, (d, model.num_heads * model.v_head_dim))
        return
    hd = head_dim(model)
    q, kv = model.num_heads * hd, model.num_kv_heads * hd
    if is_falcon(model):
        yield Tensor(p + "attn_qkv", ATTENTION, i, (q + 2 * kv, d))
    else:
        yield Tensor(p + "attn_q", ATTENTION, i, (q, d))
        yield Tensor(p + "attn_k", ATTENTION, i, (kv, d))
        yield Tensor(p + "attn_v", ATTENTION, i, (kv, d))
        if model.attention_bias:
            yield Tensor(p + "attn_qkv.bias", NORM, i, (q + 2 * kv,))
    yield Tensor(p + "attn_output", ATTENTION, i, (d, q))


def _ffn_tensors(model: Model, i: int) -> Iterator[Tensor]:
    d = model.hidden_size
    p = f"blk.{i}."
    if is_moe_layer(model, i):
        e, f = model.moe_num_experts, model.moe_ffn_size
        yield Tensor(p + "ffn_gate_inp", ROUTER, i, (e, d))
        yield Tensor(p + "ffn_gate_exps", EXPERT, i, (e, f, d))
        yield Tensor(p + "ffn_up_exps", EXPERT, i, (e, f, d))
        yield Tensor(p + "ffn_down_exps", EXPERT, i, (e, d, f))
        if model.moe_shared_experts:
            fs = f * model.moe_shared_experts
            yield Tensor(p + "ffn_gate_shexp", SHARED_EXPERT, i, (fs, d))
            yield Tensor(p + "ffn_up_shexp", SHARED_EXPERT, i, (fs, d))
            yield Tensor(p + "ffn_down_shexp", SHARED_EXPERT, i, (d, fs))
        return
    f = model.ffn_size
    if model.ffn_kind == "gated":
        yield Tensor(p + "ffn_gate", FFN, i, (f, d))
    yield Tensor(p + "ffn_up", FFN, i, (f, d))
    yield Tensor(p + "ffn_down", FFN, i, (d, f))


def layer_tensors(model: Model, i: int) -> Iterator[Tensor]:
    """The tensors of block ``i``."""
    yield from _attention_tensors(model, i)
    yield from _ffn_tensors(model, i)
    for k in range(_norms_per_layer(model)):
        yield Tensor(f"blk.{i}.norm_{k}", NORM, i, (model.hidden_size,))


@functools.lru_cache(maxsize=64)
def tensors(model: Model) -> tuple[Tensor, ...]:
    """Every weight tensor of the model, in file order (embedding, blocks, output); cached per
    model (the records are frozen)."""
    d, v = model.hidden_size, model.vocab_size
    out = [Tensor("token_embd", EMBEDDING, None, (v, d))]
    for i in range(model.num_layers):
        out.extend(layer_tensors(model, i))
    out.append(Tensor("output_norm", NORM, None, (d,)))
    if not model.tie_embeddings:
        out.append(Tensor("output", OUTPUT, None, (v, d)))
    return tuple(out)


def count_parameters(model: Model) -> int:
    """Total parameters (tied embeddings counted once).

    >>> from rigplan.catalog import load_catalog
    >>> count_parameters(load_catalog().models["llama-2-7b"])
    6738415616
    """
    return sum(t.n_elements for t in tensors(model))


def expected_experts_touched(model: Model, tokens: int) -> float:
    """Routed experts per MoE layer that ``tokens`` tokens touch, under uniform routing.

    Each token picks k of E experts; an expert is untouched with probability (1 - k/E)^tokens
    (perf-model.md §3.1).  One token reads k experts; large batches read nearly all E.
    """
    e, k = model.moe_num_experts, model.moe_active_experts
    if e == 0:
        return 0.0
    return e * (1.0 - (1.0 - k / e) ** max(tokens, 1))


def kv_elements_per_token(model: Model, layer: int) -> int:
    """KV-cache elements one token adds in ``layer`` (K and V; MLA: the compressed latent).

    MLA caches the latent c_kv and the shared rope key, (d_c + d_h^R) per layer, with no
    factor 2 (DeepSeek-V2 paper, Table 1).
    """
    if model.is_mla:
        return model.kv_lora_rank + model.qk_rope_head_dim
    return 2 * model.num_kv_heads * head_dim(model)


def is_local_layer(model: Model, layer: int) -> bool:
    """Whether ``layer`` uses sliding-window attention (and so caches at most the window)."""
    k = model.sliding_window_pattern
    if not model.sliding_window or k == 0:
        return False
    if k == 1:
        return True
    return layer % k != k - 1


def kv_tokens_in_layer(model: Model, layer: int, context: int, *, honor_window: bool = True) -> int:
    """Tokens of ``context`` that ``layer`` keeps in its cache."""
    if honor_window and is_local_layer(model, layer):
        return min(context, model.sliding_window)
    return context


def attention_width(model: Model) -> int:
    """Query-head width n_h · d_h that attention FLOPs scale with."""
    if model.is_mla:
        return model.num_heads * (model.qk_nope_head_dim + model.qk_rope_head_dim)
    return model.num_heads * head_dim(model)


def active_parameters(model: Model, tokens: int = 1) -> float:
    """Parameters one forward step over ``tokens`` tokens multiplies with (no embedding rows).

    Dense: every linear weight plus the output head.  MoE: routed experts scale with
    :func:`expected_experts_touched`.
    """
    total = 0.0
    touched = expected_experts_touched(model, tokens)
    for t in tensors(model):
        if t.role == EMBEDDING:
            if model.tie_embeddings:
                total += t.n_elements  # the shared matrix is read as the output head
            continue
        if t.role == EXPERT:
            total += t.n_elements / model.moe_num_experts * touched
        else:
            total += t.n_elements
    return total

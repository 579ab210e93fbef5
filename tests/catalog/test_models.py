"""Data-integrity tests of the shipped model catalogue (``catalog/data/models.toml``).

These read the shipped file, not a fixture: they check that every row is sourced, dated and
internally consistent, and that its shapes reproduce the published parameter count.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from importlib import resources

import pytest

from rigplan.arch import check_supported, count_parameters
from rigplan.catalog.load import load_table
from rigplan.catalog.records import Model

# design.md §3: the model ids other tools and checks rely on.
CONTRACT_IDS = (
    "llama-2-7b",
    "llama-2-13b",
    "llama-2-70b",
    "codellama-34b",
    "llama-3-8b",
    "llama-3-70b",
    "llama-3.1-8b",
    "llama-3.1-70b",
    "llama-3.1-405b",
    "mistral-7b",
    "mixtral-8x7b",
    "mixtral-8x22b",
    "falcon-40b",
    "qwen2.5-7b",
    "qwen2.5-32b",
    "qwen2.5-72b",
    "deepseek-v3",
    "gemma-2-9b",
    "gemma-2-27b",
    # added in the second round (design.md section 3)
    "gpt-oss-20b",
    "gpt-oss-120b",
    "qwen3-235b-a22b",
    "qwen3-coder-30b-a3b",
    "glm-4.5-air",
    "llama-4-scout",
    "deepseek-r1",
    "gemma-3-27b",
    "mistral-small-24b",
)

RELEASE_DTYPES = ("bf16", "f16", "f32", "fp8", "mxfp4")
ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9.\-]*[a-z0-9]$")

# Published counts that are rounded (model cards), so only the 1% bound applies.
ROUNDED_PUBLISHED_COUNTS = frozenset({"mpt-7b", "mpt-30b", "glm-4.5-air", "gemma-3-27b"})
# gpt-oss: llama-bench prints the count rounded to 10M, and the shapes leave out the attention
# sinks and expert / router biases (about 0.03% of the model).
SHAPES_WITHOUT_BIASES = frozenset({"gpt-oss-20b", "gpt-oss-120b"})
BIASES_LEFT_OUT_TOLERANCE = 1e-3
# Llama 4 Scout: Meta's 109B is rounded and includes the vision encoder rigplan does not model
# (the text decoder recounts to 107.77B).
WITH_VISION_ENCODER = frozenset({"llama-4-scout"})
VISION_ENCODER_TOLERANCE = 2e-2
# Tolerance for exact published counts: rigplan.arch leaves out a few tiny tensors (Qwen3's
# per-head q/k norms, Falcon's final-norm bias, DeepSeek's router correction bias), each far
# below 0.01% of the model.
EXACT_COUNT_TOLERANCE = 1e-4
ROUNDED_COUNT_TOLERANCE = 1e-2


@functools.cache
def _models() -> dict[str, Model]:
    # The packaged file, read the way load_catalog() reads it; load_table() directly so that
    # these tests do not depend on the other catalogue files.
    text = resources.files("rigplan.catalog").joinpath("data", "models.toml").read_text("utf-8")
    return load_table(Model, text, "models.toml")


def _all_ids() -> list[str]:
    return sorted(_models())


def test_load_catalog_serves_the_same_models() -> None:
    from rigplan.catalog import load_catalog

    assert load_catalog().models == _models()


@pytest.mark.parametrize("model_id", CONTRACT_IDS)
def test_contract_id_present_and_supported(model_id: str) -> None:
    model = _models()[model_id]
    check_supported(model)


@pytest.mark.parametrize("model_id", _all_ids())
def test_row_is_sourced_and_dated(model_id: str) -> None:
    m = _models()[model_id]
    assert m.name.strip()
    assert "config:" in m.source and "params:" in m.source, "source must cite both"
    assert dt.date(2023, 1, 1) <= m.as_of <= dt.date.today()
    assert m.published_param_count > 0
    assert m.release_dtype in RELEASE_DTYPES
    assert re.fullmatch(r"[\w.\-]+/[\w.\-]+", m.hf_repo)


@pytest.mark.parametrize("model_id", _all_ids())
def test_id_and_aliases_are_lower_case(model_id: str) -> None:
    m = _models()[model_id]
    assert ID_PATTERN.match(model_id)
    for alias in m.aliases:
        assert alias == alias.lower() and alias.strip() == alias and alias
        assert alias != model_id


def test_aliases_are_unique_and_never_another_id() -> None:
    owner: dict[str, str] = {}
    for model_id, m in _models().items():
        for alias in m.aliases:
            assert alias not in _models(), f"{model_id}: alias {alias!r} is another row's id"
            assert alias not in owner, f"alias {alias!r} on {owner.get(alias)} and {model_id}"
            owner[alias] = model_id


@pytest.mark.parametrize("model_id", _all_ids())
def test_hf_repo_resolves_to_its_row(model_id: str) -> None:
    m = _models()[model_id]
    assert m.hf_repo.lower() in (model_id, *m.aliases)


@pytest.mark.parametrize("model_id", _all_ids())
def test_attention_shapes(model_id: str) -> None:
    m = _models()[model_id]
    assert m.num_heads > 0 and m.num_kv_heads > 0
    assert m.num_heads % m.num_kv_heads == 0, "query heads must split evenly over KV heads"
    if m.is_mla:
        # MLA: per-head widths come from the MLA fields, head_dim is not used.
        assert m.head_dim is None
        return
    if m.head_dim is None:
        assert m.hidden_size % m.num_heads == 0
    else:
        # head_dim is recorded only where it is not hidden_size / num_heads.
        assert m.head_dim * m.num_heads != m.hidden_size
        assert m.head_dim in (64, 80, 96, 128, 256)


@pytest.mark.parametrize("model_id", _all_ids())
def test_moe_fields_coherent(model_id: str) -> None:
    m = _models()[model_id]
    moe = (
        m.moe_num_experts,
        m.moe_active_experts,
        m.moe_shared_experts,
        m.moe_ffn_size,
        m.moe_first_dense_layers,
    )
    if not m.is_moe:
        assert moe == (0, 0, 0, 0, 0)
        return
    assert 0 < m.moe_active_experts <= m.moe_num_experts
    assert m.moe_ffn_size > 0
    assert m.moe_shared_experts < m.moe_num_experts
    assert 0 <= m.moe_first_dense_layers < m.num_layers
    if m.moe_first_dense_layers:
        assert m.ffn_size > 0  # the dense layers' FFN width


@pytest.mark.parametrize("model_id", _all_ids())
def test_mla_fields_coherent(model_id: str) -> None:
    m = _models()[model_id]
    mla = (m.q_lora_rank, m.kv_lora_rank, m.qk_rope_head_dim, m.qk_nope_head_dim, m.v_head_dim)
    if not m.is_mla:
        assert mla == (0, 0, 0, 0, 0)
        return
    assert m.qk_rope_head_dim > 0 and m.qk_nope_head_dim > 0 and m.v_head_dim > 0
    assert m.kv_lora_rank < m.hidden_size


@pytest.mark.parametrize("model_id", _all_ids())
def test_sliding_window_fields_coherent(model_id: str) -> None:
    m = _models()[model_id]
    assert (m.sliding_window > 0) == (m.sliding_window_pattern > 0)
    if m.sliding_window:
        assert m.sliding_window < m.max_context
        assert m.sliding_window_pattern <= m.num_layers


@pytest.mark.parametrize(
    ("model_id", "window", "pattern"),
    [
        pytest.param("mistral-7b", 4096, 1, id="mistral-7b-is-v0.1-swa-every-layer"),
        pytest.param("mistral-7b-v0.3", 0, 0, id="mistral-7b-v0.3-no-swa"),
        pytest.param("gemma-2-9b", 4096, 2, id="gemma-2-9b-alternating"),
        pytest.param("gemma-2-27b", 4096, 2, id="gemma-2-27b-alternating"),
        pytest.param("qwen2.5-7b", 0, 0, id="qwen2.5-window-inactive"),
    ],
)
def test_sliding_window_as_published(model_id: str, window: int, pattern: int) -> None:
    m = _models()[model_id]
    assert (m.sliding_window, m.sliding_window_pattern) == (window, pattern)


@pytest.mark.parametrize(
    ("model_id", "field", "value"),
    [
        # Falcon's new_decoder_architecture: plain GELU MLP of 4 x hidden, 8 KV groups.
        pytest.param("falcon-40b", "ffn_kind", "plain", id="falcon-plain-mlp"),
        pytest.param("falcon-40b", "ffn_size", 4 * 8192, id="falcon-ffn-4x"),
        pytest.param("falcon-40b", "num_kv_heads", 8, id="falcon-kv-groups"),
        # Gemma 2: head_dim explicit and not hidden / heads; tied embeddings.
        pytest.param("gemma-2-9b", "head_dim", 256, id="gemma-2-9b-head-dim"),
        pytest.param("gemma-2-27b", "head_dim", 128, id="gemma-2-27b-head-dim"),
        pytest.param("gemma-2-9b", "tie_embeddings", True, id="gemma-tied"),
        # Qwen2: q/k/v carry a bias.
        pytest.param("qwen2.5-72b", "attention_bias", True, id="qwen2-qkv-bias"),
        # DeepSeek-V3: 3 dense layers, 256 routed + 1 shared, MLA latent 512 + rope 64.
        pytest.param("deepseek-v3", "moe_first_dense_layers", 3, id="dsv3-dense-first"),
        pytest.param("deepseek-v3", "moe_shared_experts", 1, id="dsv3-shared"),
        pytest.param("deepseek-v3", "kv_lora_rank", 512, id="dsv3-kv-latent"),
        pytest.param("deepseek-v3", "qk_rope_head_dim", 64, id="dsv3-rope-dim"),
        pytest.param("deepseek-v3", "release_dtype", "fp8", id="dsv3-fp8-weights"),
        # Code Llama 34B has no infilling tokens: 32000, not 32016.
        pytest.param("codellama-34b", "vocab_size", 32000, id="codellama-34b-vocab"),
    ],
)
def test_architecture_details(model_id: str, field: str, value: object) -> None:
    assert getattr(_models()[model_id], field) == value


@pytest.mark.parametrize("model_id", _all_ids())
def test_shapes_reproduce_published_parameter_count(model_id: str) -> None:
    m = _models()[model_id]
    computed = count_parameters(m)
    tolerance = EXACT_COUNT_TOLERANCE
    if model_id in ROUNDED_PUBLISHED_COUNTS:
        tolerance = ROUNDED_COUNT_TOLERANCE
    elif model_id in SHAPES_WITHOUT_BIASES:
        tolerance = BIASES_LEFT_OUT_TOLERANCE
    elif model_id in WITH_VISION_ENCODER:
        tolerance = VISION_ENCODER_TOLERANCE
    assert computed == pytest.approx(m.published_param_count, rel=tolerance)


def test_deepseek_v3_published_count_excludes_mtp() -> None:
    # 671B is the main model; the HF checkpoint's 685B adds the multi-token-prediction layer.
    m = _models()["deepseek-v3"]
    assert m.num_layers == 61
    assert m.published_param_count == 671_026_419_200

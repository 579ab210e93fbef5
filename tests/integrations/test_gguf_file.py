"""GGUF headers (integrations/gguf_file.py), on files written with gguf-py's GGUFWriter.

Two kinds of file: a tiny llama GGUF with real (zero) tensor data in Q4_K, Q6_K and F32, and a
full-size Llama-3-8B Q4_K_M whose data section is a hole in the file (a real header and tensor
table, no disk blocks), so the estimate from the file can be compared with the catalogue.
"""

from __future__ import annotations

import pytest
from model_files import gguf_tensor_bytes, write_gguf

from rigplan import arch
from rigplan.catalog import load_catalog
from rigplan.errors import DataFileError
from rigplan.estimate import estimate
from rigplan.integrations.gguf_file import read_gguf_header
from rigplan.integrations.sources import ModelSourceWarning, file_weights, load_model_source, resolve_source
from rigplan.quant import get_quant, tensor_types, weights_bytes
from rigplan.units import GIB

gguf = pytest.importorskip("gguf")
T = gguf.GGMLQuantizationType
MOSTLY_Q4_K_M = 15  # gguf LlamaFileType

# A tiny llama: rows of 256 so every k-quant block fits.
TINY = {"hidden": 256, "layers": 2, "heads": 4, "kv": 2, "ffn": 512, "vocab": 512}


def tiny_tensors():
    d, f, v, kv = TINY["hidden"], TINY["ffn"], TINY["vocab"], TINY["kv"] * TINY["hidden"] // TINY["heads"]
    out = [("token_embd.weight", (v, d), T.Q4_K)]
    for i in range(TINY["layers"]):
        # llama.cpp's Q4_K_M gives attn_v and ffn_down Q6_K on its "more bits" layers: with 2
        # layers that is layer 1 (i >= 7n/8), not layer 0 (use_more_bits in llama-quant.cpp).
        more = T.Q6_K if i == 1 else T.Q4_K
        out += [
            (f"blk.{i}.attn_q.weight", (d, d), T.Q4_K),
            (f"blk.{i}.attn_k.weight", (kv, d), T.Q4_K),
            (f"blk.{i}.attn_v.weight", (kv, d), more),
            (f"blk.{i}.attn_output.weight", (d, d), T.Q4_K),
            (f"blk.{i}.ffn_gate.weight", (f, d), T.Q4_K),
            (f"blk.{i}.ffn_up.weight", (f, d), T.Q4_K),
            (f"blk.{i}.ffn_down.weight", (d, f), more),
            (f"blk.{i}.attn_norm.weight", (d,), T.F32),
            (f"blk.{i}.ffn_norm.weight", (d,), T.F32),
        ]
    out += [("output_norm.weight", (d,), T.F32), ("output.weight", (v, d), T.Q6_K)]
    return out


def tiny_metadata(**extra):
    return {
        "general.name": "tiny-llama",
        "llama.block_count": TINY["layers"],
        "llama.context_length": 4096,
        "llama.embedding_length": TINY["hidden"],
        "llama.feed_forward_length": TINY["ffn"],
        "llama.attention.head_count": TINY["heads"],
        "llama.attention.head_count_kv": TINY["kv"],
        "llama.vocab_size": TINY["vocab"],
        "llama.rope.freq_base": 500000.0,
        **extra,
    }


@pytest.fixture
def tiny_gguf(tmp_path):
    path = tmp_path / "tiny-Q4_K_M.gguf"
    write_gguf(path, "llama", tiny_metadata(), tiny_tensors(), file_type=MOSTLY_Q4_K_M)
    return path


def _bytes(name_filter=lambda n: True):
    return sum(gguf_tensor_bytes(t, 1 if len(s) == 1 else s[0], s[-1]) for n, s, t in tiny_tensors() if name_filter(n))


def test_tiny_gguf_header_gives_shapes_types_and_sizes(tiny_gguf):
    source = resolve_source(str(tiny_gguf))
    m = source.model
    assert (m.architecture, m.hidden_size, m.num_layers, m.num_heads, m.num_kv_heads, m.ffn_size, m.vocab_size) == (
        "LlamaForCausalLM",
        256,
        2,
        4,
        2,
        512,
        512,
    )
    assert (m.max_context, m.tie_embeddings, m.ffn_kind, m.name) == (4096, False, "gated", "tiny-llama")
    assert source.quant_id == "q4_k_m" and source.kind == "gguf"
    assert source.dtypes == {
        "q4_k": sum(s[0] * s[1] for _, s, t in tiny_tensors() if t == T.Q4_K),
        "q6_k": sum(s[0] * s[1] for _, s, t in tiny_tensors() if t == T.Q6_K),
        "f32": 5 * 256,
    }
    assert set(source.dtypes) == {"q4_k", "q6_k", "f32"}
    assert source.parameter_count == arch.count_parameters(m)
    w = source.weights
    # Q4_K: 144 bytes per 256 weights, Q6_K: 210, F32: 4 per weight (ggml-common.h).
    assert w.per_layer == {i: _bytes(lambda n, i=i: n.startswith(f"blk.{i}.")) for i in range(2)}
    assert w.other == {"token_embd": 512 * 144, "output": 512 * 210, "output_norm": 256 * 4}
    assert w.total_bytes == _bytes() == read_gguf_header(tiny_gguf).tensor_bytes


def test_tiny_gguf_types_match_llama_cpps_q4_k_m_rules(tiny_gguf):
    # The tiny file uses llama.cpp's Q4_K_M choices for a 2-layer model, so rigplan's formula
    # (quant.py, a copy of llama_tensor_get_type) gives exactly its size.
    source = resolve_source(str(tiny_gguf))
    model = source.model
    types_ = tensor_types(arch.tensors(model), get_quant("q4_k_m"), model)
    by_name = dict(zip((t.name for t in arch.tensors(model)), types_, strict=True))
    assert (by_name["blk.0.attn_v"], by_name["blk.1.attn_v"], by_name["output"]) == ("q4_k", "q6_k", "q6_k")
    assert source.weights.total_bytes == weights_bytes(model, get_quant("q4_k_m"))


def test_file_weights_apply_only_to_the_files_own_quant(tiny_gguf):
    assert file_weights(str(tiny_gguf)).quant_id == "q4_k_m"
    assert file_weights(str(tiny_gguf), "Q4_K_M") is not None
    assert file_weights(str(tiny_gguf), "q8_0") is None


def llama_3_8b_q4_k_m(path):
    """A Llama-3-8B Q4_K_M GGUF: llama.cpp's tensor names, shapes and Q4_K_M types, sparse data."""
    m = load_catalog().models["llama-3-8b"]
    ts = arch.tensors(m)
    names = {"norm_0": "attn_norm", "norm_1": "ffn_norm"}
    tensors = []
    for t, ty in zip(ts, tensor_types(ts, get_quant("q4_k_m"), m), strict=True):
        stem, _, short = t.name.rpartition(".")
        name = (f"{stem}." if stem else "") + names.get(short, short) + ".weight"
        tensors.append((name, t.shape, T[ty.upper()]))
    meta = {
        "general.name": "Meta-Llama-3-8B",
        "llama.block_count": 32,
        "llama.context_length": 8192,
        "llama.embedding_length": 4096,
        "llama.feed_forward_length": 14336,
        "llama.attention.head_count": 32,
        "llama.attention.head_count_kv": 8,
        "llama.vocab_size": 128256,
        "llama.rope.dimension_count": 128,
    }
    return write_gguf(path, "llama", meta, tensors, file_type=MOSTLY_Q4_K_M, sparse=True)


def test_full_size_gguf_estimate_agrees_with_the_catalogue(tmp_path):
    path = tmp_path / "Meta-Llama-3-8B.Q4_K_M.gguf"
    data_bytes = llama_3_8b_q4_k_m(path)
    source = resolve_source(str(path))
    assert source.parameter_count == 8_030_261_248  # the published count
    # llama-bench and llama-quantize print 4.58 GiB for Llama-3-8B Q4_K_M (calibration/
    # measurements/gguf_sizes.csv); the bar is 2 %.
    assert source.weights.total_bytes == data_bytes
    assert data_bytes / GIB == pytest.approx(4.58, rel=0.02)
    for engine_rig in [("llama.cpp", "rtx-4090"), ("llama.cpp", "rtx-4090 + rtx-3090")]:
        a = estimate(str(path), engine_rig[1], engine=engine_rig[0], context=8192).to_dict()
        b = estimate("llama-3-8b", engine_rig[1], engine=engine_rig[0], context=8192).to_dict()
        assert a["memory"] == b["memory"] and a["fits"] == b["fits"]


def test_estimate_uses_the_files_real_tensor_sizes(tiny_gguf, tmp_path):
    # Types no llama.cpp mix would choose: every matrix Q6_K.  The estimate must still report
    # the file's bytes, not the formula's.
    odd = tmp_path / "odd.gguf"
    tensors = [(n, s, T.Q6_K if len(s) == 2 else t) for n, s, t in tiny_tensors()]
    total = write_gguf(odd, "llama", tiny_metadata(), tensors, file_type=MOSTLY_Q4_K_M)
    e = estimate(str(odd), "rtx-4090", context=1024)
    assert e.memory.weights_bytes == total
    assert e.quant.id == "q4_k_m"


def test_gemma2_gguf_sets_the_sliding_window_pattern(tmp_path):
    d = 256
    tensors = [("token_embd.weight", (512, d), T.Q8_0)]
    for i in range(2):
        tensors += [
            (f"blk.{i}.attn_q.weight", (d, d), T.Q8_0),
            (f"blk.{i}.attn_k.weight", (d, d), T.Q8_0),
            (f"blk.{i}.attn_v.weight", (d, d), T.Q8_0),
            (f"blk.{i}.attn_output.weight", (d, d), T.Q8_0),
            (f"blk.{i}.ffn_gate.weight", (512, d), T.Q8_0),
            (f"blk.{i}.ffn_up.weight", (512, d), T.Q8_0),
            (f"blk.{i}.ffn_down.weight", (d, 512), T.Q8_0),
            (f"blk.{i}.attn_norm.weight", (d,), T.F32),
        ]
    tensors.append(("output_norm.weight", (d,), T.F32))
    meta = {
        "gemma2.block_count": 2,
        "gemma2.context_length": 8192,
        "gemma2.embedding_length": d,
        "gemma2.feed_forward_length": 512,
        "gemma2.attention.head_count": 4,
        "gemma2.attention.head_count_kv": 4,
        "gemma2.attention.key_length": 64,
        "gemma2.attention.sliding_window": 4096,
    }
    path = tmp_path / "gemma2.gguf"
    write_gguf(path, "gemma2", meta, tensors, file_type=7)  # MOSTLY_Q8_0
    source = resolve_source(str(path))
    m = source.model
    assert (m.architecture, m.tie_embeddings, m.sliding_window, m.sliding_window_pattern) == (
        "Gemma2ForCausalLM",
        True,
        4096,
        2,
    )
    assert m.vocab_size == 512 and source.quant_id == "q8_0"


def test_unknown_gguf_architecture_warns(tmp_path):
    path = tmp_path / "new.gguf"
    meta = {k.replace("llama.", "newarch."): v for k, v in tiny_metadata().items()}
    write_gguf(path, "newarch", meta, tiny_tensors(), file_type=MOSTLY_Q4_K_M)
    with pytest.warns(ModelSourceWarning, match="'newarch' is not one rigplan knows"):
        model = load_model_source(str(path))
    assert model.architecture == "LlamaForCausalLM"


def test_gguf_missing_a_key_names_it(tmp_path):
    path = tmp_path / "bad.gguf"
    meta = tiny_metadata()
    del meta["llama.attention.head_count"]
    write_gguf(path, "llama", meta, tiny_tensors(), file_type=MOSTLY_Q4_K_M)
    with pytest.raises(DataFileError, match=r"llama\.attention\.head_count: missing") as exc:
        resolve_source(str(path))
    assert exc.value.path == str(path)


def test_gguf_block_count_must_match_the_tensor_table(tmp_path):
    path = tmp_path / "bad.gguf"
    write_gguf(path, "llama", tiny_metadata(**{"llama.block_count": 3}), tiny_tensors(), file_type=MOSTLY_Q4_K_M)
    with pytest.raises(DataFileError, match=r"llama\.block_count"):
        resolve_source(str(path))


def test_not_a_gguf_file(tmp_path):
    path = tmp_path / "fake.gguf"
    path.write_bytes(b"NOPE" + b"\0" * 64)
    with pytest.raises(DataFileError, match="header: not a readable GGUF file"):
        resolve_source(str(path))


def test_split_gguf_reads_every_part(tmp_path):
    half = len(tiny_tensors()) // 2
    first, second = tiny_tensors()[:half], tiny_tensors()[half:]
    split = {"split.count": 2, "split.tensors.count": len(tiny_tensors())}
    write_gguf(
        tmp_path / "tiny-00001-of-00002.gguf", "llama", {**tiny_metadata(), **split}, first, file_type=MOSTLY_Q4_K_M
    )
    write_gguf(tmp_path / "tiny-00002-of-00002.gguf", "llama", {"split.count": 2}, second, file_type=None)
    source = resolve_source(str(tmp_path / "tiny-00001-of-00002.gguf"))
    assert source.weights.total_bytes == _bytes()
    # A folder holding one (split) GGUF model reads as that model.
    assert resolve_source(str(tmp_path)).weights.total_bytes == _bytes()
    (tmp_path / "tiny-00002-of-00002.gguf").unlink()
    with pytest.raises(DataFileError, match=r"part tiny-00002-of-00002\.gguf is missing"):
        read_gguf_header(tmp_path / "tiny-00001-of-00002.gguf")

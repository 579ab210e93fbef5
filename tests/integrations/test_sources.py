"""Models from config.json files and model folders (integrations/sources.py).

Configs are the published config.json values of catalogue models (tests/integrations/
model_files.py names each repo); a model read from its file must have the catalogue's shapes,
and estimates from the file must equal the catalogue's.
"""

from __future__ import annotations

import dataclasses
import json
import struct

import pytest
from model_files import (
    LLAMA_3_8B,
    PUBLISHED_CONFIGS,
    gptq_tensors,
    llama_hf_tensors,
    write_config,
    write_model_folder,
    write_safetensors,
)

from rigplan import arch
from rigplan.catalog import load_catalog
from rigplan.errors import DataFileError, UnsupportedError
from rigplan.estimate import estimate
from rigplan.integrations.sources import (
    ModelSourceWarning,
    load_model_source,
    quant_from_config,
    resolve_source,
)

# Shape fields a config must reproduce exactly (ids, names and sources differ by design).
SHAPE_FIELDS = [
    "architecture",
    "hidden_size",
    "num_layers",
    "num_heads",
    "num_kv_heads",
    "ffn_size",
    "vocab_size",
    "tie_embeddings",
    "max_context",
    "ffn_kind",
    "attention_bias",
    "moe_num_experts",
    "moe_active_experts",
    "moe_shared_experts",
    "moe_ffn_size",
    "moe_first_dense_layers",
    "q_lora_rank",
    "kv_lora_rank",
    "qk_rope_head_dim",
    "qk_nope_head_dim",
    "v_head_dim",
    "sliding_window",
    "sliding_window_pattern",
]


@pytest.mark.parametrize("model_id", sorted(PUBLISHED_CONFIGS), ids=str)
def test_published_config_gives_the_catalogue_shapes(tmp_path, model_id):
    path = write_config(tmp_path / model_id, PUBLISHED_CONFIGS[model_id])
    from_file = load_model_source(str(path))
    catalogue = load_catalog().models[model_id]
    assert from_file is not None
    assert {f: getattr(from_file, f) for f in SHAPE_FIELDS} == {f: getattr(catalogue, f) for f in SHAPE_FIELDS}
    assert arch.head_dim(from_file) == arch.head_dim(catalogue)
    assert arch.count_parameters(from_file) == arch.count_parameters(catalogue)


# (engine, rig, quant, context): the catalogue's llama-3-8b against the same model from its file.
AGREEMENT_CASES = [
    ("llama.cpp", "rtx-4090", None, 8192),
    ("llama.cpp", "2x rtx-3090", "q8_0", 4096),
    ("vllm", "rtx-4090", "bf16", 8192),
    ("vllm", "2x rtx-4090", "fp8", 8192),
    ("llama.cpp", "rtx-4090 + rtx-3090", "f16", 2048),
    ("llama.cpp", "rtx-3080", "q4_k_m", 8192),  # does not fit on 10 GB: both must say so
]


def _memory(d):
    m = d["memory"]
    return m["weights_bytes"], m["kv_bytes_per_token"], m["per_gpu"], m["kv_pool_tokens"], d["fits"]


@pytest.mark.parametrize("engine,rig,quant,context", AGREEMENT_CASES, ids=lambda v: str(v))
def test_config_json_estimate_equals_the_catalogue(tmp_path, engine, rig, quant, context):
    path = write_config(tmp_path / "Meta-Llama-3-8B", LLAMA_3_8B)
    a = estimate(str(path), rig, engine=engine, quant=quant, context=context).to_dict()
    b = estimate("llama-3-8b", rig, engine=engine, quant=quant, context=context).to_dict()
    assert _memory(a) == _memory(b)


def test_model_folder_counts_parameters_from_safetensors_headers(tmp_path):
    # Meta-Llama-3-8B: 4 shards in the published repo; header-only files (no tensor data).
    folder = write_model_folder(tmp_path / "Meta-Llama-3-8B", LLAMA_3_8B, llama_hf_tensors(LLAMA_3_8B), shards=4)
    source = resolve_source(str(folder))
    assert source is not None and source.kind == "folder"
    # 8,030,261,248: the published count (thamada/modelQuery README, keras-hub preset)
    assert source.parameter_count == 8_030_261_248
    assert source.dtypes == {"BF16": 8_030_261_248}
    assert source.model.published_param_count == load_catalog().models["llama-3-8b"].published_param_count
    a = estimate(str(folder), "rtx-4090", engine="vllm", context=8192).to_dict()
    b = estimate("llama-3-8b", "rtx-4090", engine="vllm", context=8192).to_dict()
    assert _memory(a) == _memory(b)


def test_tiny_model_folder_with_data_matches_the_shape_arithmetic(tmp_path):
    tiny = {
        **LLAMA_3_8B,
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "num_hidden_layers": 2,
        "vocab_size": 256,
    }
    folder = write_model_folder(tmp_path / "tiny", tiny, llama_hf_tensors(tiny), shards=2, with_data=True)
    source = resolve_source(str(folder / "config.json"))  # the config.json path reads the folder too
    assert source.kind == "folder"
    assert source.parameter_count == arch.count_parameters(source.model)


def test_single_safetensors_file_without_index(tmp_path):
    tiny = {
        **LLAMA_3_8B,
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "num_hidden_layers": 2,
        "vocab_size": 256,
    }
    folder = tmp_path / "one"
    write_config(folder, tiny)
    write_safetensors(folder / "model.safetensors", llama_hf_tensors(tiny), with_data=True)
    source = resolve_source(str(folder / "model.safetensors"))
    assert source.parameter_count == arch.count_parameters(source.model)


def test_gptq_folder_is_int4_with_the_unquantised_parameter_count(tmp_path):
    config = {
        **LLAMA_3_8B,
        "torch_dtype": "float16",
        "quantization_config": {"quant_method": "gptq", "bits": 4, "group_size": 128, "desc_act": False},
    }
    folder = write_model_folder(tmp_path / "Llama-3-8B-GPTQ", config, gptq_tensors(config), shards=1)
    source = resolve_source(str(folder))
    assert source.quant_id == "int4"
    assert source.parameter_count == 8_030_261_248
    assert source.dtypes["I32"] > 0 and "F16" in source.dtypes


@pytest.mark.parametrize(
    "quantization,expected",
    [
        ({"quant_method": "awq", "bits": 4, "group_size": 128, "version": "gemm"}, "int4"),
        ({"quant_method": "gptq", "bits": 8}, "int8"),
        ({"quant_method": "bitsandbytes", "load_in_4bit": True, "bnb_4bit_quant_type": "nf4"}, "nf4"),
        ({"quant_method": "bitsandbytes", "load_in_8bit": True}, "int8"),
        ({"quant_method": "fp8", "fmt": "e4m3", "weight_block_size": [128, 128]}, "fp8"),
        ({"quant_method": "compressed-tensors", "format": "float-quantized"}, "fp8"),
        (
            {
                "quant_method": "compressed-tensors",
                "format": "pack-quantized",
                "config_groups": {"group_0": {"weights": {"num_bits": 4, "type": "int"}}},
            },
            "int4",
        ),
        ({"quant_method": "compressed-tensors", "format": "int-quantized"}, "int8"),
        ({"quant_method": "exl2", "bits": 4.65}, "exl2-4.65"),
        ({}, None),
    ],
    ids=["awq", "gptq-8bit", "bnb-nf4", "bnb-int8", "fp8", "ct-fp8", "ct-w4a16", "ct-int8", "exl2", "none"],
)
def test_quantization_config_maps_to_a_quant(quantization, expected):
    assert quant_from_config(quantization) == expected


def test_deepseek_fp8_checkpoint_records_fp8(tmp_path):
    source = resolve_source(str(write_config(tmp_path / "dsv3", PUBLISHED_CONFIGS["deepseek-v3"])))
    assert source.quant_id == "fp8" and source.model.release_dtype == "fp8"
    assert source.model.is_mla and source.model.is_moe


def test_multimodal_config_reads_the_text_config(tmp_path):
    config = {
        "architectures": ["LlavaForConditionalGeneration"],
        "model_type": "llava",
        "text_config": {**LLAMA_3_8B, "architectures": None},
        "vision_config": {"hidden_size": 1024},
    }
    with pytest.warns(ModelSourceWarning, match="LlavaForConditionalGeneration is not an architecture"):
        model = load_model_source(str(write_config(tmp_path / "llava", config)))
    assert model.architecture == "LlamaForCausalLM" and model.num_layers == 32


def test_unknown_architecture_falls_back_with_a_warning(tmp_path):
    config = {**LLAMA_3_8B, "architectures": ["FancyNewForCausalLM"], "model_type": "fancy"}
    path = write_config(tmp_path / "fancy", config)
    with pytest.warns(ModelSourceWarning, match="FancyNewForCausalLM is not an architecture rigplan knows"):
        e = estimate(str(path), "rtx-4090")
    assert e.fits and e.model.architecture == "LlamaForCausalLM"


def test_unknown_architecture_without_shape_fields_is_refused(tmp_path):
    path = write_config(
        tmp_path / "odd", {"architectures": ["MambaForCausalLM"], "d_model": 2560, "n_layer": 64, "vocab_size": 50280}
    )
    with pytest.raises(UnsupportedError, match=r"MambaForCausalLM is not an architecture rigplan knows.*lacks"):
        resolve_source(str(path))


def test_custom_code_configs_are_read_never_run(tmp_path):
    config = {**LLAMA_3_8B, "auto_map": {"AutoModelForCausalLM": "modeling_evil.EvilForCausalLM"}}
    folder = tmp_path / "custom"
    write_config(folder, config)
    (folder / "modeling_evil.py").write_text("raise SystemExit('executed!')\n")
    source = resolve_source(str(folder / "config.json"))
    assert any("never runs it" in n for n in source.notes)


@pytest.mark.parametrize(
    "mutate,field,message",
    [
        (lambda c: c.pop("num_hidden_layers"), "num_hidden_layers", "missing"),
        (lambda c: c.update(hidden_size="4096"), "hidden_size", "expected a whole number"),
        (lambda c: c.update(num_attention_heads=-32), "num_attention_heads", "expected a whole number"),
        (lambda c: c.update(num_key_value_heads=5), "num_key_value_heads", "does not divide 32"),
        (lambda c: c.update(quantization_config=["gptq"]), "quantization_config", "expected an object"),
    ],
    ids=["missing-layers", "string-hidden", "negative-heads", "kv-heads", "quant-config-list"],
)
def test_malformed_config_names_the_file_and_field(tmp_path, mutate, field, message):
    config = json.loads(json.dumps(LLAMA_3_8B))
    mutate(config)
    path = write_config(tmp_path / "bad", config)
    with pytest.raises(DataFileError, match=message) as exc:
        resolve_source(str(path))
    assert exc.value.field == field and exc.value.path == str(path)


def test_invalid_json_names_the_file(tmp_path):
    path = tmp_path / "config.json"
    path.write_text('{"hidden_size": 4096,', encoding="utf-8")
    with pytest.raises(DataFileError, match=r"config\.json: json: not valid JSON"):
        resolve_source(str(path))


def test_truncated_safetensors_header_names_the_shard(tmp_path):
    folder = write_model_folder(tmp_path / "m", LLAMA_3_8B, llama_hf_tensors(LLAMA_3_8B), shards=2)
    shard = folder / "model-00002-of-00002.safetensors"
    raw = shard.read_bytes()
    (length,) = struct.unpack("<Q", raw[:8])
    shard.write_bytes(raw[: 8 + length // 2])
    with pytest.raises(DataFileError, match="truncated") as exc:
        resolve_source(str(folder))
    assert exc.value.path == str(shard)


def test_index_listing_a_missing_shard_is_refused(tmp_path):
    folder = write_model_folder(tmp_path / "m", LLAMA_3_8B, llama_hf_tensors(LLAMA_3_8B), shards=2)
    (folder / "model-00001-of-00002.safetensors").unlink()
    with pytest.raises(DataFileError, match="listed but not present"):
        resolve_source(str(folder))


def test_missing_path_and_plain_names(tmp_path):
    with pytest.raises(DataFileError, match="no such file"):
        resolve_source(str(tmp_path / "nope" / "config.json"))
    assert resolve_source("definitely-not-a-model") is None
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataFileError, match=r"no config\.json and no \.gguf"):
        resolve_source(str(empty))


def test_catalogue_id_wins_over_a_same_named_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_config(tmp_path / "llama-3-8b", {**LLAMA_3_8B, "num_hidden_layers": 2})
    assert estimate("llama-3-8b", "rtx-4090").model.num_layers == 32
    assert estimate("./llama-3-8b", "rtx-4090").model.num_layers == 2


def test_edited_file_is_read_again(tmp_path):
    path = write_config(tmp_path / "m", LLAMA_3_8B)
    assert resolve_source(str(path)).model.num_layers == 32
    write_config(tmp_path / "m", {**LLAMA_3_8B, "num_hidden_layers": 16, "max_position_embeddings": 4096})
    assert resolve_source(str(path)).model.num_layers == 16


def test_source_dict_is_json(tmp_path):
    folder = write_model_folder(tmp_path / "m", LLAMA_3_8B, llama_hf_tensors(LLAMA_3_8B), shards=1)
    d = resolve_source(str(folder)).to_dict()
    assert json.loads(json.dumps(d))["parameter_count"] == 8_030_261_248


def test_model_records_stay_frozen(tmp_path):
    model = load_model_source(str(write_config(tmp_path / "m", LLAMA_3_8B)))
    with pytest.raises(dataclasses.FrozenInstanceError):
        model.num_layers = 1  # type: ignore[misc]

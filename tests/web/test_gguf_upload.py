"""A GGUF header as the model: POST /api/models/upload-gguf with the first bytes of a file
(written by the gguf package's GGUFWriter), bounded parsing, and one clear error naming the
field for a cut, forged or foreign file."""

from __future__ import annotations

import struct
import time

import pytest
from gguf_samples import CONTEXT, HIDDEN, KV_HEADS, LAYERS, header_only, tiny_llama_gguf

pytest.importorskip("gguf")

UPLOAD = "/api/models/upload-gguf"
OCTETS = {"Content-Type": "application/octet-stream"}


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    path = tmp_path_factory.mktemp("gguf") / "tiny.gguf"
    whole = tiny_llama_gguf(path)
    return whole, header_only(path)


def test_a_header_alone_is_enough_and_its_id_works_everywhere(client, sample):
    whole, header = sample
    assert len(header) < len(whole) // 100  # no tensor data sent
    up = client.post(UPLOAD, params={"name": "tiny"}, content=header, headers=OCTETS)
    assert up.status_code == 200, up.text
    body = up.json()
    model = body["model"]
    assert body["id"].startswith("upload-")
    assert (model["hidden_size"], model["num_layers"], model["num_kv_heads"]) == (HIDDEN, LAYERS, KV_HEADS)
    assert model["max_context"] == CONTEXT and model["architecture"] == "LlamaForCausalLM"
    est = client.get("/api/estimate", params={"model": body["id"], "rig": "rtx-4090", "quant": "f16"})
    assert est.status_code == 200 and est.json()["fits"] is True
    # The whole file gives the same model (its tensor data is never read).
    again = client.post(UPLOAD, params={"name": "tiny"}, content=whole, headers=OCTETS).json()
    assert again["model"] | {"id": None} == model | {"id": None}


@pytest.mark.parametrize(
    "cut,field",
    [(40, "header"), (200, "llama.context_length"), (600, "tokenizer.ggml.tokens"), (-8, "tensor table")],
    ids=["counts", "a-number", "token-table", "tensor-table"],
)
def test_a_cut_header_names_the_field_it_ends_in(client, sample, cut, field):
    header = sample[1][:cut]
    r = client.post(UPLOAD, params={"name": "cut"}, content=header, headers=OCTETS)
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert f": {field}: the header ends inside this field" in detail and "\n" not in detail


@pytest.mark.parametrize(
    "content,words",
    [(b"", "empty"), (b"PK\x03\x04 a zip file, not GGUF", "GGUF magic"), (b"GGUF" + b"\xff" * 60, "version")],
    ids=["empty", "zip", "bad-version"],
)
def test_a_foreign_file_is_one_clear_error(client, content, words):
    r = client.post(UPLOAD, params={"name": "x"}, content=content, headers=OCTETS)
    assert r.status_code == 422, r.text
    assert words in r.json()["detail"]


def test_a_forged_array_length_is_refused_at_once(client, sample):
    header = sample[1]
    at = header.index(b"tokenizer.ggml.tokens") + len(b"tokenizer.ggml.tokens") + 8  # past type, item type
    forged = header[:at] + struct.pack("<Q", 2**62) + header[at + 8 :]
    t0 = time.monotonic()
    r = client.post(UPLOAD, params={"name": "forged"}, content=forged, headers=OCTETS)
    assert time.monotonic() - t0 < 2
    assert r.status_code == 422 and "tokenizer.ggml.tokens" in r.json()["detail"]


def test_the_value_budget_bounds_the_work(monkeypatch, sample):
    from rigplan import DataFileError
    from rigplan.integrations import gguf_upload

    monkeypatch.setattr(gguf_upload, "MAX_HEADER_ITEMS", 10)
    gguf_upload._header_reader_class.cache_clear()
    try:
        with pytest.raises(DataFileError, match="more than 10 values"):
            gguf_upload.read_gguf_header_bytes(sample[1], "test")
    finally:
        gguf_upload._header_reader_class.cache_clear()


def test_bodies_past_the_header_limit_are_refused_before_parsing(client):
    from rigplan import GGUF_HEADER_LIMIT_BYTES

    r = client.post(UPLOAD, params={"name": "big"}, content=b"\0" * (GGUF_HEADER_LIMIT_BYTES + 1), headers=OCTETS)
    assert r.status_code == 413
    # Other routes keep their own 64 KiB limit.
    assert client.post("/api/models/upload", content=b"{" * 70_000, headers=OCTETS).status_code == 413


def test_the_schema_declares_the_raw_body(client):
    op = client.get("/openapi.json").json()["paths"][UPLOAD]["post"]
    assert "application/octet-stream" in op["requestBody"]["content"]
    assert {"413", "422"} <= set(op["responses"])

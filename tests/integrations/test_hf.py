"""Hugging Face repo ids (integrations/hf.py) against a Hub cache laid out as huggingface_hub
lays it out; HF_HUB_OFFLINE=1 (tests/conftest.py), and the two Hub calls that would use the
network are replaced where a test needs them."""

from __future__ import annotations

import json

import pytest
from model_files import LLAMA_3_8B, llama_hf_tensors

from rigplan.errors import RigplanError
from rigplan.estimate import estimate
from rigplan.integrations import hf
from rigplan.integrations.sources import looks_like_repo_id, resolve_source

hub = pytest.importorskip("huggingface_hub")
COMMIT = "8cde5ca8380496c9a6cc7ef3a8b46a0372a1d920"  # a 40-hex commit id, as in the Hub cache
REPO = "acme/llama-3-8b-finetune"


@pytest.fixture
def hub_cache(tmp_path, monkeypatch):
    """A Hub cache holding REPO's config.json at COMMIT (refs/main points at it)."""
    root = tmp_path / "hub"
    repo = root / f"models--{REPO.replace('/', '--')}"
    (repo / "snapshots" / COMMIT).mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(COMMIT)
    (repo / "snapshots" / COMMIT / "config.json").write_text(json.dumps(LLAMA_3_8B))
    monkeypatch.setenv("HF_HUB_CACHE", str(root))
    return root


def _header_table():
    return {n: {"dtype": d, "shape": s} for n, (d, s) in llama_hf_tensors(LLAMA_3_8B).items()}


@pytest.mark.parametrize(
    "text,expected",
    [
        ("meta-llama/Llama-3.1-8B", True),
        ("Qwen/Qwen2.5-7B-Instruct@main", True),
        ("llama-3-8b", False),
        ("./models/x", False),
        ("org/model.gguf", False),
        ("a/b/c", False),
    ],
    ids=["repo", "repo-at-rev", "catalogue-id", "relative-path", "gguf-path", "three-parts"],
)
def test_repo_id_form(text, expected):
    assert looks_like_repo_id(text) is expected


def test_cached_config_offline_uses_the_cache(hub_cache):
    source = resolve_source(REPO)
    assert source.kind == "hf" and source.model.hf_repo == REPO and source.launch_path == REPO
    assert source.model.num_layers == 32
    assert source.parameter_count is None  # offline, no cached headers: config arithmetic
    assert any("offline" in n for n in source.notes)


def test_cached_headers_give_the_exact_count_offline(hub_cache, tmp_path):
    cache = hf._header_cache_file(REPO, COMMIT)
    cache.parent.mkdir(parents=True)
    cache.write_text(json.dumps(_header_table()))
    source = resolve_source(REPO)
    assert source.parameter_count == 8_030_261_248
    a = estimate(REPO, "rtx-4090", context=8192).to_dict()
    b = estimate("llama-3-8b", "rtx-4090", context=8192).to_dict()
    assert a["memory"] == b["memory"]


def test_offline_without_cache_says_what_to_do():
    with pytest.raises(hf.HubError, match=r"not in the local Hugging Face cache and HF_HUB_OFFLINE is set.*local"):
        resolve_source("acme/never-downloaded")


def test_online_headers_are_fetched_once_and_cached(hub_cache, monkeypatch):
    from huggingface_hub.utils import SafetensorsFileMetadata, SafetensorsRepoMetadata, TensorInfo

    monkeypatch.delenv("HF_HUB_OFFLINE")
    config_path = hub_cache / f"models--{REPO.replace('/', '--')}" / "snapshots" / COMMIT / "config.json"
    calls = []
    monkeypatch.setattr(hub, "hf_hub_download", lambda *a, **k: str(config_path))

    def metadata(repo_id, revision=None, **_):
        calls.append((repo_id, revision))
        tensors = {
            n: TensorInfo(dtype=v["dtype"], shape=v["shape"], data_offsets=(0, 0)) for n, v in _header_table().items()
        }
        f = SafetensorsFileMetadata(metadata={}, tensors=tensors)
        return SafetensorsRepoMetadata(metadata=None, sharded=False, weight_map={}, files_metadata={"m": f})

    monkeypatch.setattr(hub, "get_safetensors_metadata", metadata)
    assert resolve_source(REPO).parameter_count == 8_030_261_248
    assert calls == [(REPO, COMMIT)]
    assert hf._header_cache_file(REPO, COMMIT).is_file()
    hf_headers, note = hf.safetensors_headers(REPO, COMMIT)
    assert len(calls) == 1 and "rigplan cache" in note and len(hf_headers) == len(_header_table())


def _hub_error(cls, message):
    # huggingface_hub's HTTP errors need a response object to be built normally.
    err = cls.__new__(cls)
    Exception.__init__(err, message)
    return err


@pytest.mark.parametrize(
    "error,match",
    [
        ("GatedRepoError", r"gated repo: accept its licence at https://huggingface.co/acme/gated.*hf auth login"),
        ("RepositoryNotFoundError", r"no such Hugging Face repo.*hf auth login"),
        ("RemoteEntryNotFoundError", r"has no config.json"),
    ],
    ids=["gated", "not-found", "no-config"],
)
def test_hub_errors_become_one_line_messages(monkeypatch, error, match):
    from huggingface_hub import errors

    def fail(*_a, **_k):
        raise _hub_error(getattr(errors, error), "401 Client Error")

    monkeypatch.setattr(hub, "hf_hub_download", fail)
    with pytest.raises(hf.HubError, match=match) as exc:
        resolve_source("acme/gated")
    assert isinstance(exc.value, RigplanError)


def test_cli_reports_a_hub_error_without_traceback(capsys):
    from rigplan.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["estimate", "acme/never-downloaded", "--rig", "rtx-4090"])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and err.startswith("rigplan: error: acme/never-downloaded") and "Traceback" not in err

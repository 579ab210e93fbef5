"""Models from the Hugging Face Hub: ``config.json`` and safetensors headers only.

``config.json`` comes through ``huggingface_hub.hf_hub_download`` into the ordinary Hub cache
(so a later offline run finds it); the safetensors headers come from
``huggingface_hub.get_safetensors_metadata`` (HTTP range requests for the first bytes of each
shard, no weights) and are kept as JSON in rigplan's own cache folder, keyed by the commit.
With ``HF_HUB_OFFLINE=1`` only caches are read.  Nothing from the repo is ever executed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ..errors import RigplanError
from .sources import ModelSource, TensorHeader, environ_flag, read_json, source_from_config, tensor_table

LOGIN_HINT = "log in with `hf auth login` (or set HF_TOKEN)"
# rigplan's cache of safetensors headers, under platformdirs' user cache dir.
HEADER_CACHE_FOLDER = "hf-safetensors"


class HubError(RuntimeError, RigplanError):
    """The Hub could not give a model's config: offline without a cache, gated, not found."""


def _offline() -> bool:
    return environ_flag("HF_HUB_OFFLINE")


# Seconds to wait for a TCP connection to the Hub before calling it unreachable: without this
# check huggingface_hub retries five times with back-off (~25 s) before failing.
HUB_CONNECT_TIMEOUT_S = 3.0


def _hub_reachable() -> bool:
    import os
    import socket
    from urllib.parse import urlparse

    endpoint = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    port = endpoint.port or (443 if endpoint.scheme == "https" else 80)
    try:
        with socket.create_connection((endpoint.hostname or "huggingface.co", port), timeout=HUB_CONNECT_TIMEOUT_S):
            return True
    except OSError:
        return False


def _hub_cache_dir() -> str | None:
    # Read at call time: huggingface_hub reads its constants once at import.
    if os.environ.get("HF_HUB_CACHE"):
        return os.environ["HF_HUB_CACHE"]
    if os.environ.get("HF_HOME"):
        return str(Path(os.environ["HF_HOME"]) / "hub")
    return None


def _header_cache_dir() -> Path:
    import platformdirs

    return Path(platformdirs.user_cache_dir("rigplan")) / HEADER_CACHE_FOLDER


def _split_revision(text: str) -> tuple[str, str | None]:
    repo, _, revision = text.partition("@")
    return repo, revision or None


def download_config(repo_id: str, revision: str | None = None) -> Path:
    """The repo's ``config.json`` from the Hub cache (downloading it when online).

    Raises:
        HubError: offline and not cached, gated, no such repo, no config.json.
    """
    try:
        import huggingface_hub as hub
        from huggingface_hub import errors
    except ImportError:  # pragma: no cover - huggingface_hub is in the [hf] extra
        raise HubError(
            f"{repo_id}: reading Hugging Face repos needs huggingface_hub: pip install 'rigplan[hf]'"
        ) from None
    offline = _offline()
    if not offline and not _hub_reachable():
        cached = hub.try_to_load_from_cache(repo_id, "config.json", cache_dir=_hub_cache_dir(), revision=revision)
        if isinstance(cached, str):
            return Path(cached)
        raise HubError(
            f"{repo_id}: the Hugging Face Hub could not be reached and the repo is not in the local cache; "
            "connect once, or pass a local config.json, model folder or .gguf path"
        )
    try:
        path = hub.hf_hub_download(
            repo_id,
            "config.json",
            revision=revision,
            cache_dir=_hub_cache_dir(),
            local_files_only=offline,
        )
    except errors.GatedRepoError:
        raise HubError(
            f"{repo_id} is a gated repo: accept its licence at https://huggingface.co/{repo_id} and {LOGIN_HINT}"
        ) from None
    except errors.RepositoryNotFoundError:
        raise HubError(
            f"{repo_id}: no such Hugging Face repo (a private one needs a login: {LOGIN_HINT}); "
            "`rigplan models` lists the catalogue ids"
        ) from None
    except errors.RevisionNotFoundError:
        raise HubError(f"{repo_id}: revision {revision!r} not found") from None
    except (errors.LocalEntryNotFoundError, errors.OfflineModeIsEnabled):
        why = "HF_HUB_OFFLINE is set" if offline else "the Hub could not be reached"
        raise HubError(
            f"{repo_id}: config.json is not in the local Hugging Face cache and {why}; "
            "run once with network access, or pass a local config.json, model folder or .gguf path"
        ) from None
    except errors.EntryNotFoundError:
        raise HubError(
            f"{repo_id} has no config.json (a GGUF-only repo? download the .gguf file and pass its path)"
        ) from None
    except errors.HfHubHTTPError as exc:
        raise HubError(f"{repo_id}: the Hub answered {exc}") from None
    except Exception as exc:  # network failures surface as the HTTP client's own errors
        raise HubError(f"{repo_id}: could not reach the Hugging Face Hub ({type(exc).__name__}: {exc})") from None
    if not isinstance(path, str | os.PathLike):  # pragma: no cover - dry_run is never asked for
        raise HubError(f"{repo_id}: unexpected answer from hf_hub_download")
    return Path(path)


def _commit_of(config_path: Path) -> str | None:
    # Hub cache layout: models--org--name/snapshots/<commit>/config.json
    parent = config_path.parent
    return parent.name if parent.parent.name == "snapshots" else None


def _header_cache_file(repo_id: str, commit: str) -> Path:
    return _header_cache_dir() / repo_id.replace("/", "--") / f"{commit}.json"


def safetensors_headers(repo_id: str, commit: str | None) -> tuple[dict[str, TensorHeader] | None, str]:
    """Tensor headers of the repo's safetensors files, and a note on where they came from.

    Cached per commit; offline without a cached copy (or for a repo without safetensors)
    the result is None and the parameter count falls back to config arithmetic.
    """
    cache_file = _header_cache_file(repo_id, commit) if commit else None
    if cache_file and cache_file.is_file():
        cached = read_json(cache_file)
        return tensor_table(cached, str(cache_file)), "safetensors headers (rigplan cache)"
    if _offline():
        return None, "offline and no cached safetensors headers: parameter count from config arithmetic"
    import huggingface_hub as hub
    from huggingface_hub import errors

    try:
        meta = hub.get_safetensors_metadata(repo_id, revision=commit)
    except errors.NotASafetensorsRepoError:
        return None, "no safetensors files in the repo: parameter count from config arithmetic"
    except Exception as exc:  # HTTP, parsing or network failure: the config alone still serves
        return None, f"safetensors headers unavailable ({type(exc).__name__}): parameter count from config arithmetic"
    table: dict[str, Any] = {}
    for file_meta in meta.files_metadata.values():
        for name, info in file_meta.tensors.items():
            table[name] = {"dtype": info.dtype, "shape": list(info.shape)}
    if cache_file:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        cache_file.write_text(json.dumps(table), encoding="utf-8")
    return tensor_table(table, f"{repo_id} safetensors headers"), "safetensors headers (Hub)"


def load_hf_source(text: str) -> ModelSource:
    """A :class:`ModelSource` for a Hugging Face repo id (``org/name`` or ``org/name@rev``).

    Raises:
        HubError: the config cannot be had (offline without a cache, gated, not found).
        DataFileError, UnsupportedError: as for a local config.json.
    """
    repo_id, revision = _split_revision(text)
    config_path = download_config(repo_id, revision)
    config = read_json(config_path)
    commit = _commit_of(config_path)
    tensors, note = safetensors_headers(repo_id, commit)
    where = f"{repo_id}/config.json" + (f"@{commit[:12]}" if commit else "")
    return source_from_config(
        config,
        where=where,
        model_id=text,
        kind="hf",
        launch_path=repo_id,
        tensors=tensors,
        extra_notes=(note,),
        hf_repo=repo_id,
    )

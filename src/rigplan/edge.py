"""The edge: names, paths, Hugging Face ids, GGUF headers, NVML and the user's calibration
become a request and a :class:`~rigplan.core.Context` for the pure core.

This is the only module below ``cli``/``web`` that reaches the machine (through
``integrations`` and the calibration store); the core and the planner receive what it returns.

>>> request = inference_request("llama-3-8b", "2x rtx-4090", engine="vllm")
>>> request.model.id, request.rig.gpu_count
('llama-3-8b', 2)
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from . import arch
from .calibration.load import load_profiles
from .calibration.serving_load import load_serving_profiles
from .catalog import load_catalog
from .catalog.load import build_record
from .catalog.records import Catalog, Model
from .core import Context
from .errors import DataFileError, InvalidValueError
from .planner import check_prices
from .requests import INFERENCE_OPTIONS, InferenceRequest, TrainingRequest
from .rig import Rig, check_network, parse_rig, resolve_model


def load_context(catalog: Catalog | None = None, *, use_user_calibration: bool = True) -> Context:
    """The catalogue, the shipped engine profiles and (unless told not to) the user's calibration.

    Raises:
        DataFileError: the stored calibration is corrupt (the message says how to reset it).
    """
    corrections: tuple[Any, ...] = ()
    if use_user_calibration:
        from .calibration.user import stored_corrections

        corrections = tuple(stored_corrections())
    from .catalog.support import load_support_rules

    return Context(
        catalog=catalog or load_catalog(),
        profiles=load_profiles(),
        user_corrections=corrections,
        support_rules=load_support_rules(),
        serving_profiles=load_serving_profiles(),
    )


def model_from_fields(fields: Mapping[str, Any]) -> Model:
    """A :class:`Model` from a dict of architecture fields (unknown keys are refused)."""
    defaults = {
        "id": "custom",
        "name": "custom model",
        "family": "custom",
        "hf_repo": "",
        "architecture": "LlamaForCausalLM",
        "tie_embeddings": False,
        "max_context": 131072,
        "published_param_count": 0,
        "source": "user-supplied fields",
        "as_of": None,
    }
    row = {**defaults, **dict(fields)}
    row["as_of"] = row["as_of"] or dt.date.today()
    if "num_kv_heads" not in row and "num_heads" in row:
        row["num_kv_heads"] = row["num_heads"]
    model = build_record(Model, row, path="model", where="fields")
    arch.check_shapes(model)  # before counting: a corrupt layer count must not enumerate tensors
    if model.published_param_count == 0:
        model = dataclasses.replace(model, published_param_count=arch.count_parameters(model))
    return model


def resolve_model_input(model: str | Mapping[str, Any] | Model, catalog: Catalog) -> Model:
    """Catalogue id (wins over a same-named path), dict of fields, or a Model record."""
    if isinstance(model, Model):
        return arch.check_shapes(model)
    if isinstance(model, Mapping):
        return arch.check_shapes(model_from_fields(model))
    if not isinstance(model, str) or not model.strip():
        raise InvalidValueError("model", f"must be a model id, a path, a repo id or a dict of fields, got {model!r}")
    try:
        return resolve_model(model, catalog)
    except LookupError:
        from .integrations.sources import load_model_source

        found = load_model_source(model)
        if found is None:
            raise
        return arch.check_shapes(found)


def resolve_rig_input(rig: str | Rig, catalog: Catalog, network: str | None = None) -> Rig:
    """A rig string (or "local": the GPUs NVML finds here) or a :class:`Rig`, with ``network``
    between its nodes.

    Raises:
        InvalidValueError: a network for a rig of one node (it links nodes: it would be ignored).
    """
    if isinstance(rig, Rig):
        found = rig
    elif not isinstance(rig, str):
        raise InvalidValueError("rig", f"must be a rig string such as '2x rtx-4090', got {rig!r}")
    elif rig.strip().lower() == "local":
        from .integrations.nvml import detect_rig

        found = detect_rig(catalog)
    else:
        found = parse_rig(rig, catalog)
    if network is None:
        return found
    if found.nodes == 1:
        raise InvalidValueError(
            "network", f"links the nodes of a rig such as '2 nodes x 8x h100-sxm'; {found.describe()} is one node"
        )
    return dataclasses.replace(found, network=check_network(network))


def _check_names_and_numbers(options: Mapping[str, Any], network: str | None) -> None:
    """Options that can be checked before any name is resolved (types, ranges)."""
    if network is not None and not isinstance(network, str):
        raise InvalidValueError("network", f"must be a name, got {network!r}")
    if not isinstance(options.get("engine", "llama.cpp"), str):
        raise InvalidValueError("engine", f"must be an engine id, got {options['engine']!r}")
    for name in ("quant", "kv_dtype", "split", "link", "tensor_parallel", "pipeline_parallel", "host_ram_gb"):
        if name in options:
            INFERENCE_OPTIONS[name].check(options[name])
    if "host_memory_bandwidth_gb_per_s" in options:
        INFERENCE_OPTIONS["host_memory_bandwidth_gb_per_s"].check(options["host_memory_bandwidth_gb_per_s"])


def inference_request(
    model: str | Mapping[str, Any] | Model,
    rig: str | Rig,
    *,
    network: str | None = None,
    catalog: Catalog | None = None,
    **options: Any,
) -> InferenceRequest:
    """Resolve ``model`` (id, path, repo id, fields) and ``rig`` (string or "local") into a
    request; a model file's own quant and tensor sizes come with it.

    Raises:
        RigplanError: unknown names (with suggestions), unreadable files, invalid values.
    """
    catalog = catalog or load_catalog()
    _check_names_and_numbers(options, network)
    mdl = resolve_model_input(model, catalog)
    from_file = isinstance(model, str) and mdl.id not in catalog.models
    if from_file and options.get("quant") is None:
        from .integrations.sources import source_quant

        options["quant"] = source_quant(str(model))  # the file's own format: a GGUF's type, a GPTQ folder's int4
    arch.check_supported(mdl)
    the_rig = resolve_rig_input(rig, catalog, network)
    file_weights = None
    if from_file:
        from .engines import get_engine
        from .integrations.sources import file_weights as read_file_weights
        from .quant import resolve_quant

        engine = get_engine(str(options.get("engine", "llama.cpp"))).id
        quant = resolve_quant(options.get("quant"), engine, gpu_has_fp8=all(g.has_fp8 for g in the_rig.gpus))
        file_weights = read_file_weights(str(model), quant.id)
    return InferenceRequest(model=mdl, rig=the_rig, file_weights=file_weights, **options)


def training_request(
    model: str | Mapping[str, Any] | Model,
    rig: str | Rig,
    *,
    framework: str | None = None,
    force: bool = False,
    network: str | None = None,
    catalog: Catalog | None = None,
    **settings: Any,
) -> TrainingRequest:
    """Resolve ``model`` and ``rig`` into a :class:`TrainingRequest` (``settings`` pass through)."""
    catalog = catalog or load_catalog()
    mdl = resolve_model_input(model, catalog)
    return TrainingRequest(
        model=mdl, rig=resolve_rig_input(rig, catalog, network), framework=framework, force=force, settings=settings
    )


def user_config_path() -> Path:
    """``config.toml`` in the user's config dir (platformdirs ``user_config_dir("rigplan")``)."""
    from platformdirs import user_config_dir

    return Path(user_config_dir("rigplan")) / "config.toml"


def load_user_prices(path: Path | None = None, catalog: Catalog | None = None) -> dict[str, float]:
    """The ``[prices]`` table of the user's config file: ``rtx-3090 = 700`` → {"rtx-3090": 700.0}.

    Raises:
        DataFileError: unreadable TOML, a GPU name not in the catalogue, a price that is not > 0.
    """
    from .textfiles import read_toml

    path = path or user_config_path()
    if not path.is_file():
        return {}
    data = read_toml(path)
    table = data.get("prices", {})
    if not isinstance(table, dict):
        raise DataFileError(str(path), "prices", "expected a table of gpu = usd")
    return check_prices(table, catalog or load_catalog(), where=str(path))


def load_user_catalog(path: Path | None = None, catalog: Catalog | None = None) -> Catalog:
    """The built-in catalogue plus the user's config-file rows (the built-in one if no file);
    the rows are checked and merged by :func:`rigplan.catalog.user.merge_user_rows`.

    Raises:
        DataFileError: unreadable, binary or malformed TOML (file and line named).
        CatalogError: a malformed row (file and field named).
    """
    from .catalog.user import USER_TABLES, merge_user_rows
    from .textfiles import read_toml

    base = catalog or load_catalog()
    path = path or user_config_path()
    if not path.is_file():
        return base
    data = read_toml(path)
    stamp = dt.date.fromtimestamp(path.stat().st_mtime)
    if not any(k in data for k in USER_TABLES):
        return base
    return merge_user_rows(base, data, str(path), stamp)

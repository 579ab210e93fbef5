"""Prior serving profiles: the batch model's parameters before (or without) a fit, with sources.

The numbers live in ``serving_prior_profiles/<name>.toml`` (one file per engine, each value
with its source as a comment) and are read here through
:func:`rigplan.calibration.prior_files.read_prior_docs`, the one reader of prior files (issue
11).  ``serving_fit.py`` starts from these, fits what the serving rows can tell and writes
``serving/<engine>.toml``.  Scheduler defaults are facts of each engine's code (cited there).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.resources.abc import Traversable
from typing import Any

from ..errors import DataFileError
from ..speed.batch import ServingBehaviour, ServingParameters
from .prior_files import read_prior_docs

#: Range of a serving profile with no rows: ×0.5 … ×2 (the spread of published vLLM-class
#: single-user speeds for one model and rig across builds and flags is about 2× [D]).
PRIOR_RANGE_LOG = math.log(2.0)
#: Package folder of the prior files.
PRIOR_FOLDER = "serving_prior_profiles"


@dataclass(frozen=True, slots=True)
class ServingPrior:
    name: str
    engines: tuple[str, ...]
    parameters: ServingParameters
    behaviour: ServingBehaviour
    source: str
    notes: str
    #: Prior uncertainty (log-sd) of each parameter the fit may move (MAP fit).
    prior_log_sd: tuple[tuple[str, float], ...]


def _table(path: str, doc: Mapping[str, Any], key: str, names: tuple[str, ...]) -> dict[str, Any]:
    """``doc[key]`` with exactly the keys ``names`` (a missing or unknown key names the file)."""
    table = doc.get(key)
    if not isinstance(table, Mapping):
        raise DataFileError(path, key, "missing table")
    unknown = sorted(set(table) - set(names))
    missing = [n for n in names if n not in table]
    if unknown or missing:
        raise DataFileError(path, key, f"unknown keys {unknown}, missing keys {missing}")
    return {n: table[n] for n in names}


def parse_serving_prior(path: str, doc: Mapping[str, Any]) -> ServingPrior:
    """One resolved prior file as a :class:`ServingPrior` (errors name the file and key)."""
    params = _table(path, doc, "parameters", ServingParameters.names())
    behaviour = _table(path, doc, "behaviour", tuple(ServingBehaviour.__dataclass_fields__))
    sd = doc.get("prior_log_sd")
    if not isinstance(sd, Mapping) or not set(sd) <= set(ServingParameters.names()):
        raise DataFileError(path, "prior_log_sd", "missing, or names a parameter the model does not have")
    engines = doc.get("engines")
    if not isinstance(engines, list) or not engines:
        raise DataFileError(path, "engines", "missing or empty")
    return ServingPrior(
        name=str(doc["name"]),
        engines=tuple(str(e) for e in engines),
        parameters=ServingParameters(**{n: float(v) for n, v in params.items()}),
        behaviour=ServingBehaviour(**behaviour),
        source=str(doc.get("source", "")),
        notes=str(doc.get("notes", "")),
        prior_log_sd=tuple((n, float(v)) for n, v in sd.items()),
    )


def load_serving_priors(folder: str = PRIOR_FOLDER, *, root: Traversable | None = None) -> dict[str, ServingPrior]:
    """Every prior serving profile of the package (or of ``root``, a folder given by the
    caller), by name."""
    docs = read_prior_docs(folder, root=root)
    return {name: parse_serving_prior(f"{folder}/{name}.toml", doc) for name, doc in docs.items()}


_PRIORS = load_serving_priors()
VLLM = _PRIORS["vllm-serving"]
SGLANG = _PRIORS["sglang-serving"]
TENSORRT_LLM = _PRIORS["tensorrt-llm-serving"]
SERVING_PRIORS: tuple[ServingPrior, ...] = (VLLM, SGLANG, TENSORRT_LLM)

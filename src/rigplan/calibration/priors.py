"""Prior engine profiles: parameters from published evidence, before (or without) a fit.

The values and the sources of every number (``reference/perf-model.md`` tags: [S:…] published,
[M] measured, [D] derived) live in ``prior_profiles/*.toml``, one file per profile in the
schema of the fitted ``profiles/*.toml`` plus the fit-only keys below; this module reads them
(through :func:`rigplan.calibration.prior_files.read_prior_docs`, the one reader of prior
files).  ``fit.py`` starts from these, refits what the calibration rows can tell, and writes
every profile (fitted or prior) to ``profiles/*.toml``.

Fit-only keys of a prior file: ``range_factor`` (the ± range of an unfitted profile, as a
factor; default :data:`PRIOR_RANGE_FACTOR`), ``first_build``, ``[prior_log_sd]`` (the MAP
fit's prior log-sd per parameter) and ``[[alternative_starts]]``; ``based_on`` /
``parameters_from`` build a file on another (see ``prior_files``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import DataFileError
from ..speed.profile import EngineBehaviour, SpeedParameters, Spread
from .load import check_head, parse_behaviour, parse_parameters
from .prior_files import read_prior_docs

#: Package data folder of the prior files.
PRIOR_FOLDER = "prior_profiles"
#: Range of engines with no calibration rows: ±35 % around the point (log quantiles), the
#: spread of the engines' published efficiencies in perf-model.md §3.2 (vLLM 0.6–0.8 of BW).
PRIOR_RANGE_FACTOR = 1.35
PRIOR_RANGE = math.log(PRIOR_RANGE_FACTOR)
_KEYS = {
    "name",
    "engines",
    "backend",
    "source",
    "notes",
    "behaviour",
    "parameters",
    "range_factor",
    "first_build",
    "prior_log_sd",
    "alternative_starts",
}


@dataclass(frozen=True, slots=True)
class PriorProfile:
    name: str
    engines: tuple[str, ...]
    backend: str
    parameters: SpeedParameters
    behaviour: EngineBehaviour
    source: str
    notes: str
    range_log: float = PRIOR_RANGE
    #: Other starting points for the fit (the decode model has more than one basin: a GPU's
    #: low efficiency can come from its memory or from instruction issue); the fit keeps the
    #: start that fits the rows best.
    alternative_starts: tuple[dict[str, float], ...] = ()
    #: Prior uncertainty (log-sd) of each parameter the fit may move, for the MAP fit.
    prior_log_sd: dict[str, float] = field(default_factory=dict)
    #: First llama.cpp build of the profile's era (the fit lowers it to its oldest row).
    first_build: int = 0

    def spread(self) -> Spread:
        return Spread(-self.range_log, self.range_log)


def _named_numbers(path: str, where: str, table: Any) -> dict[str, float]:
    """A table of parameter name (as ``SpeedParameters.names()`` gives them) → number."""
    if not isinstance(table, Mapping):
        raise DataFileError(path, where, "expected a table")
    known = set(SpeedParameters.names())
    out = {}
    for key, value in table.items():
        if key not in known:
            raise DataFileError(path, f"{where}.{key}", "unknown parameter")
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise DataFileError(path, f"{where}.{key}", f"expected a number > 0, got {value!r}")
        out[key] = float(value)
    return out


def parse_prior(path: str, doc: Mapping[str, Any]) -> PriorProfile:
    """A :class:`PriorProfile` from a resolved prior document; ``path`` names it in errors."""
    engines = check_head(path, doc, _KEYS, ("engines", "backend", "source", "notes", "behaviour", "parameters"))
    factor = doc.get("range_factor", PRIOR_RANGE_FACTOR)
    if isinstance(factor, bool) or not isinstance(factor, int | float) or factor <= 1:
        raise DataFileError(path, "range_factor", f"expected a number > 1, got {factor!r}")
    first_build = doc.get("first_build", 0)
    if isinstance(first_build, bool) or not isinstance(first_build, int) or first_build < 0:
        raise DataFileError(path, "first_build", f"expected a whole number ≥ 0, got {first_build!r}")
    starts = doc.get("alternative_starts", [])
    if not isinstance(starts, list):
        raise DataFileError(path, "alternative_starts", "expected [[alternative_starts]] tables")
    return PriorProfile(
        name=str(doc["name"]),
        engines=tuple(engines),
        backend=str(doc["backend"]),
        parameters=parse_parameters(path, doc["parameters"]),
        behaviour=parse_behaviour(path, doc["behaviour"]),
        source=str(doc["source"]),
        notes=str(doc["notes"]),
        range_log=PRIOR_RANGE if factor == PRIOR_RANGE_FACTOR else math.log(factor),
        alternative_starts=tuple(_named_numbers(path, "alternative_starts", s) for s in starts),
        prior_log_sd=_named_numbers(path, "prior_log_sd", doc.get("prior_log_sd", {})),
        first_build=first_build,
    )


def load_priors(folder: str = PRIOR_FOLDER) -> dict[str, PriorProfile]:
    """Every prior profile shipped in ``folder`` by name."""
    return {name: parse_prior(f"{folder}/{name}.toml", doc) for name, doc in read_prior_docs(folder).items()}


_BY_NAME = load_priors()
LLAMA_CPP_CUDA_2024 = _BY_NAME["llama.cpp-cuda-2024"]
LLAMA_CPP_METAL_2024 = _BY_NAME["llama.cpp-metal-2024"]
LLAMA_CPP_CUDA = _BY_NAME["llama.cpp-cuda"]
LLAMA_CPP_ROCM = _BY_NAME["llama.cpp-rocm"]
LLAMA_CPP_VULKAN = _BY_NAME["llama.cpp-vulkan"]
LLAMA_CPP_METAL = _BY_NAME["llama.cpp-metal"]
VLLM = _BY_NAME["vllm"]
SGLANG = _BY_NAME["sglang"]
TENSORRT_LLM = _BY_NAME["tensorrt-llm"]
EXLLAMAV2 = _BY_NAME["exllamav2"]
TRANSFORMERS = _BY_NAME["transformers"]
#: First llama.cpp build of the current era (the llama.cpp-cuda prior's ``first_build``).
CURRENT_ERA_FIRST_BUILD = LLAMA_CPP_CUDA.first_build

PRIORS: tuple[PriorProfile, ...] = (
    LLAMA_CPP_CUDA_2024,
    LLAMA_CPP_METAL_2024,
    LLAMA_CPP_CUDA,
    LLAMA_CPP_ROCM,
    LLAMA_CPP_VULKAN,
    LLAMA_CPP_METAL,
    VLLM,
    SGLANG,
    TENSORRT_LLM,
    EXLLAMAV2,
    TRANSFORMERS,
)

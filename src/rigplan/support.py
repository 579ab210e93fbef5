"""Whether an engine runs a quant on a rig's GPUs with a backend: refuse, warn or run.

The rules are data (``catalog/data/engine_support.toml``, each sourced); the backend-vendor
facts are in :mod:`rigplan.backends`.  ``estimate()`` calls :func:`check_support` before it
prices anything, so a refused combination never gets a speed and the planner never ranks it.
"""

from __future__ import annotations

from collections.abc import Sequence

from .backends import backend_problem
from .catalog.records import GPU
from .catalog.support import SupportRule
from .errors import UnsupportedError


def _applies(rule: SupportRule, engine: str, gpus: Sequence[GPU], quant: str, backend: str | None, moe: bool) -> bool:
    if engine not in rule.engines:
        return False
    if rule.architectures and not any(g.architecture in rule.architectures for g in gpus):
        return False
    if rule.vendors and not any(g.vendor in rule.vendors for g in gpus):
        return False
    if rule.quants and quant not in rule.quants:
        return False
    if rule.backends and backend not in rule.backends:
        return False
    if rule.not_backends and backend in rule.not_backends:
        return False
    if rule.moe is not None and rule.moe != moe:
        return False
    mixed = len({g.vendor for g in gpus}) > 1
    return rule.mixed_vendors is None or rule.mixed_vendors == mixed


def check_support(
    rules: Sequence[SupportRule],
    engine: str,
    gpus: Sequence[GPU],
    quant: str,
    backend: str | None = None,
    *,
    moe: bool = False,
) -> list[str]:
    """Warnings for ``engine`` running ``quant`` on ``gpus`` (llama.cpp: on ``backend``), for a
    mixture-of-experts model where ``moe``.

    Raises:
        UnsupportedError: a refuse rule applies, or the backend cannot drive these GPUs; the
            message names the engine, the GPUs and the reason.
    """
    if backend is not None:
        problem = backend_problem(backend, gpus)
        if problem:
            raise UnsupportedError(f"{engine}: {problem}")
    warnings = []
    for rule in rules:
        if not _applies(rule, engine, gpus, quant, backend, moe):
            continue
        if rule.verdict == "refuse":
            names = ", ".join(sorted({g.id for g in gpus}))
            raise UnsupportedError(f"{engine} on {names}: {rule.reason} [{rule.id}]")
        warnings.append(f"{engine}: {rule.reason} [{rule.id}]")
    return warnings

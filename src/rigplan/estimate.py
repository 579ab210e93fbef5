"""``rigplan.estimate``: memory, speed and power of one model on one rig, as one record.

The public entry point the CLI and the web app call: a thin edge.  :mod:`rigplan.edge`
resolves names, files and the user's calibration into a request and a context, and the pure
core (:func:`rigplan.core.evaluate`) computes placement → memory → speed → power.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .catalog import load_catalog
from .catalog.records import Catalog, Model
from .core import evaluate
from .edge import inference_request, load_context
from .headroom import DEFAULT_MARGIN, Advice, advise
from .results import Estimate
from .rig import Rig


def estimate(
    model: str | Mapping[str, Any] | Model,
    rig: str | Rig,
    *,
    quant: str | None = None,
    engine: str = "llama.cpp",
    context: int | None = None,
    batch: int | str = 1,
    prompt_tokens: int = 512,
    output_tokens: int = 128,
    kv_dtype: str | None = None,
    split: str | None = None,
    tensor_parallel: int | None = None,
    pipeline_parallel: int | None = None,
    gpu_layers: int | str | None = None,
    link: str | None = None,
    lanes: int | None = None,
    host_ram_gb: float | None = None,
    use_user_calibration: bool = True,
    network: str | None = None,
    host_memory_bandwidth_gb_per_s: float | None = None,
    force: bool = False,
    engine_version: str | None = None,
    backend: str | None = None,
    flash_attention: bool | None = None,
    catalog: Catalog | None = None,
) -> Estimate:
    """Estimate memory, speed and power of ``model`` on ``rig``.

    >>> e = estimate("llama-3-8b", "rtx-4090")
    >>> e.fits, e.quant.id
    (True, 'q4_k_m')

    Args:
        model: catalogue id, a path or Hugging Face repo id, a dict of architecture fields.
        rig: rig string ("2x rtx-4090", "2 nodes x 8x h100-sxm") or "local".
        quant: quant id or "4bit"/"8bit"/"16bit"; None = the engine's default.
        gpu_layers: None = every layer on GPUs; "auto" = as many as fit; an int = that many.
        engine_version, backend, flash_attention: the engine build (None: the newest profile,
            the GPU vendor's usual backend, the build's default).

    Raises:
        RigplanError: unknown names (with suggestions), impossible values, unsupported layouts.
    """
    options = {k: v for k, v in locals().items() if k not in ("model", "rig", "network", "catalog")}
    catalog = catalog or load_catalog()
    request = inference_request(model, rig, network=network, catalog=catalog, **options)
    return evaluate(request, load_context(catalog, use_user_calibration=use_user_calibration))


def fit_advice(est: Estimate, margin: float = DEFAULT_MARGIN, limit: int = 3) -> list[Advice]:
    """Up to ``limit`` single changes that make ``est``'s rig fit within ``margin``, cheapest
    first (:func:`rigplan.headroom.advise`), each estimated by :func:`estimate` without the
    user's calibration, so the advice is the same on every machine."""
    return advise(est, estimate, margin, limit)


__all__ = ["Estimate", "estimate", "fit_advice"]

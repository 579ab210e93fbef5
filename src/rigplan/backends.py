"""llama.cpp backends and build numbers: which backend a GPU's vendor uses, what a version means.

Facts of llama.cpp's code and releases, not fitted: the backend ids llama-bench prints (lower
case), the vendors each backend drives, and the build numbers ("b6400") that name its releases.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from .catalog.records import GPU
from .errors import InvalidValueError

CUDA, ROCM, VULKAN, METAL, SYCL, CPU = "cuda", "rocm", "vulkan", "metal", "sycl", "cpu"
#: Backends llama-bench reports (ggml-cuda, ggml-hip, ggml-vulkan, ggml-metal, ggml-sycl, ggml-cpu).
BACKENDS = (CUDA, ROCM, VULKAN, METAL, SYCL, CPU)
#: The usual backend of each GPU vendor (llama.cpp docs/build.md: CUDA for NVIDIA, HIP/ROCm for
#: AMD, Metal on Apple silicon, SYCL for Intel GPUs).
VENDOR_BACKEND = {"nvidia": CUDA, "amd": ROCM, "apple": METAL, "intel": SYCL}
#: Vendors whose GPUs each backend drives (llama.cpp docs/build.md; Vulkan runs on any vendor
#: with a Vulkan driver, Apple through MoltenVK only, which rigplan does not model).
BACKEND_VENDORS: dict[str, frozenset[str]] = {
    CUDA: frozenset({"nvidia"}),
    ROCM: frozenset({"amd"}),
    METAL: frozenset({"apple"}),
    SYCL: frozenset({"intel"}),
    VULKAN: frozenset({"nvidia", "amd", "intel"}),
    CPU: frozenset({"nvidia", "amd", "intel", "apple"}),
}
_BUILD = re.compile(r"^\s*b?(\d{1,6})\s*$", re.IGNORECASE)


def default_backend(gpus: Sequence[GPU]) -> str:
    """The GPU vendor's usual backend; Vulkan when a rig mixes vendors (the one backend that
    drives them together).

    >>> from rigplan.catalog import load_catalog
    >>> cat = load_catalog()
    >>> default_backend([cat.gpus["rtx-4090"]]), default_backend([cat.gpus["mi300x"]])
    ('cuda', 'rocm')
    """
    vendors = {g.vendor for g in gpus}
    if len(vendors) > 1:
        return VULKAN
    return VENDOR_BACKEND.get(next(iter(vendors), "nvidia"), VULKAN)


def check_backend(backend: str | None) -> str | None:
    """Validate a backend name (case-insensitive; "hip" means rocm)."""
    if backend is None:
        return None
    if not isinstance(backend, str):
        raise InvalidValueError("backend", f"must be one of {', '.join(BACKENDS)}, got {backend!r}")
    key = backend.strip().lower()
    key = {"hip": ROCM, "rocm/hip": ROCM, "mps": METAL}.get(key, key)
    if key not in BACKENDS:
        raise InvalidValueError("backend", f"must be one of {', '.join(BACKENDS)}, got {backend!r}")
    return key


def parse_build(version: str | int | None) -> int | None:
    """A llama.cpp build number from "b6400", "6400" or 6400 (None stays None).

    >>> parse_build("b2843"), parse_build(6400), parse_build(None)
    (2843, 6400, None)
    """
    if version is None:
        return None
    if isinstance(version, int) and not isinstance(version, bool) and version >= 0:
        return version
    if isinstance(version, str):
        m = _BUILD.match(version)
        if m:
            return int(m.group(1))
    raise InvalidValueError(
        "engine_version", f"must be a llama.cpp build number such as b6400 (llama-bench prints it), got {version!r}"
    )


def backend_problem(backend: str, gpus: Sequence[GPU]) -> str | None:
    """Why ``backend`` cannot drive ``gpus`` (None if it can)."""
    wrong = sorted({g.id for g in gpus if g.vendor not in BACKEND_VENDORS[backend]})
    if not wrong:
        return None
    usual = default_backend(gpus)
    return f"backend {backend} does not drive {', '.join(wrong)}; use {usual} (the default for this rig)"

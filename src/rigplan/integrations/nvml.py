"""Local NVIDIA GPUs through NVML (``nvidia-ml-py``, module ``pynvml``).

``detect_gpus()`` reads, for every GPU: its name and the catalogue id it maps to, memory,
PCIe generation and width (current and maximum), NVLink links and their peers, power limits,
compute capability; and for the machine: driver and CUDA versions and the P2P matrix.
``detect_rig(catalog)`` turns that into a :class:`~rigplan.rig.Rig` for ``--rig local``.

A machine without the NVIDIA driver or without a GPU gets a :class:`~rigplan.errors.DeviceError`
that says so.  Note: the *current* PCIe generation drops (to Gen 1) while a GPU idles to save
power; the maximum is what the link trains to under load.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from ..catalog.records import GPU, Catalog
from ..errors import DeviceError, UnknownGPUError, closest
from ..rig import Rig, resolve_gpu
from ..units import MIB

# nvml.h nvmlGpuP2PCapsIndex_enum: NVML_P2P_CAPS_INDEX_READ = 0 (pynvml 13 defines the
# constant as a 1-tuple, so the value is written here).
P2P_CAPS_INDEX_READ = 0
# nvml.h NVML_NVLINK_MAX_LINKS: 18 on Hopper, 36 since driver 575 (Blackwell); links past the
# GPU's own count answer an error, which ends the scan.
NVLINK_MAX_LINKS_FALLBACK = 18
MILLIWATTS_PER_WATT = 1000
# NVML reports the CUDA driver version as 1000 × major + 10 × minor (13000 -> "13.0").
CUDA_VERSION_MAJOR = 1000
CUDA_VERSION_MINOR = 10
# A detected GPU whose memory differs from its catalogue row by more than this is a different
# variant or a MIG slice: the detected size is used and the difference reported.
MEMORY_MISMATCH_FRACTION = 0.05


@dataclass(frozen=True, slots=True)
class DetectedGPU:
    """One GPU as NVML reports it, and the catalogue id its name maps to (None if none)."""

    index: int
    name: str
    uuid: str
    catalog_id: str | None
    memory_bytes: int
    pcie_generation_current: int | None
    pcie_generation_max: int | None
    pcie_width_current: int | None
    pcie_width_max: int | None
    power_limit_w: float | None
    power_default_limit_w: float | None
    power_limit_range_w: tuple[float, float] | None
    compute_capability: tuple[int, int] | None
    nvlink_links: int
    nvlink_peers: tuple[int, ...]
    bus_id: str | None
    mig_enabled: bool = False
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Detection:
    """Everything ``rigplan detect`` reports: driver, CUDA, GPUs and the P2P matrix.

    ``p2p[i][j]`` says whether GPU i can read GPU j's memory directly (None on the diagonal
    or where NVML cannot tell).
    """

    driver_version: str
    cuda_version: str | None
    nvml_version: str | None
    gpus: tuple[DetectedGPU, ...]
    p2p: tuple[tuple[bool | None, ...], ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        return {
            "driver_version": self.driver_version,
            "cuda_version": self.cuda_version,
            "nvml_version": self.nvml_version,
            "gpus": [
                {
                    "index": g.index,
                    "name": g.name,
                    "uuid": g.uuid,
                    "catalog_id": g.catalog_id,
                    "memory_bytes": g.memory_bytes,
                    "pcie": {
                        "generation_current": g.pcie_generation_current,
                        "generation_max": g.pcie_generation_max,
                        "width_current": g.pcie_width_current,
                        "width_max": g.pcie_width_max,
                    },
                    "power_limit_w": g.power_limit_w,
                    "power_default_limit_w": g.power_default_limit_w,
                    "power_limit_range_w": list(g.power_limit_range_w) if g.power_limit_range_w else None,
                    "compute_capability": ".".join(map(str, g.compute_capability)) if g.compute_capability else None,
                    "nvlink": {"links": g.nvlink_links, "peers": list(g.nvlink_peers)},
                    "bus_id": g.bus_id,
                    "mig_enabled": g.mig_enabled,
                    "notes": list(g.notes),
                }
                for g in self.gpus
            ],
            "p2p": [list(row) for row in self.p2p],
        }


def _nvml() -> Any:
    try:
        import pynvml  # type: ignore[import-untyped]
    except ImportError:
        raise DeviceError("GPU detection needs nvidia-ml-py: pip install 'rigplan[nvml]'") from None
    return pynvml


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _try(nvml: Any, fn: Any, *args: Any) -> Any:
    """Call an NVML query; None where the GPU or driver does not support it."""
    try:
        return fn(*args)
    except nvml.NVMLError:
        return None


def _init(nvml: Any) -> None:
    try:
        nvml.nvmlInit()
    except nvml.NVMLError as exc:
        code = getattr(exc, "value", None)
        if code == getattr(nvml, "NVML_ERROR_LIBRARY_NOT_FOUND", 12):
            raise DeviceError(
                "no NVIDIA driver found (libnvidia-ml is missing): this machine has no NVIDIA "
                "GPU, or its driver is not installed; use --rig with GPU ids instead"
            ) from None
        if code == getattr(nvml, "NVML_ERROR_DRIVER_NOT_LOADED", 9):
            raise DeviceError(
                "the NVIDIA driver is installed but not loaded (no GPU, or a reboot is needed "
                "after a driver update); `nvidia-smi` should work before `rigplan detect` does"
            ) from None
        if code == getattr(nvml, "NVML_ERROR_NO_PERMISSION", 4):
            raise DeviceError("no permission to query the NVIDIA driver (check /dev/nvidia* access)") from None
        raise DeviceError(f"NVML could not start: {exc}") from None


def _cuda_version(raw: int | None) -> str | None:
    if not raw:
        return None
    return f"{raw // CUDA_VERSION_MAJOR}.{(raw % CUDA_VERSION_MAJOR) // CUDA_VERSION_MINOR}"


def _watts(milliwatts: int | None) -> float | None:
    return milliwatts / MILLIWATTS_PER_WATT if milliwatts is not None else None


def _bus_id(nvml: Any, pci: Any) -> str | None:
    if pci is None:
        return None
    return _text(getattr(pci, "busId", None) or getattr(pci, "busIdLegacy", "")).upper() or None


def _nvlinks(nvml: Any, handle: Any) -> tuple[int, list[str | None]]:
    """Active NVLink links and the PCI bus id at the far end of each."""
    max_links = getattr(nvml, "NVML_NVLINK_MAX_LINKS", NVLINK_MAX_LINKS_FALLBACK)
    enabled = getattr(nvml, "NVML_FEATURE_ENABLED", 1)
    active, remotes = 0, []
    for link in range(max_links):
        try:
            state = nvml.nvmlDeviceGetNvLinkState(handle, link)
        except nvml.NVMLError:
            break  # NotSupported on link 0: no NVLink; InvalidArgument past the last link
        if state != enabled:
            continue
        active += 1
        remotes.append(_bus_id(nvml, _try(nvml, nvml.nvmlDeviceGetNvLinkRemotePciInfo, handle, link)))
    return active, remotes


def _match_catalog(name: str, memory_bytes: int, catalog: Catalog | None) -> tuple[GPU | None, list[str]]:
    if catalog is None:
        return None, []
    try:
        gpu = resolve_gpu(name, catalog)
    except UnknownGPUError as exc:
        hint = f" (nearest: {', '.join(exc.suggestions)})" if exc.suggestions else ""
        return None, [f"{name!r} is not in the catalogue{hint}"]
    notes = []
    if abs(memory_bytes - gpu.memory_bytes) > MEMORY_MISMATCH_FRACTION * gpu.memory_bytes:
        notes.append(
            f"NVML reports {memory_bytes // MIB:,} MiB, the catalogue's {gpu.id} has "
            f"{gpu.memory_mib:,} MiB (another memory variant or a MIG slice): using the detected size"
        )
    return gpu, notes


def detect_gpus(catalog: Catalog | None = None) -> Detection:
    """Query NVML for every local NVIDIA GPU.

    Args:
        catalog: maps names to catalogue ids (None: ``load_catalog()``).

    Raises:
        DeviceError: nvidia-ml-py missing, no driver, driver not loaded, or no GPU.
    """
    if catalog is None:
        from ..catalog import load_catalog

        catalog = load_catalog()
    nvml = _nvml()
    _init(nvml)
    try:
        count = nvml.nvmlDeviceGetCount()
        if count == 0:
            raise DeviceError("the NVIDIA driver is loaded but reports no GPU")
        driver = _text(nvml.nvmlSystemGetDriverVersion())
        cuda = _cuda_version(_try(nvml, nvml.nvmlSystemGetCudaDriverVersion))
        nvml_version = _try(nvml, nvml.nvmlSystemGetNVMLVersion)
        handles = [nvml.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
        bus_ids = [_bus_id(nvml, _try(nvml, nvml.nvmlDeviceGetPciInfo, h)) for h in handles]
        gpus = [_read_gpu(nvml, i, h, bus_ids, catalog) for i, h in enumerate(handles)]
        p2p = tuple(
            tuple(None if i == j else _p2p(nvml, handles[i], handles[j]) for j in range(count)) for i in range(count)
        )
    finally:
        _try(nvml, nvml.nvmlShutdown)
    return Detection(driver, cuda, _text(nvml_version) if nvml_version else None, tuple(gpus), p2p)


def _p2p(nvml: Any, a: Any, b: Any) -> bool | None:
    status = _try(nvml, nvml.nvmlDeviceGetP2PStatus, a, b, P2P_CAPS_INDEX_READ)
    if status is None:
        return None
    return bool(status == getattr(nvml, "NVML_P2P_STATUS_OK", 0))


def _read_gpu(nvml: Any, index: int, handle: Any, bus_ids: list[str | None], catalog: Catalog) -> DetectedGPU:
    name = _text(nvml.nvmlDeviceGetName(handle))
    memory = int(nvml.nvmlDeviceGetMemoryInfo(handle).total)
    gpu, notes = _match_catalog(name, memory, catalog)
    links, remotes = _nvlinks(nvml, handle)
    peers = tuple(sorted({bus_ids.index(r) for r in remotes if r in bus_ids and r != bus_ids[index]}))
    if links and not peers and any(remotes):
        notes.append("NVLink goes to NVSwitch ports: every GPU on the switch is a peer")
        peers = tuple(i for i in range(len(bus_ids)) if i != index)
    constraints = _try(nvml, nvml.nvmlDeviceGetPowerManagementLimitConstraints, handle)
    cc = _try(nvml, nvml.nvmlDeviceGetCudaComputeCapability, handle)
    mig = _try(nvml, nvml.nvmlDeviceGetMigMode, handle)
    # Device max is what the slot and the GPU agree on; the GPU's own max may be higher.
    gen_max = _try(nvml, nvml.nvmlDeviceGetMaxPcieLinkGeneration, handle)
    gpu_gen_max = _try(nvml, getattr(nvml, "nvmlDeviceGetGpuMaxPcieLinkGeneration", lambda h: None), handle)
    if gen_max and gpu_gen_max and gpu_gen_max > gen_max:
        notes.append(f"the GPU supports PCIe Gen {gpu_gen_max}, the slot or platform only Gen {gen_max}")
    return DetectedGPU(
        index=index,
        name=name,
        uuid=_text(_try(nvml, nvml.nvmlDeviceGetUUID, handle) or ""),
        catalog_id=gpu.id if gpu else None,
        memory_bytes=memory,
        pcie_generation_current=_try(nvml, nvml.nvmlDeviceGetCurrPcieLinkGeneration, handle),
        pcie_generation_max=gen_max,
        pcie_width_current=_try(nvml, nvml.nvmlDeviceGetCurrPcieLinkWidth, handle),
        pcie_width_max=_try(nvml, nvml.nvmlDeviceGetMaxPcieLinkWidth, handle),
        power_limit_w=_watts(_try(nvml, nvml.nvmlDeviceGetPowerManagementLimit, handle)),
        power_default_limit_w=_watts(_try(nvml, nvml.nvmlDeviceGetPowerManagementDefaultLimit, handle)),
        power_limit_range_w=(_watts(constraints[0]), _watts(constraints[1])) if constraints else None,  # type: ignore[arg-type]
        compute_capability=(int(cc[0]), int(cc[1])) if cc else None,
        nvlink_links=links,
        nvlink_peers=peers,
        bus_id=bus_ids[index],
        mig_enabled=bool(mig and mig[0]),
        notes=tuple(notes),
    )


def detect_rig(catalog: Catalog) -> Rig:
    """The local machine as a :class:`~rigplan.rig.Rig` (``--rig local``).

    Catalogue GPUs keep their specifications except memory, which is the detected size
    when it differs (another variant, a MIG slice).

    Raises:
        DeviceError: no driver or no GPU.
        UnknownGPUError: a GPU whose name is not in the catalogue (pass --rig explicitly).
    """
    detection = detect_gpus(catalog)
    gpus: list[GPU] = []
    for g in detection.gpus:
        if g.catalog_id is None:
            raise UnknownGPUError(g.name, closest(g.name.lower().removeprefix("nvidia "), catalog.gpus))
        gpu = catalog.gpus[g.catalog_id]
        mib = g.memory_bytes // MIB
        if abs(g.memory_bytes - gpu.memory_bytes) > MEMORY_MISMATCH_FRACTION * gpu.memory_bytes:
            gpu = dataclasses.replace(gpu, memory_mib=mib, memory_gb=round(g.memory_bytes / 1e9, 1))
        gpus.append(gpu)
    return Rig(gpus=tuple(gpus))

"""A fake NVML (module ``pynvml``) answering from a capture in tests/fixtures/nvml-h100/nvml.json's
format: the real H100 capture, or copies of it with fields changed for multi-GPU rigs."""

from __future__ import annotations

import copy
import json
import types
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
NVML_CAPTURE = json.loads((FIXTURES / "nvml-h100" / "nvml.json").read_text(encoding="utf-8"))

# nvml.h return codes the fake raises (the values pynvml's NVMLError.value carries).
NVML_ERROR_INVALID_ARGUMENT = 2
NVML_ERROR_NOT_SUPPORTED = 3
NVML_ERROR_DRIVER_NOT_LOADED = 9
NVML_ERROR_LIBRARY_NOT_FOUND = 12


class NVMLError(Exception):
    def __init__(self, value: int, text: str = "") -> None:
        super().__init__(text or f"NVML error {value}")
        self.value = value


def _handle_error(state: str) -> NVMLError:
    if "NotSupported" in state:
        return NVMLError(NVML_ERROR_NOT_SUPPORTED, "Not Supported")
    return NVMLError(NVML_ERROR_INVALID_ARGUMENT, state)


def fake_nvml_module(data: dict[str, Any]) -> types.ModuleType:
    """A ``pynvml`` stand-in answering from ``data`` (nvml.json's layout, plus optional
    ``pci_bus_id`` per device, NVLink entries with ``remote_bus_id``, a ``p2p`` matrix and an
    ``init_error`` code)."""
    m = types.ModuleType("pynvml")
    devices = data["devices"]
    m.NVMLError = NVMLError
    m.NVML_ERROR_LIBRARY_NOT_FOUND = NVML_ERROR_LIBRARY_NOT_FOUND
    m.NVML_ERROR_DRIVER_NOT_LOADED = NVML_ERROR_DRIVER_NOT_LOADED
    m.NVML_ERROR_NO_PERMISSION = 4
    m.NVML_FEATURE_ENABLED = 1
    m.NVML_P2P_STATUS_OK = 0
    m.NVML_NVLINK_MAX_LINKS = 18
    calls = {"init": 0, "shutdown": 0}
    m.calls = calls

    def init() -> None:
        if data.get("init_error"):
            raise NVMLError(data["init_error"])
        calls["init"] += 1

    def shutdown() -> None:
        calls["shutdown"] += 1

    def dev(h: int) -> dict[str, Any]:
        return devices[h]

    def bus(h: int) -> str:
        return dev(h).get("pci_bus_id", f"00000000:{h + 0x18:02X}:00.0")

    def nvlink_entry(h: int, link: int) -> dict[str, Any]:
        for e in dev(h).get("nvlink", []):
            if e["link"] == link:
                return e
        raise NVMLError(NVML_ERROR_INVALID_ARGUMENT, "Invalid Argument")

    def nvlink_state(h: int, link: int) -> int:
        state = nvlink_entry(h, link)["state"]
        if isinstance(state, str):
            raise _handle_error(state)
        return int(state)

    def p2p(a: int, b: int, index: int) -> int:
        matrix = data.get("p2p")
        if matrix is None:
            raise NVMLError(NVML_ERROR_NOT_SUPPORTED, "Not Supported")
        return 0 if matrix[a][b] else 4  # NVML_P2P_STATUS_OK / ..._NOT_SUPPORTED

    m.nvmlInit = init
    m.nvmlShutdown = shutdown
    m.nvmlSystemGetDriverVersion = lambda: data["driver"]
    m.nvmlSystemGetCudaDriverVersion = lambda: data["cuda_driver"]
    m.nvmlSystemGetNVMLVersion = lambda: data["nvml"]
    m.nvmlDeviceGetCount = lambda: len(devices)
    m.nvmlDeviceGetHandleByIndex = lambda i: i
    m.nvmlDeviceGetName = lambda h: dev(h)["name"]
    m.nvmlDeviceGetUUID = lambda h: dev(h)["uuid"]
    m.nvmlDeviceGetMemoryInfo = lambda h: types.SimpleNamespace(
        total=dev(h)["memory_total"], used=dev(h)["memory_used"], free=dev(h)["memory_total"] - dev(h)["memory_used"]
    )
    m.nvmlDeviceGetPciInfo = lambda h: types.SimpleNamespace(busId=bus(h))
    m.nvmlDeviceGetCurrPcieLinkGeneration = lambda h: dev(h)["pcie_gen_current"]
    m.nvmlDeviceGetMaxPcieLinkGeneration = lambda h: dev(h)["pcie_gen_max"]
    m.nvmlDeviceGetGpuMaxPcieLinkGeneration = lambda h: dev(h)["pcie_gen_gpu_max"]
    m.nvmlDeviceGetCurrPcieLinkWidth = lambda h: dev(h)["pcie_width_current"]
    m.nvmlDeviceGetMaxPcieLinkWidth = lambda h: dev(h)["pcie_width_max"]
    m.nvmlDeviceGetPowerManagementLimit = lambda h: dev(h)["power_limit_mw"]
    m.nvmlDeviceGetPowerManagementDefaultLimit = lambda h: dev(h)["power_default_limit_mw"]
    m.nvmlDeviceGetPowerManagementLimitConstraints = lambda h: list(dev(h)["power_limit_constraints_mw"])
    m.nvmlDeviceGetEnforcedPowerLimit = lambda h: dev(h)["enforced_power_limit_mw"]
    m.nvmlDeviceGetCudaComputeCapability = lambda h: tuple(dev(h)["cuda_capability"])
    m.nvmlDeviceGetMigMode = lambda h: list(dev(h)["mig_mode"])
    m.nvmlDeviceGetNvLinkState = nvlink_state
    m.nvmlDeviceGetNvLinkRemotePciInfo = lambda h, link: types.SimpleNamespace(
        busId=nvlink_entry(h, link)["remote_bus_id"]
    )
    m.nvmlDeviceGetP2PStatus = p2p
    return m


def nvml_data(*devices: dict[str, Any], **top: Any) -> dict[str, Any]:
    """nvml.json's capture with its device replaced by ``devices`` (copies of the H100 entry
    with fields overridden)."""
    data = copy.deepcopy(NVML_CAPTURE)
    base = data["devices"][0]
    if devices:
        data["devices"] = [{**copy.deepcopy(base), "index": i, **d} for i, d in enumerate(devices)]
        data["count"] = len(devices)
    data.update(top)
    return data

"""The records power estimates are made of: the host, a circuit check, a suggested cap and the
whole estimate (pure data with ``to_dict`` for the edges)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Host:
    """What the GPUs sit in, for power: the CPU's sustained package power and the rest."""

    name: str
    cpu_w: int
    base_w: int
    platform_id: str | None = None


@dataclass(frozen=True, slots=True)
class CircuitCheck:
    """Whether one wall circuit carries one node under the 80 % continuous rule."""

    circuit: str
    volts: int
    amps: int
    capacity_watts: int
    wall_watts: int
    circuits_needed: int

    @property
    def fits(self) -> bool:
        return self.circuits_needed <= 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "volts": self.volts,
            "amps": self.amps,
            "continuous_capacity_watts": self.capacity_watts,
            "wall_watts": self.wall_watts,
            "circuits_needed": self.circuits_needed,
            "fits": self.fits,
        }


@dataclass(frozen=True, slots=True)
class PowerLimit:
    """A suggested cap (``nvidia-smi -pl``) and what it costs in speed."""

    fraction: float
    watts_per_gpu: tuple[int, ...]
    decode_speed_factor: float
    prefill_speed_factor: float
    training_speed_factor: float
    board_watts: int
    psu_watts: int | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "fraction": round(self.fraction, 3),
            "watts_per_gpu": list(self.watts_per_gpu),
            "decode_speed_factor": round(self.decode_speed_factor, 3),
            "prefill_speed_factor": round(self.prefill_speed_factor, 3),
            "training_speed_factor": round(self.training_speed_factor, 3),
            "board_watts": self.board_watts,
            "psu_watts": self.psu_watts,
        }


@dataclass(frozen=True, slots=True)
class PowerEstimate:
    """Power of a rig: rated, in the workload, the PSU per node, connectors and circuits.

    ``board_watts``, ``draw_watts``, ``system_watts`` and ``wall_watts`` cover the whole rig
    (every node); ``psu_watts``, ``connectors`` and ``circuits`` are per node.
    """

    board_watts: int
    draw_watts: int
    psu_watts: int | None
    system_watts: int
    nodes: int = 1
    host: Host | None = None
    psu_units: int = 1
    psu_watts_atx2: int | None = None
    transient_peak_watts: int | None = None
    wall_watts: int = 0
    workload_wall_watts: int = 0
    connectors: Mapping[str, int] = field(default_factory=dict)
    pcie_8pin_equivalent: int = 0
    circuits: Mapping[str, CircuitCheck] = field(default_factory=dict)
    power_limit: PowerLimit | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "board_watts": self.board_watts,
            "draw_watts": self.draw_watts,
            "system_watts": self.system_watts,
            "psu_watts": self.psu_watts,
            "psu_units": self.psu_units,
            "psu_watts_atx2": self.psu_watts_atx2,
            "transient_peak_watts": self.transient_peak_watts,
            "wall_watts": self.wall_watts,
            "workload_wall_watts": self.workload_wall_watts,
            "nodes": self.nodes,
            "host": None
            if self.host is None
            else {
                "name": self.host.name,
                "platform": self.host.platform_id,
                "cpu_watts": self.host.cpu_w,
                "base_watts": self.host.base_w,
            },
            "connectors": dict(self.connectors),
            "pcie_8pin_equivalent": self.pcie_8pin_equivalent,
            "circuits": {k: v.to_dict() for k, v in self.circuits.items()},
            "power_limit": self.power_limit.to_dict() if self.power_limit else None,
        }

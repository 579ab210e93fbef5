"""``rigplan power RIG``: PSU, connectors, circuits, a power limit's cost and electricity.

A thin edge: it resolves the rig (and the model, through :func:`rigplan.estimate`) and calls
the pure power and platform models.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .catalog import load_catalog
from .catalog.records import GPU, Catalog, Model
from .edge import resolve_rig_input
from .errors import InvalidValueError, UnsupportedError
from .estimate import estimate
from .platforms import PLATFORM_CLASSES, PlatformFit, choose_platform, fit_platform
from .power import (
    PSU_EFFICIENCY,
    CircuitCheck,
    PowerEstimate,
    circuit_checks,
    energy_cost_per_hour,
    energy_cost_per_million_tokens,
    estimate_power,
    psu_requirement,
    standard_psu,
)
from .power_limit import DECODE_POWER_SWEEPS, PREFILL_POWER_SWEEPS, TRAINING_POWER_SWEEPS, power_limit_factor
from .requests import PLAN_OPTIONS
from .rig import Rig


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


@dataclass(frozen=True, slots=True)
class PowerReport:
    """Everything ``rigplan power`` prints for one rig."""

    rig: Rig
    platform: PlatformFit | None
    power: PowerEstimate
    cap_fraction: float | None
    cap_watts_per_gpu: tuple[int, ...]
    cap_decode_factor: float | None
    cap_prefill_factor: float | None
    cap_training_factor: float | None
    cap_psu_watts: int | None
    cap_wall_watts: int | None
    tokens_per_s: float | None
    kwh_price: float | None
    energy_usd_per_hour: float | None
    energy_usd_per_million_tokens: float | None
    circuit: str | None
    #: runs, but slowly or with a caveat (design.md §3, second round)
    warnings: tuple[str, ...] = ()
    capped: bool = False  # the user set the limit: circuits are checked at the capped draw
    cap_circuits: dict[str, CircuitCheck] | None = None

    @property
    def circuit_fits(self) -> bool:
        """The asked circuit carries a node: at the capped draw when the user set a limit."""
        if self.circuit is None:
            return True
        checks = self.cap_circuits if self.capped and self.cap_circuits else self.power.circuits
        return checks[self.circuit].fits

    def to_dict(self) -> dict[str, Any]:
        fit = self.platform
        return {
            "rig": self.rig.describe(),
            "gpus": [g.id for g in self.rig.all_gpus],
            "platform": None
            if fit is None
            else {
                "id": fit.platform.id,
                "class": fit.platform_class,
                "name": fit.platform.name,
                "pcie_lanes_per_gpu": fit.lanes_per_gpu,
                "pcie_generation": fit.pcie_generation,
                "slots": fit.slots_used,
                "needs_risers": fit.needs_risers,
                "nvlink": fit.nvlink.describe(),
                "notes": list(fit.notes),
            },
            "power": self.power.to_dict(),
            "circuit": self.circuit,
            "power_limit": None
            if self.cap_fraction is None
            else {
                "fraction": round(self.cap_fraction, 3),
                "watts_per_gpu": list(self.cap_watts_per_gpu),
                "decode_speed_factor": _round(self.cap_decode_factor, 3),
                "prefill_speed_factor": _round(self.cap_prefill_factor, 3),
                "training_speed_factor": _round(self.cap_training_factor, 3),
                "psu_watts": self.cap_psu_watts,
                "wall_watts": self.cap_wall_watts,
                "set_by_you": self.capped,
                "circuits": {k: c.to_dict() for k, c in self.cap_circuits.items()} if self.cap_circuits else None,
            },
            "circuit_fits": self.circuit_fits,
            "tokens_per_s": self.tokens_per_s,
            "kwh_price": self.kwh_price,
            "energy_usd_per_hour": _round(self.energy_usd_per_hour, 4),
            "energy_usd_per_million_tokens": _round(self.energy_usd_per_million_tokens, 4),
            "warnings": list(self.warnings),
        }


def _parse_cap(value: str | float | None, gpus: Sequence[GPU]) -> float | None:
    """A power limit as a share of board power: "70%", 0.7, or watts per GPU ("300", "300W")."""
    if value is None:
        return None
    text = str(value).strip().lower().removesuffix("w").strip()
    try:
        if text.endswith("%"):
            fraction = float(text[:-1]) / 100
        else:
            number = float(text)
            fraction = number if number <= 1.0 else number / max(g.board_power_w for g in gpus)
    except ValueError:
        raise InvalidValueError(
            "power_limit", f"expected a share (70%, 0.7) or watts per GPU (300), got {value!r}"
        ) from None
    if not 0.1 <= fraction <= 1.0:
        raise InvalidValueError("power_limit", f"must be 10–100 % of board power, got {value!r}")
    return fraction


def _platform_fit(rig: Rig, platform: str | None, catalog: Catalog) -> PlatformFit | None:
    """The named platform (id or class) for one node of ``rig``; None for Apple machines."""
    node = rig.gpus
    if any(g.is_system for g in node):
        return None
    if platform in catalog.platforms:
        fit, _ = choose_platform(node, (catalog.platforms[platform],))
        if fit is None:
            problems = fit_platform(node, catalog.platforms[platform]).problems
            raise InvalidValueError("platform", f"{platform} cannot take {rig.describe()}: {'; '.join(problems)}")
        return fit
    if platform is not None and platform not in PLATFORM_CLASSES:
        raise InvalidValueError(
            "platform",
            f"must be a platform id ({', '.join(catalog.platforms)}) or class "
            f"({', '.join(PLATFORM_CLASSES)}), got {platform!r}",
        )
    fit, _ = choose_platform(node, catalog.platforms.values(), platform_class=platform)
    return fit


_Capped = tuple[tuple[int, ...], int | None, int | None, tuple[float | None, float | None, float | None]]


def _capped(rig: Rig, power: PowerEstimate, cap: float | None) -> _Capped:
    """Watts per GPU, PSU, wall draw and speed factors under a power limit of ``cap``."""
    if cap is None or power.host is None:
        return (), None, None, (None, None, None)
    capped = [(g, g.board_power_w * cap) for g in rig.gpus]
    sustained, transient, _, _ = psu_requirement(capped, power.host)
    wall = round((sum(w for _, w in capped) + power.host.cpu_w + power.host.base_w) / PSU_EFFICIENCY * rig.nodes)
    factors = (
        power_limit_factor(cap, DECODE_POWER_SWEEPS),
        power_limit_factor(cap, PREFILL_POWER_SWEEPS),
        power_limit_factor(cap, TRAINING_POWER_SWEEPS),
    )
    return tuple(round(w) for _, w in capped), standard_psu(max(sustained, transient))[0], wall, factors


def power_report(
    rig: str | Rig,
    *,
    platform: str | None = None,
    circuit: str | None = None,
    power_limit: str | float | None = None,
    kwh_price: float | None = None,
    model: str | Mapping[str, Any] | Model | None = None,
    quant: str | None = None,
    engine: str = "llama.cpp",
    catalog: Catalog | None = None,
) -> PowerReport:
    """PSU, connectors, circuits, a power limit's speed cost and electricity for one rig.

    >>> power_report("rtx-4090").power.psu_watts
    850

    Args:
        platform: a platform id (platforms.toml) or class; None = the one a builder would pick.
        power_limit: "70%", 0.7 or watts per GPU; None = the suggested cap.
        model: with a model, tokens/s come from an estimate and electricity per million tokens.
    """
    catalog = catalog or load_catalog()
    the_rig = resolve_rig_input(rig, catalog)
    PLAN_OPTIONS["circuit"].check(circuit)
    PLAN_OPTIONS["kwh_price"].check(kwh_price)
    node = the_rig.gpus
    fit = _platform_fit(the_rig, platform, catalog)
    tokens = None
    mem = None
    speed = None
    if model is not None:
        est = estimate(model, the_rig, quant=quant, engine=engine, catalog=catalog)
        mem, speed = est.memory, est.speed
        tokens = est.speed.decode_throughput_tokens_per_s or est.speed.decode_tokens_per_s
    power = estimate_power(the_rig, mem, speed, platform=fit.platform if fit else None)
    cap = _cap_fraction(power_limit, node, power)
    cap_watts, cap_psu, cap_wall, factors = _capped(the_rig, power, cap)
    wall = float(power.workload_wall_watts)
    per_h = energy_cost_per_hour(wall, kwh_price) if kwh_price is not None else None
    per_m = energy_cost_per_million_tokens(wall, tokens, kwh_price) if kwh_price is not None else None
    return PowerReport(
        rig=the_rig,
        platform=fit,
        power=power,
        cap_fraction=cap,
        cap_watts_per_gpu=cap_watts,
        cap_decode_factor=factors[0],
        cap_prefill_factor=factors[1],
        cap_training_factor=factors[2],
        cap_psu_watts=cap_psu,
        cap_wall_watts=cap_wall,
        tokens_per_s=tokens,
        kwh_price=kwh_price,
        energy_usd_per_hour=per_h,
        energy_usd_per_million_tokens=per_m,
        circuit=circuit,
        capped=power_limit is not None,
        cap_circuits=circuit_checks(cap_wall / the_rig.nodes) if cap_wall is not None else None,
    )


__all__ = ["PowerReport", "power_report"]


def _cap_fraction(power_limit: str | float | None, node: Sequence[GPU], power: PowerEstimate) -> float | None:
    """The asked power limit as a fraction of board power, else the suggested cap (None: none).

    Raises:
        UnsupportedError: a limit asked for a whole machine on one chip.
    """
    if power_limit is None:
        return power.power_limit.fraction if power.power_limit else None
    if any(g.is_system for g in node):
        raise UnsupportedError(
            "power_limit: a whole machine on one chip (Apple, DGX Spark, Strix Halo) "
            "cannot be capped with nvidia-smi -pl"
        )
    return _parse_cap(power_limit, node)

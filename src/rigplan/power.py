"""Power: board power, draw in a workload, PSU size, connectors, wall circuits, power limits and
the electricity a token costs.

Pure functions of typed inputs (perf-model.md §8 is the reference for every rule here).

- **PSU size** (Intel's ATX 3.0 method): GPUs at board power + the CPU at its sustained package
  limit + the rest of the platform, at 100 % of the PSU's rating; then a transient check of the
  GPUs' measured millisecond spikes against the ATX 3.x excursion tolerance; rounded up to a
  standard size.  An ATX 2.x unit has no excursion rating and must carry the spike itself.
- **Draw in a workload**: a share of board power measured per phase (decode, prefill) and batch;
  GPUs in a layer split take turns at batch 1.
- **Wall**: DC power ÷ PSU efficiency, against a circuit's 80 % continuous rating.
- **Power limit**: how much decode, prefill and training slow at a cap, from published sweeps.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from types import MappingProxyType

from .catalog.records import GPU, Platform
from .memory import MemoryEstimate
from .power_limit import cap_factors, interpolate, suggested_cap_fraction
from .power_records import CircuitCheck as CircuitCheck  # re-exported
from .power_records import Host as Host
from .power_records import PowerEstimate as PowerEstimate
from .power_records import PowerLimit as PowerLimit
from .rig import Rig

# ---------------------------------------------------------------------------------------------
# PSU sizing
# ---------------------------------------------------------------------------------------------

#: ATX PSU ratings sold in volume (W).  2000 W is the largest ATX unit (Super Flower Leadex
#: 2000 W, the "2000 W Titanium-class" of the WRX90 build in platforms.toml); beyond it a rig
#: needs several PSUs.
STANDARD_PSU_SIZES_W = (450, 550, 650, 750, 850, 1000, 1200, 1300, 1500, 1600, 2000)
LARGEST_ATX_PSU_W = STANDARD_PSU_SIZES_W[-1]

#: Intel sizes ATX 3.0 PSUs at 100 % of their rating: "a 300 W GPU + 300 W CPU + 150 W rest of
#: platform → a 750 W ATX 3.0 PSU" (perf-model.md §8.3, [S:ATX3-TT]); the transient check below
#: covers the spikes.
PSU_RATED_LOAD_SHARE = 1.0

#: Without a platform, a desktop CPU is sized as Intel's design guide sizes a 125 W-TDP part: 26 A
#: continuous on 12V2 (PL2) × 11.2 V ≈ 291 W, which its examples round to 300 W (ATX Version 3
#: Multi Rail Desktop PSU Design Guide, Table 2-1 and §3).  With 100 W for the rest this gives
#: NVIDIA's recommendations: RTX 3090 750 W, RTX 4090 850 W, RTX 5090 1000 W.
DESKTOP_CPU_W = 300
#: Rest of a desktop platform (board, RAM, drives, fans): the low end of perf-model.md §8.3's
#: 100–150 W.
DESKTOP_BASE_W = 100
#: Workstation and server hosts without a named platform: a Threadripper/EPYC-class CPU at its
#: 350–360 W TDP and the high end of the 100–150 W rest (platforms.toml trx50-hedt,
#: epyc-9004-server).
WORKSTATION_CPU_W = 350
WORKSTATION_BASE_W = 150
SERVER_CPU_W = 360
SERVER_BASE_W = 150
#: SXM/OAM baseboard servers: DGX H100 — 2× 350 W Xeon 8480C, and 3.9 kW for NVSwitches, NICs,
#: drives and fans (10.2 kW maximum less 8× 700 W GPUs and the CPUs); platforms.toml hgx-8gpu-server.
BASEBOARD_CPU_W = 700
BASEBOARD_BASE_W = 3900
#: Above two consumer GPUs a desktop runs out of lanes and slots: size the host as a workstation.
DESKTOP_MAX_GPUS = 2

#: ATX 3.x power-excursion tolerance: a PSU with a 12VHPWR/12V-2x6 connector carries 200 % of its
#: rating for 100 µs, 180 % for 1 ms, 160 % for 10 ms, 120 % for 100 ms (perf-model.md §8.3,
#: [S:ATX3-HH]).  Each GPU spike window below is checked against the tolerance of the next
#: longer interval: spikes under 1 ms against 1 ms, 1–10 ms against 10 ms, 10–20 ms against 100 ms.
ATX3_TOLERANCE_BY_WINDOW = (1.8, 1.6, 1.2)
SPIKE_WINDOWS = ("<1 ms", "1-10 ms", "10-20 ms")

#: GPU spikes as multiples of board power per window (<1 ms, 1–10 ms, 10–20 ms).  Igor's Lab
#: measured the RTX 5090 FE (575 W): 901 W < 1 ms, 824 W 1–5 ms, 627 W 10–20 ms (perf-model.md
#: §8.3, [S:IGOR-5090]).  It is the only interval measurement in the references, so it is the
#: default for every generation; the RTX 30-series allowance Igor's Lab gives for the 350 W RTX
#: 3090 — 460–500 W for 1–10 ms spikes ([S:PSU-3090]; unanswered.io's summary of it) — is at
#: most 500 / 350 = 1.43×, the same as the 5090's 1–5 ms ratio.  Power caps are assumed to scale
#: spikes (no source measured spikes under a cap).
RTX_5090_BOARD_W = 575
RTX_5090_SPIKES_W: tuple[float, float, float] = (901.1, 824.0, 627.0)
DEFAULT_SPIKE_FACTORS: tuple[float, float, float] = (
    RTX_5090_SPIKES_W[0] / RTX_5090_BOARD_W,
    RTX_5090_SPIKES_W[1] / RTX_5090_BOARD_W,
    RTX_5090_SPIKES_W[2] / RTX_5090_BOARD_W,
)
RTX_3090_BOARD_W = 350
RTX_3090_SPIKE_ALLOWANCE_W = 500
SPIKE_FACTORS_BY_ARCHITECTURE: dict[str, tuple[float, float, float]] = {
    "blackwell": DEFAULT_SPIKE_FACTORS,
    "ampere": (DEFAULT_SPIKE_FACTORS[0], RTX_3090_SPIKE_ALLOWANCE_W / RTX_3090_BOARD_W, DEFAULT_SPIKE_FACTORS[2]),
}

#: An ATX 2.x PSU has no excursion rating, so it must carry the spike as if sustained.  Intel's
#: example sizes it with the GPU at 200 % (its 100 µs excursion): 300 W GPU → 2 × 300 + 300 +
#: 150 = 1050 W, "~1,100 W with an ATX 2.x unit" (perf-model.md §8.3, [S:ATX3-TT]).
ATX2_GPU_EXCURSION_FACTOR = 2.0

# ---------------------------------------------------------------------------------------------
# Connectors
# ---------------------------------------------------------------------------------------------

#: Watts per GPU power connector: PCIe 8-pin 150 W, 6-pin 75 W (PCIe CEM); 12VHPWR and its
#: revision 12V-2x6 600 W (PCIe CEM 5.0, perf-model.md); NVIDIA data-centre cards take an 8-pin
#: EPS12V ("CPU 8-pin") lead, 300 W.
CONNECTOR_WATTS = {"12v-2x6": 600, "12vhpwr": 600, "8-pin-pcie": 150, "6-pin-pcie": 75, "8-pin-eps": 300}
#: 12VHPWR is cable-compatible with 12V-2x6; a PSU lists them as one kind.
CONNECTOR_NAMES = {"12vhpwr": "12v-2x6"}
#: A 12V-2x6 card on a PSU without that connector takes 8-pin PCIe leads through an adapter, one
#: per 150 W of board power (NVIDIA's RTX 4090 adapter: 3× 8-pin for 450 W, 4× for 600 W).
PCIE_8PIN_W = CONNECTOR_WATTS["8-pin-pcie"]

# ---------------------------------------------------------------------------------------------
# Wall circuits
# ---------------------------------------------------------------------------------------------

#: Household circuits: volts and breaker amps (perf-model.md §8.4).
CIRCUITS: dict[str, tuple[int, int]] = {
    "120v15a": (120, 15),
    "120v20a": (120, 20),
    "230v10a": (230, 10),
    "230v16a": (230, 16),
}
#: NEC 210.20(A): a continuous load (≥ 3 h) may use 80 % of the breaker rating — 1,440 W on
#: 120 V/15 A, 1,920 W on 120 V/20 A (perf-model.md §8.4, [S:NEC-80]).
CONTINUOUS_LOAD_SHARE = 0.8
#: Wall power = DC power ÷ PSU efficiency; 0.92 is the middle of the 0.90–0.94 a Gold/Platinum
#: unit reaches near half load (perf-model.md §8.4).
PSU_EFFICIENCY = 0.92

# ---------------------------------------------------------------------------------------------
# Draw in a workload
# ---------------------------------------------------------------------------------------------

#: Idle draw as a share of board power: H100 SXM 83 W of 700 W [M] (perf-model.md §8.1); RTX 3090
#: ~16 W of 350 W (Igor's Lab, unanswered.io's summary).
IDLE_SHARE_DATACENTER = 83 / 700
IDLE_SHARE_DESKTOP = 16 / 350
#: Batch-1 decode draw, share of board power.  H100 SXM, Llama-3-8B bf16: 261 W of 700 W [M].
#: Consumer/workstation cards: the mean of two measurements — RTX 3090 in llama.cpp 337 W of
#: 350 W (low end of 337–389 W) and RTX 4090 in vLLM ~246 W of 450 W (perf-model.md §8.1).
DECODE_SHARE_DATACENTER = 261 / 700
DECODE_SHARE_DESKTOP = (337 / 350 + 246 / 450) / 2
#: How decode draw rises with batch, from the H100 measurements (B=1 261 W, 8 444 W, 64 507 W,
#: 256 621 W of 700 W): the fraction of the gap from the batch-1 share to full board power.
H100_DECODE_DRAW_BY_BATCH_W = ((1, 261.0), (8, 444.0), (64, 507.0), (256, 621.0))
H100_BOARD_W = 700
#: Prefill draws 561 W of 700 W on the H100 (S=8192, mean) [M].
PREFILL_SHARE = 561 / 700
#: The CPU while GPUs generate: one core feeds them; a share of its package power [D] (an
#: assumption: no source measured host power during GPU inference).
CPU_INFERENCE_SHARE = 0.3

# ---------------------------------------------------------------------------------------------
# Functions
# ---------------------------------------------------------------------------------------------


def standard_psu(watts: float) -> tuple[int, int]:
    """Smallest standard PSU rating ≥ ``watts`` → (total watts, units); past the largest ATX unit,
    the fewest units that share the load, each the smallest standard size that carries its share.

    >>> standard_psu(1230), standard_psu(3100), standard_psu(6000)
    ((1300, 1), (3200, 2), (6000, 3))
    """
    if watts <= 0:
        return STANDARD_PSU_SIZES_W[0], 1
    units = max(1, math.ceil(watts / LARGEST_ATX_PSU_W))
    share = watts / units
    size = next(s for s in STANDARD_PSU_SIZES_W if s >= share)
    return size * units, units


def default_host(gpus: Sequence[GPU]) -> Host:
    """The host a rig implies when no platform is named (by GPU form factor, class and count)."""
    if any(g.form_factor in ("sxm", "oam") for g in gpus):
        return Host("8-GPU baseboard server (DGX H100 class)", BASEBOARD_CPU_W, BASEBOARD_BASE_W)
    if any(g.gpu_class == "datacenter" for g in gpus):
        return Host("GPU server (EPYC 9004 class)", SERVER_CPU_W, SERVER_BASE_W)
    if len(gpus) > DESKTOP_MAX_GPUS or any(g.gpu_class == "workstation" for g in gpus):
        return Host("workstation (Threadripper class)", WORKSTATION_CPU_W, WORKSTATION_BASE_W)
    return Host("desktop", DESKTOP_CPU_W, DESKTOP_BASE_W)


def host_from_platform(platform: Platform) -> Host:
    return Host(platform.name, platform.cpu_power_w, platform.base_power_w, platform.id)


def spike_factors(gpu: GPU) -> tuple[float, float, float]:
    """Millisecond spikes of ``gpu`` as multiples of board power (<1 ms, 1–10 ms, 10–20 ms)."""
    return SPIKE_FACTORS_BY_ARCHITECTURE.get(gpu.architecture, DEFAULT_SPIKE_FACTORS)


def psu_requirement(gpu_watts: Sequence[tuple[GPU, float]], host: Host) -> tuple[float, float, float, float]:
    """Watts one node's PSU must be rated for → (sustained, ATX 3.x transient, ATX 2.x, peak).

    ``gpu_watts`` pairs each GPU with its sustained power (board power, or a cap).
    """
    rest = host.cpu_w + host.base_w
    sustained = (sum(w for _, w in gpu_watts) + rest) / PSU_RATED_LOAD_SHARE
    transient = 0.0
    peak = 0.0
    for i, tolerance in enumerate(ATX3_TOLERANCE_BY_WINDOW):
        spike = sum(spike_factors(g)[i] * w for g, w in gpu_watts) + rest
        transient = max(transient, spike / tolerance)
        peak = max(peak, spike)
    atx2 = max(sustained, sum(ATX2_GPU_EXCURSION_FACTOR * w for _, w in gpu_watts) + rest)
    return sustained, transient, atx2, peak


def circuit_checks(wall_watts_per_node: float) -> dict[str, CircuitCheck]:
    """Each household circuit against one node's wall power (80 % continuous rule)."""
    out = {}
    for name, (volts, amps) in CIRCUITS.items():
        capacity = volts * amps * CONTINUOUS_LOAD_SHARE
        needed = max(1, math.ceil(wall_watts_per_node / capacity)) if wall_watts_per_node > 0 else 1
        out[name] = CircuitCheck(name, volts, amps, round(capacity), round(wall_watts_per_node), needed)
    return out


def _connectors(gpus: Sequence[GPU]) -> tuple[dict[str, int], int]:
    counts: dict[str, int] = {}
    eight_pin_equivalent = 0
    for g in gpus:
        if g.power_connector not in CONNECTOR_WATTS or g.power_connector_count <= 0:
            continue
        name = CONNECTOR_NAMES.get(g.power_connector, g.power_connector)
        counts[name] = counts.get(name, 0) + g.power_connector_count
        if name == "12v-2x6":
            eight_pin_equivalent += math.ceil(g.board_power_w / PCIE_8PIN_W)
        elif name == "8-pin-pcie":
            eight_pin_equivalent += g.power_connector_count
    return dict(sorted(counts.items())), eight_pin_equivalent


def _decode_share(gpu: GPU, batch: int) -> float:
    """Share of board power one busy GPU draws decoding ``batch`` sequences."""
    base = DECODE_SHARE_DATACENTER if gpu.gpu_class == "datacenter" else DECODE_SHARE_DESKTOP
    if batch <= 1:
        return base
    h100_base = H100_DECODE_DRAW_BY_BATCH_W[0][1] / H100_BOARD_W
    pts = [(math.log(b), (w / H100_BOARD_W - h100_base) / (1 - h100_base)) for b, w in H100_DECODE_DRAW_BY_BATCH_W]
    rise = interpolate(pts, min(math.log(batch), pts[-1][0]))
    return min(1.0, base + (1 - base) * (rise or 0.0))


def gpu_draw_watts(
    gpus: Sequence[GPU],
    *,
    split: str = "layer",
    batch: int = 1,
    phase: str = "decode",
    cap_fraction: float = 1.0,
) -> float:
    """Estimated draw of ``gpus`` (one node) in a phase: "decode" or "prefill".

    A layer or pipeline split at batch 1 runs one GPU at a time, so each GPU is busy 1/n of the
    time and idles the rest; tensor parallel keeps every GPU busy.
    """
    n = len(gpus)
    total = 0.0
    for g in gpus:
        board = g.board_power_w * cap_fraction
        idle = g.board_power_w * (IDLE_SHARE_DATACENTER if g.gpu_class == "datacenter" else IDLE_SHARE_DESKTOP)
        active = board * (PREFILL_SHARE if phase == "prefill" else _decode_share(g, batch))
        active = max(min(active, board), idle)
        # Row and tensor splits make every GPU work on every matmul; layer/pipeline take turns.
        sequential = split in ("layer", "pipeline") and batch <= 1 and phase == "decode"
        duty = 1.0 / n if sequential and n > 1 else 1.0
        total += idle + (active - idle) * duty
    return total


def suggest_power_limit(gpus: Sequence[GPU], host: Host) -> PowerLimit | None:
    """The suggested cap (:func:`suggested_cap_fraction`) for ``gpus`` and what it costs."""
    if not gpus or any(g.is_system for g in gpus):
        return None
    fraction = suggested_cap_fraction()
    decode, prefill, training = cap_factors(fraction)
    capped = [(g, g.board_power_w * fraction) for g in gpus]
    sustained, transient, _, _ = psu_requirement(capped, host)
    return PowerLimit(
        fraction=fraction,
        watts_per_gpu=tuple(round(w) for _, w in capped),
        decode_speed_factor=decode,
        prefill_speed_factor=prefill,
        training_speed_factor=training,
        board_watts=round(sum(w for _, w in capped)),
        psu_watts=standard_psu(max(sustained, transient))[0],
    )


def _batch_from_speed(speed: object | None) -> int:
    per_seq = getattr(speed, "decode_tokens_per_s", None)
    total = getattr(speed, "decode_throughput_tokens_per_s", None)
    if isinstance(per_seq, int | float) and isinstance(total, int | float) and per_seq > 0:
        return max(1, round(total / per_seq))
    return 1


def _phase(speed: object | None) -> str:
    """The phase that dominates the workload: prefill when nothing is generated, else decode."""
    if (
        speed is not None
        and getattr(speed, "decode_tokens_per_s", None) is None
        and getattr(speed, "prefill_tokens_per_s", None) is not None
    ):
        return "prefill"
    return "decode"


def estimate_power(
    rig: Rig,
    memory: MemoryEstimate | None = None,
    speed: object | None = None,
    *,
    platform: Platform | None = None,
    batch: int | None = None,
) -> PowerEstimate:
    """Board power, draw in the workload, PSU, connectors and circuits for ``rig``.

    >>> from rigplan.catalog import load_catalog
    >>> from rigplan.rig import parse_rig
    >>> estimate_power(parse_rig("rtx-4090", load_catalog())).psu_watts
    850

    Args:
        memory: the placement (split) decides whether GPUs take turns.
        speed: its batch, and whether anything is generated (else prefill); None = batch-1 decode.
        platform: the host's CPU and base power; None = a host implied by the GPUs.
        batch: sequences at once (default: inferred from ``speed``, else 1).
    """
    split = memory.placement.split if memory is not None else "layer"
    b = batch if batch is not None else _batch_from_speed(speed)
    return _power(rig, platform, split, b, _phase(speed))


@functools.lru_cache(maxsize=4096)
def _power(rig: Rig, platform: Platform | None, split: str, batch: int, phase: str) -> PowerEstimate:
    """:func:`estimate_power` on hashable inputs (records are frozen), cached: a plan sweep asks
    for the same rig many times."""
    node = rig.gpus
    nodes = rig.nodes
    board_node = sum(g.board_power_w for g in node)
    draw_node = gpu_draw_watts(node, split=split, batch=batch, phase=phase)

    if any(g.is_system for g in node):
        # An Apple machine (or another whole computer on one chip) is its own host and PSU:
        # its rated power is the whole SoC's.
        wall = board_node / PSU_EFFICIENCY
        return PowerEstimate(
            board_watts=board_node * nodes,
            draw_watts=math.ceil(draw_node) * nodes,
            psu_watts=None,
            system_watts=board_node * nodes,
            nodes=nodes,
            wall_watts=round(wall * nodes),
            workload_wall_watts=round(draw_node / PSU_EFFICIENCY * nodes),
            circuits=MappingProxyType(circuit_checks(wall)),
        )

    host = host_from_platform(platform) if platform is not None else default_host(node)
    system_node = board_node + host.cpu_w + host.base_w
    sustained, transient, atx2, peak = psu_requirement([(g, float(g.board_power_w)) for g in node], host)
    psu, units = standard_psu(max(sustained, transient))
    wall_node = system_node / PSU_EFFICIENCY
    workload_node = (draw_node + host.cpu_w * CPU_INFERENCE_SHARE + host.base_w) / PSU_EFFICIENCY
    connectors, eight_pin = _connectors(node)
    return PowerEstimate(
        board_watts=board_node * nodes,
        draw_watts=math.ceil(draw_node) * nodes,
        psu_watts=psu,
        system_watts=system_node * nodes,
        nodes=nodes,
        host=host,
        psu_units=units,
        psu_watts_atx2=standard_psu(atx2)[0],
        transient_peak_watts=round(peak),
        wall_watts=round(wall_node * nodes),
        workload_wall_watts=round(workload_node * nodes),
        connectors=MappingProxyType(connectors),  # read-only: the result is cached and shared
        pcie_8pin_equivalent=eight_pin,
        circuits=MappingProxyType(circuit_checks(wall_node)),
        power_limit=suggest_power_limit(node, host),
    )


def energy_cost_per_million_tokens(wall_watts: float, tokens_per_s: float | None, kwh_price: float) -> float | None:
    """Electricity cost of a million generated tokens at ``kwh_price`` per kWh.

    >>> round(energy_cost_per_million_tokens(500, 20, 0.30), 2)
    2.08
    """
    if not tokens_per_s or tokens_per_s <= 0:
        return None
    hours = 1e6 / tokens_per_s / 3600
    return wall_watts / 1000 * hours * kwh_price


def energy_cost_per_hour(wall_watts: float, kwh_price: float) -> float:
    """Electricity cost of one hour at ``wall_watts``."""
    return wall_watts / 1000 * kwh_price

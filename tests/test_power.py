"""Power rules against published figures: GPU makers' PSU recommendations, Intel's ATX 3.0
sizing example, the NEC 80 % rule, and the power-limit sweeps of perf-model.md §8."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rigplan.catalog import load_catalog
from rigplan.power import (
    CIRCUITS,
    PSU_EFFICIENCY,
    Host,
    circuit_checks,
    energy_cost_per_million_tokens,
    estimate_power,
    gpu_draw_watts,
    psu_requirement,
    standard_psu,
)
from rigplan.power_limit import (
    DECODE_POWER_SWEEPS,
    PREFILL_POWER_SWEEPS,
    TRAINING_POWER_SWEEPS,
    power_limit_factor,
    suggested_cap_fraction,
)
from rigplan.rig import parse_rig


@pytest.fixture(scope="module")
def catalog():
    return load_catalog()


def power_of(rig: str, catalog, **kw):
    return estimate_power(parse_rig(rig, catalog), **kw)


# NVIDIA's minimum PSU for a desktop built around one card (perf-model.md §8.3 [S:PSU-3090],
# [S:PSU-4090]; RTX 5090: NVIDIA's 50-series spec page, 1000 W).
@pytest.mark.parametrize(
    ("gpu", "psu_w"),
    [("rtx-3090", 750), ("rtx-4090", 850), ("rtx-5090", 1000)],
    ids=["rtx-3090-750W", "rtx-4090-850W", "rtx-5090-1000W"],
)
def test_single_gpu_psu_matches_nvidia_recommendation(catalog, gpu, psu_w):
    assert power_of(gpu, catalog).psu_watts == psu_w


def test_intel_atx3_example_300w_gpu_300w_cpu_150w_rest(catalog):
    """Intel: 300 W GPU + 300 W CPU + 150 W rest → a 750 W ATX 3.0 PSU, ~1,100 W as ATX 2.x
    (perf-model.md §8.3, [S:ATX3-TT])."""
    gpu = catalog.gpus["rtx-a6000"]  # a 300 W card
    assert gpu.board_power_w == 300
    sustained, transient, atx2, _ = psu_requirement([(gpu, 300.0)], Host("intel example", 300, 150))
    assert standard_psu(max(sustained, transient)) == (750, 1)
    assert atx2 == pytest.approx(1100, rel=0.05)


def test_rtx_5090_spikes_stay_inside_the_atx3_tolerance_of_its_psu(catalog):
    """The measured 901 W / 824 W / 627 W spikes (Igor's Lab) fit a 1000 W ATX 3.x unit."""
    p = power_of("rtx-5090", catalog)
    _, transient, _, peak = psu_requirement([(catalog.gpus["rtx-5090"], 575.0)], p.host)
    assert transient <= p.psu_watts
    assert peak > p.psu_watts  # an ATX 2.x unit of that size would see the spike unprotected
    assert p.psu_watts_atx2 > p.psu_watts


@pytest.mark.parametrize(
    ("circuit", "watts"),
    [("120v15a", 1440), ("120v20a", 1920), ("230v10a", 1840), ("230v16a", 2944)],
)
def test_circuits_carry_80_percent_continuously(circuit, watts):
    """NEC 80 % rule: 1,440 W on 120 V/15 A and 1,920 W on 120 V/20 A (perf-model.md §8.4)."""
    volts, amps = CIRCUITS[circuit]
    check = circuit_checks(1000)[circuit]
    assert check.capacity_watts == watts == round(volts * amps * 0.8)
    assert check.fits


def test_two_4090s_on_a_15a_circuit_perf_model_example(catalog):
    """perf-model.md §8.4: 2×450 W + 250 W CPU + 100 W = 1.25 kW DC → ~1.36 kW AC, just under
    1,440 W; capped at 300 W each → ~1.03 kW."""
    gpus = [(catalog.gpus["rtx-4090"], 450.0)] * 2
    host = Host("perf-model example", 250, 100)
    full = (sum(w for _, w in gpus) + host.cpu_w + host.base_w) / PSU_EFFICIENCY
    assert full == pytest.approx(1360, rel=0.01)
    assert circuit_checks(full)["120v15a"].fits
    capped = (2 * 300 + host.cpu_w + host.base_w) / PSU_EFFICIENCY
    assert capped == pytest.approx(1030, rel=0.01)


def test_a_big_rig_needs_more_than_one_household_circuit(catalog):
    p = power_of("4x rtx-4090", catalog)
    assert not p.circuits["120v15a"].fits and p.circuits["120v15a"].circuits_needed >= 2
    assert p.psu_watts > 2000 and p.psu_units >= 2


@pytest.mark.parametrize(
    ("rig", "connectors", "eight_pin"),
    [
        ("rtx-4090", {"12v-2x6": 1}, 3),  # 450 W: NVIDIA's 3× 8-pin adapter
        ("rtx-5090", {"12v-2x6": 1}, 4),  # 575 W: 4× 8-pin
        ("rtx-3090", {"8-pin-pcie": 2}, 2),
        ("rtx-a6000", {"8-pin-eps": 1}, 0),
        ("2x rtx-4090 + rtx-3090", {"12v-2x6": 2, "8-pin-pcie": 2}, 8),
    ],
)
def test_power_connectors(catalog, rig, connectors, eight_pin):
    p = power_of(rig, catalog)
    assert p.connectors == connectors
    assert p.pcie_8pin_equivalent == eight_pin


def test_platform_cpu_and_base_power_size_the_psu(catalog):
    am5 = catalog.platforms["am5-desktop"]
    p = power_of("2x rtx-3090", catalog, platform=am5)
    assert p.system_watts == 700 + am5.cpu_power_w + am5.base_power_w
    assert p.psu_watts == standard_psu(p.system_watts)[0]
    assert p.host.platform_id == "am5-desktop"


def test_suggested_power_limit_is_70_percent_with_small_decode_loss(catalog):
    """perf-model.md §8.2: batch-1 decode barely slows at ~70 %; prefill and training slow more."""
    assert suggested_cap_fraction() == 0.7
    cap = power_of("rtx-3090", catalog).power_limit
    assert cap.fraction == 0.7 and cap.watts_per_gpu == (245,)
    assert cap.decode_speed_factor >= 0.95
    assert cap.prefill_speed_factor < cap.decode_speed_factor
    assert cap.psu_watts <= 750


@pytest.mark.parametrize(
    "sweeps", [DECODE_POWER_SWEEPS, PREFILL_POWER_SWEEPS, TRAINING_POWER_SWEEPS], ids=["decode", "prefill", "training"]
)
def test_power_limit_factor_is_monotone_and_one_at_full_power(sweeps):
    values = [power_limit_factor(f / 100, sweeps) for f in range(30, 101, 5)]
    assert values == sorted(values)
    assert values[-1] == 1.0 and all(0 < v <= 1 for v in values)


def test_power_limit_factor_matches_the_3090_sweeps_at_80_percent():
    """RTX 3090 at 280 W (80 %): decode −1 to −4 % (PWR-JEANF, PWR-JANKY, PWR-LLMGARAGE)."""
    assert power_limit_factor(0.8, DECODE_POWER_SWEEPS) == pytest.approx(0.975, abs=0.02)


def test_layer_split_gpus_take_turns_and_tensor_parallel_keeps_them_busy(catalog):
    gpus = parse_rig("2x rtx-3090", catalog).gpus
    layer = gpu_draw_watts(gpus, split="layer")
    tensor = gpu_draw_watts(gpus, split="tensor")
    assert layer < tensor <= sum(g.board_power_w for g in gpus)


def test_decode_draw_rises_with_batch_and_prefill_draws_most(catalog):
    gpus = parse_rig("h100-sxm", catalog).gpus
    draws = [gpu_draw_watts(gpus, batch=b) for b in (1, 8, 64, 256)]
    assert draws == sorted(draws)
    assert draws[0] == pytest.approx(261, rel=0.01)  # the measured H100 batch-1 draw [M]
    assert gpu_draw_watts(gpus, phase="prefill") == pytest.approx(561, rel=0.01)


def test_multi_node_rig_counts_every_gpu_but_sizes_psu_per_node(catalog):
    p = power_of("2 nodes x 8x h100-sxm", catalog)
    assert p.nodes == 2 and p.board_watts == 16 * 700
    one = power_of("8x h100-sxm", catalog)
    assert p.psu_watts == one.psu_watts and p.system_watts == 2 * one.system_watts


def test_apple_machine_has_no_psu(catalog):
    p = power_of("m2-ultra-192gb", catalog)
    assert p.psu_watts is None and p.board_watts == catalog.gpus["m2-ultra-192gb"].board_power_w
    assert p.circuits["120v15a"].fits


@pytest.mark.parametrize(
    ("watts", "expected"), [(1, (450, 1)), (850, (850, 1)), (851, (1000, 1)), (2000, (2000, 1)), (3100, (3200, 2))]
)
def test_standard_psu_sizes(watts, expected):
    assert standard_psu(watts) == expected


def test_energy_cost_per_million_tokens():
    # 500 W for 1e6 / 20 s = 13.9 h → 6.94 kWh → $2.08 at $0.30
    assert energy_cost_per_million_tokens(500, 20, 0.30) == pytest.approx(2.083, rel=1e-3)
    assert energy_cost_per_million_tokens(500, None, 0.30) is None


def test_estimate_dict_keeps_the_contract_power_fields():
    import rigplan

    d = rigplan.estimate("llama-3-8b", "rtx-4090").to_dict()["power"]
    assert {"board_watts", "draw_watts", "psu_watts", "system_watts", "circuits"} <= set(d)
    assert d["board_watts"] == 450 and d["psu_watts"] == 850 and 0 < d["draw_watts"] <= 450


# --- invariants ----------------------------------------------------------------------------------

_PCIE_GPUS = sorted(g for g, x in load_catalog().gpus.items() if x.form_factor == "pcie")


@settings(max_examples=60, deadline=None)
@given(
    ids=st.lists(st.sampled_from(_PCIE_GPUS), min_size=1, max_size=8),
    cpu=st.integers(35, 700),
    base=st.integers(50, 400),
)
def test_psu_covers_the_machine_and_grows_with_every_gpu(ids, cpu, base):
    catalog = load_catalog()
    host = Host("any", cpu, base)
    gpus = [catalog.gpus[i] for i in ids]
    sustained, transient, atx2, peak = psu_requirement([(g, float(g.board_power_w)) for g in gpus], host)
    psu, units = standard_psu(max(sustained, transient))
    assert psu >= sustained >= sum(g.board_power_w for g in gpus) and units >= 1
    assert atx2 >= sustained and peak >= sustained
    more, _, _, _ = psu_requirement([(g, float(g.board_power_w)) for g in [*gpus, gpus[0]]], host)
    assert more > sustained
    draw = gpu_draw_watts(gpus)
    assert 0 < draw <= sum(g.board_power_w for g in gpus)


def test_row_split_keeps_every_gpu_busy_unlike_layer_split():
    """Row split divides every matmul across the GPUs; layer split runs them one after another."""
    from rigplan import estimate

    row = estimate("llama-3-8b", "2x rtx-3090", split="row").power.draw_watts
    layer = estimate("llama-3-8b", "2x rtx-3090", split="layer").power.draw_watts
    assert row > layer

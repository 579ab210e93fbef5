"""The planner: every constraint holds for every recommendation, ranking follows the objective,
prices follow their rules, explanations come from the numbers, and the sweep stays small.

Most tests use the toy roofline speed model of ``planner_fixtures`` so that ranking by speed is
deterministic; ``test_plan_with_the_shipped_speed_model`` runs the real one.
"""

from __future__ import annotations

import functools
import json
import subprocess
import sys

import pytest

from planner_fixtures import no_speed, toy_speed  # noqa: F401  (no_speed is a fixture)
from rigplan import InvalidValueError, UnknownGPUError, UnknownModelError, UnknownQuantError
from rigplan.catalog import load_catalog
from rigplan.edge import load_user_prices, user_config_path
from rigplan.errors import DataFileError, UnknownEngineError
from rigplan.planner import QUANT_LADDERS, parse_price_overrides
from rigplan.planning import plan_rigs
from rigplan.units import format_rate

FOUR_BIT = {"q4_k_m", "int4", "exl2-4.0"}


@pytest.fixture(scope="module", autouse=True)
def toy_speed_model():
    """The toy speed model for the whole module (module-scoped so plans can be cached)."""
    import rigplan.estimate  # noqa: F401

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sys.modules["rigplan.core"], "estimate_speed", toy_speed)
        yield


@functools.cache
def _plan(model: str, items: tuple[tuple[str, object], ...]):
    kw = {k: dict(v) if k == "prices" else v for k, v in items}
    return plan_rigs(model, use_user_config=False, **kw)


def _hashable(value: object) -> object:
    if isinstance(value, dict):
        return tuple(sorted(value.items()))
    return tuple(value) if isinstance(value, list) else value


def plan(model: str = "llama-2-70b", **kw):
    """A cached plan (plans are frozen records; the module shares them)."""
    return _plan(model, tuple(sorted((k, _hashable(v)) for k, v in kw.items())))


@pytest.fixture(scope="module")
def catalog():
    return load_catalog()


# --- the issue's done-when: llama-2-70b at 4 bits -----------------------------------------------


def test_llama_2_70b_4bit_gives_fitting_priced_rigs_with_psu_and_circuits():
    p = plan(quant="4bit")
    assert len(p.recommendations) == 5
    costs = [r.cost_usd for r in p.recommendations]
    assert all(c is not None for c in costs) and costs == sorted(costs)
    for r in p.recommendations:
        assert r.estimate.fits and r.quant.id in FOUR_BIT
        assert r.why and r.why[0].startswith(("Cheapest", "2nd", "3rd", "4th", "5th"))
        if r.platform is not None:
            assert r.power.psu_watts >= r.power.system_watts
            assert r.power.circuits["120v15a"].capacity_watts == 1440
            assert any(c.kind == "platform" for c in r.cost_items)


def test_two_3090s_on_their_cheapest_platform_are_among_the_picks(catalog):
    # Issue 15: the platform is chosen by price among those that fit, so 2x RTX 3090 go on the
    # sourced used EPYC 7002 board ($1,314 with its PSU), not the $1,600 AM5 desktop + PSU.
    r = next(r for r in plan(quant="4bit", top=12).recommendations if r.rig_text == "2x rtx-3090")
    assert r.platform.platform.id == "epyc-7002-server" and r.platform.lanes_per_gpu == 16
    assert r.cost_usd == pytest.approx(sum(c.usd for c in r.cost_items))
    assert r.cost_usd == pytest.approx(2 * 750 + 1314)  # the issue's $2,814
    assert {c.kind for c in r.cost_items} == {"used", "platform"}
    assert any("warranty" in a for a in r.avoid_if)  # the 3090 is priced used


def test_to_dict_is_the_issue_json_and_strict_json():
    d = plan(quant="4bit").to_dict()
    text = json.dumps(d, allow_nan=False)  # no NaN from unknown platform prices
    assert json.loads(text)["recommendations"]
    rec = d["recommendations"][0]
    assert {"rig", "gpus", "quant", "engine", "cost_usd", "estimate", "power", "platform", "why", "avoid_if"} <= set(
        rec
    )
    assert {"board_watts", "draw_watts", "system_watts", "psu_watts", "circuits"} <= set(rec["power"])
    assert {"class", "pcie_lanes_per_gpu", "slots"} <= set(rec["platform"])
    assert rec["estimate"]["fits"] is True and rec["estimate"]["power"] == rec["power"]
    assert len(rec["gpus"]) == len(rec["estimate"]["memory"]["per_gpu"])
    assert {"excluded", "nearest_miss", "considered", "qualified"} <= set(d)


# --- constraints -------------------------------------------------------------------------------


def test_budget_is_respected_and_unpriced_gpus_are_left_out():
    p = plan(quant="4bit", budget_usd=4000)
    assert p.recommendations and all(r.cost_usd is not None and r.cost_usd <= 4000 for r in p.recommendations)
    assert p.excluded.get("budget") and p.excluded.get("price_unknown")


def test_an_impossible_budget_names_the_constraint_and_the_nearest_miss():
    p = plan(quant="4bit", budget_usd=500)
    assert not p.recommendations
    assert p.excluded["budget"] > 0
    miss = p.nearest_miss
    assert miss is not None and miss.cost_usd is not None and miss.cost_usd > 500
    assert any("budget" in f for f in miss.failed)
    assert p.to_dict()["nearest_miss"]["failed"]


def test_a_price_you_give_brings_an_unpriced_gpu_into_budget_ranking():
    p = plan(quant="4bit", gpu_class="datacenter", engine="vllm", budget_usd=20000, prices={"a40": 2000})
    picks = [r for r in p.recommendations if r.rig.gpus[0].id == "a40"]
    assert picks
    line = next(c for c in picks[0].cost_items if "a40" in c.item)
    assert line.kind == "yours" and line.usd == 2000 * picks[0].rig.gpu_count


def test_your_price_overrides_the_catalogue():
    p = plan(quant="4bit", gpu_class="consumer", engine="llama.cpp", prices={"rtx-3090": 500})
    r = next(r for r in p.recommendations if r.rig_text == "2x rtx-3090")
    assert next(c for c in r.cost_items if "rtx-3090" in c.item).usd == 1000


def test_max_watts_limits_the_rated_draw():
    p = plan(quant="4bit", max_watts=1000)
    assert p.recommendations and all(r.power.system_watts <= 1000 for r in p.recommendations)
    assert p.excluded.get("max_watts")


@pytest.mark.parametrize("circuit", ["120v15a", "230v16a"])
def test_circuit_must_carry_one_node(circuit):
    p = plan(quant="8bit", circuit=circuit, engine="llama.cpp")
    assert p.recommendations
    assert all(r.power.circuits[circuit].fits for r in p.recommendations)


def test_a_120v_15a_circuit_excludes_big_rigs():
    p = plan(quant="16bit", circuit="120v15a", gpu_class="consumer", engine="llama.cpp")
    assert p.excluded.get("circuit")
    assert all(r.power.circuits["120v15a"].fits for r in p.recommendations)


def test_max_gpus():
    p = plan(quant="4bit", max_gpus=1)
    assert p.recommendations and all(r.rig.gpu_count == 1 for r in p.recommendations)
    assert p.excluded.get("max_gpus") or p.excluded.get("memory")


@pytest.mark.parametrize("gpu_class", ["consumer", "workstation", "datacenter", "apple"])
def test_gpu_class(gpu_class):
    p = plan(quant="4bit", gpu_class=gpu_class)
    assert p.recommendations
    assert all(g.gpu_class == gpu_class for r in p.recommendations for g in r.rig.gpus)
    assert p.excluded["gpu_class"] > 0


@pytest.mark.parametrize("platform", ["desktop", "hedt", "server"])
def test_platform_class(platform):
    p = plan(quant="4bit", platform=platform, engine="llama.cpp")
    assert p.recommendations
    for r in p.recommendations:
        assert (r.platform.platform_class if r.platform else "desktop") == platform


def test_passive_cards_only_in_servers():
    p = plan(quant="4bit", gpu_class="datacenter")
    assert all(r.platform.platform_class == "server" for r in p.recommendations)
    assert all(
        any("passively cooled" in a for a in r.avoid_if)
        for r in p.recommendations
        if any(g.cooling == "passive" for g in r.rig.gpus)
    )


def test_nvlink_only_rigs_whose_gpus_all_share_it():
    p = plan(quant="4bit", nvlink=True)
    assert p.recommendations and p.excluded.get("nvlink")
    for r in p.recommendations:
        assert r.platform.nvlink.kind != "none" and r.platform.nvlink.full
        assert r.estimate.link.kind == "nvlink" or r.rig.gpu_count == 1


def test_have_adds_to_owned_gpus_at_no_cost():
    p = plan(quant="4bit", have=["rtx-3090"], engine="llama.cpp")
    assert p.recommendations
    for r in p.recommendations:
        assert r.rig.gpus[0].id == "rtx-3090" and r.owned == 1
        assert any(c.kind == "owned" and c.usd == 0 for c in r.cost_items)
        assert "rtx-3090" in r.to_dict()["owned_gpus"]
    # a 24 GB card alone cannot hold 70B at 4 bits: every pick adds GPUs
    assert all(r.rig.gpu_count >= 2 for r in p.recommendations)


def test_have_enough_already_costs_only_the_platform():
    p = plan("llama-3-8b", quant="4bit", have=["rtx-3090"], engine="llama.cpp")
    first = p.recommendations[0]
    assert first.rig_text == "rtx-3090" and first.owned == 1
    assert all(c.kind in ("owned", "platform", "psu") for c in first.cost_items)


@pytest.mark.parametrize("engine", ["llama.cpp", "vllm", "exllamav2", "sglang"])
def test_engine(engine):
    p = plan(quant="4bit", engine=engine)
    assert p.recommendations and all(r.engine == engine for r in p.recommendations)


def test_users_need_room_in_the_kv_pool():
    p = plan("llama-3-8b", quant="4bit", engine="vllm", users=16, context=8192)
    assert p.recommendations
    for r in p.recommendations:
        assert r.users_served >= 16 and r.estimate.workload.batch == 16
        assert any("first token in" in w and "when all 16 prompts arrive at once" in w for w in r.why)


def test_more_users_cost_at_least_as_much():
    one = plan("llama-3-8b", quant="4bit", engine="llama.cpp").recommendations[0].cost_usd
    many = plan("llama-3-8b", quant="4bit", engine="llama.cpp", users=32, context=8192).recommendations[0].cost_usd
    assert many >= one


def test_min_tokens_per_s():
    p = plan(quant="4bit", min_tokens_per_s=20, gpu_class="consumer")
    assert p.recommendations and all(r.decode_tokens_per_s >= 20 for r in p.recommendations)
    assert p.excluded.get("min_tokens_per_s")


def test_a_pick_whose_range_dips_under_the_speed_floor_says_so():
    p = plan(quant="4bit", min_tokens_per_s=25, gpu_class="consumer")
    lows = [r.estimate.speed.decode_tokens_per_s_range[0] for r in p.recommendations]
    flagged = [any("25 tok/s per user is a hard floor" in a for a in r.avoid_if) for r in p.recommendations]
    assert flagged == [low < 25 for low in lows] and any(flagged) and not all(flagged)


@pytest.mark.usefixtures("no_speed")
def test_min_tokens_per_s_without_speeds_excludes_everything():
    p = plan_rigs(
        "llama-3-8b", quant="4bit", gpu_class="consumer", engine="llama.cpp", min_tokens_per_s=10, use_user_config=False
    )
    assert not p.recommendations and p.excluded["speed_unknown"] > 0


@pytest.mark.usefixtures("no_speed")
def test_without_speeds_speed_objectives_fall_back_to_cost():
    p = plan_rigs("llama-3-8b", quant="4bit", gpu_class="consumer", objective="fastest", use_user_config=False)
    assert p.objective == "cheapest" and p.notes
    costs = [r.cost_usd for r in p.recommendations]
    assert costs == sorted(costs)


def test_longer_context_never_makes_the_cheapest_rig_cheaper():
    costs = [
        plan("llama-3.1-8b", quant="4bit", engine="llama.cpp", context=c).recommendations[0].cost_usd
        for c in (4096, 32768, 131072)
    ]
    assert costs == sorted(costs)


def test_top():
    assert len(plan(quant="4bit", top=2).recommendations) == 2


# --- objectives --------------------------------------------------------------------------------


def test_fastest_ranks_by_decode_speed():
    speeds = [r.decode_tokens_per_s for r in plan(quant="4bit", objective="fastest").recommendations]
    assert speeds == sorted(speeds, reverse=True)


def test_value_ranks_by_tokens_per_dollar():
    recs = plan(quant="4bit", objective="value", gpu_class="consumer").recommendations
    values = [r.throughput_tokens_per_s / r.cost_usd for r in recs]
    assert values == sorted(values, reverse=True)


def test_efficiency_ranks_by_tokens_per_joule():
    recs = plan(quant="4bit", objective="efficiency", gpu_class="consumer").recommendations
    values = [r.throughput_tokens_per_s / r.power.workload_wall_watts for r in recs]
    assert values == sorted(values, reverse=True)


def test_cheapest_with_any_quant_keeps_the_widest_that_fits():
    for r in plan("llama-3-8b", gpu_class="consumer").recommendations:
        ladder = QUANT_LADDERS[r.estimate.engine.family]
        assert r.quant.id in ladder


def test_one_recommendation_per_rig():
    rigs = [r.rig_text for r in plan(top=20, gpu_class="consumer").recommendations]
    assert len(rigs) == len(set(rigs))


def test_kwh_price_gives_electricity_per_million_tokens():
    r = plan(quant="4bit", kwh_price=0.30, engine="llama.cpp").recommendations[0]
    hours = 1e6 / r.throughput_tokens_per_s / 3600
    assert r.energy_usd_per_million_tokens == pytest.approx(r.power.workload_wall_watts / 1000 * hours * 0.30)
    assert any("per million tokens" in w for w in r.why)


# --- enumeration rules -------------------------------------------------------------------------


def test_apple_runs_llama_cpp_only_and_pascal_never_runs_vllm():
    p = plan(quant="4bit", top=100)
    for r in p.recommendations:
        if any(g.is_apple for g in r.rig.gpus):
            assert r.engine == "llama.cpp" and r.rig.gpu_count == 1
        if any(g.architecture == "pascal" for g in r.rig.gpus):
            assert r.engine != "vllm"


def test_sxm_modules_come_on_4_or_8_gpu_baseboards():
    for r in plan(quant="4bit", gpu_class="datacenter", objective="fastest", top=100).recommendations:
        if r.rig.gpus[0].form_factor == "sxm":
            assert r.rig.gpus_per_node in (4, 8) and r.platform.platform.gpu_slots == 0


def test_tensor_parallel_degrees_divide_the_heads(catalog):
    heads = catalog.models["llama-2-70b"].num_heads
    for r in plan(quant="4bit", engine="vllm", objective="fastest", top=100).recommendations:
        assert heads % r.rig.gpus_per_node == 0


def test_a_model_one_box_cannot_hold_gets_nodes():
    p = plan("llama-3.1-405b", quant="16bit", engine="vllm", gpu_class="datacenter", objective="fastest", top=50)
    assert any(r.rig.nodes >= 2 for r in p.recommendations)
    for r in p.recommendations:
        assert r.estimate.fits


def test_the_sweep_prunes_before_estimating():
    p = plan()
    assert p.considered > 3 * p.estimated  # most candidates never reach an estimate
    assert p.estimated < 400


# --- prices ------------------------------------------------------------------------------------


def test_config_file_prices_are_read_at_the_api_edge(isolated_home):
    path = user_config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('[prices]\n"RTX 3090" = 600\n', encoding="utf-8")
    assert str(isolated_home) in str(path)
    assert load_user_prices() == {"rtx-3090": 600.0}
    p = plan_rigs("llama-2-70b", quant="4bit", gpu_class="consumer", engine="llama.cpp")
    r = next(r for r in p.recommendations if r.rig_text == "2x rtx-3090")
    assert next(c for c in r.cost_items if "rtx-3090" in c.item).kind == "yours"
    off = plan_rigs("llama-2-70b", quant="4bit", gpu_class="consumer", engine="llama.cpp", use_user_config=False)
    r = next(r for r in off.recommendations if r.rig_text == "2x rtx-3090")
    assert next(c for c in r.cost_items if "rtx-3090" in c.item).kind != "yours"


@pytest.mark.parametrize(
    "text", ["[prices]\nrtx-3090 = -5\n", "[prices]\nrtx-4900 = 500\n", "[prices\n", "prices = 5\n"]
)
def test_a_bad_config_file_is_a_data_file_error(isolated_home, text):
    path = user_config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    with pytest.raises(DataFileError, match=r"config\.toml"):
        load_user_prices()


def test_price_overrides_parse():
    assert parse_price_overrides(["rtx-3090=700", "4090 = $1,600"]) == {"rtx-3090": 700.0, "rtx-4090": 1600.0}
    with pytest.raises(InvalidValueError, match="GPU=USD"):
        parse_price_overrides(["rtx-3090"])
    with pytest.raises(InvalidValueError, match="not a number"):
        parse_price_overrides(["rtx-3090=cheap"])
    with pytest.raises(InvalidValueError, match="> 0"):
        parse_price_overrides(["rtx-3090=0"])
    with pytest.raises(UnknownGPUError, match="rtx-4090"):
        parse_price_overrides(["rtx-4900=500"])


# --- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kw", "error", "match"),
    [
        ({"objective": "best"}, InvalidValueError, "objective"),
        ({"circuit": "110v"}, InvalidValueError, "circuit"),
        ({"gpu_class": "gaming"}, InvalidValueError, "class"),
        ({"platform": "laptop"}, InvalidValueError, "platform"),
        ({"users": 0}, InvalidValueError, "users"),
        ({"top": 0}, InvalidValueError, "top"),
        ({"max_gpus": 0}, InvalidValueError, "max_gpus"),
        ({"budget_usd": -1}, InvalidValueError, "budget"),
        ({"kwh_price": 0}, InvalidValueError, "kwh_price"),
        ({"context": 10**7}, InvalidValueError, "context"),
        ({"quant": "q9_k"}, UnknownQuantError, "q9_k"),
        ({"engine": "vllmm"}, UnknownEngineError, "vllm"),
        ({"have": ["rtx-4900"]}, UnknownGPUError, "rtx-4090"),
        ({"prices": {"rtx-3090": "cheap"}}, InvalidValueError, "price"),
    ],
)
def test_bad_input_is_refused(kw, error, match):
    with pytest.raises(error, match=match):
        plan_rigs("llama-2-70b", use_user_config=False, **kw)


def test_unknown_model():
    with pytest.raises(UnknownModelError, match="llama-2-70b"):
        plan_rigs("llama-2-70", use_user_config=False)


def test_core_modules_import_no_ui_library():
    code = (
        "import sys, rigplan.planner, rigplan.power, rigplan.platforms\n"
        "print(','.join(m for m in ('typer', 'click', 'rich', 'fastapi') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_plan_with_the_shipped_speed_model():
    """No toy: the real speed model (or None speeds before one exists) plans without error."""
    import rigplan.speed

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sys.modules["rigplan.core"], "estimate_speed", rigplan.speed.estimate_speed)
        p = plan_rigs("llama-3-8b", quant="4bit", gpu_class="consumer", use_user_config=False, objective="fastest")
    assert p.recommendations and all(r.estimate.fits for r in p.recommendations)
    speeds = [r.decode_tokens_per_s for r in p.recommendations]
    if all(s is not None for s in speeds):
        assert speeds == sorted(speeds, reverse=True)


@functools.cache
def _shipped_plan(model: str, **kw: object):
    """A plan on the real speed model, where several users' per-user speed (prompts included)
    differs from the decode speed (the toy model prefills nothing)."""
    import rigplan.speed

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sys.modules["rigplan.core"], "estimate_speed", rigplan.speed.estimate_speed)
        return plan_rigs(model, use_user_config=False, **kw)


# 32 users of Llama 3.3 70B: prompts cost the rigs unequally, so decode order is not per-user order.
MANY_USERS = {"users": 32, "budget_usd": 60_000, "objective": "fastest", "top": 10}


def test_fastest_for_several_users_ranks_by_the_per_user_speed_with_prompts():
    from rigplan.planner.rank import NEXT_STEP_SPEEDUP, next_step_up
    from rigplan.results import per_user_speed

    p = _shipped_plan("llama-3.3-70b", **MANY_USERS)
    per_user = [per_user_speed(r.estimate)[0] for r in p.ranked]
    decode = [r.decode_tokens_per_s for r in p.ranked]
    assert len(per_user) > 10 and per_user == sorted(per_user, reverse=True)
    assert decode != sorted(decode, reverse=True)  # the case tells the two orders apart
    assert [r.speed_tokens_per_s for r in p.ranked] == per_user
    for r in p.recommendations:
        o = next_step_up(r, p.ranked)
        assert o is None or o.speed_tokens_per_s > r.speed_tokens_per_s * NEXT_STEP_SPEEDUP
        if r.rank == 1:
            assert r.why[0].startswith(f"Fastest of {len(p.ranked)}: {format_rate(per_user[0])} per user, prompts")


def test_the_plan_json_gives_the_speed_it_ranks_and_its_basis():
    from rigplan.results import per_user_speed

    many = _shipped_plan("llama-3.3-70b", **MANY_USERS).to_dict()["recommendations"]
    for d, r in zip(many, _shipped_plan("llama-3.3-70b", **MANY_USERS).recommendations, strict=True):
        value, (low, high) = per_user_speed(r.estimate)
        assert d["speed_basis"] == "per-user, prompts included"
        assert d["speed_tokens_per_s"] == value and d["speed_tokens_per_s_range"] == [low, high]
        assert value < d["estimate"]["speed"]["decode_tokens_per_s"]
    for d in plan(quant="4bit").to_dict()["recommendations"]:
        s = d["estimate"]["speed"]
        assert d["speed_basis"] == "decode"
        assert d["speed_tokens_per_s"] == s["decode_tokens_per_s"]
        assert d["speed_tokens_per_s_range"] == s["decode_tokens_per_s_range"]


def test_the_next_step_up_is_a_pricier_faster_rig_whose_whole_cost_is_known():
    import dataclasses

    from rigplan.planner.rank import next_step_up

    recs = plan(top=20, gpu_class="consumer").recommendations
    steps = [(r, next_step_up(r, recs)) for r in recs]
    assert any(o is not None for _, o in steps)
    for r, o in steps:
        if o is None:
            continue
        assert o.cost_complete and o.cost_usd > r.cost_usd
        assert o.decode_tokens_per_s > r.decode_tokens_per_s
        partly_priced = [dataclasses.replace(x, cost_complete=False) if x is o else x for x in recs]
        other = next_step_up(r, partly_priced)
        assert other is None or (other.cost_complete and other.rig.describe() != o.rig.describe())


def test_a_platform_that_is_most_of_the_cost_points_to_have_desktop():
    top = plan("llama-3-8b").recommendations[0]
    platform = sum(i.usd for i in top.cost_items if i.kind == "platform")
    note = next(n for n in plan("llama-3-8b").notes if n.startswith("The platform is"))
    assert platform > top.cost_usd / 2
    assert f"{platform / top.cost_usd:.0%}" in note and "--have" in note
    assert not any(n.startswith("The platform is") for n in plan("llama-3-8b", have=["desktop"]).notes)
    big = plan("llama-3.1-405b", gpu_class="datacenter").recommendations[0]
    assert sum(i.usd or 0 for i in big.cost_items if i.kind == "platform") <= big.cost_usd / 2
    assert not any(n.startswith("The platform is") for n in plan("llama-3.1-405b", gpu_class="datacenter").notes)

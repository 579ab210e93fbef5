"""PSU prices are catalogue rows (psus.toml) with a source and a date, and the planner prices a
rig's PSU from them: the smallest sourced size that covers each unit's share."""

from __future__ import annotations

import pytest

from rigplan.catalog import load_catalog
from rigplan.catalog.load import CatalogError, load_psu_prices
from rigplan.planner import psu_cost


def test_every_psu_row_has_a_source_and_a_date_and_sizes_ascend():
    rows = load_catalog().psu_prices
    assert rows and all(r.source.startswith("http") and r.as_of and r.usd > 0 for r in rows)
    assert [r.watts for r in rows] == sorted({r.watts for r in rows})


@pytest.mark.parametrize(("watts", "units"), [(600, 1), (850, 1), (851, 1), (1600, 1), (3000, 2), (5000, 1)])
def test_psu_cost_takes_the_smallest_covering_size(watts, units):
    rows = load_catalog().psu_prices
    item = psu_cost(watts, units)
    share = watts / units
    covering = [r for r in rows if share <= r.watts]
    row = covering[0] if covering else rows[-1]
    bought = units if covering else -(-watts // row.watts)
    assert item.usd == pytest.approx(row.usd * bought) and item.source == row.source
    assert item.as_of == row.as_of.isoformat() and item.kind == "psu"


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "no PSU price rows"),
        ('[[psu]]\nwatts = 850\nusd = 1.0\nsource = "s"\nas_of = 2026-01-01\n' * 2, "same PSU size"),
        ('[[psu]]\nwatts = 850\nusd = -1.0\nsource = "s"\nas_of = 2026-01-01\n', "negative"),
        ('[[psu]]\nwatts = 850\nusd = 1.0\nsource = "s"\n', "as_of"),
        ("[[psus]]\nwatts = 850\n", "unknown top-level key"),
    ],
)
def test_bad_psu_rows_name_the_problem(text, why):
    with pytest.raises(CatalogError, match=why):
        load_psu_prices(text, "psus.toml")

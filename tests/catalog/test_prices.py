"""Every GPU a buyer can get has a dated price, or a sourced reason why it has none."""

from __future__ import annotations

import pytest

from rigplan.catalog.load import load_catalog


def _sold_gpus() -> list[str]:
    return sorted(g.id for g in load_catalog().gpus.values() if g.discontinued is None)


@pytest.mark.parametrize("gpu_id", _sold_gpus())
def test_every_sold_gpu_has_a_price_or_a_reason(gpu_id: str) -> None:
    catalog = load_catalog()
    rows = catalog.prices.get(gpu_id, ()) + catalog.price_gaps.get(gpu_id, ())
    assert rows, f"{gpu_id}: add a dated [[price]] row or an [[unpriced]] row with its reason"
    for row in rows:
        assert row.source.strip() and row.as_of.year >= 2020


def test_a_gpu_is_never_both_priced_and_unpriced() -> None:
    catalog = load_catalog()
    assert not set(catalog.prices) & set(catalog.price_gaps)


def test_rack_units_are_complete_machines() -> None:
    """A price for more than one 8-GPU board (a rack) must include its host."""
    for rows in load_catalog().prices.values():
        for row in rows:
            if row.unit_gpus > 8:
                assert row.complete_machine, row

"""The VRAM table: KV is what one sequence needs, on every engine; rigs are the smallest."""

from __future__ import annotations

import pytest

from rigplan.catalog import load_catalog
from rigplan.memory.kv_cache import kv_bytes
from rigplan.vram import vram_table


@pytest.mark.parametrize("engine", ["llama.cpp", "vllm"])
def test_kv_column_is_one_sequence_of_the_context(engine):
    _, rows = vram_table("llama-3-8b", quants=("16bit",), contexts=(8192,), engine=engine, with_rigs=False)
    assert rows[0].kv_cache_bytes == 2**30  # 128 KiB per token × 8,192 (perf-model.md §1.3)
    assert rows[0].weights_bytes < rows[0].total_bytes < rows[0].weights_bytes + 4 * 2**30


def test_more_context_more_memory_and_smallest_rigs_hold_it():
    _, rows = vram_table("llama-2-70b", quants=("4bit",))
    assert [r.context for r in rows] == [2048, 4096]
    assert rows[0].total_bytes < rows[1].total_bytes
    assert rows[1].kv_cache_bytes == kv_bytes(load_catalog().models["llama-2-70b"], range(80), 4096, "f16")
    # 40 GiB does not fit one 24–32 GB card; the one consumer machine that holds it alone is the
    # Strix Halo APU (96 of its 128 GB usable by the GPU)
    assert rows[0].smallest_rigs["consumer"] == "ryzen-ai-max-395-128gb"

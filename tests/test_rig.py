"""The rig grammar of design.md §3 and GPU name resolution."""

from __future__ import annotations

import pytest

from rigplan import RigSyntaxError, UnknownGPUError, load_catalog, parse_rig
from rigplan.rig import resolve_gpu


@pytest.mark.parametrize(
    ("text", "ids", "nodes"),
    [
        pytest.param("rtx-4090", ["rtx-4090"], 1, id="single"),
        pytest.param("2x rtx-4090", ["rtx-4090"] * 2, 1, id="count"),
        pytest.param("2X RTX-4090", ["rtx-4090"] * 2, 1, id="case-insensitive"),
        pytest.param("2×rtx-4090", ["rtx-4090"] * 2, 1, id="times-sign-no-space"),
        pytest.param("rtx-4090 + 2x rtx-3090", ["rtx-4090", "rtx-3090", "rtx-3090"], 1, id="mixed"),
        pytest.param("rtx-4090+rtx-3090", ["rtx-4090", "rtx-3090"], 1, id="mixed-no-spaces"),
        pytest.param("8x h100-sxm", ["h100-sxm"] * 8, 1, id="eight"),
        pytest.param("2 nodes x 8x h100-sxm", ["h100-sxm"] * 8, 2, id="nodes"),
        pytest.param("2 nodes × 8× h100-sxm", ["h100-sxm"] * 8, 2, id="nodes-times-sign"),
        pytest.param("2x RTX 4090", ["rtx-4090"] * 2, 1, id="loose-name"),
        pytest.param("4090", ["rtx-4090"], 1, id="bare-number"),
    ],
)
def test_parse_rig(text, ids, nodes):
    rig = parse_rig(text, load_catalog())
    assert [g.id for g in rig.gpus] == ids
    assert rig.nodes == nodes
    assert rig.gpu_count == len(ids) * nodes


@pytest.mark.parametrize(
    ("text", "match"),
    [
        pytest.param("", "empty", id="empty"),
        pytest.param("0x rtx-4090", "at least 1", id="zero-gpus"),
        pytest.param("rtx-4090 +", "'\\+' has no GPU", id="dangling-plus"),
        pytest.param("0 nodes x 8x h100-sxm", "node count", id="zero-nodes"),
        pytest.param("17x rtx-4090", "at most 16", id="too-many"),
        pytest.param("2x m2-ultra-192gb", "Apple", id="two-macs"),
        pytest.param("2x + rtx-4090", "count but no GPU", id="count-without-gpu"),
        pytest.param("rtx-4090 + 3x", "count but no GPU", id="trailing-count"),
        pytest.param("rtx-3090,rtx-4090", "join different GPUs with '\\+'", id="comma-list"),
    ],
)
def test_bad_rigs_say_why(text, match):
    with pytest.raises(RigSyntaxError, match=match):
        parse_rig(text, load_catalog())


def test_unknown_gpu_suggests_nearest():
    with pytest.raises(UnknownGPUError, match=r"rtx4900.*did you mean.*rtx-4090.*rigplan gpus"):
        resolve_gpu("rtx4900", load_catalog())


def test_describe_round_trips():
    catalog = load_catalog()
    for text in ("rtx-4090 + 2x rtx-3090", "2 nodes x 8x h100-sxm", "l4"):
        assert parse_rig(parse_rig(text, catalog).describe(), catalog) == parse_rig(text, catalog)

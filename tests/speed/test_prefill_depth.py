"""Prompts at depth (seventh session): flash attention re-reads the cached K and V once per tile
of query rows, priced by K/V width; sliding-window layers attend to at most their window."""

from __future__ import annotations

import pytest

from one_device import one_device
from published_rows import shipped_prediction
from rigplan import arch
from rigplan.catalog import load_catalog
from rigplan.engines import get_engine
from rigplan.placement import place
from rigplan.quant import get_quant
from rigplan.rig import parse_rig
from rigplan.speed import hardware
from rigplan.speed.decode import memory_efficiency
from rigplan.speed.prefill import KV_F16_BYTES, device_micro_batch
from rigplan.speed.profile import EngineBehaviour, SpeedParameters
from rigplan.speed.work import forward_work

CAT = load_catalog()
FLASH = EngineBehaviour(flash_attention=True)


def _attention_s(model_id: str, params: SpeedParameters, position: int, *, flash: bool = True, window: bool = True):
    m, dev = one_device(model_id, "rtx-5090", "q4_0", honor_window=window)
    behaviour = FLASH if flash else EngineBehaviour()
    return device_micro_batch(params, behaviour, dev, m, position, 512).attention_s


@pytest.mark.parametrize("model_id", ["llama-2-7b", "llama-3.1-8b"])
def test_kv_reread_bytes_follow_the_kv_width(model_id):
    m, gpu = CAT.models[model_id], CAT.gpus["rtx-5090"]
    reads, pos = 1 / 32, 32768
    extra = _attention_s(model_id, SpeedParameters(flash_kv_reads_per_query=reads), pos) - _attention_s(
        model_id, SpeedParameters(), pos
    )
    bw = memory_efficiency(SpeedParameters(), gpu) * hardware.bandwidth_bytes_per_s(gpu)
    kv_width = arch.kv_elements_per_token(m, 0)  # K and V elements per token and layer
    expected = reads * kv_width * m.num_layers * (pos + 256) * 512 * KV_F16_BYTES / bw
    assert extra == pytest.approx(expected, rel=1e-9)


def test_mha_pays_four_times_the_kv_bytes_of_gqa_at_the_same_flops():
    # Llama-2-7B: 32 KV heads; Llama-3.1-8B: 8; both 32 layers of 32 x 128 query heads.
    p = SpeedParameters(flash_kv_reads_per_query=1 / 32)
    extra = {
        m: _attention_s(m, p, 32768) - _attention_s(m, SpeedParameters(), 32768) for m in ("llama-2-7b", "llama-3.1-8b")
    }
    assert extra["llama-2-7b"] == pytest.approx(4 * extra["llama-3.1-8b"])


def test_without_flash_attention_the_reread_term_is_not_charged():
    a = _attention_s("llama-2-7b", SpeedParameters(), 32768, flash=False)
    b = _attention_s("llama-2-7b", SpeedParameters(flash_kv_reads_per_query=1.0), 32768, flash=False)
    assert a == b


def test_sliding_window_layers_stop_growing_past_their_window():
    # Gemma 3: 5 of every 6 layers see a 1024-token window (llama.cpp's iSWA cache).
    m = CAT.models["gemma-3-27b"]
    full = sum(1 for i in range(m.num_layers) if not arch.is_local_layer(m, i))
    for p in (SpeedParameters(), SpeedParameters(flash_kv_reads_per_query=1 / 32)):
        grow_window = _attention_s(m.id, p, 32768) - _attention_s(m.id, p, 16384)
        grow_all = _attention_s(m.id, p, 32768, window=False) - _attention_s(m.id, p, 16384, window=False)
        assert grow_window == pytest.approx(grow_all * full / m.num_layers, rel=1e-6)


@pytest.mark.parametrize(
    ("ref", "measured", "tolerance"),
    [
        # ggml-org/llama.cpp#17891: RTX 5090, Llama-2-7B Q4_0, pp512 @ d32768, master column.
        ("llamacpp_current.csv:535", 2684.81, 0.25),
        # ggml-org/llama.cpp#17505: RTX 3090, Llama-3.1-8B Q4_0, pp512 @ d32768.
        ("llamacpp_current.csv:533", 1470.93, 0.25),
    ],
)
def test_deep_prompts_land_near_the_published_figures(ref, measured, tolerance):
    m, predicted = shipped_prediction(ref, "llama.cpp-cuda")
    assert m.tokens_per_s == pytest.approx(measured)
    assert predicted == pytest.approx(measured, rel=tolerance)


@pytest.mark.parametrize(("split", "share"), [("tensor", 0.5), ("layer", None)])
def test_each_gpu_pays_for_its_own_share_of_the_kv_cache(split, share):
    """Tensor split: each GPU streams its half of the KV heads; layer split: its own layers."""
    m = CAT.models["llama-3.1-8b"]
    p, pos = SpeedParameters(flash_kv_reads_per_query=1 / 32), 32768

    def extra(rig: str, how: str | None) -> list[float]:
        placement = place(m, parse_rig(rig, CAT), get_engine("llama.cpp"), split=how)
        out = []
        for dev in (d for stage in forward_work(m, get_quant("q4_0"), placement).stages for d in stage):
            with_term = device_micro_batch(p, FLASH, dev, m, pos, 512).attention_s
            out.append(with_term - device_micro_batch(SpeedParameters(), FLASH, dev, m, pos, 512).attention_s)
        return out

    one = extra("rtx-5090", None)[0]
    two = extra("2x rtx-5090", split)
    assert len(two) == 2
    if share is not None:
        assert two == pytest.approx([one * share] * 2)
    else:
        assert sum(two) == pytest.approx(one) and all(0 < x < one for x in two)

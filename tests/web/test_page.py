"""The page in a real browser: headless Debian Chromium driven by Playwright against a live
server on 127.0.0.1.  Pick a model, get ranked rigs, see the charts drawn, share the URL."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlparse

import pytest

pytestmark = pytest.mark.browser

READY = "body[data-ready='1']"
TIMEOUT_MS = 20_000


def query(page) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlparse(page.url).query).items()}


def svg_count(page, selector: str) -> int:
    return page.locator(selector).count()


def test_pick_a_model_get_ranked_rigs_and_charts(page, screenshot):
    page.goto("/")
    page.wait_for_selector("body[data-loaded='1']", timeout=TIMEOUT_MS)
    assert page.locator("#model-list option").count() >= 19  # the model search offers the catalogue
    page.fill("#model", "llama-3-70b")
    assert "80 layers" in page.inner_text("#model-info")
    page.select_option("#quant", "4bit")
    page.fill("#context", "8192")
    page.click("#go")
    page.wait_for_selector(READY, timeout=TIMEOUT_MS)

    rows = page.locator("#rigs tbody tr")
    assert rows.count() >= 3
    assert page.locator("#rigs tbody td.good").count() >= 1  # at least one rig fits
    first = rows.nth(0).inner_text()
    assert any(q in first for q in ("q4_k_m", "exl2-4.0", "int4"))  # a 4-bit quant of any engine

    # memory per GPU: one stacked bar per GPU of the selected rig, with a capacity line
    assert svg_count(page, "#memory-chart svg g.bar") >= 1
    assert svg_count(page, "#memory-chart svg rect.seg-weights") >= 1
    assert svg_count(page, "#memory-chart svg rect.seg-kv") >= 1
    assert svg_count(page, "#memory-chart svg line.capacity") >= 1
    # speed against GPU count: one series per GPU type, with counts 1…8 on the x axis
    assert svg_count(page, "#scaling-chart svg g.series") >= 2
    assert svg_count(page, "#scaling-chart svg g.series circle.dot, #scaling-chart svg g.series path.nofit") >= 2
    # cost against speed: drawn (points once speeds exist), axes always
    assert svg_count(page, "#scatter-chart svg line.axis") == 2
    for chart in ("#memory-chart", "#scaling-chart", "#scatter-chart"):
        box = page.locator(f"{chart} svg").bounding_box()
        assert box and box["width"] > 200 and box["height"] > 100

    power = page.inner_text("#power dl")
    assert "PSU" in power and "circuits" in power.lower()
    assert page.inner_text("#launch-command").strip()
    assert page.locator("#gpus tbody tr").count() >= 40
    assert page.locator("#gpus tbody tr.in-plan").count() >= 1  # the selected rig's GPU is marked

    q = query(page)
    assert (q["model"], q["quant"], q["context"]) == ("llama-3-70b", "4bit", "8192")
    assert not page.errors, page.errors
    assert not page.outside, f"the page reached outside 127.0.0.1: {page.outside}"
    path = screenshot(page)
    assert path.stat().st_size > 10_000


def test_a_shared_url_restores_the_plan(page):
    page.goto(
        "/?model=mixtral-8x7b&quant=8bit&context=4096&users=2&sel=1&gpusort=bandwidth_gb_per_s&gpuclass=datacenter"
    )
    page.wait_for_selector(READY, timeout=TIMEOUT_MS)
    assert page.input_value("#model") == "mixtral-8x7b"
    assert page.input_value("#quant") == "8bit"
    assert page.input_value("#context") == "4096"
    assert page.input_value("#users") == "2"
    selected = page.locator("#rigs tbody tr.selected")
    assert selected.count() == 1 and selected.get_attribute("data-index") == "1"
    rig = selected.get_attribute("data-rig")
    assert rig in page.inner_text("#memory-chart figcaption")
    assert "× 2" in page.inner_text("#memory-chart figcaption")  # two users: batch 2
    classes = page.locator("#gpus tbody tr td:nth-child(2)").all_inner_texts()
    assert classes and set(classes) == {"datacenter"}
    bandwidths = [float(t.replace(",", "")) for t in page.locator("#gpus tbody tr td:nth-child(4)").all_inner_texts()]
    assert bandwidths == sorted(bandwidths)
    assert not page.errors, page.errors


def test_choosing_a_rig_updates_chart_and_url(page):
    page.goto("/?model=llama-3-8b&rigs=rtx-4090,2x%20rtx-3090,m2-ultra-192gb")
    page.wait_for_selector(READY, timeout=TIMEOUT_MS)
    assert page.locator("#rigs tbody tr").count() == 3
    page.locator("#rigs tbody tr[data-index='2']").click()
    rig = page.locator("#rigs tbody tr[data-index='2']").get_attribute("data-rig")
    page.wait_for_function("new URLSearchParams(location.search).get('sel') === '2'")
    assert rig in page.inner_text("#memory-chart figcaption")
    bars = page.locator("#memory-chart svg g.bar").count()
    assert bars == (2 if rig == "2x rtx-3090" else 1)
    # the GPU table sorts by a clicked column and remembers it
    page.locator("#gpus th[data-key='board_power_w']").click()
    assert query(page)["gpusort"] == "-board_power_w"
    assert not page.errors, page.errors


def test_an_unknown_model_is_explained_with_suggestions(page):
    page.goto("/")
    page.wait_for_selector("body[data-loaded='1']", timeout=TIMEOUT_MS)
    page.fill("#model", "llama-3-7b")
    page.click("#go")
    page.wait_for_selector("body[data-ready='error']", timeout=TIMEOUT_MS)
    status = page.inner_text("#status")
    assert re.search(r"unknown model 'llama-3-7b'", status)
    page.locator("#status button.link", has_text="llama-3-70b").click()
    page.wait_for_selector(READY, timeout=TIMEOUT_MS)
    assert page.input_value("#model") == "llama-3-70b"
    assert page.locator("#rigs tbody tr").count() >= 1


def test_training_task_ranks_rigs_and_draws_training_memory(page, screenshot):
    if not page.request.get("/api/meta").json()["features"].get("training_plan"):
        pytest.skip("rigplan.training is not in this checkout yet")
    page.goto("/?model=llama-3-8b&task=training&method=lora&gpu_class=consumer")
    page.wait_for_selector(READY, timeout=TIMEOUT_MS)
    assert page.locator("#rigs thead th", has_text="time to train").count() == 1
    assert page.locator("#rigs tbody tr").count() >= 2
    page.wait_for_selector("#memory-chart svg rect.seg-optim", timeout=TIMEOUT_MS)
    assert page.locator("#memory-chart svg rect.seg-grads").count() >= 1
    assert svg_count(page, "#scaling-chart svg g.series circle.dot") >= 1
    assert svg_count(page, "#scatter-chart svg g.point") >= 2
    page.wait_for_function("!document.querySelector('#launch-command').textContent.startsWith('…')")
    assert "torchrun" in page.inner_text("#launch-command")
    assert not page.errors, page.errors
    assert not page.outside, page.outside
    screenshot(page, "web-training.png")


def test_the_standouts_the_top_picks_leave_out_are_shown_with_their_place(page):
    page.goto("/?model=llama-3-8b")
    page.wait_for_selector(READY, timeout=TIMEOUT_MS)
    ranked = page.locator("#rigs tbody tr")
    assert ranked.count() == 10  # the page's top N
    also = page.locator("#also-rigs tbody tr")
    assert page.locator("#also").is_visible() and also.count() >= 1
    for i in range(also.count()):
        row = also.nth(i)
        assert int(row.locator("td").first.inner_text()) > 10  # its true place, beyond the top N
        assert re.search(r"\((best value|fastest)", row.locator("td.rig").inner_text())
    # the cost/speed chart numbers the ranked rigs only (a $300k standout would squash its axis)
    assert page.locator("#scatter-chart svg g.point").count() == ranked.count()
    also.first.click()
    index = also.first.get_attribute("data-index")
    page.wait_for_function(f"new URLSearchParams(location.search).get('sel') === '{index}'")
    assert also.first.get_attribute("data-rig") in page.inner_text("#memory-chart figcaption")
    assert "Why:" in page.inner_text("#why")
    assert not page.errors, page.errors

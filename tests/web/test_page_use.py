"""The page as people use it, in headless Chromium: no stale answers, Back and Forward, a
390 px phone, the keyboard alone, axe-core's WCAG 2 A/AA rules, chart text ≥ 11 px, and plain
words instead of CLI flags."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

pytestmark = pytest.mark.browser

READY = "body[data-ready='1']"
TIMEOUT_MS = 30_000
AXE = Path(__file__).parent / "vendor" / "axe.min.js"
PHONE = {"width": 390, "height": 844}
# A comparison of named rigs: the quick path (no planner sweep), same rendering.
COMPARE = "/?model=llama-3-8b&rigs=rtx-4090,2x%20rtx-3090,m2-ultra-192gb"
# Most Tab presses to reach every control, row and sort header of the page.
MAX_TABS = 400
MIN_CHART_TEXT_PX = 11
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


@pytest.fixture
def open_page(browser, live_server):
    contexts = []

    def make(viewport=None, bypass_csp=False):
        ctx = browser.new_context(
            viewport=viewport or {"width": 1400, "height": 1000}, base_url=live_server.url, bypass_csp=bypass_csp
        )
        contexts.append(ctx)
        pg = ctx.new_page()
        pg.errors = []
        pg.on("pageerror", lambda e: pg.errors.append(str(e)))
        return pg

    yield make
    for ctx in contexts:
        ctx.close()


def model_in_url(page) -> str:
    return parse_qs(urlparse(page.url).query).get("model", [""])[0]


def test_an_error_after_a_good_plan_leaves_no_old_rows(open_page):
    page = open_page()
    page.goto(COMPARE)
    page.wait_for_selector(READY, timeout=TIMEOUT_MS)
    assert page.locator("#rigs tbody tr").count() == 3
    page.fill("#model", "llama-3-7b")
    page.click("#go")
    page.wait_for_selector("body[data-ready='error']", timeout=TIMEOUT_MS)
    assert page.locator("#rigs tbody tr").count() == 0
    assert page.locator("#results").is_hidden()
    assert page.locator("#memory-chart svg").count() == 0
    assert "unknown model" in page.inner_text("#status")
    assert "rigplan models" not in page.inner_text("#status")  # no CLI words on the page
    assert not page.errors, page.errors


def test_back_and_forward_restore_each_question(open_page):
    page = open_page()
    page.goto(COMPARE)
    page.wait_for_selector(READY, timeout=TIMEOUT_MS)
    first_plan = page.inner_text("#rigs tbody")
    page.fill("#model", "mistral-7b")
    page.click("#go")
    page.wait_for_function("new URLSearchParams(location.search).get('model') === 'mistral-7b'")
    page.wait_for_selector(READY, timeout=TIMEOUT_MS)
    second_plan = page.inner_text("#rigs tbody")
    assert second_plan != first_plan

    page.go_back()
    page.wait_for_function("document.querySelector('#model').value === 'llama-3-8b'", timeout=TIMEOUT_MS)
    page.wait_for_selector(READY, timeout=TIMEOUT_MS)
    assert model_in_url(page) == "llama-3-8b"
    assert page.inner_text("#rigs tbody") == first_plan

    page.go_forward()
    page.wait_for_function("document.querySelector('#model').value === 'mistral-7b'", timeout=TIMEOUT_MS)
    page.wait_for_selector(READY, timeout=TIMEOUT_MS)
    assert page.inner_text("#rigs tbody") == second_plan
    assert not page.errors, page.errors


def test_a_390px_phone_never_scrolls_sideways(open_page, screenshot):
    page = open_page(viewport=PHONE)
    page.goto(COMPARE)
    page.wait_for_selector(READY, timeout=TIMEOUT_MS)
    page.wait_for_selector("#scaling-chart svg", timeout=TIMEOUT_MS)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the page is {width} px wide on a {PHONE['width']} px screen"
    screenshot(page, "web-phone.png")


def test_chart_text_is_at_least_11px_as_drawn(open_page):
    page = open_page(viewport=PHONE)
    page.goto(COMPARE)
    page.wait_for_selector(READY, timeout=TIMEOUT_MS)
    page.wait_for_selector("#scaling-chart svg", timeout=TIMEOUT_MS)
    sizes = page.evaluate(
        """() => [...document.querySelectorAll('svg.chart-svg text')].map((t) => {
             const svg = t.ownerSVGElement;
             const scale = svg.getBoundingClientRect().width / svg.viewBox.baseVal.width;
             return parseFloat(getComputedStyle(t).fontSize) * scale;
           })"""
    )
    assert sizes, "no chart text drawn"
    assert min(sizes) >= MIN_CHART_TEXT_PX, f"smallest chart text is {min(sizes):.1f} px"


def test_every_control_row_and_sort_header_works_by_keyboard(open_page):
    page = open_page()
    page.goto(COMPARE)
    page.wait_for_selector(READY, timeout=TIMEOUT_MS)
    reached = set()
    for _ in range(MAX_TABS):
        page.keyboard.press("Tab")
        key = page.evaluate(
            """() => { const a = document.activeElement;
                 if (a.matches('#rigs tbody tr')) return 'row-' + a.dataset.index;
                 if (a.matches('#gpus th button')) return 'sort-' + a.closest('th').dataset.key;
                 return a.id || a.name || a.tagName; }"""
        )
        reached.add(key)
        if key == "sort-correction":
            break
    assert {"row-0", "row-1", "row-2"} <= reached
    assert {"model", "go", "sort-id", "sort-memory_gb", "sort-board_power_w"} <= reached
    visible = page.evaluate(
        "[...document.querySelectorAll('input, select, button, summary')]"
        ".filter((e) => e.checkVisibility() && !e.disabled).map((e) => e.id || e.name).filter(Boolean)"
    )
    missing = [name for name in visible if name not in reached]
    assert not missing, f"never reached by Tab: {missing}"

    page.focus("#rigs tbody tr[data-index='2']")
    page.keyboard.press("Enter")
    page.wait_for_function("new URLSearchParams(location.search).get('sel') === '2'")
    page.focus("#rigs tbody tr[data-index='1']")
    page.keyboard.press(" ")
    page.wait_for_function("new URLSearchParams(location.search).get('sel') === '1'")
    assert page.locator("#rigs tbody tr[data-index='1']").get_attribute("aria-current") == "true"

    page.focus("#gpus th[data-key='board_power_w'] button")
    page.keyboard.press("Enter")
    page.wait_for_function("new URLSearchParams(location.search).get('gpusort') === '-board_power_w'")
    assert page.locator("#gpus th[data-key='board_power_w']").get_attribute("aria-sort") == "descending"
    page.keyboard.press(" ")
    page.wait_for_function("new URLSearchParams(location.search).get('gpusort') === 'board_power_w'")
    assert not page.errors, page.errors


@pytest.mark.parametrize("viewport", [None, PHONE], ids=["desktop", "phone"])
def test_axe_finds_no_serious_or_critical_violation(open_page, viewport):
    page = open_page(viewport=viewport, bypass_csp=True)  # to inject axe; the page itself keeps its CSP
    page.goto(COMPARE)
    page.wait_for_selector(READY, timeout=TIMEOUT_MS)
    page.wait_for_selector("#scaling-chart svg", timeout=TIMEOUT_MS)
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("(tags) => axe.run(document, {runOnly: {type: 'tag', values: tags}})", AXE_TAGS)
    bad = [
        f"{v['id']} ({v['impact']}): {v['help']} — {[n['target'] for n in v['nodes']][:3]}"
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]
    assert not bad, "\n".join(bad)

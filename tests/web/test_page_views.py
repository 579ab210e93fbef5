"""The page's newer views in headless Chromium: what a rig can run, the capacity form, the
context / batch sweep chart, a config.json of one's own, a Hugging Face id (fake Hub cache),
and the derivation of each figure; each clears its old answer and passes axe."""

from __future__ import annotations

import json

import pytest
from gguf_samples import tiny_llama_gguf
from test_page_use import AXE, AXE_TAGS, COMPARE, READY, TIMEOUT_MS
from test_views import COMMIT, LLAMA_3_8B_CONFIG, REPO

from rigplan.web import create_app

pytestmark = pytest.mark.browser


@pytest.fixture
def page_at(browser, live_server):
    contexts = []

    def make(url="/", server=None, bypass_csp=False):
        ctx = browser.new_context(
            viewport={"width": 1400, "height": 1000}, base_url=(server or live_server).url, bypass_csp=bypass_csp
        )
        contexts.append(ctx)
        pg = ctx.new_page()
        pg.errors = []
        pg.on("pageerror", lambda e: pg.errors.append(str(e)))
        pg.goto(url)
        return pg

    yield make
    for ctx in contexts:
        ctx.close()


def test_what_can_my_gpus_run_lists_fitting_models_and_fills_the_form(page_at):
    page = page_at()
    page.click("#fits-box summary")
    page.fill("#fits-rig", "rtx-4090")
    page.click("#fits-go")
    page.wait_for_selector("#fits-table tbody tr", timeout=TIMEOUT_MS)
    rows = page.locator("#fits-table tbody tr")
    assert rows.count() >= 5
    assert "–" in rows.first.inner_text()  # a speed range on every row
    model = rows.nth(1).get_attribute("data-model")
    rows.nth(1).focus()
    page.keyboard.press("Enter")
    assert page.input_value("#model") == model
    # A bad rig next: the old rows go, the error says why.
    page.fill("#fits-rig", "2x rtx-4900")
    page.click("#fits-go")
    page.wait_for_selector("#fits-status.error", timeout=TIMEOUT_MS)
    assert page.locator("#fits-table tbody tr").count() == 0
    assert "rtx-4090" in page.inner_text("#fits-status")
    assert not page.errors, page.errors


def test_capacity_form_answers_users_served_with_a_range(page_at):
    page = page_at()
    page.click("#capacity-box summary")
    page.fill("#cap-model", "llama-3.1-8b")
    page.fill("#cap-rig", "h100-sxm")
    page.fill("#cap-users", "16")
    page.click("#cap-go")
    page.wait_for_selector("#cap-result dt", timeout=TIMEOUT_MS)
    text = page.inner_text("#cap-result")
    assert "Users served at once" in text and "range" in text and "Limited by" in text
    assert not page.errors, page.errors


@pytest.mark.parametrize("axis,label", [("context", "context (tokens)"), ("batch", "sequences at once")])
def test_sweep_draws_speed_against_context_or_batch(page_at, axis, label):
    page = page_at()
    page.click("#sweep-box summary")
    page.fill("#sweep-model", "llama-3.1-8b")
    page.fill("#sweep-rig", "rtx-4090")
    page.select_option("#sweep-axis", axis)
    page.click("#sweep-go")
    page.wait_for_selector("#sweep-chart svg circle", timeout=TIMEOUT_MS)
    assert page.locator("#sweep-chart svg circle").count() >= 3
    assert label in page.locator("#sweep-chart svg").text_content()
    assert not page.errors, page.errors


def test_an_uploaded_config_json_becomes_the_model_of_a_plan(page_at):
    page = page_at("/?rigs=rtx-4090,2x%20rtx-3090")
    page.click("#upload-box summary")
    page.set_input_files(
        "#upload-file",
        files=[
            {"name": "config.json", "mimeType": "application/json", "buffer": json.dumps(LLAMA_3_8B_CONFIG).encode()}
        ],
    )
    page.click("#upload-go")
    page.wait_for_selector(READY, timeout=TIMEOUT_MS)
    assert page.input_value("#model").startswith("upload-")
    assert page.locator("#rigs tbody tr").count() == 2
    assert "LlamaForCausalLM" in page.inner_text("#upload-status")
    assert not page.errors, page.errors


def test_an_uploaded_gguf_header_becomes_the_model_then_a_cut_one_is_named(page_at, tmp_path):
    pytest.importorskip("gguf")
    whole = tiny_llama_gguf(tmp_path / "tiny.gguf")
    page = page_at("/?rigs=rtx-4090")
    page.click("#upload-box summary")
    page.set_input_files("#upload-file", files=[{"name": "tiny.gguf", "mimeType": "", "buffer": whole}])
    page.click("#upload-go")
    page.wait_for_selector(READY, timeout=TIMEOUT_MS)
    assert page.input_value("#model").startswith("upload-")
    assert "LlamaForCausalLM" in page.inner_text("#upload-status")
    assert page.locator("#rigs tbody tr").count() == 1
    # A file cut inside its metadata: one line naming the field, and the model stays as it was.
    chosen = page.input_value("#model")
    page.set_input_files("#upload-file", files=[{"name": "cut.gguf", "mimeType": "", "buffer": whole[:200]}])
    page.click("#upload-go")
    page.wait_for_selector("#upload-status.error", timeout=TIMEOUT_MS)
    assert "llama.context_length" in page.inner_text("#upload-status")
    assert page.input_value("#model") == chosen
    assert not page.errors, page.errors


def test_the_derivation_of_each_figure_is_one_click_away(page_at):
    page = page_at(COMPARE)
    page.wait_for_selector(READY, timeout=TIMEOUT_MS)
    page.click("#explain summary")
    terms = page.locator("#explain-list dt").all_inner_texts()
    assert any("decode tokens per s" in t for t in terms)
    assert "formula" in page.inner_text("#explain-list") or "=" in page.inner_text("#explain-list")


@pytest.fixture
def hub_server(tmp_path, monkeypatch, live_server):
    pytest.importorskip("huggingface_hub")
    repo = tmp_path / "hub" / f"models--{REPO.replace('/', '--')}"
    (repo / "snapshots" / COMMIT).mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(COMMIT)
    (repo / "snapshots" / COMMIT / "config.json").write_text(json.dumps(LLAMA_3_8B_CONFIG))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    live = type(live_server)  # conftest's LiveServer, on its own port
    with live(create_app(allow_network=True, slow_deadline_s=None)) as server:
        yield server


def test_a_hugging_face_id_plans_like_a_catalogue_model(page_at, hub_server):
    page = page_at(f"/?model={REPO}&rigs=rtx-4090", server=hub_server)
    page.wait_for_selector(READY, timeout=TIMEOUT_MS)
    assert page.locator("#rigs tbody tr").count() == 1
    assert not page.errors, page.errors


def test_axe_passes_with_every_view_open_and_answered(page_at):
    page = page_at(COMPARE, bypass_csp=True)
    page.wait_for_selector(READY, timeout=TIMEOUT_MS)
    for box in ("#fits-box", "#capacity-box", "#sweep-box", "#upload-box"):
        page.click(f"{box} summary")
    page.click("#explain summary")
    page.fill("#fits-rig", "rtx-4090")
    page.click("#fits-go")
    page.fill("#sweep-rig", "rtx-4090")
    page.click("#sweep-go")
    page.wait_for_selector("#fits-table tbody tr", timeout=TIMEOUT_MS)
    page.wait_for_selector("#sweep-chart svg", timeout=TIMEOUT_MS)
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("(tags) => axe.run(document, {runOnly: {type: 'tag', values: tags}})", AXE_TAGS)
    bad = [
        f"{v['id']} ({v['impact']}): {v['help']} — {[n['target'] for n in v['nodes']][:3]}"
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]
    assert not bad, "\n".join(bad)

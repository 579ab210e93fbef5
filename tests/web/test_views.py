"""The newer operations over HTTP: /api/what-fits, /api/sweep, /api/models/upload, a Hugging
Face repo id through the existing integration (a fake Hub cache, no network), the answer
deadline (422 + Retry-After) and the full work queue (503 + Retry-After)."""

from __future__ import annotations

import json
import threading
import time

import pytest
from fastapi.testclient import TestClient

from rigplan import estimate, what_fits
from rigplan.web import create_app
from rigplan.web.answers import AnswerCache, Workers

# Meta's Llama 3 8B config.json (huggingface.co/meta-llama/Meta-Llama-3-8B, config.json), the
# fields rigplan reads.
LLAMA_3_8B_CONFIG = {
    "architectures": ["LlamaForCausalLM"],
    "hidden_size": 4096,
    "intermediate_size": 14336,
    "max_position_embeddings": 8192,
    "model_type": "llama",
    "num_attention_heads": 32,
    "num_hidden_layers": 32,
    "num_key_value_heads": 8,
    "rope_theta": 500000.0,
    "tie_word_embeddings": False,
    "torch_dtype": "bfloat16",
    "vocab_size": 128256,
}
REPO = "acme/llama-3-8b-finetune"
COMMIT = "8cde5ca8380496c9a6cc7ef3a8b46a0372a1d920"


def test_what_fits_equals_the_python_api(client):
    got = client.get("/api/what-fits", params={"rig": "rtx-4090", "limit": 5})
    assert got.status_code == 200
    assert got.json() == json.loads(json.dumps(what_fits("rtx-4090", limit=5).to_dict()))


def test_what_fits_rows_fit_and_carry_a_speed_range(client):
    rows = client.get("/api/what-fits", params={"rig": "2x rtx-3090", "model": ["llama-3-70b", "llama-3-8b"]}).json()[
        "rows"
    ]
    assert [(r["model"], r["quant"]) for r in rows][:2] == [("llama-3-70b", "q4_k_m"), ("llama-3-8b", "f16")]
    for r in rows:
        low, high = r["decode_tokens_per_s_range"]
        assert low <= r["decode_tokens_per_s"] <= high
        assert r["max_context"] >= 4096


def test_what_fits_refuses_a_bad_rig_with_the_cli_message(client):
    r = client.get("/api/what-fits", params={"rig": "2x rtx-4900"})
    assert r.status_code == 404 and "rtx-4090" in r.json()["suggestions"]


@pytest.mark.parametrize("axis,key", [("context", "context"), ("batch", "batch")])
def test_sweep_points_equal_single_estimates(client, axis, key):
    got = client.get("/api/sweep", params={"model": "llama-3-8b", "rig": "rtx-4090", "axis": axis, "values": [1, 4096]})
    assert got.status_code == 200
    points = {p[key]: p for p in got.json()["points"]}
    kw = {"context": 4096} if axis == "context" else {"batch": 4096}
    single = estimate("llama-3-8b", "rtx-4090", **kw).to_dict()
    assert points[4096]["fits"] == single["fits"]
    if single["fits"]:
        assert points[4096]["decode_tokens_per_s"] == pytest.approx(single["speed"]["decode_tokens_per_s"])


def test_context_sweep_slows_decode_and_grows_memory(client):
    points = client.get("/api/sweep", params={"model": "llama-3.1-8b", "rig": "rtx-4090"}).json()["points"]
    fitting = [p for p in points if p["fits"]]
    assert len(fitting) >= 3
    speeds = [p["decode_tokens_per_s"] for p in fitting]
    memory = [p["memory_bytes"] for p in fitting]
    assert speeds == sorted(speeds, reverse=True) and memory == sorted(memory)


def test_upload_a_config_json_then_use_its_id_everywhere(client):
    up = client.post("/api/models/upload", json={"name": "my-llama", "config": json.dumps(LLAMA_3_8B_CONFIG)})
    assert up.status_code == 200, up.text
    body = up.json()
    assert body["id"].startswith("upload-") and body["model"]["num_kv_heads"] == 8
    mine = client.get("/api/estimate", params={"model": body["id"], "rig": "rtx-4090", "quant": "q4_k_m"}).json()
    ref = client.get("/api/estimate", params={"model": "llama-3-8b", "rig": "rtx-4090", "quant": "q4_k_m"}).json()
    # Same shapes as the catalogue row: the same weights to within the tied / untied head.
    assert mine["memory"]["weights_bytes"] == pytest.approx(ref["memory"]["weights_bytes"], rel=0.02)
    assert client.get(f"/api/models/{body['id']}").json()["hidden_size"] == 4096
    # The same file gets the same id (answers cached under it stay true).
    again = client.post("/api/models/upload", json={"name": "my-llama", "config": json.dumps(LLAMA_3_8B_CONFIG)})
    assert again.json()["id"] == body["id"]


@pytest.mark.parametrize(
    "config,status,words",
    [
        ("[" * 100_000, 413, "over"),  # past the body limit before any parsing
        ("[" * 1000 + "]" * 1000, 422, "nest"),
        ("{not json", 422, "json"),
        ("[1, 2]", 422, "object"),
        (json.dumps({**LLAMA_3_8B_CONFIG, "num_hidden_layers": -3}), 422, "num_hidden_layers"),
    ],
    ids=["huge", "deep", "malformed", "not-an-object", "bad-field"],
)
def test_a_bad_upload_is_one_clear_error(client, config, status, words):
    r = client.post("/api/models/upload", json={"name": "x", "config": config})
    assert r.status_code == status, r.text
    assert words in r.json()["detail"].lower()


def test_an_unknown_upload_id_says_to_upload_again(client):
    r = client.get("/api/estimate", params={"model": "upload-000000000000", "rig": "rtx-4090"})
    assert r.status_code == 404 and "upload its config.json again" in r.json()["detail"]


@pytest.fixture
def hub_cache(tmp_path, monkeypatch):
    """A Hub cache holding REPO's config.json (HF_HUB_OFFLINE=1 comes from tests/conftest.py)."""
    pytest.importorskip("huggingface_hub")
    repo = tmp_path / "hub" / f"models--{REPO.replace('/', '--')}"
    (repo / "snapshots" / COMMIT).mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(COMMIT)
    (repo / "snapshots" / COMMIT / "config.json").write_text(json.dumps(LLAMA_3_8B_CONFIG))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))


def test_a_hugging_face_id_works_with_allow_network(hub_cache):
    web = TestClient(create_app(allow_network=True, slow_deadline_s=None), base_url="http://127.0.0.1")
    r = web.get("/api/what-fits", params={"rig": "rtx-4090", "model": REPO, "quant": "q4_k_m"})
    assert r.status_code == 200, r.text
    assert [row["model"] for row in r.json()["rows"]] == [REPO]
    off = TestClient(create_app(), base_url="http://127.0.0.1").get(
        "/api/estimate", params={"model": REPO, "rig": "rtx-4090"}
    )
    assert off.status_code == 404 and "--allow-network" in off.json()["detail"]


def test_a_slow_answer_is_refused_within_the_deadline_then_served_from_cache(monkeypatch):
    from rigplan.web import view_ops

    release = threading.Event()
    real = view_ops.what_fits

    def slow(req, inputs):
        release.wait(5)
        return real(req, inputs)

    monkeypatch.setattr(view_ops, "what_fits", slow)
    web = TestClient(create_app(slow_deadline_s=0.2), base_url="http://127.0.0.1")
    params = {"rig": "rtx-4090", "model": "llama-3-8b"}
    assert web.get("/api/meta").status_code == 200  # the client and the app started before timing
    t0 = time.monotonic()
    first = web.get("/api/what-fits", params=params)
    assert time.monotonic() - t0 < 3
    assert first.status_code == 422 and first.headers["retry-after"] == "2"
    assert "ask again" in first.json()["detail"]
    release.set()
    deadline = time.monotonic() + 10
    while (again := web.get("/api/what-fits", params=params)).status_code != 200 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert again.status_code == 200 and again.json()["rows"]


def test_a_full_queue_is_refused_with_503_and_retry_after():
    from rigplan.web.errors import ServerBusyError

    gate = threading.Event()
    cache = AnswerCache(workers=Workers(slots=1, queue_depth=1))

    workers = cache.workers
    first = workers.start(lambda: gate.wait(5))
    second = workers.start(lambda: gate.wait(5))
    with pytest.raises(ServerBusyError, match="busy") as err:
        workers.start(lambda: None)
    assert err.value.retry_after_s == 2
    gate.set()
    first.result(5), second.result(5)
    deadline = time.monotonic() + 5
    while workers.admitted and time.monotonic() < deadline:
        time.sleep(0.01)
    assert workers.admitted == 0
    assert workers.start(lambda: "done").result(5) == "done"


def test_busy_and_slow_refusals_are_declared_in_the_schema(client):
    spec = client.get("/openapi.json").json()
    responses = spec["paths"]["/api/plan"]["get"]["responses"]
    assert {"503", "422", "413"} <= set(responses)
    assert "Retry-After" in responses["503"]["headers"]


def test_a_question_that_would_wait_past_the_limit_is_refused_at_once():
    from rigplan.web.answers import MAX_QUEUE_WAIT_S
    from rigplan.web.errors import ServerBusyError

    gate = threading.Event()
    workers = Workers(slots=1, queue_depth=100)
    workers.mean_work_s = 4 * MAX_QUEUE_WAIT_S  # answers have been taking 8 s each
    running = workers.start(lambda: gate.wait(5))  # a free worker: no wait
    with pytest.raises(ServerBusyError) as err:
        workers.start(lambda: None)  # would wait ~8 s for the worker
    assert err.value.retry_after_s >= 4 * MAX_QUEUE_WAIT_S
    gate.set()
    running.result(5)


def test_the_quant_list_words_bits_as_the_cli_does(client):
    from rigplan import list_quants, quant_bits_text

    got = {q["id"]: q["bits_text"] for q in client.get("/api/quants").json()["quants"]}
    assert got == {q.id: quant_bits_text(q) for q in list_quants()}
    assert got["q4_k_m"] == "4.5 bits main tensors, ~4.9 model average"

"""The JSON API in-process: every operation by GET and POST, errors as the CLI words them,
request limits, and no client input reaching the filesystem or network by default."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

import rigplan
from rigplan.web import create_app
from rigplan.web.app import features
from rigplan.web.limits import MAX_BODY_BYTES


def test_estimate_get_equals_python_api(client):
    r = client.get("/api/estimate", params={"model": "llama-3-70b", "rig": "2x rtx-4090", "quant": "4bit"})
    assert r.status_code == 200
    assert r.json() == json.loads(json.dumps(rigplan.estimate("llama-3-70b", "2x rtx-4090", quant="4bit").to_dict()))


def test_estimate_post_equals_get(client):
    params = {"model": "llama-3-8b", "rig": "rtx-4090", "engine": "vllm", "batch": 4, "context": 4096}
    got = client.get("/api/estimate", params=params)
    posted = client.post("/api/estimate", json=params)
    assert got.status_code == posted.status_code == 200
    assert got.json() == posted.json()
    d = posted.json()
    assert (d["engine"], d["batch"], d["context"]) == ("vllm", 4, 4096)
    per_gpu = d["memory"]["per_gpu"][0]
    assert {
        "capacity_bytes",
        "usable_bytes",
        "weights_bytes",
        "kv_cache_bytes",
        "activations_bytes",
        "overhead_bytes",
    } <= per_gpu.keys()


@pytest.mark.parametrize(
    ("params", "status", "error", "message"),
    [
        ({"model": "llama-9-70b", "rig": "rtx-4090"}, 404, "UnknownModelError", "unknown model 'llama-9-70b'"),
        ({"model": "llama-3-8b", "rig": "rtx-4900"}, 404, "UnknownGPUError", "did you mean rtx-4090"),
        ({"model": "llama-3-8b", "rig": "rtx-4090", "quant": "q9_k"}, 404, "UnknownQuantError", "unknown quant"),
        ({"model": "llama-3-8b", "rig": "rtx-4090", "engine": "vllmx"}, 404, "UnknownEngineError", "unknown engine"),
        ({"model": "llama-3-8b", "rig": "rtx-4090 +"}, 422, "RigSyntaxError", "cannot read"),
        (
            {"model": "llama-3-8b", "rig": "rtx-4090", "context": 100, "prompt_tokens": 512},
            422,
            "InvalidValueError",
            "smaller than prompt_tokens",
        ),
        (
            {"model": "llama-3-8b", "rig": "rtx-4090", "engine": "vllm", "quant": "q4_k_m"},
            422,
            "UnsupportedError",
            "cannot run quant",
        ),
        ({"model": "llama-3-8b", "rig": "m2-ultra-192gb", "engine": "vllm"}, 422, "UnsupportedError", "Apple"),
        ({"model": "llama-3-8b", "rig": "rtx-4090", "batch": 0}, 422, "ValidationError", "batch"),
        ({"model": "llama-3-8b", "rig": "rtx-4090", "lanes": 3}, 422, "ValidationError", "lanes"),
        ({"model": "llama-3-8b", "rig": "rtx-4090", "host_ram_gb": "nan"}, 422, "ValidationError", "finite"),
        ({"model": "llama-3-8b", "rig": "rtx-4090", "bogus": 1}, 422, "ValidationError", "bogus"),
        ({"model": "", "rig": "rtx-4090"}, 422, "ValidationError", "model"),
        ({"rig": "rtx-4090"}, 422, "ValidationError", "model: Field required"),
    ],
    ids=[
        "model",
        "gpu",
        "quant",
        "engine",
        "rig-syntax",
        "context",
        "engine-quant",
        "apple-vllm",
        "batch",
        "lanes",
        "nan",
        "extra-key",
        "empty",
        "missing",
    ],
)
def test_estimate_errors_carry_the_cli_message(client, params, status, error, message):
    r = client.get("/api/estimate", params=params)
    assert r.status_code == status, r.text
    body = r.json()
    assert body["error"] == error
    assert message in body["detail"]
    if status == 404:
        with pytest.raises(rigplan.RigplanError) as exc:
            rigplan.estimate(
                params["model"], params["rig"], quant=params.get("quant"), engine=params.get("engine", "llama.cpp")
            )
        assert body["detail"].startswith(str(exc.value))  # the CLI prints the same line


def test_unknown_model_suggests_ids(client):
    body = client.get("/api/estimate", params={"model": "llama-3-7b", "rig": "rtx-4090"}).json()
    assert "llama-3-70b" in body["suggestions"]


@pytest.mark.parametrize(
    "model",
    [
        "/etc/passwd",
        "../../etc/hostname",
        "~/.bashrc",
        "someorg/some-model",
        "file:///etc/passwd",
        "https://huggingface.co/x/y",
    ],
)
def test_paths_and_repo_ids_never_reach_the_core_by_default(client, monkeypatch, model):
    from rigplan.integrations import sources

    def forbidden(text):
        raise AssertionError(f"load_model_source called with {text!r}")

    monkeypatch.setattr(sources, "load_model_source", forbidden)
    r = client.get("/api/estimate", params={"model": model, "rig": "rtx-4090"})
    assert r.status_code == 404
    assert "--allow-paths" in r.json()["detail"]


def test_allow_paths_passes_an_existing_path_through(monkeypatch, tmp_path):
    from rigplan.integrations import sources

    seen = []
    monkeypatch.setattr(sources, "load_model_source", lambda text: seen.append(text))
    folder = tmp_path / "my-model"
    folder.mkdir()
    c = TestClient(create_app(allow_paths=True), base_url="http://127.0.0.1")
    r = c.get("/api/estimate", params={"model": str(folder), "rig": "rtx-4090"})
    assert seen == [str(folder)]
    assert r.status_code == 404  # the stub source found no model there
    # a repo id still needs --allow-network
    r = c.get("/api/estimate", params={"model": "org/name", "rig": "rtx-4090"})
    assert r.status_code == 404 and seen == [str(folder)]
    assert "--allow-network" in r.json()["detail"]


def test_allow_network_passes_repo_ids_but_not_paths(monkeypatch, tmp_path):
    from rigplan.integrations import sources

    seen = []
    monkeypatch.setattr(sources, "load_model_source", lambda text: seen.append(text))
    c = TestClient(create_app(allow_network=True), base_url="http://127.0.0.1")
    c.get("/api/estimate", params={"model": "someorg/some-model", "rig": "rtx-4090"})
    r = c.get("/api/estimate", params={"model": str(tmp_path), "rig": "rtx-4090"})
    assert seen == ["someorg/some-model"]
    assert "--allow-paths" in r.json()["detail"]


def test_hugging_face_id_of_a_catalogue_model_resolves_offline(client):
    r = client.get("/api/estimate", params={"model": "meta-llama/Meta-Llama-3-8B", "rig": "rtx-4090"})
    assert r.status_code == 200 and r.json()["model"] == "llama-3-8b"


def test_catalogue_alias_resolves(client):
    r = client.get("/api/estimate", params={"model": "LLAMA-3-8B", "rig": "RTX 4090"})
    assert r.status_code == 200 and r.json()["model"] == "llama-3-8b"


def test_compare_keeps_order_and_reports_each_rig(client):
    r = client.get(
        "/api/compare",
        params=[
            ("model", "llama-3-70b"),
            ("quant", "4bit"),
            ("rig", "2x rtx-3090"),
            ("rig", "rtx-5090"),
            ("rig", "rtx-9999"),
        ],
    )
    assert r.status_code == 200
    results = r.json()["results"]
    assert [x["rig"] for x in results[:2]] == ["2x rtx-3090", "rtx-5090"]
    assert (results[0]["fits"], results[1]["fits"]) == (True, False)
    assert results[2]["error"] == "UnknownGPUError" and "rtx-9999" in results[2]["detail"]


def test_scaling_one_line_per_gpu_type(client):
    r = client.post(
        "/api/scaling",
        json={"model": "llama-3-70b", "quant": "4bit", "gpu": ["rtx-4090", "m2-ultra-192gb"], "max_gpus": 4},
    )
    assert r.status_code == 200, r.text
    lines = {x["gpu"]: x["points"] for x in r.json()["lines"]}
    assert [p["gpus"] for p in lines["rtx-4090"]] == [1, 2, 3, 4]
    assert [p["fits"] for p in lines["rtx-4090"]][:2] == [False, True]
    assert [p["gpus"] for p in lines["m2-ultra-192gb"]] == [1]  # one Apple chip per machine


def test_scaling_refuses_too_many_gpu_types(client):
    r = client.post("/api/scaling", json={"model": "llama-3-8b", "gpu": ["rtx-4090"] * 9})
    assert r.status_code == 422


def test_vram_matches_the_python_api(client):
    from rigplan.vram import vram_table

    r = client.get("/api/vram", params=[("model", "llama-2-7b"), ("quant", "4bit"), ("context", 2048)])
    assert r.status_code == 200
    _, rows = vram_table("llama-2-7b", quants=("4bit",), contexts=(2048,))
    got = r.json()["rows"]
    assert [(x["quant"], x["total_bytes"], x["smallest_rigs"]) for x in got] == [
        (x.quant, x.total_bytes, x.smallest_rigs) for x in rows
    ]


def test_gpus_filters_and_one_gpu(client):
    r = client.get("/api/gpus", params={"min_memory_gb": 80, "nvlink": True, "sort": "bandwidth"})
    gpus = r.json()["gpus"]
    assert gpus and all(g["memory_gb"] >= 80 and g["nvlink"] != "none" for g in gpus)
    bw = [g["bandwidth_gb_per_s"] for g in gpus]
    assert bw == sorted(bw, reverse=True)
    one = client.get("/api/gpus/4090").json()
    assert one["id"] == "rtx-4090" and one["memory_mib"] == 24564
    assert client.get("/api/gpus/rtx-4900").status_code == 404
    assert client.get("/api/gpus", params={"sort": "colour"}).status_code == 422


def test_models_and_one_model(client):
    models = client.get("/api/models").json()["models"]
    ids = {m["id"] for m in models}
    assert {"llama-2-70b", "mixtral-8x7b", "deepseek-v3"} <= ids
    m = client.get("/api/models/llama-3-70b").json()
    assert m["num_layers"] == 80 and m["computed_param_count"] > 0
    missing = client.get("/api/models/llama-9")
    assert missing.status_code == 404 and missing.json()["error"] == "UnknownModelError"


def test_quants_and_meta(client):
    quants = {q["id"]: q for q in client.get("/api/quants").json()["quants"]}
    assert quants["q4_k_m"]["family"] == "gguf" and quants["bf16"]["bits_per_weight"] == 16
    meta = client.get("/api/meta").json()
    assert meta["version"] == rigplan.__version__
    assert meta["allow_paths"] is False and meta["allow_network"] is False
    assert set(meta["features"]) >= {"plan", "launch", "training"}


def test_openapi_documents_every_operation(client):
    spec = client.get("/openapi.json").json()
    ops = {(path, method) for path, item in spec["paths"].items() for method in item}
    for path in ("/api/estimate", "/api/compare", "/api/scaling", "/api/vram", "/api/gpus"):
        assert (path, "get") in ops and (path, "post") in ops
    estimate_params = {p["name"]: p for p in spec["paths"]["/api/estimate"]["get"]["parameters"]}
    batch = estimate_params["batch"]["schema"]
    assert max(s.get("maximum", 0) for s in batch.get("anyOf", [batch])) > 1  # or "max"
    assert "404" in spec["paths"]["/api/estimate"]["get"]["responses"]


def test_body_over_limit_is_413(client):
    big = json.dumps({"model": "x" * MAX_BODY_BYTES, "rig": "rtx-4090"})
    r = client.post("/api/estimate", content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413


def test_chunked_body_over_limit_is_413(client):
    def chunks():
        for _ in range(MAX_BODY_BYTES // 1024 + 2):
            yield b" " * 1024

    r = client.post("/api/estimate", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413


def test_long_query_is_414(client):
    r = client.get("/api/estimate", params={"model": "m" * 9000, "rig": "rtx-4090"})
    assert r.status_code == 414


def test_bad_json_is_422(client):
    r = client.post("/api/estimate", content=b"{nope", headers={"content-type": "application/json"})
    assert r.status_code == 422 and r.json()["error"] == "ValidationError"


def test_foreign_host_header_is_refused(client):
    # A DNS-rebinding page would arrive with its own host name.
    assert client.get("/api/models", headers={"host": "attacker.example"}).status_code == 400
    assert client.get("/api/models", headers={"host": "localhost:8000"}).status_code == 200


def test_a_bug_is_a_logged_500_without_details(monkeypatch, caplog):
    import rigplan

    def broken(*args, **kwargs):
        raise ZeroDivisionError("boom")

    monkeypatch.setattr(rigplan, "estimate", broken)  # the web calls the public API only
    c = TestClient(create_app(), base_url="http://127.0.0.1", raise_server_exceptions=False)
    r = c.get("/api/estimate", params={"model": "llama-3-8b", "rig": "rtx-4090"})
    assert r.status_code == 500
    assert r.json()["error"] == "InternalError" and "boom" not in r.text
    assert "boom" in caplog.text


def test_page_and_static_files(client):
    r = client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    csp = r.headers["content-security-policy"]
    assert "default-src 'self'" in csp
    assert "http" not in r.text.split("<body>")[0].replace('href="/static', "")  # no CDN in <head>
    for name in ("app.js", "charts.js", "style.css"):
        res = client.get(f"/static/{name}")
        assert res.status_code == 200
        assert "cdn" not in res.text.lower() and "https://" not in res.text
    assert client.get("/static/../app.py").status_code == 404


needs_launch = pytest.mark.skipif(
    not features()["launch"], reason="rigplan.integrations.launch is not in this checkout yet"
)


@needs_launch
@pytest.mark.parametrize(
    ("params", "first_word"),
    [
        ({"model": "llama-3-70b", "rig": "2x rtx-3090"}, "llama-server"),
        ({"model": "llama-3-8b", "rig": "2x rtx-4090", "engine": "vllm", "users": 8}, "vllm"),
        ({"model": "llama-3-70b", "rig": "2x rtx-3090", "task": "qlora"}, "torchrun"),
    ],
    ids=["llama.cpp", "vllm", "qlora"],
)
def test_launch_matches_the_python_api(client, params, first_word):
    from rigplan.integrations.launch import launch_plan, training_plan

    r = client.post("/api/launch", json=params)
    assert r.status_code == 200, r.text
    body = r.json()
    task = params.get("task", "serve")
    kw = {k: v for k, v in params.items() if k not in ("model", "rig", "task")}
    plan = (
        launch_plan(params["model"], params["rig"], **kw)
        if task == "serve"
        else training_plan(params["model"], params["rig"], task=task)
    )
    assert {k: v for k, v in body.items() if k != "text"} == json.loads(json.dumps(plan.to_dict()))
    assert body["text"].startswith(first_word)


@needs_launch
def test_launch_refuses_a_layout_with_the_rule(client):
    r = client.get("/api/launch", params={"model": "llama-3-70b", "rig": "3x rtx-3090", "engine": "vllm"})
    assert r.status_code == 422
    assert "does not divide" in r.json()["detail"]


@needs_launch
def test_launch_script_name_cannot_inject_shell(client):
    r = client.get(
        "/api/launch", params={"model": "llama-3-8b", "rig": "rtx-4090", "task": "lora", "script": "x.py; rm -rf ~"}
    )
    assert r.status_code == 422


def test_default_server_never_probes_the_filesystem(client, monkeypatch):
    import pathlib

    def probe(self, *args, **kwargs):
        raise AssertionError(f"filesystem probed for {self}")

    monkeypatch.setattr(pathlib.Path, "exists", probe)
    monkeypatch.setattr(pathlib.Path, "stat", probe)
    r = client.get("/api/estimate", params={"model": "/etc/passwd", "rig": "rtx-4090"})
    assert r.status_code == 404


@pytest.mark.parametrize("model", ["x" * 190 + "/" + "y" * 9, "a\x00b", "é" * 200], ids=["long", "nul", "unicode"])
def test_odd_names_with_paths_allowed_are_404_not_500(model):
    c = TestClient(create_app(allow_paths=True, allow_network=True), base_url="http://127.0.0.1")
    with pytest.MonkeyPatch.context() as mp:
        from rigplan.integrations import sources

        mp.setattr(sources, "load_model_source", lambda text: None)
        mp.setattr(sources, "resolve_source", lambda text: None, raising=False)
        r = c.get("/api/estimate", params={"model": model, "rig": "rtx-4090"})
    assert r.status_code in (404, 422), r.text


needs_plan = pytest.mark.skipif(not features()["plan"], reason="rigplan.planner is not in this checkout yet")
needs_training = pytest.mark.skipif(
    not (features()["training"] and features()["training_plan"]), reason="rigplan.training is not in this checkout yet"
)


@needs_plan
def test_plan_matches_the_python_api(client):
    from rigplan.planning import plan_rigs

    params = {"model": "llama-2-70b", "quant": "4bit", "budget": 4000, "circuit": "120v15a", "top": 3}
    r = client.get("/api/plan", params=params)
    assert r.status_code == 200, r.text
    got = r.json()
    want = plan_rigs("llama-2-70b", quant="4bit", budget_usd=4000, circuit="120v15a", top=3).to_dict()
    got.pop("elapsed_s"), want.pop("elapsed_s")
    assert got == json.loads(json.dumps(want))
    assert got["recommendations"] and all(x["cost_usd"] <= 4000 for x in got["recommendations"])


@needs_plan
def test_plan_gives_the_page_the_speed_it_shows(client):
    """The page's speed column reads speed_tokens_per_s: per user, prompts included, for several users."""
    from rigplan.planning import plan_rigs
    from rigplan.results import per_user_speed

    params = {"model": "llama-3.3-70b", "users": 32, "min_tokens_per_s": 20, "budget": 60000, "top": 3}
    recs = client.post("/api/plan", json=params).json()["recommendations"]
    want = plan_rigs("llama-3.3-70b", users=32, min_tokens_per_s=20, budget_usd=60000, top=3).recommendations
    assert recs and len(recs) == len(want)
    for got, r in zip(recs, want, strict=True):
        assert got["speed_basis"] == "per-user, prompts included"
        assert got["speed_tokens_per_s"] == per_user_speed(r.estimate)[0] >= 20
        assert got["speed_tokens_per_s"] < got["estimate"]["speed"]["decode_tokens_per_s"]


@needs_plan
def test_plan_with_nothing_qualifying_says_why(client):
    r = client.post("/api/plan", json={"model": "llama-2-70b", "budget": 10})
    assert r.status_code == 200
    body = r.json()
    assert body["recommendations"] == []
    assert body["excluded"]["budget"] > 0 and "budget" in " ".join(body["nearest_miss"]["failed"])


@needs_plan
@pytest.mark.parametrize(
    ("params", "status", "field"),
    [
        ({"model": "llama-2-70b", "objective": "prettiest"}, 422, "objective"),
        ({"model": "llama-2-70b", "price": ["rtx-3090=cheap"]}, 422, "price"),
        ({"model": "llama-2-70b", "have": ["rtx-9999"]}, 404, None),
        ({"model": "llama-2-70b", "context": 10**6}, 422, "context"),
        ({"model": "llama-2-70b", "users": 0}, 422, "users"),
    ],
    ids=["objective", "price", "have", "context", "users"],
)
def test_plan_refuses_bad_constraints(client, params, status, field):
    r = client.post("/api/plan", json=params)
    assert r.status_code == status, r.text
    if field:
        assert field in r.json()["detail"]


@needs_plan
def test_power_matches_the_python_api(client):
    from rigplan.power_report import power_report

    r = client.get(
        "/api/power",
        params={
            "rig": "2x rtx-4090",
            "circuit": "120v15a",
            "kwh_price": 0.3,
            "model": "llama-3-70b",
            "power_limit": "70%",
        },
    )
    assert r.status_code == 200, r.text
    want = power_report("2x rtx-4090", circuit="120v15a", kwh_price=0.3, model="llama-3-70b", power_limit="70%")
    assert r.json() == json.loads(json.dumps(want.to_dict()))
    assert r.json()["power"]["psu_watts"] >= 1000


@needs_plan
def test_power_model_is_gated_like_estimate(client):
    r = client.get("/api/power", params={"rig": "rtx-4090", "model": "/etc/passwd"})
    assert r.status_code == 404 and "--allow-paths" in r.json()["detail"]


@needs_training
@pytest.mark.parametrize(
    "ask",
    [
        {"model": "llama-3-8b", "task": "qlora", "gpu_class": "consumer", "limit": 3},
        # GPUs without bf16 are planned in f16; whole machines as nodes of one
        {"model": "llama-3-8b", "task": "lora", "gpu": ["t4", "mi50-32gb"], "limit": 4},
        {"model": "llama-3-70b", "task": "qlora", "gpu": ["ryzen-ai-max-395-128gb", "dgx-spark"], "limit": 4},
    ],
    ids=["qlora-consumer", "no-bf16", "whole-machines"],
)
def test_train_plan_then_train_reproduces_each_option(client, ask):
    """What the page does when a training row is chosen: /api/train with the option's fields."""
    plan = client.get("/api/train-plan", params=ask)
    assert plan.status_code == 200, plan.text
    p = plan.json()
    assert p["options"]
    for o in p["options"]:
        r = client.get(
            "/api/train",
            params={
                "model": ask["model"],
                "rig": o["rig"],
                "method": ask["task"],
                "seq_len": p["seq_len"],
                "global_batch": p["global_batch"],
                "micro_batch": o["micro_batch"],
                "zero_stage": o["zero_stage"],
                "activation_checkpointing": o["activation_checkpointing"],
                "tokens": p["tokens"],
                "tensor_parallel": o["tensor_parallel"],
                "pipeline_parallel": o["pipeline_parallel"],
                "precision": o["precision"],
                **({"offload": o["offload"]} if o["offload"] else {}),
            },
        )
        assert r.status_code == 200, (o["rig"], r.text)
        t = r.json()
        assert t["fits"] is True
        assert t["speed"]["tokens_per_s"] == pytest.approx(o["tokens_per_s"])
        assert t["memory"]["peak_gpu_bytes"] == o["peak_gpu_bytes"]


@needs_training
def test_train_zero_stage_accepts_numbers_and_aliases(client):
    for stage in ("3", "fsdp-full"):
        r = client.get("/api/train", params={"model": "llama-3-8b", "rig": "2x rtx-3090", "zero_stage": stage})
        assert r.status_code == 200, r.text
    assert (
        client.get("/api/train", params={"model": "llama-3-8b", "rig": "rtx-3090", "zero_stage": 4}).status_code == 422
    )


def test_capacity_and_plan_take_the_request_tokens(client):
    params = {"model": "llama-3.1-8b", "rig": "rtx-4090", "engine": "llama.cpp", "users": 4, "prompt_tokens": 4096}
    r = client.get("/api/capacity", params=params)
    assert r.status_code == 200, r.text
    want = rigplan.capacity(
        "llama-3.1-8b", "rtx-4090", users=4, context=8192, min_tokens_per_s=20.0, engine="llama.cpp",
        prompt_tokens=4096,
    ).to_dict()  # fmt: skip
    assert r.json() == json.loads(json.dumps(want))
    bad = client.get("/api/capacity", params={**params, "context": 2048})
    assert bad.status_code == 422 and "cannot hold a request" in bad.json()["detail"]
    plan = client.get("/api/plan", params={"model": "llama-3.1-8b", "prompt_tokens": 7680, "output_tokens": 512})
    assert plan.status_code == 200, plan.text
    assert (plan.json()["constraints"]["prompt_tokens"], plan.json()["constraints"]["output_tokens"]) == (7680, 512)

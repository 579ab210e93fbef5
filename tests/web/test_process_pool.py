"""Answers computed in worker processes (`rigplan serve`'s mode): the same bytes as the thread
pool, rigplan's errors with their status and suggestions, uploads that only the server process
saw, and the pool's admission rule (a free worker takes anything; a queue past the goal is
refused)."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from test_views import LLAMA_3_8B_CONFIG

from rigplan.errors import UnknownModelError
from rigplan.web import create_app
from rigplan.web.answers import MAX_QUEUE_WAIT_S, Failure, Workers, failure_of
from rigplan.web.errors import ServerBusyError

QUESTIONS = [
    ("/api/estimate", {"model": "llama-3-8b", "rig": "rtx-4090", "quant": "q4_k_m"}),
    ("/api/plan", {"model": "llama-3-8b", "top": 3, "budget": 4321}),
    ("/api/vram", {"model": "llama-3-8b", "quant": ["q4_k_m"], "context": [4096]}),
]


@pytest.fixture(scope="module")
def in_processes():
    app = create_app(processes=True, slow_deadline_s=None)
    with TestClient(app, base_url="http://127.0.0.1") as c:  # the lifespan stops the processes
        yield c


@pytest.mark.parametrize("path,params", QUESTIONS, ids=[q[0] for q in QUESTIONS])
def test_a_worker_process_answers_as_a_thread_does(in_processes, client, path, params):
    got = in_processes.get(path, params=params)
    assert got.status_code == 200, got.text
    expected = client.get(path, params=params).json()
    # Equal but for the planner's own timing, where there is one.
    assert got.json() | {"elapsed_s": None} == expected | {"elapsed_s": None}


def test_an_error_in_a_worker_process_keeps_its_status_and_suggestions(in_processes):
    r = in_processes.get("/api/estimate", params={"model": "lama-3-8b", "rig": "rtx-4090"})
    assert r.status_code == 404
    assert "llama-3-8b" in r.json()["suggestions"]


def test_an_upload_held_by_the_server_is_carried_to_the_worker(in_processes):
    up = in_processes.post("/api/models/upload", json={"name": "mine", "config": json.dumps(LLAMA_3_8B_CONFIG)})
    assert up.status_code == 200, up.text
    r = in_processes.get("/api/estimate", params={"model": up.json()["id"], "rig": "rtx-4090", "quant": "q4_k_m"})
    assert r.status_code == 200, r.text
    assert r.json()["fits"] is True


def test_a_rigplan_error_survives_the_trip_between_processes():
    import pickle

    sent = failure_of(UnknownModelError("lama", ["llama-3-8b"]))
    back = pickle.loads(pickle.dumps(sent)).rebuilt()
    assert isinstance(back, UnknownModelError) and back.suggestions == ["llama-3-8b"]
    assert str(back) == str(UnknownModelError("lama", ["llama-3-8b"]))


def test_a_bug_in_a_worker_process_keeps_its_traceback():
    try:
        {}["missing"]
    except KeyError as exc:
        sent = failure_of(exc)
    assert isinstance(sent, Failure) and sent.kind is RuntimeError
    assert "KeyError" in sent.args[0] and "Traceback" in sent.args[0]


def test_a_free_worker_takes_a_slow_question_but_a_queue_past_the_goal_is_refused():
    import threading

    gate = threading.Event()
    workers = Workers(slots=2, queue_depth=100)
    workers.mean_work_s = MAX_QUEUE_WAIT_S  # each answer takes the whole goal
    running = [workers.start(lambda: gate.wait(5)) for _ in range(2)]  # two free workers
    with pytest.raises(ServerBusyError) as err:
        workers.start(lambda: None)  # would wait a whole answer, then take one
    assert err.value.retry_after_s >= MAX_QUEUE_WAIT_S
    gate.set()
    assert [r.result(5) for r in running] == [True, True]
    workers.close()

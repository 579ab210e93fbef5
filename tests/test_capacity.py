"""rigplan.capacity: users served at a per-user speed, from the API and the command line."""

from __future__ import annotations

import json

import pytest

from rigplan import capacity
from rigplan.cli import main
from rigplan.errors import InvalidValueError, UnsupportedError


def test_capacity_meets_and_explains():
    c = capacity("llama-3.1-8b", "h100-sxm", users=32, context=8192, min_tokens_per_s=20)
    assert c.meets and c.users_served >= 32
    low, high = c.users_served_range
    assert low <= c.users_served <= high
    assert c.limited_by in ("speed", "kv cache", "max_num_seqs")
    assert c.users_served <= c.kv_pool_sequences


def test_faster_users_means_fewer_users():
    slow = capacity("llama-3.3-70b", "8x h100-sxm", users=32, context=8192, min_tokens_per_s=10)
    fast = capacity("llama-3.3-70b", "8x h100-sxm", users=32, context=8192, min_tokens_per_s=40)
    assert fast.users_served <= slow.users_served


def test_model_that_does_not_fit_serves_nobody():
    c = capacity("llama-3.3-70b", "rtx-4090", users=4, context=8192, min_tokens_per_s=5)
    assert c.users_served == 0 and c.limited_by == "does not fit" and not c.meets


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"engine": "llama.cpp"}, UnsupportedError, "serving engine"),
        ({"users": 0}, InvalidValueError, "users"),
        ({"min_tokens_per_s": -1}, InvalidValueError, "min_tokens_per_s"),
    ],
)
def test_bad_input(kwargs, error, match):
    args = {"users": 4, "context": 4096, "min_tokens_per_s": 10, **kwargs}
    with pytest.raises(error, match=match):
        capacity("llama-3.1-8b", "h100-sxm", **args)


def test_cli_capacity(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(
            ["capacity", "llama-3.1-8b", "--rig", "h100-sxm", "--users", "32", "--context", "8192", "--min-tok-s", "20"]
        )
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "users at once (range" in out and "meets the 32 asked" in out


def test_cli_capacity_json(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["capacity", "llama-3.1-8b", "--rig", "h100-sxm", "--users", "4096", "--json"])
    assert exit_info.value.code == 1
    d = json.loads(capsys.readouterr().out)
    assert d["meets"] is False and d["users_served"] > 0

"""rigplan.capacity: users served at a per-user speed, from the API and the command line, by
the rule `rigplan plan --users` applies (rigplan.results.per_user_speed) to the same workload."""

from __future__ import annotations

import json

import pytest

from rigplan import capacity, estimate, plan_rigs
from rigplan.cli import main
from rigplan.errors import InvalidValueError, UnknownEngineError
from rigplan.results import per_user_speed


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
        ({"engine": "no-such-engine"}, UnknownEngineError, "no-such-engine"),
        ({"users": 0}, InvalidValueError, "users"),
        ({"min_tokens_per_s": -1}, InvalidValueError, "min_tokens_per_s"),
        ({"prompt_tokens": -1}, InvalidValueError, "prompt_tokens"),
        ({"output_tokens": 0}, InvalidValueError, "output_tokens"),
        ({"prompt_tokens": 7680}, InvalidValueError, "cannot hold a request of prompt_tokens"),
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


# --- one rule, one workload: capacity and plan --users agree ---------------------------------
#: (model, rig, engine, quant, GPUs, context, tok/s per user, prompt tokens, output tokens):
#: llama.cpp, ExLlamaV2, vLLM and SGLang, chat turns and fresh RAG prompts.
AGREE = [
    ("llama-3.1-8b", "rtx-4090", "llama.cpp", "q4_k_m", 1, 8192, 30, 512, 128),
    ("llama-3.1-8b", "rtx-4090", "llama.cpp", "q4_k_m", 1, 8192, 20, 4096, 128),
    ("llama-3.1-8b", "rtx-3090", "exllamav2", "exl2-4.0", 1, 8192, 30, 512, 128),
    ("llama-3.3-70b", "4x h100-sxm", "vllm", "bf16", 4, 8192, 20, 512, 128),
    ("llama-3.3-70b", "4x h100-sxm", "vllm", "fp8", 4, 8192, 20, 7680, 512),
    ("llama-3.1-8b", "h100-pcie", "sglang", "bf16", 1, 8192, 40, 2048, 256),
]


def _plan_lists(model, rig, engine, quant, gpus, context, speed, prompt, output, users):
    p = plan_rigs(
        model, engine=engine, quant=quant, users=users, context=context, min_tokens_per_s=speed,
        prompt_tokens=prompt, output_tokens=output, max_gpus=gpus, top=100,
    )  # fmt: skip
    return any(r.rig.describe() == rig and r.engine == engine for r in p.ranked)


@pytest.mark.parametrize("case", AGREE, ids=lambda c: f"{c[2]}-{c[1]}-{c[7]}")
def test_capacity_and_plan_agree_at_the_boundary(case):
    model, rig, engine, quant, _, context, speed, prompt, output = case
    c = capacity(
        model, rig, users=1, context=context, min_tokens_per_s=speed, engine=engine, quant=quant,
        prompt_tokens=prompt, output_tokens=output,
    )  # fmt: skip
    served = c.users_served
    assert served >= 1, c
    # users_served >= N exactly when plan lists the rig for N users: at the last N served and the next
    assert _plan_lists(*case, served)
    assert not _plan_lists(*case, served + 1)


@pytest.mark.parametrize("engine", ["llama.cpp", "exllamav2"])
def test_per_user_speed_of_other_engines_falls_as_prompts_grow(engine):
    speeds = []
    for prompt in (0, 512, 2048, 7680):
        e = estimate("llama-3.1-8b", "rtx-4090", engine=engine, batch=8, context=8192, prompt_tokens=prompt)
        value, (low, high) = per_user_speed(e)
        assert low <= value <= high
        # O / (prefill of the 8 users' prompts + O / decode per user at batch 8)
        out, decode = e.output_tokens, e.speed.decode_tokens_per_s
        assert value == pytest.approx(out / ((e.speed.prefill_s or 0.0) + out / decode))
        speeds.append(value)
    assert speeds == sorted(speeds, reverse=True) and speeds[-1] < 0.5 * speeds[0]


def test_llama_cpp_capacity_falls_when_prompts_grow():
    chat = capacity("llama-3.1-8b", "rtx-4090", users=8, context=8192, min_tokens_per_s=20, engine="llama.cpp")
    rag = capacity(
        "llama-3.1-8b", "rtx-4090", users=8, context=8192, min_tokens_per_s=20, engine="llama.cpp", prompt_tokens=7680
    )
    assert rag.per_user_tokens_per_s < chat.per_user_tokens_per_s
    assert rag.users_served < chat.users_served
    assert chat.max_num_seqs is None and chat.limited_by in ("kv cache", "speed")


def test_serving_per_user_speed_is_a_share_of_the_output():
    e = estimate("llama-3.3-70b", "4x h100-sxm", engine="vllm", batch=32, context=8192)
    value, rng = per_user_speed(e)
    assert value == pytest.approx(e.speed.output_throughput_tokens_per_s / 32)
    assert rng == pytest.approx(tuple(x / 32 for x in e.speed.output_throughput_tokens_per_s_range))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"context": 4096, "prompt_tokens": 7680}, "cannot hold a request of prompt_tokens"),
        ({"output_tokens": 0}, "output_tokens"),
        ({"prompt_tokens": -5}, "prompt_tokens"),
    ],
)
def test_plan_refuses_bad_request_tokens(kwargs, match):
    with pytest.raises(InvalidValueError, match=match):
        plan_rigs("llama-3.1-8b", users=4, **kwargs)


def test_plan_default_context_holds_a_long_request():
    p = plan_rigs("llama-3.1-8b", users=2, prompt_tokens=7680, output_tokens=512, engine="vllm", top=1)
    assert p.constraints["context"] == 8192 and p.constraints["prompt_tokens"] == 7680


def test_cli_prompt_and_output_tokens(capsys):
    args = ["capacity", "llama-3.1-8b", "--rig", "rtx-4090", "--engine", "llama.cpp", "--users", "4"]
    with pytest.raises(SystemExit) as exit_info:
        main([*args, "--prompt-tokens", "2048", "--output-tokens", "256", "--json"])
    assert exit_info.value.code == 0
    d = json.loads(capsys.readouterr().out)
    assert (d["prompt_tokens"], d["output_tokens"], d["max_num_seqs"]) == (2048, 256, None)
    with pytest.raises(SystemExit) as exit_info:
        main(["plan", "llama-3.1-8b", "--context", "4096", "--prompt-tokens", "7680"])
    assert exit_info.value.code == 2
    assert "cannot hold a request" in capsys.readouterr().err


def test_plan_says_the_speed_it_checks(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["plan", "llama-3.1-8b", "--users", "4", "--engine", "llama.cpp", "--min-tok-s", "20", "--top", "1"])
    assert exit_info.value.code == 0
    assert "each user streams ~" in capsys.readouterr().out

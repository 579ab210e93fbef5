"""``rigplan capacity``: users one rig serves at a per-user speed."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from .. import CAPACITY_OPTIONS, format_rate
from . import app
from .estimate_cmds import JsonOpt, ModelArg
from .options import request_option
from .output import console, print_json


def render_capacity(d: dict[str, Any]) -> None:
    con = console()
    lo, hi = d["users_served_range"]
    verdict = "meets" if d["meets"] else "does NOT meet"
    con.print(
        f"{d['model']} · {d['quant']} · {d['engine']} · {d['rig']} · context {d['context']:,}"
        f" (requests of {d['prompt_tokens']:,} new prompt + {d['output_tokens']:,} generated tokens)"
        f" · at least {format_rate(d['min_tokens_per_s'])} per user"
    )
    if d["limited_by"] == "does not fit":
        con.print(f"does not fit: the weights leave no KV pool for one sequence of {d['context']:,} tokens")
        con.print(f"speed profile: {d['engine_profile']}")
        return
    con.print(
        f"serves {d['users_served']} users at once (range {lo}–{hi}); limited by {d['limited_by']}"
        f" — {verdict} the {d['users_asked']} asked"
    )
    if d["per_user_tokens_per_s"] is not None:
        rng = d["per_user_tokens_per_s_range"]
        extra = f" ({format_rate(rng[0], '').strip()}–{format_rate(rng[1], '').strip()})" if rng else ""
        asked = min(d["users_asked"], max(d["kv_pool_sequences"], 1))
        con.print(f"at {asked} users: {format_rate(d['per_user_tokens_per_s'])}{extra} each, prompts included")
    if d["max_num_seqs"] is None:
        con.print(f"memory holds the KV cache of {d['kv_pool_sequences']:,} users of {d['context']:,} tokens")
    else:
        con.print(
            f"KV pool holds {d['kv_pool_sequences']:,} sequences of {d['context']:,}; engine default max_num_seqs"
            f" {d['max_num_seqs']:,}"
        )
    if d["output_throughput_tokens_per_s"]:
        con.print(f"output at {d['users_served']} users: {format_rate(d['output_throughput_tokens_per_s'])}")
    con.print(f"speed profile: {d['engine_profile']}")


# The options of rigplan.capacity, from its option table.
UsersOpt = request_option(CAPACITY_OPTIONS, "users")
ContextOpt = request_option(CAPACITY_OPTIONS, "context")
MinSpeedOpt = request_option(CAPACITY_OPTIONS, "min_tokens_per_s", "--min-tok-s")
EngineOpt = request_option(CAPACITY_OPTIONS, "engine")
QuantOpt = request_option(CAPACITY_OPTIONS, "quant")
PromptOpt = request_option(CAPACITY_OPTIONS, "prompt_tokens")
OutputOpt = request_option(CAPACITY_OPTIONS, "output_tokens")
KvDtypeOpt = request_option(CAPACITY_OPTIONS, "kv_dtype")


@app.command("capacity")
def capacity_cmd(
    model: ModelArg,
    rig: Annotated[str, typer.Option(help="Rig: '8x h100-sxm', '4x l40s', '2 nodes x 8x h100-sxm'.")],
    users: UsersOpt = 1,
    context: ContextOpt = 8192,
    min_tok_s: MinSpeedOpt = 20.0,
    engine: EngineOpt = "vllm",
    quant: QuantOpt = None,
    prompt_tokens: PromptOpt = 512,
    output_tokens: OutputOpt = 128,
    kv_dtype: KvDtypeOpt = None,
    json: JsonOpt = False,
) -> None:
    """How many users a rig serves at once, each at a minimum speed, with a range.

    Exit status: 0 when it serves the users asked, 1 when it does not, 2 on bad input.

    Example: rigplan capacity llama-3.3-70b --rig '8x h100-sxm' --engine vllm --users 32 --context 8192 --min-tok-s 20
    """
    from .. import capacity

    c = capacity(
        model,
        rig,
        users=users,
        context=context,
        min_tokens_per_s=min_tok_s,
        engine=engine,
        quant=quant,
        prompt_tokens=prompt_tokens,
        output_tokens=output_tokens,
        kv_dtype=kv_dtype,
    )
    d = c.to_dict()
    if json:
        print_json(d)
    else:
        render_capacity(d)
    raise typer.Exit(0 if c.meets else 1)

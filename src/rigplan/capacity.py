"""``rigplan.capacity``: how many users one rig serves at a per-user speed, with a range.

Each user holds ``context`` tokens of KV cache and sends requests of ``prompt_tokens`` new
prompt tokens (earlier turns stay in the prefix cache) and ``output_tokens`` generated: the
workload of ``rigplan plan --users`` (:data:`rigplan.requests.SERVING_PROMPT_TOKENS`).  A batch of
``B`` users is served when the engine's KV pool holds ``B`` such contexts, ``B`` is within the
engine's default ``max_num_seqs``, and each user gets at least ``min_tokens_per_s`` by
:func:`rigplan.results.per_user_speed` (the planner's rule).  Speed falls as ``B`` grows, so the
largest such ``B`` is found by bisection; the range repeats it with the low and high ends of the
per-user speed's range.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .calibration.serving_load import load_serving_profiles
from .catalog.records import Catalog, Model
from .engines import VLLM, Engine, get_engine
from .errors import InvalidValueError
from .estimate import estimate
from .headroom import within_margin
from .requests import SERVING_OUTPUT_TOKENS, SERVING_PROMPT_TOKENS, check_request_tokens
from .results import Estimate, per_user_speed
from .rig import Rig

#: Limits on what a capacity question may ask (a guard for the web API, not a model limit).
MAX_USERS = 100_000
MAX_MIN_TOKENS_PER_S = 10_000.0


@dataclass(frozen=True, slots=True)
class Capacity:
    """Users one rig serves at a per-user speed, and why not more."""

    model: str
    rig: str
    engine: str
    quant: str
    context: int
    prompt_tokens: int
    output_tokens: int
    min_tokens_per_s: float
    users_asked: int
    users_served: int
    users_served_range: tuple[int, int]
    limited_by: str  # "speed" | "kv cache" | "max_num_seqs" | "does not fit"
    kv_pool_sequences: int  # other engines: the most users whose KV cache fits (within the margin)
    max_num_seqs: int | None  # the serving engine's default; None where the engine has none
    per_user_tokens_per_s: float | None  # at the users asked (or at 1 when that does not fit)
    per_user_tokens_per_s_range: tuple[float, float] | None
    output_throughput_tokens_per_s: float | None  # at users_served
    engine_profile: str

    @property
    def meets(self) -> bool:
        return self.users_served >= self.users_asked

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "rig": self.rig,
            "engine": self.engine,
            "quant": self.quant,
            "context": self.context,
            "prompt_tokens": self.prompt_tokens,
            "output_tokens": self.output_tokens,
            "min_tokens_per_s": self.min_tokens_per_s,
            "users_asked": self.users_asked,
            "users_served": self.users_served,
            "users_served_range": list(self.users_served_range),
            "meets": self.meets,
            "limited_by": self.limited_by,
            "kv_pool_sequences": self.kv_pool_sequences,
            "max_num_seqs": self.max_num_seqs,
            "per_user_tokens_per_s": self.per_user_tokens_per_s,
            "per_user_tokens_per_s_range": list(self.per_user_tokens_per_s_range)
            if self.per_user_tokens_per_s_range
            else None,
            "output_throughput_tokens_per_s": self.output_throughput_tokens_per_s,
            "engine_profile": self.engine_profile,
        }


def check_number(name: str, value: Any, *, minimum: float, integer: bool = False) -> None:
    """Refuse a value that is not a (whole, finite) number of at least ``minimum``."""
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or not math.isfinite(value) or value < minimum:
        what = "a whole number" if integer else "a number"
        raise InvalidValueError(name, f"must be {what} ≥ {minimum:g}, got {value!r}")


def _largest(ok: Callable[[int], bool], high: int) -> int:
    """The largest n in [0, high] with ok(n), for ok true up to some point and false after."""
    low = 0
    while low < high:
        mid = (low + high + 1) // 2
        if ok(mid):
            low = mid
        else:
            high = mid - 1
    return low


def capacity(
    model: str | Mapping[str, Any] | Model,
    rig: str | Rig,
    *,
    users: int,
    context: int,
    min_tokens_per_s: float,
    engine: str = "vllm",
    quant: str | None = None,
    prompt_tokens: int = SERVING_PROMPT_TOKENS,
    output_tokens: int = SERVING_OUTPUT_TOKENS,
    kv_dtype: str | None = None,
    catalog: Catalog | None = None,
) -> Capacity:
    """How many users ``rig`` serves with ``context`` tokens each at ``min_tokens_per_s`` each,
    each request ``prompt_tokens`` new prompt tokens and ``output_tokens`` generated.

    >>> c = capacity("llama-3.1-8b", "h100-sxm", users=32, context=8192, min_tokens_per_s=20)
    >>> c.meets, c.limited_by in ("speed", "kv cache", "max_num_seqs")
    (True, True)

    Raises:
        InvalidValueError: users, context, speed or tokens out of range, or a request longer
            than the context.
        UnsupportedError: an engine or quant that cannot run the model on the rig.
    """
    eng = _checked(users, context, min_tokens_per_s, engine, prompt_tokens, output_tokens)
    at = _Runs(model, rig, eng.id, quant, kv_dtype, (context, prompt_tokens, output_tokens), catalog)
    first = at(1)
    pool, seqs = _memory_limits(at, eng)
    high = min(pool, seqs) if seqs is not None else pool
    if not first.fits or high < 1:
        served, low_served, high_served, why = 0, 0, 0, "does not fit"
    else:
        served, low_served, high_served = _served(at, min_tokens_per_s, high)
        why = "speed" if served < high else ("kv cache" if seqs is None or pool <= seqs else "max_num_seqs")
    asked = at(min(users, high)) if high >= 1 else first
    speed, rng = per_user_speed(asked)
    return Capacity(
        model=first.model.id,
        rig=first.rig.describe(),
        engine=eng.id,
        quant=first.quant.id,
        context=context,
        prompt_tokens=prompt_tokens,
        output_tokens=output_tokens,
        min_tokens_per_s=float(min_tokens_per_s),
        users_asked=users,
        users_served=served,
        users_served_range=(low_served, high_served),
        limited_by=why,
        kv_pool_sequences=pool,
        max_num_seqs=seqs,
        per_user_tokens_per_s=speed,
        per_user_tokens_per_s_range=rng,
        output_throughput_tokens_per_s=_all_users(at(served), served) if served else None,
        engine_profile=first.speed.engine_profile,
    )


def _checked(
    users: int, context: int, min_tokens_per_s: float, engine: str, prompt_tokens: int, output_tokens: int
) -> Engine:
    """The engine, after checking every number.

    Raises:
        InvalidValueError: users, context, speed or tokens out of range.
    """
    check_number("users", users, minimum=1, integer=True)
    check_number("context", context, minimum=2, integer=True)
    check_number("min_tokens_per_s", min_tokens_per_s, minimum=0)
    check_number("prompt_tokens", prompt_tokens, minimum=0, integer=True)
    check_number("output_tokens", output_tokens, minimum=1, integer=True)
    if users > MAX_USERS or min_tokens_per_s > MAX_MIN_TOKENS_PER_S:
        raise InvalidValueError("users", f"at most {MAX_USERS:,} users and {MAX_MIN_TOKENS_PER_S:,.0f} tok/s")
    check_request_tokens(context, prompt_tokens, output_tokens)
    return get_engine(engine)


def _memory_limits(at: Callable[[int], Estimate], eng: Engine) -> tuple[int, int | None]:
    """(sequences the memory holds, the engine's default ``max_num_seqs`` or None).

    Serving engines: the KV pool as the engine sizes it at start-up.  Other engines allocate
    the KV cache of every user's context: the largest batch whose estimate keeps each GPU within
    the planner's margin (:func:`rigplan.headroom.within_margin`), found by doubling and bisection.
    """
    first = at(1)
    profiles = load_serving_profiles()
    if eng.family == VLLM and eng.id in profiles:
        seqs = min(profiles[eng.id].behaviour.max_num_seqs(g) for g in first.rig.gpus)
        return first.memory.max_concurrent_sequences or 0, seqs
    if not within_margin(first):
        return 0, None
    top = 1
    while top < MAX_USERS and within_margin(at(min(2 * top, MAX_USERS))):
        top = min(2 * top, MAX_USERS)
    ceiling = min(2 * top, MAX_USERS)
    return top + _largest(lambda extra: within_margin(at(top + extra)), ceiling - top), None


def _all_users(est: Estimate, users: int) -> float | None:
    """Output tok/s of all ``users`` together: each one's steady speed times their number."""
    speed = per_user_speed(est)[0]
    return None if speed is None else speed * users


class _Runs:
    """Estimates of one serving setup by batch size, each computed once."""

    def __init__(
        self,
        model: Any,
        rig: Any,
        engine: str,
        quant: str | None,
        kv_dtype: str | None,
        tokens: tuple[int, int, int],
        catalog: Catalog | None,
    ) -> None:
        context, prompt, out = tokens
        self.run = functools.partial(
            estimate,
            model,
            rig,
            engine=engine,
            quant=quant,
            kv_dtype=kv_dtype,
            context=context,
            prompt_tokens=prompt,
            output_tokens=out,
            catalog=catalog,
        )
        self.cache: dict[int, Estimate] = {}

    def __call__(self, batch: int) -> Estimate:
        if batch not in self.cache:
            self.cache[batch] = self.run(batch=batch)
        return self.cache[batch]


def _served(at: Callable[[int], Estimate], min_tokens_per_s: float, high: int) -> tuple[int, int, int]:
    """Users served at the estimate, at the range's low end and at its high end (up to ``high``)."""

    def meets(index: int) -> Callable[[int], bool]:
        def ok(b: int) -> bool:
            if b == 0:
                return True
            speed, rng = per_user_speed(at(b))
            value = speed if index < 0 else (rng[index] if rng else speed)
            return value is not None and value >= min_tokens_per_s

        return ok

    served = _largest(meets(-1), high)
    low = _largest(meets(0), served)
    return served, low, served + _largest(lambda extra: meets(1)(served + extra), high - served)

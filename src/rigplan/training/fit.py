"""Fit the training speed profile to published measurements, and report its accuracy.

The rows are the tokens/s-per-GPU figures of ``calibration/measurements/training_throughput.csv``
(llm-foundry MPT on A100 40GB, torchtitan Llama on A100 80GB).  :func:`rows_from_csv` reads the
measurement notes into typed rows; :func:`fit` finds the four efficiencies of
:class:`~rigplan.training.speed.TrainingProfile` that minimise the squared log error;
:func:`leave_one_size_out` refits without each model size in turn and predicts it.

``python -m rigplan.training.fit`` refits and rewrites ``profiles/training.toml`` (the only place
in the training package that prints or writes files).
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import io
import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

from ..catalog import load_catalog
from ..catalog.records import GPU, Model
from ..edge import model_from_fields
from .profile import profile_data
from .setup import Checkpointing, Layout, Method, Optimizer, Precision, TrainingSetup
from .shape import ModelShape, model_shape
from .speed import (
    NETWORK_NIC_GBIT,
    RDMA_EFFICIENCY,
    Interconnect,
    TrainingProfile,
    estimate_training_speed,
    interconnect_for,
)

PROFILE_NAME = "training-fit-1"

# MPT shapes of llm-foundry's benchmark yamls (scripts/train/yamls/pretrain/mpt-*.yaml: d_model,
# n_heads, n_layers; expansion_ratio 4, vocab 50368, tied embeddings).  Each reproduces the
# NumParams the benchmark table prints (e.g. MPT-7B at 2048: 6.66B with learned positions).
MPT_SHAPES: dict[str, tuple[int, int, int]] = {
    "MPT-125M": (768, 12, 12),
    "MPT-350M": (1024, 16, 24),
    "MPT-760M": (1536, 12, 24),
    "MPT-1B": (2048, 16, 24),
    "MPT-3B": (2560, 20, 32),
    "MPT-7B": (4096, 32, 32),
    "MPT-13B": (5120, 40, 40),
    "MPT-30B": (7168, 64, 48),
    "MPT-70B": (8192, 64, 80),
}
MPT_VOCAB = 50368
MPT_EXPANSION = 4
# torchtitan docs/performance.md: "the default sequence length in Llama 2 is 4096 which is
# halved compared with Llama 3" (Llama 3 runs at 8192).
TORCHTITAN_SEQ_LEN = {"Llama-3": 8192, "Llama-2": 4096}
TORCHTITAN_MODELS = {
    "Llama-3-8B": "llama-3-8b",
    "Llama-3-70B": "llama-3-70b",
    "Llama-2-13B": "llama-2-13b",
    "Llama-2-70B": "llama-2-70b",
}
# A100 40GB SXM4: 1,555 GB/s HBM2 (NVIDIA A100 datasheet); same chip and NVLink as the 80GB part.
A100_40GB_BANDWIDTH_GB_PER_S = 1555.0
A100_40GB_MEMORY_MIB = 40960
# llm-foundry's table: "A100 40GB with 1600 Gbps node-node interconnect (RoCE)".
LLM_FOUNDRY_NODE_GBIT = 1600
# torchtitan does not state its network; A100 80GB clusters are assumed DGX-A100-like:
# 8 × HDR 200 Gb/s per node (NVIDIA DGX A100 user guide) [assumption].
TORCHTITAN_NETWORK = "ib-hdr"
GPUS_PER_NODE = 8
# The llm-foundry H100 table (profiles/llm_foundry_h100_bf16.csv) fits the Hopper factors; its
# network is not stated: assumed 8 × NDR 400 Gb/s per node (NVIDIA DGX H100 user guide).
H100_NETWORK = "ib-ndr"
HOPPER = "hopper"
# Architectures without measurements that take another one's factors [assumption]: Blackwell
# runs the same PyTorch kernels (FlashAttention-2, cuBLAS) that leave Hopper's peak unused.
ASSUMED_LIKE = {"blackwell": HOPPER}
ARCH_START = (0.8, 0.5)
ARCH_BOUNDS = ((0.1, 1.5), (0.05, 1.5))

# Fitted: matmul efficiency, exposed ZeRO/FSDP share, attention efficiency, elementwise traffic;
# starting point and bounds (efficiencies and shares are fractions).
START = (0.75, 0.5, 0.5, 4.0)
BOUNDS = ((0.2, 1.0), (0.0, 1.0), (0.05, 1.0), (0.0, 100.0))
# Not fitted (the rows have ≥ 4,096 tokens per micro-batch, too few small ones to see it):
# cuBLAS GEMMs lose efficiency when the token dimension M is small (too few output tiles to fill
# the SMs); assume half efficiency at 512 tokens, ~89% at 4,096 [D, estimate].
MATMUL_HALF_TOKENS = 512.0
# Nelder-Mead stops when the simplex's losses (mean squared log error) differ by less than this.
CONVERGED = 1e-8
#: The accuracy target of issue 5: leave-one-model-size-out MAPE of tokens/s per GPU.
TARGET_MAPE = 0.15


@dataclass(frozen=True, slots=True)
class FitRow:
    """One measurement in the form the speed model takes."""

    label: str  # model name as the source prints it
    size: str  # the leave-one-out group
    framework: str
    model: dict[str, Any]  # catalogue id under "id", or architecture fields
    gpu: str  # "a100-sxm-40gb" or a catalogue id
    gpus: int
    seq_len: int
    micro_batch: int
    grad_accumulation: int
    checkpointing: str
    network: str  # "roce-1600g-node" or a rig network class
    tokens_per_s_per_gpu: float
    source: str


def _size(label: str) -> str:
    return label.split(" (")[0]


def rows_from_csv(text: str) -> list[FitRow]:
    """The tokens/s-per-GPU rows of training_throughput.csv, notes parsed into fields."""
    rows = []
    for r in csv.DictReader(io.StringIO(text)):
        if r["metric"] != "tokens_per_s_per_gpu":
            continue
        label, notes = r["model"], r["notes"]
        value = float(r["tokens_per_s_per_gpu_or_mfu"])
        if "llm-foundry" in r["framework"]:
            m = re.search(r"seq_len (\d+).*micro-batch (\d+), grad-accum (\d+).*checkpointing (True|False)", notes)
            if not m:
                raise ValueError(f"cannot read llm-foundry notes: {notes!r}")
            seq, mb, ga, ck = m.groups()
            d, heads, layers = MPT_SHAPES[_size(label)]
            model: dict[str, Any] = {
                "id": _size(label).lower(),
                "architecture": "MPTForCausalLM",
                "hidden_size": d,
                "num_layers": layers,
                "num_heads": heads,
                "num_kv_heads": heads,
                "ffn_size": MPT_EXPANSION * d,
                "ffn_kind": "plain",
                "vocab_size": MPT_VOCAB,
                "tie_embeddings": True,
            }
            rows.append(
                FitRow(
                    label,
                    _size(label),
                    "llm-foundry",
                    model,
                    "a100-sxm-40gb",
                    int(r["gpu_count"]),
                    int(seq),
                    int(mb),
                    int(ga),
                    "full" if ck == "True" else "none",
                    "roce-1600g-node",
                    value,
                    r["source"],
                )
            )
        elif "torchtitan" in r["framework"]:
            m = re.search(r"local batch size (\d+).*checkpointing: ([a-z ]+);", notes)
            if not m:
                raise ValueError(f"cannot read torchtitan notes: {notes!r}")
            mb, ac = m.groups()
            ck = {"no": "none", "full": "full"}.get(ac.strip(), "selective")
            family = label.rsplit("-", 1)[0]
            rows.append(
                FitRow(
                    label,
                    label,
                    "torchtitan",
                    {"id": TORCHTITAN_MODELS[label]},
                    "a100-sxm-80gb",
                    int(r["gpu_count"]),
                    TORCHTITAN_SEQ_LEN[family],
                    int(mb),
                    1,
                    ck,
                    TORCHTITAN_NETWORK,
                    value,
                    r["source"],
                )
            )
    return rows


def hopper_rows_from_csv(text: str, base_rows: Sequence[FitRow]) -> list[FitRow]:
    """Rows of profiles/llm_foundry_h100_bf16.csv, with the MPT shapes of ``base_rows``."""
    shapes = {r.size.lower(): r.model for r in base_rows if r.framework == "llm-foundry"}
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    rows = []
    for r in csv.DictReader(lines):
        size = r["model"].upper()
        rows.append(
            FitRow(
                size,
                size,
                "llm-foundry",
                shapes[r["model"]],
                "h100-sxm",
                int(r["gpus"]),
                int(r["seq_len"]),
                int(r["micro_batch"]),
                int(r["grad_accumulation"]),
                "full" if r["activation_checkpointing"] == "true" else "none",
                H100_NETWORK,
                float(r["tokens_per_s_per_gpu"]),
                "mosaicml/llm-foundry scripts/train/benchmarking/README.md @061f2c7ce64e655100286584a7629e2a09f827ba "
                "(H100 80GB BF16)",
            )
        )
    return rows


def packaged_hopper_csv() -> str:
    return resources.files("rigplan.training").joinpath("profiles", "llm_foundry_h100_bf16.csv").read_text("utf-8")


def packaged_csv() -> str:
    """The measurements shipped in ``rigplan/calibration/measurements``."""
    return resources.files("rigplan.calibration").joinpath("measurements", "training_throughput.csv").read_text("utf-8")


@functools.lru_cache(maxsize=64)
def _model(key: tuple[tuple[str, Any], ...]) -> Model:
    fields = dict(key)
    if set(fields) == {"id"}:
        return load_catalog().models[fields["id"]]
    return model_from_fields({**fields, "name": fields["id"], "max_context": 65536})


def row_model(row: FitRow) -> Model:
    return _model(tuple(sorted(row.model.items())))


def row_gpu(row: FitRow) -> GPU:
    if row.gpu == "a100-sxm-40gb":
        base = load_catalog().gpus["a100-sxm-80gb"]
        return dataclasses.replace(
            base,
            id="a100-sxm-40gb",
            memory_mib=A100_40GB_MEMORY_MIB,
            memory_gb=40.0,
            bandwidth_gb_per_s=A100_40GB_BANDWIDTH_GB_PER_S,
        )
    return load_catalog().gpus[row.gpu]


def row_interconnect(row: FitRow, gpu: GPU) -> Interconnect:
    nodes = max(1, row.gpus // GPUS_PER_NODE)
    gpus = (gpu,) * min(row.gpus, GPUS_PER_NODE)
    if row.network == "roce-1600g-node":
        base = interconnect_for(gpus, "roce-400g", nodes)
        node = LLM_FOUNDRY_NODE_GBIT * 1e9 / 8 * RDMA_EFFICIENCY
        return dataclasses.replace(base, node_network_bytes_per_s=node, description="1600 Gbps RoCE per node")
    assert row.network in NETWORK_NIC_GBIT
    return interconnect_for(gpus, row.network, nodes)


def row_setup(row: FitRow) -> tuple[TrainingSetup, Layout]:
    setup = TrainingSetup(
        method=Method.PRETRAIN,
        precision=Precision.BF16,
        optimizer=Optimizer.ADAMW,
        seq_len=row.seq_len,
        micro_batch=row.micro_batch,
        grad_accumulation=row.grad_accumulation,
        zero_stage=3,
        hybrid_shard=False,
        checkpointing=Checkpointing(row.checkpointing),
        offload=None,
        lora_rank=0,
        lora_targets="all-linear",
    )
    layout = Layout(1, 1, row.gpus, min(row.gpus, GPUS_PER_NODE), max(1, row.gpus // GPUS_PER_NODE))
    return setup, layout


@dataclass(frozen=True, slots=True)
class _Prepared:
    row: FitRow
    args: tuple[ModelShape, TrainingSetup, Layout, GPU, Interconnect]


def _prepare(rows: Iterable[FitRow]) -> list[_Prepared]:
    out = []
    for r in rows:
        gpu = row_gpu(r)
        setup, layout = row_setup(r)
        out.append(_Prepared(r, (model_shape(row_model(r)), setup, layout, gpu, row_interconnect(r, gpu))))
    return out


def predict(row: FitRow, profile: TrainingProfile) -> float:
    """Predicted tokens/s per GPU for one row."""
    (p,) = _prepare([row])
    return estimate_training_speed(*p.args, profile).tokens_per_s_per_gpu


def _profile(x: Sequence[float], name: str = PROFILE_NAME) -> TrainingProfile:
    return TrainingProfile(name, x[0], x[1], x[2], x[3], MATMUL_HALF_TOKENS)


def _loss(prepared: Sequence[_Prepared], x: Sequence[float]) -> float:
    for v, (lo, hi) in zip(x, BOUNDS, strict=True):
        if not lo <= v <= hi:
            return math.inf
    prof = _profile(x)
    total = 0.0
    for p in prepared:
        pred = estimate_training_speed(*p.args, prof).tokens_per_s_per_gpu
        total += math.log(pred / p.row.tokens_per_s_per_gpu) ** 2
    return total / len(prepared)


def nelder_mead(f: Callable[[Sequence[float]], float], x0: Sequence[float], *, steps: int = 400) -> list[float]:
    """Minimise ``f`` from ``x0`` (Nelder & Mead 1965; standard coefficients 1, 2, ½, ½)."""
    n = len(x0)
    simplex = [list(x0)]
    for i in range(n):
        x = list(x0)
        x[i] *= 1.25
        simplex.append(x)
    values = [f(x) for x in simplex]
    for _ in range(steps):
        order = sorted(range(n + 1), key=values.__getitem__)
        simplex = [simplex[i] for i in order]
        values = [values[i] for i in order]
        centroid = [sum(x[i] for x in simplex[:-1]) / n for i in range(n)]
        worst = simplex[-1]
        reflect = [c + (c - w) for c, w in zip(centroid, worst, strict=True)]
        fr = f(reflect)
        if fr < values[0]:
            expand = [c + 2 * (c - w) for c, w in zip(centroid, worst, strict=True)]
            fe = f(expand)
            simplex[-1], values[-1] = (expand, fe) if fe < fr else (reflect, fr)
        elif fr < values[-2]:
            simplex[-1], values[-1] = reflect, fr
        else:
            contract = [c + 0.5 * (w - c) for c, w in zip(centroid, worst, strict=True)]
            fc = f(contract)
            if fc < values[-1]:
                simplex[-1], values[-1] = contract, fc
            else:
                best = simplex[0]
                simplex = [best] + [[b + 0.5 * (x - b) for b, x in zip(best, xs, strict=True)] for xs in simplex[1:]]
                values = [values[0]] + [f(x) for x in simplex[1:]]
        if max(values) - min(values) < CONVERGED:
            break
    return simplex[min(range(n + 1), key=values.__getitem__)]


def fit(rows: Sequence[FitRow], start: Sequence[float] = START) -> TrainingProfile:
    """The profile that minimises the mean squared log error of tokens/s per GPU over ``rows``."""
    prepared = _prepare(rows)
    x = nelder_mead(lambda v: _loss(prepared, v), start)
    return _profile(x)


def fit_architecture(rows: Sequence[FitRow], base: TrainingProfile, architecture: str) -> TrainingProfile:
    """``base`` with the (matmul, attention) factors of ``architecture`` fitted to ``rows``."""
    prepared = _prepare(rows)

    def loss(x: Sequence[float]) -> float:
        if not all(lo <= v <= hi for v, (lo, hi) in zip(x, ARCH_BOUNDS, strict=True)):
            return math.inf
        prof = dataclasses.replace(base, architecture_factors=((architecture, x[0], x[1]),))
        return sum(
            math.log(estimate_training_speed(*p.args, prof).tokens_per_s_per_gpu / p.row.tokens_per_s_per_gpu) ** 2
            for p in prepared
        ) / len(prepared)

    x = nelder_mead(loss, ARCH_START)
    return dataclasses.replace(base, architecture_factors=((architecture, x[0], x[1]),))


def mape(rows: Sequence[FitRow], profile: TrainingProfile) -> float:
    prepared = _prepare(rows)
    errs = [
        abs(estimate_training_speed(*p.args, profile).tokens_per_s_per_gpu / p.row.tokens_per_s_per_gpu - 1)
        for p in prepared
    ]
    return sum(errs) / len(errs)


def profile_params(profile: TrainingProfile) -> tuple[float, float, float, float]:
    """The fitted parameters of ``profile``, as :func:`fit` takes its start."""
    return (
        profile.matmul_efficiency,
        profile.exposed_comm_fraction,
        profile.attention_efficiency,
        profile.elementwise_traffic,
    )


def leave_one_size_out(rows: Sequence[FitRow], start: Sequence[float] = START) -> dict[str, float]:
    """MAPE of each model size's rows predicted by a profile fitted without that size (each fit
    starts from ``start``; passing the all-rows optimum only saves iterations)."""
    out = {}
    for size in dict.fromkeys(r.size for r in rows):
        train = [r for r in rows if r.size != size]
        test = [r for r in rows if r.size == size]
        out[size] = mape(test, fit(train, start))
    return out


def loo_mape(rows: Sequence[FitRow], per_size: dict[str, float]) -> float:
    """Row-weighted mean of the per-size leave-one-out errors."""
    counts = {s: sum(1 for r in rows if r.size == s) for s in per_size}
    return sum(per_size[s] * counts[s] for s in per_size) / sum(counts.values())


# ---- the profile file -------------------------------------------------------------------------


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(x)}" for k, x in v.items()) + " }"
    return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'


def profile_toml(
    profile: TrainingProfile, rows: Sequence[FitRow], per_size: dict[str, float], hopper: Sequence[FitRow]
) -> str:
    base = dataclasses.replace(profile, architecture_factors=())
    mm, attn = profile.factors(HOPPER)
    lines = [
        "# Training speed profile: fitted by `python -m rigplan.training.fit` — do not edit by hand.",
        "# Efficiencies of rigplan.training.speed fitted to the tokens/s-per-GPU rows below (from",
        "# calibration/measurements/training_throughput.csv); loo_mape is leave-one-model-size-out.",
        "",
        "[profile]",
        f"name = {_toml_value(profile.name)}",
        f"matmul_efficiency = {profile.matmul_efficiency:.6g}",
        f"exposed_comm_fraction = {profile.exposed_comm_fraction:.6g}",
        f"attention_efficiency = {profile.attention_efficiency:.6g}",
        f"elementwise_traffic = {profile.elementwise_traffic:.6g}",
        f"matmul_half_tokens = {profile.matmul_half_tokens:.6g}  # not fitted: fit.MATMUL_HALF_TOKENS",
        f"fit_mape = {mape(rows, profile):.4f}",
        f"loo_mape = {loo_mape(rows, per_size):.4f}",
        f"target_mape = {TARGET_MAPE}",
        f"rows = {len(rows)}",
        "",
        "[loo_mape_by_size]",
        *(f"{_toml_value(k)} = {v:.4f}" for k, v in per_size.items()),
        "",
        "# Hopper: the A100 profile times these factors, fitted to profiles/llm_foundry_h100_bf16.csv.",
        "# mape_a100_profile is the same rows predicted without them (a leave-one-GPU-out check).",
        "[architecture.hopper]",
        f"matmul = {mm:.6g}",
        f"attention = {attn:.6g}",
        f"mape = {mape(hopper, profile):.4f}",
        f"mape_a100_profile = {mape(hopper, base):.4f}",
        f"rows = {len(hopper)}",
        f"assumed_like = {_toml_value({k: v for k, v in ASSUMED_LIKE.items()})}",
    ]
    for r in rows:
        lines += ["", "[[rows]]"]
        lines += [f"{f.name} = {_toml_value(getattr(r, f.name))}" for f in dataclasses.fields(r)]
    return "\n".join(lines) + "\n"


def load_profile_rows() -> tuple[FitRow, ...]:
    """The rows the shipped profile was fitted to, as stored in it."""
    return tuple(FitRow(**r) for r in profile_data()["rows"])


def main() -> None:  # pragma: no cover - writes the profile
    from pathlib import Path

    rows = rows_from_csv(packaged_csv())
    base = fit(rows)
    per_size = leave_one_size_out(rows, profile_params(base))
    hopper = hopper_rows_from_csv(packaged_hopper_csv(), rows)
    profile = fit_architecture(hopper, base, HOPPER)
    path = Path(__file__).parent / "profiles" / "training.toml"
    path.write_text(profile_toml(profile, rows, per_size, hopper), encoding="utf-8")
    print(f"H100 rows: MAPE {mape(hopper, profile):.1%} with the Hopper factors, {mape(hopper, base):.1%} without")
    print(
        f"{len(rows)} rows; fit MAPE {mape(rows, profile):.1%}; leave-one-size-out MAPE "
        f"{loo_mape(rows, per_size):.1%} (target ≤ {TARGET_MAPE:.0%})"
    )
    for k, v in per_size.items():
        print(f"  {k:12} {v:.1%}")
    print(profile)


if __name__ == "__main__":  # pragma: no cover
    main()


def training_accuracy(*, refit: bool = False) -> dict[str, Any]:
    """The training lines of the accuracy report: leave-one-model-size-out MAPE of tokens/s per
    GPU (target ≤ 15%), the fit's own MAPE, and the Hopper check — from the shipped profile, or
    recomputed from the packaged measurements with ``refit=True`` (~5 s)."""
    if refit:
        rows = rows_from_csv(packaged_csv())
        base = fit(rows)
        per_size = leave_one_size_out(rows, profile_params(base))
        hopper = hopper_rows_from_csv(packaged_hopper_csv(), rows)
        profile = fit_architecture(hopper, base, HOPPER)
        return {
            "rows": len(rows),
            "fit_mape": mape(rows, base),
            "loo_mape": loo_mape(rows, per_size),
            "loo_mape_by_size": per_size,
            "target_mape": TARGET_MAPE,
            "hopper_rows": len(hopper),
            "hopper_mape": mape(hopper, profile),
            "hopper_mape_a100_profile": mape(hopper, base),
        }
    data = profile_data()
    p, h = data["profile"], data["architecture"][HOPPER]
    return {
        "rows": p["rows"],
        "fit_mape": p["fit_mape"],
        "loo_mape": p["loo_mape"],
        "loo_mape_by_size": dict(data["loo_mape_by_size"]),
        "target_mape": p["target_mape"],
        "hopper_rows": h["rows"],
        "hopper_mape": h["mape"],
        "hopper_mape_a100_profile": h["mape_a100_profile"],
    }


def format_training_accuracy(acc: dict[str, Any]) -> str:
    """Text for the accuracy report."""
    verdict = "meets" if acc["loo_mape"] <= acc["target_mape"] else "MISSES"
    lines = [
        f"training tokens/s per GPU ({acc['rows']} llm-foundry / torchtitan rows, A100): leave-one-model-size-out "
        f"MAPE {acc['loo_mape']:.1%} ({verdict} the ≤ {acc['target_mape']:.0%} target); fit MAPE {acc['fit_mape']:.1%}",
        "  by size: " + ", ".join(f"{k} {v:.1%}" for k, v in acc["loo_mape_by_size"].items()),
        f"  H100 ({acc['hopper_rows']} llm-foundry rows): MAPE {acc['hopper_mape']:.1%} with the fitted Hopper "
        f"factors, {acc['hopper_mape_a100_profile']:.1%} from the A100 profile alone (leave-one-GPU-out)",
    ]
    return "\n".join(lines)

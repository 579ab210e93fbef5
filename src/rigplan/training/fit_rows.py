"""Rows the training speed profile is fitted on, in the speed model's terms.

``calibration/measurements/training_throughput.csv`` (llm-foundry MPT on A100 40GB, torchtitan
Llama on A100 80GB) and ``profiles/llm_foundry_h100_bf16.csv`` (llm-foundry on H100):
:func:`rows_from_csv` reads the measurement notes into :class:`FitRow`; ``row_*`` turn a row into
the model, GPU, links, setup and layout the speed model takes.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

from ..catalog import load_catalog
from ..catalog.records import GPU, Model
from ..edge import model_from_fields
from .setup import Checkpointing, Layout, Method, Optimizer, Precision, TrainingSetup
from .speed import NETWORK_NIC_GBIT, RDMA_EFFICIENCY, Interconnect, interconnect_for

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
        if "llm-foundry" in r["framework"]:
            rows.append(_foundry_row(r))
        elif "torchtitan" in r["framework"]:
            rows.append(_torchtitan_row(r))
    return rows


def _foundry_row(r: dict[str, str]) -> FitRow:
    label, notes = r["model"], r["notes"]
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
    return FitRow(
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
        float(r["tokens_per_s_per_gpu_or_mfu"]),
        r["source"],
    )


def _torchtitan_row(r: dict[str, str]) -> FitRow:
    label, notes = r["model"], r["notes"]
    m = re.search(r"local batch size (\d+).*checkpointing: ([a-z ]+);", notes)
    if not m:
        raise ValueError(f"cannot read torchtitan notes: {notes!r}")
    mb, ac = m.groups()
    ck = {"no": "none", "full": "full"}.get(ac.strip(), "selective")
    family = label.rsplit("-", 1)[0]
    return FitRow(
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
        float(r["tokens_per_s_per_gpu_or_mfu"]),
        r["source"],
    )


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

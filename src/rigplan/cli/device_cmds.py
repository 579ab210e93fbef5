"""``rigplan detect``, ``rigplan launch`` and ``rigplan measure``: the local machine and engines."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path
from typing import Annotated, Any

import typer

from .. import GIB, LAUNCH_OPTIONS, format_gib
from . import app
from .options import request_option
from .output import console, print_json, table

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]


def _warn(message: str) -> None:
    print(f"rigplan: warning: {message}", file=sys.stderr)


@app.command()
def detect(json: JsonOpt = False) -> None:
    """Local NVIDIA GPUs through NVML: catalogue id, memory, PCIe link (current/max), NVLink,
    P2P, power limits, driver and CUDA versions.

    Exits 2 with a one-line message on a machine without an NVIDIA driver or GPU.

    Example: rigplan detect --json
    """
    from .. import detect_gpus

    d = detect_gpus()
    if json:
        print_json(d.to_dict())
        return
    con = console()
    con.print(f"driver {d.driver_version} · CUDA {d.cuda_version or '—'} · {len(d.gpus)} GPU(s)")
    rows = []
    for g in d.gpus:
        pcie = (
            f"Gen{g.pcie_generation_current or '?'} x{g.pcie_width_current or '?'} "
            f"(max Gen{g.pcie_generation_max or '?'} x{g.pcie_width_max or '?'})"
        )
        power = f"{g.power_limit_w:g} W" if g.power_limit_w else "—"
        if g.power_limit_range_w:
            power += f" ({g.power_limit_range_w[0]:g}–{g.power_limit_range_w[1]:g})"
        nvlink = f"{g.nvlink_links} links → {', '.join(map(str, g.nvlink_peers)) or '—'}" if g.nvlink_links else "—"
        rows.append(
            [str(g.index), g.name, g.catalog_id or "not in catalogue", format_gib(g.memory_bytes), pcie, power, nvlink]
        )
    con.print(
        table(None, ["#", "name", "catalogue id", "memory", "PCIe now (max)", "power limit", "NVLink"], rows, right={3})
    )
    if len(d.gpus) > 1:
        con.print(
            "P2P (row reads column): "
            + "  ".join(
                f"{i}:" + "".join("·" if v is None else ("y" if v else "n") for v in row) for i, row in enumerate(d.p2p)
            )
        )
    for g in d.gpus:
        for note in g.notes:
            con.print(f"GPU {g.index}: {note}")
    if any(g.catalog_id for g in d.gpus):
        con.print("use it: rigplan estimate MODEL --rig local")


def _print_plan(plan: Any) -> None:
    con = console()
    verdict = "fits" if plan.fits else "DOES NOT FIT"
    layout = (
        f" · TP {plan.tensor_parallel} × PP {plan.pipeline_parallel}"
        if plan.tensor_parallel * plan.pipeline_parallel > 1
        else ""
    )
    what = f"context {plan.context:,} × {plan.users} user(s)" if plan.task == "serve" else f"task {plan.task}"
    con.print(f"{plan.model} · {plan.engine} · {plan.rig}{layout} · {what} — {verdict}")
    for f in plan.files:
        con.print(f"\n# {f.name}", markup=False)
        con.print(f.text.rstrip("\n"), markup=False, highlight=False)
    for c in plan.commands:
        con.print(f"\n# {c.where}" if c.where else "", markup=False)
        con.print(c.text(), markup=False, highlight=False)
    if plan.notes:
        con.print("")
        for n in plan.notes:
            con.print(f"note: {n}", markup=False)


# `rigplan launch`: how to run the model as rigplan estimated it.
LaunchModelArg = Annotated[
    str, typer.Argument(help="Catalogue id, config.json / model folder / .gguf path, or Hugging Face repo id.")
]
LaunchRigOpt = Annotated[str, typer.Option(help="Rig: 'rtx-4090', '2x rtx-3090', '2 nodes x 8x h100-sxm' or 'local'.")]
LaunchEngineOpt = request_option(LAUNCH_OPTIONS, "engine")
LaunchTaskOpt = request_option(LAUNCH_OPTIONS, "task")
LaunchQuantOpt = request_option(LAUNCH_OPTIONS, "quant")
LaunchContextOpt = request_option(LAUNCH_OPTIONS, "context")
LaunchUsersOpt = request_option(LAUNCH_OPTIONS, "users")
LaunchKvOpt = request_option(LAUNCH_OPTIONS, "kv_dtype")
LaunchSplitOpt = request_option(LAUNCH_OPTIONS, "split")
LaunchTpOpt = request_option(LAUNCH_OPTIONS, "tensor_parallel")
LaunchPpOpt = request_option(LAUNCH_OPTIONS, "pipeline_parallel")
LaunchLayersOpt = request_option(LAUNCH_OPTIONS, "gpu_layers")
LaunchNetworkOpt = request_option(LAUNCH_OPTIONS, "network")
LaunchOutOpt = Annotated[
    Path | None, typer.Option(help="Write the config files (Modelfile, ds_config.json …) into this folder.")
]


@app.command()
def launch(
    model: LaunchModelArg,
    rig: LaunchRigOpt,
    engine: LaunchEngineOpt = "llama.cpp",
    task: LaunchTaskOpt = "serve",
    quant: LaunchQuantOpt = None,
    context: LaunchContextOpt = None,
    users: LaunchUsersOpt = 1,
    kv_dtype: LaunchKvOpt = None,
    split: LaunchSplitOpt = None,
    tensor_parallel: LaunchTpOpt = None,
    pipeline_parallel: LaunchPpOpt = None,
    gpu_layers: LaunchLayersOpt = None,
    network: LaunchNetworkOpt = None,
    out: LaunchOutOpt = None,
    json: JsonOpt = False,
) -> None:
    """The command (and config files) that run MODEL on a rig as rigplan estimated it:
    vllm serve, SGLang, llama-server or an Ollama Modelfile; torchrun + DeepSpeed for training.

    Layout rules (TP divides heads, KV heads and vocabulary; PP divides layers) are checked
    first. Exit status: 0 when it fits, 1 when it does not, 2 when refused.

    Example: rigplan launch llama-3-70b --rig '2x rtx-4090' --engine vllm --quant 4bit --users 8
    """
    from .. import InvalidValueError, launch_plan
    from .. import training_launch_plan as training_plan

    layers: int | str | None = gpu_layers
    if gpu_layers not in (None, "auto"):
        try:
            layers = int(gpu_layers)  # type: ignore[arg-type]
        except ValueError:
            raise InvalidValueError("gpu_layers", f"must be a whole number or 'auto', got {gpu_layers!r}") from None
    layout = {"split": split, "tensor_parallel": tensor_parallel, "pipeline_parallel": pipeline_parallel}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if task == "serve":
            plan = launch_plan(
                model, rig, engine=engine, quant=quant, context=context, users=users, kv_dtype=kv_dtype,
                gpu_layers=layers, network=network, **layout,
            )  # fmt: skip
        else:
            plan = training_plan(model, rig, task=task, network=network)
    for w in caught:
        _warn(str(w.message))
    if out is not None:
        _write_files(plan, out)
    if json:
        print_json(plan.to_dict())
    else:
        _print_plan(plan)
    raise typer.Exit(0 if plan.fits else 1)


def _write_files(plan: Any, out: Path) -> None:
    """Write the launch plan's config files (Modelfile, ds_config.json …) into ``out``."""
    from .. import InvalidValueError

    if not str(out).strip():
        raise InvalidValueError("out", "give a folder to write the files to")
    try:
        out.mkdir(parents=True, exist_ok=True)
        for f in plan.files:
            (out / f.name).write_text(f.text, encoding="utf-8")
    except OSError as exc:
        raise InvalidValueError("out", f"cannot write to {str(out)!r}: {exc.strerror or exc}") from None


@app.command()
def measure(
    quick: Annotated[bool, typer.Option("--quick", help="Smaller buffers, fewer runs (seconds per GPU).")] = False,
    show: Annotated[bool, typer.Option("--show", help="Print the stored results without measuring.")] = False,
    no_save: Annotated[bool, typer.Option("--no-save", help="Do not store the results.")] = False,
    json: JsonOpt = False,
) -> None:
    """Measure the local GPUs with PyTorch: memory bandwidth, matmul TFLOPS per dtype, P2P copy
    bandwidth and all-reduce latency; stored in the user config dir (measured.toml).

    Needs the [measure] extra (PyTorch with CUDA).

    Example: rigplan measure --quick
    """
    from .. import DeviceError, load_measured, measured_path, save_measured
    from .. import measure as run_measure

    if show:
        profile = load_measured()
        if profile is None:
            raise DeviceError(f"no stored measurements at {measured_path()}: run `rigplan measure`")
    else:
        profile = run_measure(quick=quick, progress=None if json else lambda line: print(line, file=sys.stderr))
        if not no_save:
            path = save_measured(profile)
            if not json:
                print(f"saved to {path}", file=sys.stderr)
    if json:
        print_json(profile.to_dict())
        return
    _render_measured(profile)


def _render_measured(profile: Any) -> None:
    """The measured profile: bandwidth and TFLOPS per GPU, P2P pairs, all-reduce."""
    con = console()
    con.print(
        f"measured {profile.measured_at:%Y-%m-%d %H:%M} UTC · torch {profile.torch_version}"
        f" · CUDA {profile.cuda_version}"
    )
    dtypes = sorted({k for g in profile.gpus for k in g.matmul_tflops})
    rows = [
        [
            str(g.index),
            g.name,
            g.catalog_id or "—",
            f"{g.memory_bandwidth_gb_per_s:,.0f}",
            *(f"{g.matmul_tflops[k]:g}" if k in g.matmul_tflops else "—" for k in dtypes),
        ]
        for g in profile.gpus
    ]
    con.print(
        table(
            None,
            ["#", "name", "catalogue id", "copy GB/s", *(f"{k} TFLOPS" for k in dtypes)],
            rows,
            right=set(range(3, 4 + len(dtypes))),
        )
    )
    for p in profile.pairs:
        con.print(f"GPU {p.src} → {p.dst}: {p.bandwidth_gb_per_s:,.1f} GB/s ({'P2P' if p.p2p else 'via host'})")
    if profile.allreduce:
        a = profile.allreduce
        con.print(
            f"all-reduce over {a.gpus} GPUs: {a.latency_us:,.1f} µs at {a.small_message_bytes // 1024} KiB, "
            f"bus {a.bus_bandwidth_gb_per_s:,.1f} GB/s at {a.large_message_bytes / GIB:.2f} GiB"
        )

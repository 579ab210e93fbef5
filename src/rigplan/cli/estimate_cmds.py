"""``rigplan estimate``, ``rigplan compare`` and ``rigplan vram``."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from .. import INFERENCE_OPTIONS, LAUNCH_OPTIONS, VRAM_OPTIONS, format_gib, format_rate
from . import app
from .options import request_option
from .output import console, print_json, table

ModelArg = Annotated[
    str,
    typer.Argument(
        help="Catalogue id (rigplan models), a config.json / model folder / .gguf path, or a Hugging Face repo id."
    ),
]
QuantOpt = request_option(INFERENCE_OPTIONS, "quant")
EngineOpt = request_option(INFERENCE_OPTIONS, "engine")
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the estimate as JSON.")]
EngineVersionOpt = request_option(INFERENCE_OPTIONS, "engine_version", "--engine-version")
BackendOpt = request_option(INFERENCE_OPTIONS, "backend")
FlashAttentionOpt = request_option(INFERENCE_OPTIONS, "flash_attention", "--flash-attention/--no-flash-attention")
# `rigplan estimate`: the options of rigplan.estimate, from its option table.
RigOpt = Annotated[
    str,
    typer.Option(help="Rig: 'rtx-4090', '2x rtx-3090', 'rtx-4090 + 2x rtx-3090', '2 nodes x 8x h100-sxm' or 'local'."),
]
ContextOpt = request_option(INFERENCE_OPTIONS, "context")
BatchOpt = Annotated[
    str,
    typer.Option(help="Sequences at once, or 'max': as many as the KV pool and max_num_seqs allow (vLLM-class)."),
]
PromptOpt = request_option(INFERENCE_OPTIONS, "prompt_tokens")
OutputOpt = request_option(INFERENCE_OPTIONS, "output_tokens")
KvDtypeOpt = request_option(INFERENCE_OPTIONS, "kv_dtype")
SplitOpt = request_option(INFERENCE_OPTIONS, "split")
TensorParallelOpt = request_option(INFERENCE_OPTIONS, "tensor_parallel")
PipelineParallelOpt = request_option(INFERENCE_OPTIONS, "pipeline_parallel")
GpuLayersOpt = request_option(INFERENCE_OPTIONS, "gpu_layers")
LinkOpt = request_option(INFERENCE_OPTIONS, "link")
LanesOpt = request_option(INFERENCE_OPTIONS, "lanes")
ForceOpt = request_option(INFERENCE_OPTIONS, "force", "--force")
HostRamOpt = Annotated[float | None, typer.Option("--host-ram", help="Host RAM as sold (GB of DIMMs = GiB), e.g. 64.")]
HostRamBandwidthOpt = Annotated[
    float | None, typer.Option("--host-ram-bandwidth", help="Host memory bandwidth in GB/s.")
]
NetworkOpt = request_option(LAUNCH_OPTIONS, "network")
VramQuantsOpt = request_option(VRAM_OPTIONS, "quants", "--quant")
VramContextsOpt = request_option(VRAM_OPTIONS, "contexts", "--context")
NoUserCalibrationOpt = Annotated[bool, typer.Option("--no-user-calibration", help="Ignore your stored calibration.")]
ExplainOpt = Annotated[bool, typer.Option("--explain", help="Print how each figure was derived.")]


def _estimate_kwargs(**kw: Any) -> dict[str, Any]:
    gpu_layers = kw.pop("gpu_layers")
    if gpu_layers is not None and gpu_layers != "auto":
        try:
            gpu_layers = int(gpu_layers)
        except ValueError:
            from .. import InvalidValueError

            raise InvalidValueError("gpu_layers", f"must be a whole number or 'auto', got {gpu_layers!r}") from None
    kw["gpu_layers"] = gpu_layers
    kw["use_user_calibration"] = not kw.pop("no_user_calibration")
    return kw


def parse_batch(text: str) -> int | str:
    """ "max" or a whole number (anything else is left for estimate() to refuse)."""
    stripped = text.strip()
    return int(stripped) if stripped.isdigit() else stripped


def _speed_cell(value: float | None, rng: list[float] | None, unit: str = "tok/s") -> str:
    if value is None:
        return "—"
    if rng:
        low, high = (format_rate(x, "").strip() for x in rng)
        return f"{format_rate(value, unit)} ({low}–{high})"
    return format_rate(value, unit)


def render_estimate(d: dict[str, Any], explain: bool) -> None:
    con = console()
    m, s, p = d["memory"], d["speed"], d["power"]
    verdict = "fits" if d["fits"] else "DOES NOT FIT"
    con.print(
        f"{d['model']} · {d['quant']} · {d['engine']} · {d['rig']} · context {d['context']:,}"
        f" × {d['batch']} · split {d['split']} — {verdict}"
    )
    rows = []
    for i, g in enumerate(m["per_gpu"]):
        rows.append(
            [
                f"{i}: {g['gpu']}",
                str(g["layers"]),
                format_gib(g["weights_bytes"]),
                format_gib(g["kv_cache_bytes"]),
                format_gib(g["activations_bytes"]),
                format_gib(g["overhead_bytes"]),
                format_gib(g["total_bytes"]),
                format_gib(g["usable_bytes"]),
                "yes" if g["fits"] else "NO",
            ]
        )
    con.print(
        table(
            None,
            ["GPU", "layers", "weights", "KV", "buffers", "overhead", "total", "usable", "fits"],
            rows,
            right={1, 2, 3, 4, 5, 6, 7},
        )
    )
    extra = [f"weights {format_gib(m['weights_bytes'])} in all", f"host RAM {format_gib(m['host_bytes'])}"]
    if m["host_layers"]:
        extra.append(f"{m['host_layers']} layers offloaded to host")
    if m["kv_pool_tokens"] is not None:
        extra.append(
            f"KV pool {m['kv_pool_tokens']:,} tokens = {m['max_concurrent_sequences']} sequences of {d['context']:,}"
        )
    con.print("  ".join(extra))
    for problem in m["problems"]:
        con.print(f"does not fit: {problem}")
    for warning in d.get("warnings", []):
        con.print(f"warning: {warning}")
    if not d["fits"]:
        con.print("speed: not estimated — the model does not fit this rig (see above); --json has the model's figures")
    else:
        _render_speed(d, s)
    psu = f"{p['psu_watts']} W PSU" if p.get("psu_watts") else "no PSU size"
    con.print(f"power: {p['board_watts']} W board, ~{p['draw_watts']} W drawn, {psu}")
    if explain:
        con.print("\nhow each figure was made:")
        for field, prov in d["provenance"].items():
            formula = f"\n      = {prov['formula']}" if prov.get("formula") else ""
            con.print(f"  {field} [{prov['kind']}] {prov['source']}{formula}")


def _render_speed(d: dict[str, Any], s: dict[str, Any]) -> None:
    con = console()
    con.print(
        f"decode {_speed_cell(s['decode_tokens_per_s'], s['decode_tokens_per_s_range'])} per sequence"
        + (
            f", {format_rate(s['decode_throughput_tokens_per_s'])} total"
            if d["batch"] > 1 and s["decode_throughput_tokens_per_s"]
            else ""
        )
        + f" · prefill {_speed_cell(s['prefill_tokens_per_s'], s['prefill_tokens_per_s_range'])}"
        + (f" · first token {s['ttft_s']:.2f} s" if s["ttft_s"] is not None else "")
    )
    if s.get("output_throughput_tokens_per_s") is not None:
        con.print(
            f"serving {s['batch']} at once: "
            f"{_speed_cell(s['output_throughput_tokens_per_s'], s['output_throughput_tokens_per_s_range'])} output"
            " (prompts included, chunked prefill)"
        )
    calibrated = "calibrated on your results" if s["calibrated_on_user_results"] else "catalogue estimate"
    con.print(f"speed profile: {s['engine_profile']} ({calibrated})")


@app.command("estimate")
def estimate_cmd(
    model: ModelArg,
    rig: RigOpt,
    quant: QuantOpt = None,
    engine: EngineOpt = "llama.cpp",
    context: ContextOpt = None,
    batch: BatchOpt = "1",
    prompt_tokens: PromptOpt = 512,
    output_tokens: OutputOpt = 128,
    kv_dtype: KvDtypeOpt = None,
    split: SplitOpt = None,
    tensor_parallel: TensorParallelOpt = None,
    pipeline_parallel: PipelineParallelOpt = None,
    gpu_layers: GpuLayersOpt = None,
    link: LinkOpt = None,
    lanes: LanesOpt = None,
    host_ram: HostRamOpt = None,
    host_ram_bandwidth: HostRamBandwidthOpt = None,
    network: NetworkOpt = None,
    no_user_calibration: NoUserCalibrationOpt = False,
    force: ForceOpt = False,
    engine_version: EngineVersionOpt = None,
    backend: BackendOpt = None,
    flash_attention: FlashAttentionOpt = None,
    explain: ExplainOpt = False,
    json: JsonOpt = False,
) -> None:
    """Memory per GPU, host memory, speed with ranges and power of MODEL on a rig.

    Exit status: 0 when the model fits, 1 when it does not, 2 when it cannot be estimated.

    Example: rigplan estimate llama-3-70b --rig '2x rtx-4090' --context 8192
    """
    options = {k: v for k, v in locals().items() if k not in ("model", "rig", "explain", "json")}
    from .. import estimate, load_user_catalog

    options |= {
        "batch": parse_batch(batch),
        "host_ram_gb": options.pop("host_ram"),
        "host_memory_bandwidth_gb_per_s": options.pop("host_ram_bandwidth"),
    }
    e = estimate(model, rig, catalog=load_user_catalog(), **_estimate_kwargs(**options))
    d = e.to_dict()
    d["headroom"] = _headroom(e)
    if json:
        print_json(d)
    else:
        render_estimate(d, explain)
        _render_headroom(d["headroom"])
    raise typer.Exit(0 if e.fits else 1)


def _headroom(e: Any) -> dict[str, Any]:
    """The fullest GPU against the margin, and what would make a tight or failing rig fit."""
    from .. import DEFAULT_MARGIN, fit_advice, fullest_fraction, margin_applies, within_margin

    ok = within_margin(e, DEFAULT_MARGIN)
    return {
        "fullest_fraction": round(fullest_fraction(e), 4),
        "margin": DEFAULT_MARGIN if margin_applies(e) else None,
        "within_margin": ok,
        "would_fit_with": [] if ok else [a.text() for a in fit_advice(e, DEFAULT_MARGIN)],
    }


def _render_headroom(h: dict[str, Any]) -> None:
    con = console()
    if h["within_margin"]:
        return
    if h["margin"] is not None and h["fullest_fraction"] <= 1.0:
        con.print(f"tight: the fullest GPU is {h['fullest_fraction']:.0%} full, inside the {h['margin']:.0%} margin")
    if h["would_fit_with"]:
        con.print("would fit with: " + "; or ".join(h["would_fit_with"]))
    else:
        con.print("would fit with: no single change (quant, context, KV q8_0, one more GPU) is enough")


@app.command()
def compare(
    model: ModelArg,
    rig: Annotated[list[str], typer.Option(help="A rig; repeat the flag for each rig to compare.")],
    quant: QuantOpt = None,
    engine: EngineOpt = "llama.cpp",
    context: ContextOpt = None,
    batch: BatchOpt = "1",
    prompt_tokens: PromptOpt = 512,
    output_tokens: OutputOpt = 128,
    force: ForceOpt = False,
    json: JsonOpt = False,
) -> None:
    """Several rigs side by side for one model: fit, memory, speed, power.

    Speeds are shown only for rigs where the model fits. Exit status: 0 when every rig could be
    estimated, 2 when one could not (its error is printed below the table).

    Example: rigplan compare llama-3-70b --rig '2x rtx-3090' --rig rtx-5090 --rig m2-ultra-192gb
    """
    from .. import RigplanError, estimate

    workload = {"quant": quant, "engine": engine, "context": context, "batch": parse_batch(batch)}
    workload |= {"prompt_tokens": prompt_tokens, "output_tokens": output_tokens, "force": force}
    results: list[dict[str, Any]] = []
    for r in rig:
        try:
            results.append(estimate(model, r, **workload).to_dict())
        except RigplanError as exc:
            results.append({"rig": r, "error": str(exc)})
    errors = [d for d in results if "error" in d]
    if json:
        print_json({"model": model, "results": results})
    else:
        _render_comparison([d for d in results if "error" not in d])
        for d in errors:
            print(f"rigplan: error: {d['rig']}: {d['error']}", file=sys.stderr)
    raise typer.Exit(2 if errors else 0)


def _render_comparison(results: list[dict[str, Any]]) -> None:
    """One row per rig that could be estimated; speeds only where the model fits."""
    rows = []
    for d in results:
        top = max(d["memory"]["per_gpu"], key=lambda g: g["total_bytes"] / g["usable_bytes"])
        s = d["speed"]
        fits = d["fits"]
        rows.append(
            [
                d["rig"],
                "yes" if fits else "NO",
                d["quant"],
                f"{format_gib(top['total_bytes'])} / {format_gib(top['usable_bytes'])}",
                _speed_cell(s["decode_tokens_per_s"], s["decode_tokens_per_s_range"]) if fits else "—",
                _speed_cell(s["prefill_tokens_per_s"], s["prefill_tokens_per_s_range"]) if fits else "—",
                f"{d['power']['board_watts']} W",
            ]
        )
    if rows:
        console().print(table(None, ["rig", "fits", "quant", "fullest GPU", "decode", "prefill", "board power"], rows))


@app.command()
def vram(
    model: ModelArg,
    quant: VramQuantsOpt = None,
    context: VramContextsOpt = None,
    engine: EngineOpt = "llama.cpp",
    json: JsonOpt = False,
) -> None:
    """How much memory MODEL needs at 4/8/16-bit and several contexts, and the smallest rig
    of each GPU class that holds it.

    Example: rigplan vram llama-2-70b --context 4096
    """
    from .. import vram_dict, vram_table

    mdl, rows = vram_table(
        model,
        quants=tuple(quant) if quant else VRAM_OPTIONS["quants"].default,
        contexts=tuple(context) if context else VRAM_OPTIONS["contexts"].default,
        engine=engine,
    )
    if json:
        print_json(vram_dict(mdl, engine, rows))
        return
    console().print(f"{mdl.name} ({mdl.published_param_count / 1e9:.1f}B parameters) on {engine}")
    out = [
        [
            r.quant,
            f"{r.context:,}",
            format_gib(r.weights_bytes),
            format_gib(r.kv_cache_bytes),
            format_gib(r.total_bytes),
            *(r.smallest_rigs.get(c) or "—" for c in ("consumer", "workstation", "datacenter", "apple")),
        ]
        for r in rows
    ]
    console().print(
        table(
            None,
            ["quant", "context", "weights", "KV", "total", "consumer", "workstation", "datacenter", "apple"],
            out,
            right={1, 2, 3, 4},
        )
    )

"""``rigplan gpus``, ``rigplan models``, ``rigplan quants``: the catalogues as tables or JSON."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Annotated

import typer

from .. import format_usd, gpu_dict, list_gpus, list_models, list_quants, model_dict, quant_bits_text
from . import app
from .output import console, print_json, table

if TYPE_CHECKING:
    from .. import GPUView

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def _price_text(v: GPUView) -> str:
    """``$750 (used, 2026-05)``; a board or server price as ``$188,000 / 8 (used, 2026-04)``;
    a part withdrawn from sale says so; an unpriced one points to its note (:func:`_note_text`)."""
    p = v.price
    if p is None and v.price_gap is not None:
        return "no price"
    text = format_usd(p.usd if p else None) + (f" / {p.unit_gpus}" if p and p.unit_gpus > 1 else "")
    if p and p.kind == "launch":
        text += f" ({p.kind})"
    elif p:
        text += f" ({p.kind}, {p.as_of:%Y-%m})"
    if v.gpu.discontinued is not None:
        text += f" (withdrawn {v.gpu.discontinued:%Y-%m})"
    return text


def _note_text(v: GPUView) -> str:
    """Where a buyer's guide is wrong, and why a GPU on sale has no price (unpriced.toml)."""
    gap = f"why no price: {v.price_gap.short_reason}" if v.price is None and v.price_gap is not None else None
    return "; ".join(x for x in (v.correction, gap) if x)


@app.command()
def gpus(
    min_memory: Annotated[float | None, typer.Option(help="Only GPUs with at least this many GB.")] = None,
    nvlink: Annotated[bool, typer.Option("--nvlink", help="Only GPUs with NVLink.")] = False,
    vendor: Annotated[str | None, typer.Option(help="nvidia, amd or apple.")] = None,
    gpu_class: Annotated[
        str | None, typer.Option("--class", help="consumer, workstation, datacenter or apple.")
    ] = None,
    sort: Annotated[str, typer.Option(help="memory, bandwidth, fp16, power, price, year or name.")] = "memory",
    json: JsonOpt = False,
) -> None:
    """The GPU catalogue: memory, bandwidth, tensor TFLOPS, NVLink, power, price — sourced.

    Notes flag where common buyer's-guide claims are wrong.

    Example: rigplan gpus --min-memory 48 --sort bandwidth
    """
    from .. import load_user_catalog

    rows = list_gpus(
        min_memory_gb=min_memory,
        nvlink=nvlink,
        vendor=vendor,
        gpu_class=gpu_class,
        sort=sort,
        catalog=load_user_catalog(),
    )
    if json:
        print_json({"gpus": [gpu_dict(v) for v in rows]})
        return
    out = []
    for v in rows:
        g = v.gpu
        link = "—" if g.nvlink == "none" else f"{g.nvlink} {g.nvlink_gb_per_s:g} GB/s"
        fp16 = f"{g.fp16_tensor_tflops:g}" if g.fp16_tensor_tflops else "—"
        out.append(
            [
                g.id,
                f"{g.memory_gb:g} GB {g.memory_type}",
                f"{g.bandwidth_gb_per_s:,.0f}",
                fp16,
                link,
                f"{g.board_power_w}",
                _price_text(v),
                _note_text(v),
            ]
        )
    console().print(
        table(
            None,
            ["GPU", "memory", "GB/s", "fp16 TFLOPS", "NVLink", "watts", "price", "note"],
            out,
            right={2, 3, 5},
        )
    )


@app.command()
def models(json: JsonOpt = False) -> None:
    """The model catalogue: architecture, parameters, context, with sources.

    Example: rigplan models --json
    """
    rows = list_models()
    if json:
        print_json({"models": [model_dict(m) for m in rows]})
        return
    out = []
    for m in rows:
        kind = "MoE" if m.is_moe else "dense"
        attn = "MLA" if m.is_mla else ("GQA" if m.num_kv_heads < m.num_heads else "MHA")
        out.append(
            [
                m.id,
                f"{m.published_param_count / 1e9:.1f}B",
                kind,
                attn,
                str(m.num_layers),
                f"{m.num_heads}/{m.num_kv_heads}",
                f"{m.max_context:,}",
            ]
        )
    console().print(
        table(None, ["model", "params", "type", "attention", "layers", "heads/kv", "max context"], out, right={1, 4, 6})
    )


@app.command()
def quants(json: JsonOpt = False) -> None:
    """Quantisation formats and their bits per weight.

    A GGUF mix keeps some tensors wider than its main type: it shows the main tensors' bits and
    the average over a whole model (Llama 3 8B; gpt-oss-20b for MoE mixes).

    Example: rigplan quants
    """
    rows = list_quants()
    if json:
        print_json(
            {"quants": [{k: str(v) if k == "family" else v for k, v in dataclasses.asdict(q).items()} for q in rows]}
        )
        return
    console().print(
        table(
            None,
            ["quant", "family", "bits per weight", "description"],
            [[q.id, str(q.family), quant_bits_text(q), q.description] for q in rows],
            wrap={2},
        )
    )

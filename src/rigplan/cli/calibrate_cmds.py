"""``rigplan calibrate`` (your own benchmark results) and ``rigplan accuracy`` (the model's)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from .. import InvalidValueError
from . import app
from .output import console, print_json, table
from .safety import refuse_flags

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def _factor(value: float | None) -> str:
    return "—" if value is None else f"×{value:.3f}"


@app.command()
def calibrate(
    files: Annotated[
        list[Path] | None,
        typer.Argument(
            help="llama-bench output (-o json, -o jsonl or its markdown table) or vllm bench serve --save-result JSON."
        ),
    ] = None,
    engine: Annotated[
        str | None,
        typer.Option(help="Engine that produced the files (default: llama.cpp for llama-bench, vllm for vllm bench)."),
    ] = None,
    gpu: Annotated[
        str | None,
        typer.Option(
            help="The rig the results came from, e.g. 'rtx-4090' or '2x rtx-3090' "
            "(needed when the file does not name its GPUs)."
        ),
    ] = None,
    model: Annotated[
        str | None, typer.Option(help="Catalogue model id, when the file's model is not recognised.")
    ] = None,
    show: Annotated[bool, typer.Option("--show", help="List the stored calibration.")] = False,
    reset: Annotated[bool, typer.Option("--reset", help="Delete the stored calibration.")] = False,
    json: JsonOpt = False,
) -> None:
    """Fit rigplan's speed model to your own benchmark results and use them from now on.

    Every result is compared with rigplan's prediction for the same model, quant, rig and test;
    the geometric-mean correction per engine and GPU type is stored in your config dir and
    applied to later estimates, which then say "calibrated on your results".

    Example: rigplan calibrate bench.json --gpu '2x rtx-3090'
    """
    from .. import calibrate

    if show and reset:
        raise InvalidValueError("reset", "--show and --reset are two different actions; give one")
    if show or reset:
        if files:
            raise InvalidValueError("files", "--show and --reset take no files")
        action = "--show" if show else "--reset"
        refuse_flags(
            {"--engine": engine is not None, "--gpu": gpu is not None, "--model": model is not None}, f"with {action}"
        )
        if reset:
            _reset(json)
        else:
            _show(json)
        return
    if not files:
        raise InvalidValueError("files", "give one or more benchmark files (or --show / --reset)")
    results = calibrate(files, engine=engine, gpu=gpu, model=model)
    if json:
        print_json({"results": [r.to_dict() for r in results]})
        return
    for r in results:
        _render_result(r)


def _reset(json: bool) -> None:
    """``--reset``: delete the store and say whether there was one."""
    from .. import calibration_store_path, reset_calibration

    removed = reset_calibration()
    if json:
        print_json({"reset": removed, "store": str(calibration_store_path())})
    else:
        console().print("stored calibration deleted" if removed else "no stored calibration")


def _show(json: bool) -> None:
    """``--show``: the stored corrections, one row per engine and GPU set."""
    from .. import calibration_store_path, show_calibration

    entries = show_calibration()
    if json:
        print_json({"store": str(calibration_store_path()), "entries": entries})
        return
    if not entries:
        console().print(f"no stored calibration ({calibration_store_path()})")
        return
    rows = [
        [
            e["engine"],
            ", ".join(e["gpus"]),
            _factor(e["decode_factor"]),
            _factor(e["prefill_factor"]),
            str(e["rows"]),
            str(e["fitted_on"]),
        ]
        for e in entries
    ]
    title = f"your calibration ({calibration_store_path()})"
    console().print(table(title, ["engine", "GPUs", "decode", "prefill", "rows", "fitted"], rows, right={2, 3, 4}))


def _render_result(r: Any) -> None:
    """One fitted engine and GPU set: each result against rigplan's prediction, then the factor."""
    rows = [
        [
            row["kind"],
            row["model"],
            row["quant"],
            row["rig"],
            str(row["prompt_tokens"] if row["kind"] == "prefill" else row["output_tokens"]),
            f"{row['tokens_per_s']:.4g}",
            f"{row['predicted']:.4g}",
        ]
        for row in r.rows
    ]
    con = console()
    con.print(
        table(
            f"{r.engine} on {', '.join(r.gpus)}",
            ["test", "model", "quant", "rig", "tokens", "measured", "rigplan"],
            rows,
            right={4, 5, 6},
        )
    )
    con.print(
        f"correction: decode {_factor(r.decode_factor)}, prefill {_factor(r.prefill_factor)}"
        f" — stored in {r.path}; later estimates say 'calibrated on your results'"
    )


@app.command()
def accuracy(
    refit: Annotated[
        bool,
        typer.Option(
            "--refit", help="Refit every profile first (minutes) instead of using the stored held-out predictions."
        ),
    ] = False,
    json: JsonOpt = False,
) -> None:
    """How well the speed model predicts published measurements on GPUs it was not fitted to.

    Leave-one-GPU-out cross-validation per engine and test kind: MAPE, how often the range holds
    the measurement, the same figures for a naive bandwidth roofline, and the worst rows; then
    training tokens/s per GPU, leave-one-model-size-out; then the serving model (vLLM, SGLang,
    TensorRT-LLM), leave-one-source-out and leave-one-GPU-out.

    Example: rigplan accuracy --json
    """
    from .. import (
        accuracy_report,
        breakdown_dict,
        format_framework_accuracy,
        format_serving_accuracy,
        format_training_accuracy,
        framework_accuracy,
        held_out_rows,
        serving_accuracy,
        text_breakdown,
        training_accuracy,
    )

    report = accuracy_report(refit=refit)
    training = training_accuracy(refit=refit)
    held = held_out_rows(report.profiles)
    frameworks = framework_accuracy(refit=refit)
    serving = serving_accuracy()
    if json:
        training_dict = {**training, "frameworks": frameworks}
        serving_list = [g.to_dict() for g in serving]
        extra = {"breakdown": breakdown_dict(held), "training": training_dict, "serving": serving_list}
        print_json({**report.to_dict(), **extra})
        return
    con = console()
    con.print(_groups_table(report))
    con.print(f"fits/OOM verdicts agree on {report.fits_agreement:.1%} of {report.fits_runs} runs")
    con.print(format_training_accuracy(training))
    con.print(format_framework_accuracy(frameworks))
    con.print(format_serving_accuracy(serving))
    con.print(_worst_table(report))
    con.print(text_breakdown(held))


def _groups_table(report: Any) -> Any:
    """Leave-one-GPU-out MAPE and range coverage per profile, test kind and scope."""
    rows = [
        [
            g.profile,
            g.kind,
            g.scope,
            str(g.rows),
            f"{g.mape:.1%}",
            f"{g.coverage:.0%}",
            f"{g.roofline_mape:.0%}",
            "" if g.meets is None else ("met" if g.meets else "NOT MET"),
        ]
        for g in report.groups
    ]
    columns = ["profile", "test", "scope", "rows", "MAPE", "range holds", "roofline MAPE", "target"]
    return table("leave-one-GPU-out accuracy", columns, rows, right={3, 4, 5, 6})


def _worst_table(report: Any) -> Any:
    """The held-out rows the model misses most."""
    worst = [
        [
            r.ref,
            f"{r.gpu_count}× {r.gpu}",
            r.model,
            r.quant,
            f"{r.kind} {r.tokens}",
            f"{r.measured:.4g}",
            f"{r.predicted:.4g}",
            f"{r.error:+.0%}",
        ]
        for r in report.worst()
    ]
    columns = ["row", "rig", "model", "quant", "test", "measured", "predicted", "error"]
    return table("worst rows", columns, worst, right={5, 6, 7})

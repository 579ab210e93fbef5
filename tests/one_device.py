"""One GPU's share of a model's forward pass on a catalogue rig: what the speed-model unit tests
price a micro-batch or a decode step on."""

from __future__ import annotations

from rigplan.catalog import load_catalog
from rigplan.catalog.records import Model
from rigplan.engines import get_engine
from rigplan.placement import place
from rigplan.quant import get_quant
from rigplan.rig import parse_rig
from rigplan.speed.work import DeviceWork, forward_work

CAT = load_catalog()


def one_device(
    model_id: str, gpu: str, quant: str, *, engine: str = "llama.cpp", honor_window: bool = True
) -> tuple[Model, DeviceWork]:
    """The model and the first GPU's work when ``model_id`` at ``quant`` runs on rig ``gpu``."""
    m = CAT.models[model_id]
    work = forward_work(m, get_quant(quant), place(m, parse_rig(gpu, CAT), get_engine(engine)), honor_window)
    return m, work.stages[0][0]

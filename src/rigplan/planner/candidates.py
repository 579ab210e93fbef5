"""Which rigs to try: GPU types × counts (and nodes) × engines × quants, pruned by a memory
lower bound before any estimate."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from ..catalog.records import GPU, Catalog
from ..engines import VLLM, get_engine
from ..memory import usable_capacity
from ..quant import Quant
from ..rig import Rig
from .evaluate import sweep_rig
from .ladders import MAX_GPUS_PER_BOX, MAX_NODES, Bounds, counts_to_try, ladder, min_count
from .records import Recommendation
from .sweep import Inputs, Sweep, over


def gpu_pool(catalog: Catalog, gpu_class: str | None, sweep: Sweep) -> list[GPU]:
    """GPU types to sweep; those of another class are counted (as GPU types) under gpu_class."""
    gpus = []
    for g in catalog.gpus.values():
        if gpu_class and g.gpu_class != gpu_class:
            sweep.exclude("gpu_class")
            continue
        gpus.append(g)
    return gpus


@dataclass(slots=True)
class _Search:
    """One sweep's fixed arguments, so each step names only the rig it tries."""

    inputs: Inputs
    quant: str
    catalog: Catalog
    prices: Mapping[str, float]
    sweep: Sweep
    bounds: Bounds
    prefer: str
    out: list[Recommendation] = field(default_factory=list)

    def rig(self, rig: Rig, owned: int, engines: Sequence[str]) -> bool:
        """Evaluate ``rig``; whether any candidate fitted in memory."""
        return sweep_rig(
            rig,
            owned,
            engines,
            self.quant,
            self.inputs,
            self.bounds,
            self.catalog,
            self.prices,
            self.sweep,
            self.out,
            prefer=self.prefer,
        )


def _owned_alone(search: _Search, owned: Sequence[GPU], engines: Sequence[str], stop_at_first_fit: bool) -> set[str]:
    """Try the owned GPUs alone; the engines for which adding a GPU cannot help."""
    before = len(search.out)
    search.rig(Rig(gpus=tuple(owned)), len(owned), engines)
    # Where the owned GPUs already qualify, adding a GPU only adds cost — except tensor
    # parallel, which may add speed when not ranking by cost.
    return {r.engine for r in search.out[before:] if stop_at_first_fit or get_engine(r.engine).family != VLLM}


def _too_few(
    search: _Search, gpu: GPU, engine: str, quants: Sequence[Quant], start: int, room: int, owned: bool
) -> None:
    """No count of ``gpu`` is worth trying: multi-node for datacentre parts, else a miss."""
    sweep = search.sweep
    sweep.considered += len(quants)
    if start > room and not owned and get_engine(engine).family == VLLM and gpu.gpu_class == "datacenter":
        sweep_nodes(search, gpu, engine)
        return
    sweep.exclude("memory" if start > room else "unsupported", len(quants))
    if start > room:
        why = f"needs at least {start} GPUs, more than {room}"
        sweep.miss(f"{room}x {gpu.id}", quants[-1].id, engine, None, [(why, over(start, room))])


def _sweep_gpu(search: _Search, gpu: GPU, engine: str, owned: Sequence[GPU], stop_at_first_fit: bool) -> None:
    """Counts of ``gpu`` (added to the owned ones) under one engine, fewest first."""
    inputs, sweep = search.inputs, search.sweep
    eng = get_engine(engine)
    quants = ladder(engine, search.quant, (*owned, gpu))
    if not quants:
        sweep.considered += 1
        sweep.exclude("unsupported")
        return
    # The widest quant needs the most GPUs: start from the fewest the narrowest needs.
    owned_capacity = sum(usable_capacity(o, eng) for o in owned)
    need = min(search.bounds.need_bytes(q, engine) for q in quants)
    start = min_count(max(need - owned_capacity, 1.0), gpu, engine)
    room = min(MAX_GPUS_PER_BOX, inputs.max_gpus or MAX_GPUS_PER_BOX) - len(owned)
    counts = counts_to_try(inputs.model, gpu, engine, start, room) if not owned else list(range(start, room + 1))
    skipped = min(start, room + 1) - 1
    if skipped > 0:  # counts the memory lower bound rules out, never estimated
        sweep.considered += skipped * len(quants)
        sweep.exclude("memory", skipped * len(quants))
    if not counts:
        _too_few(search, gpu, engine, quants, start, room, bool(owned))
        return
    for n in counts:
        fitted = search.rig(Rig(gpus=(*owned, *(gpu,) * n)), len(owned), (engine,))
        # A layer split only adds capacity: once it fits, more of the same GPU is never
        # better.  Tensor parallel may be faster with more GPUs (unless ranking by cost).
        if fitted and (stop_at_first_fit or eng.family != VLLM or owned):
            break


def enumerate_rigs(
    inputs: Inputs,
    engines: Sequence[str],
    quant: str,
    owned: Sequence[GPU],
    catalog: Catalog,
    prices: Mapping[str, float],
    sweep: Sweep,
    progress: Callable[[int, int], None] | None,
) -> list[Recommendation]:
    """Every rig worth an estimate (owned GPUs alone, then each GPU type added in counts), with
    what qualified."""
    prefer = "lanes" if inputs.objective == "fastest" else "cheapest"
    search = _Search(inputs, quant, catalog, prices, sweep, Bounds(inputs), prefer)
    stop_at_first_fit = inputs.objective == "cheapest"
    pool = gpu_pool(catalog, inputs.gpu_class, sweep)
    total = len(pool) + (1 if owned else 0)
    owned_enough: set[str] = set()
    if owned:
        owned_enough = _owned_alone(search, owned, engines, stop_at_first_fit)
        if progress:
            progress(1, total)
    for i, gpu in enumerate(pool):
        if progress:
            progress(i + 1 + (1 if owned else 0), total)
        if gpu.is_apple:
            if not owned:
                search.rig(Rig(gpus=(gpu,)), 0, engines)
            continue
        if owned and any(o.is_apple for o in owned):
            continue
        for engine in engines:
            if owned and get_engine(engine).family == VLLM and any(o.id != gpu.id for o in owned):
                continue  # tensor parallel wants identical GPUs
            if engine not in owned_enough:
                _sweep_gpu(search, gpu, engine, owned, stop_at_first_fit)
    return search.out


def sweep_nodes(search: _Search, gpu: GPU, engine: str) -> None:
    """Nodes of eight datacentre GPUs (tensor parallel inside, pipeline across) for models one
    box cannot hold."""
    for nodes in range(2, MAX_NODES + 1):
        if search.rig(Rig(gpus=(gpu,) * MAX_GPUS_PER_BOX, nodes=nodes), 0, (engine,)):
            return

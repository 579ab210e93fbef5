"""Which rigs to try: each GPU type from one up to a box of eight (the fewest that can hold the
model first), GPUs added to those already owned, and nodes of eight datacentre GPUs."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from ..catalog.records import GPU, Catalog
from ..engines import VLLM, get_engine
from ..memory import usable_capacity
from ..quant import Quant
from ..rig import Rig
from .evaluate import sweep_rig
from .ladders import MAX_GPUS_PER_BOX, MAX_NODES, Bounds, gpu_counts, ladder, min_count
from .records import Recommendation
from .sweep import Inputs, Sweep, over


def gpu_pool(catalog: Catalog, gpu_class: str | None, sweep: Sweep, include_discontinued: bool = False) -> list[GPU]:
    """GPU types to sweep; those of another class are counted (as GPU types) under gpu_class,
    those withdrawn from sale under "discontinued" unless asked for."""
    gpus = []
    for g in catalog.gpus.values():
        if gpu_class and g.gpu_class != gpu_class:
            sweep.exclude("gpu_class")
            continue
        if g.discontinued is not None and not include_discontinued:
            sweep.exclude("discontinued")
            continue
        gpus.append(g)
    return gpus


@dataclass(slots=True)
class _Search:
    """One enumeration: what is swept, where results go, and how it stops early."""

    inputs: Inputs
    engines: Sequence[str]
    quant: str
    owned: tuple[GPU, ...]
    catalog: Catalog
    prices: Mapping[str, float]
    sweep: Sweep
    bounds: Bounds
    out: list[Recommendation] = field(default_factory=list)

    @property
    def prefer(self) -> str:
        return "lanes" if self.inputs.objective == "fastest" else "price"

    @property
    def stop_at_first_fit(self) -> bool:
        return self.inputs.objective == "cheapest"

    @property
    def room(self) -> int:
        """GPUs that may be added to the owned ones in one box."""
        return min(MAX_GPUS_PER_BOX, self.inputs.max_gpus or MAX_GPUS_PER_BOX) - len(self.owned)

    def try_rig(self, rig: Rig, engines: Sequence[str]) -> bool:
        return sweep_rig(
            rig, len(self.owned), engines, self.quant, self.inputs, self.bounds, self.catalog, self.prices,
            self.sweep, self.out, prefer=self.prefer,
        )  # fmt: skip


def _owned_alone(s: _Search) -> set[str]:
    """Sweep the owned GPUs alone; returns the engines for which adding a GPU is pointless.

    Where the owned GPUs already qualify, adding a GPU only adds cost — except tensor parallel,
    which may add speed when not ranking by cost."""
    before = len(s.out)
    s.try_rig(Rig(gpus=s.owned), s.engines)
    return {r.engine for r in s.out[before:] if s.stop_at_first_fit or get_engine(r.engine).family != VLLM}


def _sweep_nodes(s: _Search, gpu: GPU, engine: str) -> None:
    """Nodes of eight datacentre GPUs (tensor parallel inside, pipeline across) for models one
    box cannot hold."""
    for nodes in range(2, MAX_NODES + 1):
        if s.try_rig(Rig(gpus=(gpu,) * MAX_GPUS_PER_BOX, nodes=nodes), (engine,)):
            return


def _too_few(s: _Search, gpu: GPU, engine: str, quants: Sequence[Quant], start: int) -> None:
    """No count of ``gpu`` in one box can be tried: nodes for datacentre GPUs under a
    tensor-parallel engine, else the candidates are counted as excluded."""
    n_quants = len(quants)
    s.sweep.considered += n_quants
    room = s.room
    if start > room and not s.owned and get_engine(engine).family == VLLM and gpu.gpu_class == "datacenter":
        _sweep_nodes(s, gpu, engine)
        return
    s.sweep.exclude("memory" if start > room else "unsupported", n_quants)
    if start > room:
        why = f"needs at least {start} GPUs, more than {room}"
        s.sweep.miss(f"{room}x {gpu.id}", quants[-1].id, engine, None, [(why, over(start, room))])


def _sweep_engine(s: _Search, gpu: GPU, engine: str) -> None:
    """Counts of ``gpu`` (added to the owned GPUs) under one engine, fewest that can fit first."""
    eng = get_engine(engine)
    quants = ladder(engine, s.quant, (*s.owned, gpu))
    if not quants:
        s.sweep.considered += 1
        s.sweep.exclude("unsupported")
        return
    # The widest quant needs the most GPUs: start from the fewest the narrowest needs.
    owned_capacity = sum(usable_capacity(o, eng) for o in s.owned)
    need = min(s.bounds.need_bytes(q, engine) for q in quants)
    start = min_count(max(need - owned_capacity, 1.0), gpu, engine)
    room = s.room
    counts = gpu_counts(s.inputs.model, gpu, engine, start, room) if not s.owned else list(range(start, room + 1))
    skipped = min(start, room + 1) - 1
    if skipped > 0:  # counts the memory lower bound rules out, never estimated
        s.sweep.considered += skipped * len(quants)
        s.sweep.exclude("memory", skipped * len(quants))
    if not counts:
        _too_few(s, gpu, engine, quants, start)
        return
    for n in counts:
        fitted = s.try_rig(Rig(gpus=(*s.owned, *(gpu,) * n)), (engine,))
        # A layer split only adds capacity: once it fits, more of the same GPU is never better.
        # Tensor parallel may be faster with more GPUs (unless ranking by cost).
        if fitted and (s.stop_at_first_fit or eng.family != VLLM or s.owned):
            break


def _sweep_gpu(s: _Search, gpu: GPU, owned_enough: set[str]) -> None:
    """Every engine's rigs of ``gpu`` (alone, or added to the owned GPUs)."""
    if gpu.is_system:
        if not s.owned:
            s.try_rig(Rig(gpus=(gpu,)), s.engines)
        return
    if s.owned and any(o.is_system for o in s.owned):
        return
    for engine in s.engines:
        if s.owned and get_engine(engine).family == VLLM and any(o.id != gpu.id for o in s.owned):
            continue  # tensor parallel wants identical GPUs
        if engine in owned_enough:
            continue
        _sweep_engine(s, gpu, engine)


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
    """Every rig worth estimating, swept; returns the recommendations that qualify."""
    s = _Search(inputs, engines, quant, tuple(owned), catalog, prices, sweep, Bounds(inputs))
    pool = gpu_pool(catalog, inputs.gpu_class, sweep, inputs.include_discontinued)
    total = len(pool) + (1 if owned else 0)
    owned_enough: set[str] = set()
    if owned:
        owned_enough = _owned_alone(s)
        if progress:
            progress(1, total)
    for i, gpu in enumerate(pool):
        if progress:
            progress(i + 1 + (1 if owned else 0), total)
        _sweep_gpu(s, gpu, owned_enough)
    return s.out

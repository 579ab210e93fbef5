"""``rigplan measure``: what the local GPUs really do, stored for later estimates.

Measures, with PyTorch on CUDA (the ``[measure]`` extra):

- memory bandwidth per GPU: a device-to-device copy of a buffer far larger than the L2 cache
  (read + write bytes over time, as STREAM's "copy" counts them);
- dense matmul TFLOPS per dtype: fp32, tf32, fp16, bf16, and fp8 (``torch._scaled_mm``) and
  int8 (``torch._int_mm``) where the GPU has them (2·n³ FLOPs per n×n product);
- P2P copy bandwidth for every GPU pair, and whether peer access is on;
- all-reduce latency (small message) and bus bandwidth (large message) across all GPUs,
  with NCCL through ``torch.cuda.nccl`` (bus bandwidth = 2(n-1)/n × bytes / time, the
  nccl-tests convention in its PERFORMANCE.md).

Results go to ``measured.toml`` in ``platformdirs.user_config_dir("rigplan")``; read them back
with :func:`load_measured`.  Importing this module never imports torch.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..calibration import tomlwrite
from ..errors import DataFileError, DeviceError
from ..units import GB, GIB, MIB, TERA

MEASURED_FILE = "measured.toml"
INSTALL_HINT = "install rigplan[measure] (PyTorch with CUDA): pip install 'rigplan[measure]'"

# Copy buffer: 1 GiB is 8x the largest L2 cache of a current GPU (B200: 126 MB per die pair),
# so the copy streams from HBM/GDDR rather than the cache.
BANDWIDTH_BUFFER_BYTES = 1 * GIB
QUICK_BANDWIDTH_BUFFER_BYTES = 256 * MIB
# A copy reads and writes every byte once.
COPY_TRAFFIC_FACTOR = 2
# Square matmul size: large enough to saturate tensor cores on every current GPU.
MATMUL_N = 8192
QUICK_MATMUL_N = 4096
# Matmul FLOPs per multiply-accumulate.
FLOPS_PER_MAC = 2
WARMUP_RUNS = 3
TIMED_RUNS = 10
QUICK_TIMED_RUNS = 3
# P2P copy size and all-reduce message sizes (nccl-tests' usual small/large ends).
P2P_BUFFER_BYTES = 256 * MIB
ALLREDUCE_SMALL_BYTES = 8 * 1024
ALLREDUCE_LARGE_BYTES = 256 * MIB
# fp8 tensor cores: compute capability 8.9 (Ada) and 9.0+ (Hopper, Blackwell).
FP8_MIN_CAPABILITY = (8, 9)
SECONDS_PER_MS = 1e-3
US_PER_S = 1e6


@dataclass(frozen=True, slots=True)
class GPUMeasurement:
    index: int
    name: str
    catalog_id: str | None
    memory_bandwidth_gb_per_s: float
    matmul_tflops: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PairMeasurement:
    src: int
    dst: int
    p2p: bool
    bandwidth_gb_per_s: float


@dataclass(frozen=True, slots=True)
class AllReduceMeasurement:
    gpus: int
    latency_us: float
    bus_bandwidth_gb_per_s: float
    small_message_bytes: int = ALLREDUCE_SMALL_BYTES
    large_message_bytes: int = ALLREDUCE_LARGE_BYTES


@dataclass(frozen=True, slots=True)
class MeasuredProfile:
    """One run of ``rigplan measure`` on this machine."""

    measured_at: dt.datetime
    torch_version: str
    cuda_version: str
    gpus: tuple[GPUMeasurement, ...]
    pairs: tuple[PairMeasurement, ...] = ()
    allreduce: AllReduceMeasurement | None = None

    def gpu(self, catalog_id: str) -> GPUMeasurement | None:
        """The first measured GPU with this catalogue id."""
        return next((g for g in self.gpus if g.catalog_id == catalog_id), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "measured_at": self.measured_at.isoformat(),
            "torch_version": self.torch_version,
            "cuda_version": self.cuda_version,
            "gpus": [
                {
                    "index": g.index,
                    "name": g.name,
                    "catalog_id": g.catalog_id,
                    "memory_bandwidth_gb_per_s": g.memory_bandwidth_gb_per_s,
                    "matmul_tflops": dict(g.matmul_tflops),
                }
                for g in self.gpus
            ],
            "pairs": [
                {"src": p.src, "dst": p.dst, "p2p": p.p2p, "bandwidth_gb_per_s": p.bandwidth_gb_per_s}
                for p in self.pairs
            ],
            "allreduce": None
            if self.allreduce is None
            else {
                "gpus": self.allreduce.gpus,
                "latency_us": self.allreduce.latency_us,
                "bus_bandwidth_gb_per_s": self.allreduce.bus_bandwidth_gb_per_s,
                "small_message_bytes": self.allreduce.small_message_bytes,
                "large_message_bytes": self.allreduce.large_message_bytes,
            },
        }


# ---------------------------------------------------------------------------------------------
# Storage
# ---------------------------------------------------------------------------------------------


def measured_path() -> Path:
    """Where ``rigplan measure`` stores its results (user config dir)."""
    import platformdirs

    return Path(platformdirs.user_config_dir("rigplan")) / MEASURED_FILE


def to_toml(profile: MeasuredProfile) -> str:
    """The profile as TOML (one ``[[gpu]]`` per GPU, ``[[pair]]`` per pair, ``[allreduce]``)."""
    doc: dict[str, Any] = {
        "measured": {
            "measured_at": profile.measured_at,
            "torch_version": profile.torch_version,
            "cuda_version": profile.cuda_version,
        },
        "gpu": [
            {
                "index": g.index,
                "name": g.name,
                **({"catalog_id": g.catalog_id} if g.catalog_id else {}),
                "memory_bandwidth_gb_per_s": g.memory_bandwidth_gb_per_s,
                "matmul_tflops": dict(g.matmul_tflops),
            }
            for g in profile.gpus
        ],
        "pair": [dataclasses.asdict(p) for p in profile.pairs],
    }
    if profile.allreduce:
        doc["allreduce"] = dataclasses.asdict(profile.allreduce)
    header = "Written by `rigplan measure`; read by rigplan.integrations.measure.load_measured()."
    return tomlwrite.dumps({k: v for k, v in doc.items() if v != []}, header)


def save_measured(profile: MeasuredProfile, path: Path | None = None) -> Path:
    """Write ``profile`` to ``measured.toml`` (replacing an earlier run) and return the path."""
    path = path or measured_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".toml.tmp")
    tmp.write_text(to_toml(profile), encoding="utf-8")
    tmp.replace(path)
    return path


def _need(table: Mapping[str, Any], key: str, kind: type | tuple[type, ...], where: str, path: Path) -> Any:
    if key not in table:
        raise DataFileError(str(path), f"{where}.{key}", "missing")
    value = table[key]
    if (isinstance(value, bool) and kind is not bool) or not isinstance(value, kind):
        raise DataFileError(str(path), f"{where}.{key}", f"expected {kind}, got {value!r}")
    return value


def load_measured(path: Path | None = None) -> MeasuredProfile | None:
    """The stored results of ``rigplan measure``, or None when it has not been run.

    Raises:
        DataFileError: the file exists but is malformed (naming the field).
    """
    path = path or measured_path()
    if not path.is_file():
        return None
    from ..textfiles import read_toml

    data = read_toml(path)
    head = data.get("measured")
    if not isinstance(head, dict):
        raise DataFileError(str(path), "measured", "missing [measured] table")
    num = (int, float)
    gpus = []
    for i, g in enumerate(data.get("gpu", [])):
        where = f"gpu[{i}]"
        tflops = g.get("matmul_tflops", {})
        if not isinstance(tflops, dict) or not all(isinstance(v, num) for v in tflops.values()):
            raise DataFileError(str(path), f"{where}.matmul_tflops", "expected a table of numbers")
        gpus.append(
            GPUMeasurement(
                index=_need(g, "index", int, where, path),
                name=_need(g, "name", str, where, path),
                catalog_id=g.get("catalog_id"),
                memory_bandwidth_gb_per_s=float(_need(g, "memory_bandwidth_gb_per_s", num, where, path)),
                matmul_tflops={k: float(v) for k, v in tflops.items()},
            )
        )
    pairs = tuple(
        PairMeasurement(
            _need(p, "src", int, f"pair[{i}]", path),
            _need(p, "dst", int, f"pair[{i}]", path),
            _need(p, "p2p", bool, f"pair[{i}]", path),
            float(_need(p, "bandwidth_gb_per_s", num, f"pair[{i}]", path)),
        )
        for i, p in enumerate(data.get("pair", []))
    )
    allreduce = None
    if "allreduce" in data:
        a = data["allreduce"]
        allreduce = AllReduceMeasurement(
            _need(a, "gpus", int, "allreduce", path),
            float(_need(a, "latency_us", num, "allreduce", path)),
            float(_need(a, "bus_bandwidth_gb_per_s", num, "allreduce", path)),
            int(a.get("small_message_bytes", ALLREDUCE_SMALL_BYTES)),
            int(a.get("large_message_bytes", ALLREDUCE_LARGE_BYTES)),
        )
    measured_at = _need(head, "measured_at", dt.datetime, "measured", path)
    return MeasuredProfile(
        measured_at=measured_at,
        torch_version=str(head.get("torch_version", "")),
        cuda_version=str(head.get("cuda_version", "")),
        gpus=tuple(gpus),
        pairs=pairs,
        allreduce=allreduce,
    )


# ---------------------------------------------------------------------------------------------
# Measuring (needs torch with CUDA)
# ---------------------------------------------------------------------------------------------


def _torch() -> Any:
    try:
        import torch
    except ImportError:
        raise DeviceError(f"`rigplan measure` needs PyTorch: {INSTALL_HINT}") from None
    if not torch.cuda.is_available():
        raise DeviceError(
            f"PyTorch sees no CUDA GPU (no NVIDIA GPU or driver, or a CPU-only torch build); {INSTALL_HINT}"
        )
    return torch


def _time_ms(torch: Any, device: int, fn: Callable[[], Any], runs: int) -> float:
    """Mean milliseconds of ``fn`` on ``device`` after warm-up, timed with CUDA events."""
    with torch.cuda.device(device):
        for _ in range(WARMUP_RUNS):
            fn()
        torch.cuda.synchronize(device)
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(runs):
            fn()
        end.record()
        torch.cuda.synchronize(device)
        return float(start.elapsed_time(end)) / runs


def measure_bandwidth(torch: Any, device: int, nbytes: int, runs: int) -> float:
    """GB/s of a device-to-device copy (read + write)."""
    src = torch.empty(nbytes, dtype=torch.uint8, device=f"cuda:{device}")
    dst = torch.empty_like(src)
    ms = _time_ms(torch, device, lambda: dst.copy_(src), runs)
    return COPY_TRAFFIC_FACTOR * nbytes / (ms * SECONDS_PER_MS) / GB


def measure_matmul(torch: Any, device: int, n: int, runs: int) -> dict[str, float]:
    """Dense n×n matmul TFLOPS per dtype the GPU runs."""
    dev = f"cuda:{device}"
    flops = FLOPS_PER_MAC * n**3
    out: dict[str, float] = {}
    capability = torch.cuda.get_device_capability(device)

    def tflops(ms: float) -> float:
        return round(flops / (ms * SECONDS_PER_MS) / TERA, 1)

    previous_tf32 = torch.backends.cuda.matmul.allow_tf32
    try:
        for name, dtype, tf32 in (
            ("fp32", torch.float32, False),
            ("tf32", torch.float32, True),
            ("fp16", torch.float16, False),
            ("bf16", torch.bfloat16, False),
        ):
            if dtype is torch.bfloat16 and not torch.cuda.is_bf16_supported():
                continue
            torch.backends.cuda.matmul.allow_tf32 = tf32
            a = torch.randn(n, n, device=dev, dtype=dtype)
            b = torch.randn(n, n, device=dev, dtype=dtype)
            out[name] = tflops(_time_ms(torch, device, lambda a=a, b=b: a @ b, runs))
    finally:
        torch.backends.cuda.matmul.allow_tf32 = previous_tf32
    if capability >= FP8_MIN_CAPABILITY and hasattr(torch, "_scaled_mm"):
        a = torch.randn(n, n, device=dev).to(torch.float8_e4m3fn)
        b = torch.randn(n, n, device=dev).to(torch.float8_e4m3fn).t()  # column-major second operand
        scale = torch.ones((), device=dev)
        with contextlib.suppress(RuntimeError):  # an fp8 path this torch build lacks
            out["fp8"] = tflops(
                _time_ms(
                    torch,
                    device,
                    lambda: torch._scaled_mm(a, b, scale_a=scale, scale_b=scale, out_dtype=torch.bfloat16),
                    runs,
                )
            )
    if hasattr(torch, "_int_mm"):
        a = torch.randint(-8, 8, (n, n), device=dev, dtype=torch.int8)
        b = torch.randint(-8, 8, (n, n), device=dev, dtype=torch.int8)
        with contextlib.suppress(RuntimeError):
            out["int8"] = tflops(_time_ms(torch, device, lambda: torch._int_mm(a, b), runs))
    return out


def measure_p2p(torch: Any, src: int, dst: int, nbytes: int, runs: int) -> PairMeasurement:
    """GB/s of a copy from GPU ``src`` to GPU ``dst`` (through the host when P2P is off)."""
    p2p = bool(torch.cuda.can_device_access_peer(dst, src))
    a = torch.empty(nbytes, dtype=torch.uint8, device=f"cuda:{src}")
    b = torch.empty(nbytes, dtype=torch.uint8, device=f"cuda:{dst}")

    def copy() -> None:
        b.copy_(a, non_blocking=True)
        torch.cuda.synchronize(src)

    ms = _time_ms(torch, dst, copy, runs)
    return PairMeasurement(src, dst, p2p, round(nbytes / (ms * SECONDS_PER_MS) / GB, 1))


def measure_allreduce(torch: Any, n_gpus: int, runs: int) -> AllReduceMeasurement | None:
    """All-reduce across every GPU with single-process NCCL (``torch.cuda.nccl``)."""
    from torch.cuda import nccl

    def run(nbytes: int) -> float:
        tensors = [torch.ones(nbytes // 4, dtype=torch.float32, device=f"cuda:{i}") for i in range(n_gpus)]
        if not nccl.is_available(tensors):
            raise DeviceError("NCCL is not available in this torch build")

        def op() -> None:
            nccl.all_reduce(tensors)
            for i in range(n_gpus):
                torch.cuda.synchronize(i)

        return _time_ms(torch, 0, op, runs)

    small_ms = run(ALLREDUCE_SMALL_BYTES)
    large_ms = run(ALLREDUCE_LARGE_BYTES)
    bus = (2 * (n_gpus - 1) / n_gpus) * ALLREDUCE_LARGE_BYTES / (large_ms * SECONDS_PER_MS) / GB
    return AllReduceMeasurement(n_gpus, round(small_ms * SECONDS_PER_MS * US_PER_S, 1), round(bus, 1))


def measure(*, quick: bool = False, progress: Callable[[str], None] | None = None) -> MeasuredProfile:
    """Measure every local GPU (and pairs and all-reduce where there are several).

    Args:
        quick: smaller buffers and fewer runs (seconds instead of about a minute per GPU).
        progress: called with a line of text before each step.

    Raises:
        DeviceError: no torch (``install rigplan[measure]``), no CUDA GPU.
    """
    torch = _torch()
    say = progress or (lambda _line: None)
    runs = QUICK_TIMED_RUNS if quick else TIMED_RUNS
    n_gpus = torch.cuda.device_count()
    ids: dict[int, str | None] = {}
    try:
        from .nvml import detect_gpus

        ids = {g.index: g.catalog_id for g in detect_gpus().gpus}
    except (DeviceError, LookupError):
        pass
    gpus = []
    for i in range(n_gpus):
        name = torch.cuda.get_device_name(i)
        say(f"GPU {i} ({name}): memory bandwidth")
        bw = measure_bandwidth(torch, i, QUICK_BANDWIDTH_BUFFER_BYTES if quick else BANDWIDTH_BUFFER_BYTES, runs)
        say(f"GPU {i} ({name}): matmul TFLOPS")
        mm = measure_matmul(torch, i, QUICK_MATMUL_N if quick else MATMUL_N, runs)
        gpus.append(GPUMeasurement(i, name, ids.get(i), round(bw, 1), mm))
        torch.cuda.empty_cache()
    pairs = []
    for i in range(n_gpus):
        for j in range(n_gpus):
            if i != j:
                say(f"GPU {i} -> GPU {j}: copy bandwidth")
                pairs.append(measure_p2p(torch, i, j, P2P_BUFFER_BYTES, runs))
    allreduce = None
    if n_gpus > 1:
        say(f"all-reduce across {n_gpus} GPUs")
        allreduce = measure_allreduce(torch, n_gpus, runs)
    return MeasuredProfile(
        measured_at=dt.datetime.now(dt.UTC).replace(microsecond=0),
        torch_version=str(torch.__version__),
        cuda_version=str(torch.version.cuda),
        gpus=tuple(gpus),
        pairs=tuple(pairs),
        allreduce=allreduce,
    )

"""Engine profiles: the parameters of the speed model for one engine on one backend.

A profile is data (``calibration/profiles/*.toml``): fitted or prior parameters, the rows they
came from, the fit date and the spread of the leave-one-GPU-out residuals that sets the ranges.
This module only defines the typed records; the loader lives in ``rigplan.calibration``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields

#: Kernel classes whose per-weight ALU cost differs (a profile's ``sm_cycles_per_weight`` keys).
WEIGHT_CLASSES = (
    "float",  # f32 / f16 / bf16: no dequantisation, only the FMA
    "fp8",  # FP8 weights (converted or native FP8 MMA)
    "int8",  # INT8 weights with per-channel scales
    "int4",  # GPTQ / AWQ group-128 INT4 (Marlin / ExLlama kernels)
    "nf4",  # bitsandbytes NF4 (table lookups)
    "exl2",  # ExLlamaV2 variable-bit
    "q8_0",  # ggml q8_0
    "legacy",  # ggml block-32 types: q4_0, q4_1, q5_0, q5_1, iq4_nl
    "k4",  # ggml q4_k, q5_k
    "k6",  # ggml q6_k
    "k_low",  # ggml q2_k, q3_k (bit-plane unpacking: ALU-bound at batch 1)
    "iquant",  # ggml i-quants (lattice codebooks)
)


@dataclass(frozen=True, slots=True)
class SpeedParameters:
    """Every number the speed model takes from a profile, with its unit in the name.

    Defaults are priors from ``reference/perf-model.md``; a profile overrides what it fits.
    """

    # --- decode (memory-bound streaming of weights and KV) ---
    memory_efficiency_hbm: float = 0.75  # achieved / peak DRAM bandwidth (perf-model §3.2)
    memory_efficiency_gddr: float = 0.85
    memory_efficiency_unified: float = 0.80
    #: SM-cycles one weight costs to decode and multiply at batch 1, per kernel class.
    sm_cycles_per_weight: dict[str, float] = field(default_factory=dict)
    #: CPU time to launch one layer's kernels; hidden while the GPU is slower (smooth max).
    launch_overhead_per_layer_s: float = 5e-6
    #: Per-layer cost that does not overlap GPU work (synchronisation; Metal command buffers).
    serial_overhead_per_layer_s: float = 0.0
    #: Per mixture-of-experts layer and decode step: the router, top-k, gathers and the
    #: expert mat-vec launches, small kernels that do not overlap the weight streaming.
    expert_overhead_per_layer_s: float = 0.0
    #: Per routed expert a decode step reads, per MoE layer: the fixed cost of one small expert
    #: mat-vec (its tail and the gather of its rows), which many small experts pay more often
    #: than few large ones (Qwen3-30B-A3B: 8 of 128 experts of 768 columns; gpt-oss: 4 of 32/128).
    active_expert_overhead_s: float = 0.0
    #: Fixed per decode step: sampling, scheduler, Python (engines with CUDA graphs: small).
    step_overhead_s: float = 0.0
    #: Layer split: synchronisation and activation copy at each GPU boundary, per token.
    layer_split_hop_s: float = 100e-6
    #: KV-cache bytes read per step as a multiple of the cache (llama.cpp without flash
    #: attention reads each KV head once per query head: see ``kv_read_per_query_head``).
    attention_read_factor: float = 1.0
    #: SM-cycles per FLOP of the decode attention kernel (QK^T and PV for every query head over
    #: the cached tokens): where it runs slower than its KV streaming, the excess adds to the
    #: step.  0: attention is priced by its bytes alone.
    decode_attention_sm_cycles_per_flop: float = 0.0
    # --- prefill (compute-bound matmuls in micro-batches) ---
    tensor_efficiency: float = 0.55  # achieved / peak dense tensor FLOP/s on large GEMMs
    #: Ceiling on GEMM throughput per SM-cycle (tile loads, epilogues), harmonic with the above.
    sm_flops_per_cycle_cap: float = 4096.0
    #: Dequantising a quantised weight for a prompt micro-batch, SM-cycles per weight.
    dequant_sm_cycles_per_weight: float = 0.0
    #: Passes over the f32 attention-score matrix (no flash attention; 0 with it).
    attention_score_passes: float = 0.0
    #: Passes over the per-token activations (norms, rope, residual adds) per layer.
    activation_passes: float = 2.0
    #: Per layer per micro-batch (launches, small kernels).
    prefill_overhead_per_layer_s: float = 20e-6
    #: Pipeline hop of one micro-batch between GPUs (latency; bytes go at the link's rate).
    pipeline_hop_s: float = 50e-6
    #: Throughput of the prompt's attention kernels (flash attention or the score matmuls) as a
    #: share of the backend's matmul throughput: a backend's flash-attention kernel can lag its
    #: GEMMs (Vulkan's coopmat/scalar FA, ROCm's without rocWMMA); 1: the same rate.
    attention_efficiency: float = 1.0
    #: Flash attention's passes over the cached K and V per query token: a kernel block holds a
    #: tile of query rows (llama.cpp's CUDA MMA kernel: 8–64 columns; Metal: 8 rows) and streams
    #: every cached K and V row past them, so deep prompts re-read the cache once per tile:
    #: bytes = this · K/V width · 2 B (an f16 cache, as CUDA converts a quantised one before the
    #: kernel; Metal / Vulkan read quantised bytes, so a q8_0 / q4_0 cache is over-charged) ·
    #: query–key pairs (sliding-window layers: their window).  0: not charged.
    #: Scaling with the K/V width is empirical: CUDA packs a KV head's GQA query heads into one
    #: block (so the tile count would follow the query width, and MLA's 128 heads on one latent
    #: would pay more), but pricing by query width fitted worse (prefill held out 26.7 → 32.4 %);
    #: GQA re-reads likely hit L2. MLA prompts at depth are likely under-charged.
    flash_kv_reads_per_query: float = 0.0
    #: Per routed expert a prompt micro-batch touches, where the experts are 16-bit (f16/bf16):
    #: llama.cpp has no grouped kernel for float experts off CUDA (MMQ groups only quantised
    #: ones), so ``mul_mat_id`` gathers, multiplies and scatters one expert at a time.
    float_expert_call_s: float = 0.0
    #: Prompt-speed gain per 1000 llama.cpp builds (kernel work between releases: Vulkan
    #: coopmat shaders, ROCm MMQ tiles), around ``prefill.BUILD_ERA_REFERENCE``; 1: none.
    prefill_speedup_per_kilobuild: float = 1.0
    #: Share of the prompt speed the rest of the model gives that an SoC sharing LPDDR memory and
    #: its power budget with the CPU reaches (DGX Spark, Strix Halo; ``hardware.memory_class``
    #: "unified"): its GPU work in a micro-batch takes 1 / this as long. 1: none.
    prefill_efficiency_unified: float = 1.0
    #: How much faster prompt matmuls (with their dequantisation) run on AMD GPUs with
    #: cooperative matrices from ``EngineBehaviour.amd_coopmat_tiles_build`` on (1: no change).
    amd_coopmat_tiles_speedup: float = 1.0
    #: SMs a prompt's routed-expert matmuls keep busy at most (0: no limit): on a GPU with more,
    #: they take ``SMs / this`` times their share of its rate (``prefill._expert_fill``).
    moe_gemm_sm_limit: float = 0.0
    #: A prompt's routed-expert matmuls run at this share of the dense weights' matmul rate
    #: (``prefill._expert_fill``): grouped kernels over few tokens per expert; 1: the same rate.
    moe_gemm_efficiency: float = 1.0

    def cycles_per_weight(self, weight_class: str) -> float:
        return self.sm_cycles_per_weight.get(weight_class, 0.0)

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """Scalar parameter names (``sm_cycles_per_weight.<class>`` for the mapping)."""
        out: list[str] = []
        for f in fields(cls):
            if f.name == "sm_cycles_per_weight":
                out.extend(f"sm_cycles_per_weight.{c}" for c in WEIGHT_CLASSES)
            else:
                out.append(f.name)
        return tuple(out)

    def get(self, name: str) -> float:
        if name.startswith("sm_cycles_per_weight."):
            return self.cycles_per_weight(name.split(".", 1)[1])
        value = getattr(self, name)
        assert isinstance(value, float)
        return value

    def with_values(self, values: dict[str, float]) -> SpeedParameters:
        """A copy with ``values`` (names as :meth:`names` gives them) replaced."""
        scalars = {k: float(v) for k, v in values.items() if not k.startswith("sm_cycles_per_weight.")}
        cycles = dict(self.sm_cycles_per_weight)
        for k, v in values.items():
            if k.startswith("sm_cycles_per_weight."):
                cycles[k.split(".", 1)[1]] = float(v)
        current = {f.name: getattr(self, f.name) for f in fields(self)}
        current.update(scalars)
        current["sm_cycles_per_weight"] = cycles
        return SpeedParameters(**current)


@dataclass(frozen=True, slots=True)
class EngineBehaviour:
    """Facts of an engine's code the model needs (not fitted)."""

    #: GEMMs accumulate in FP16 (llama.cpp: cuBLAS CUBLAS_COMPUTE_16F for f16 matmuls).
    fp16_accumulate: bool = False
    #: Decode batches of at most this many sequences multiply quantised weights in the engine's
    #: own kernel on the FP16 vector units, not the tensor cores (ExLlamaV2: MAX_Q_GEMM_ROWS 32);
    #: 0: every batch on the tensor cores.
    quantized_gemm_max_rows: int = 0
    #: Rows that kernel multiplies per pass; each pass unpacks every weight again (ExLlamaV2:
    #: MAX_Q_GEMM_ROWS_KERNEL 4, one grid row of blocks per 4 sequences).
    quantized_gemm_rows_per_pass: int = 4
    #: Without flash attention llama.cpp multiplies K and V per query head (GQA broadcast).
    kv_read_per_query_head: bool = False
    #: Prompt micro-batch (llama.cpp n_ubatch 512; vLLM chunked-prefill token budget).
    micro_batch_tokens: int = 512
    #: Tokens per llama_decode call (llama-bench n_batch 2048): the pipeline drains after each.
    batch_tokens: int = 2048
    #: Layer-split prefill overlaps micro-batches across GPUs (llama.cpp pipeline parallelism).
    pipeline_parallel_prefill: bool = True
    #: Attention is causal-skipping flash attention (FLOPs of the lower triangle only).
    flash_attention: bool = False
    #: CUDA graphs / compiled steps: launch overhead mostly gone.
    cuda_graphs: bool = False
    #: Custom one-shot all-reduce where GPUs have P2P (vLLM, SGLang, TRT-LLM).
    custom_all_reduce: bool = False
    #: Quantised prompt matmuls run on INT8 tensor cores (llama.cpp MMQ with MMA, 2025 builds),
    #: where the GPU has them (hardware.mmq_int8_ops: the listed rate, else the chip family's);
    #: else at the 16-bit rate.
    int8_mma_prefill: bool = False
    #: On AMD GPUs the prompt matmuls are priced at the FP16 *vector* rate (2 × FP32), the
    #: basis of the RDNA rows the ROCm/Vulkan profiles are fitted on, not the CDNA matrix-core
    #: peak (hardware.amd_vector_fp16_flops gives the reason); RDNA4 with ``amd_wmma_prefill``.
    amd_vector_basis: bool = False
    #: On that basis, the prompt matmuls reach the architecture's WMMA rate where it exceeds
    #: the vector rate (RDNA4: 2×, hardware.AMD_MATRIX_PER_VECTOR_FP16): llama.cpp's HIP MMQ
    #: kernels run on RDNA4's WMMA.  Vulkan leaves it off: its RDNA4 rows of 2025 builds sit at
    #: the vector rate and the later ones' gain is its build-era term.
    amd_wmma_prefill: bool = False
    #: Quantised prompt matmuls dequantise each weight tile once per column tile of
    #: ``prefill.MMQ_TILE_TOKENS`` tokens (llama.cpp's CUDA MMQ), not once per micro-batch.
    mmq_tile_dequant: bool = False
    #: The flash-attention kernel runs one query head per workgroup in prompts, so each KV head's
    #: cache rows stream past once per query head sharing it (ggml-vulkan packs a GQA group into
    #: one workgroup only for single-token decode); off: once per KV head (CUDA's MMA kernel packs
    #: the group, Metal as fitted).
    flash_kv_per_query_head: bool = False
    #: From this llama.cpp build on, Vulkan's prompt matmuls on AMD GPUs with cooperative
    #: matrices (``hardware.has_amd_coopmat``) use the large tiles tuned for them (128x128, not
    #: 64x64: ggml-org/llama.cpp#18749), priced by ``amd_coopmat_tiles_speedup`` (0: never).
    amd_coopmat_tiles_build: int = 0
    #: The llama.cpp build the estimate is for (0: the build of ``prefill.BUILD_ERA_REFERENCE``;
    #: ``predict`` puts the profile's newest fitted build here when the caller names none).
    build: int = 0


@dataclass(frozen=True, slots=True)
class Spread:
    """Leave-one-GPU-out log-residual quantiles, log(measured / predicted)."""

    low: float
    high: float
    mape: float | None = None
    rows: int = 0

    def factors(self) -> tuple[float, float]:
        """Multipliers of the point estimate: (low ≤ 1, high ≥ 1)."""
        return math.exp(min(self.low, 0.0)), math.exp(max(self.high, 0.0))


@dataclass(frozen=True, slots=True)
class EngineProfile:
    """Parameters of one engine on one backend, with where they came from.

    ``version`` is "fit-YYYY-MM-DD" for fitted profiles and "prior" for profiles taken from
    published evidence without calibration rows of their own.
    """

    name: str
    version: str
    engines: tuple[str, ...]
    backend: str
    parameters: SpeedParameters
    behaviour: EngineBehaviour
    decode_spread: Spread
    prefill_spread: Spread
    rows: int = 0
    #: Hardware kinds (memory class / architecture) present in the calibration rows.
    calibrated_kinds: tuple[str, ...] = ()
    #: Extra width (multiplier on the log-range) for hardware kinds not in the rows.
    uncalibrated_widening: float = 1.5
    source: str = ""
    notes: str = ""
    #: First llama.cpp build this profile describes (profiles of one engine and backend are
    #: eras: a build uses the newest profile whose first_build it has reached).
    first_build: int = 0
    #: Lowest and highest build among the rows it was fitted on (None: not a llama.cpp fit).
    fitted_builds: tuple[int, int] | None = None
    #: GPU ids and model kinds ("dense", "moe") among the calibration rows.
    calibrated_gpus: tuple[str, ...] = ()
    calibrated_model_kinds: tuple[str, ...] = ()
    #: Spreads of MoE models where the rows had enough of both kinds (the spreads above are
    #: then the dense models'); None: one spread for all models.
    moe_decode_spread: Spread | None = None
    moe_prefill_spread: Spread | None = None

    def spreads(self, moe: bool) -> tuple[Spread, Spread]:
        """(decode, prefill) spreads for a dense or MoE model."""
        if moe:
            return self.moe_decode_spread or self.decode_spread, self.moe_prefill_spread or self.prefill_spread
        return self.decode_spread, self.prefill_spread

    def label(self) -> str:
        """What the output shows: "llama.cpp-cuda@fit-2026-11-26 (builds b4000–b7000,
        calibrated on 400 rows)"."""
        builds = ""
        if self.fitted_builds:
            builds = f"builds b{self.fitted_builds[0]}–b{self.fitted_builds[1]}, "
        if self.rows:
            return f"{self.name}@{self.version} ({builds}calibrated on {self.rows} rows)"
        lo, hi = self.decode_spread.factors()
        return f"{self.name}@{self.version} ({builds}no calibration rows; range -{1 - lo:.0%}/+{hi - 1:.0%})"


@dataclass(frozen=True, slots=True)
class UserCorrection:
    """The user's own results for one engine on one kind of GPU: multipliers of the profile's
    predictions (geometric mean of measured / predicted) and their spread."""

    engine: str
    gpus: tuple[str, ...]
    decode_factor: float | None
    prefill_factor: float | None
    decode_spread: Spread | None
    prefill_spread: Spread | None
    rows: int
    fitted_on: str

    def applies_to(self, engine_family_id: str, gpu_ids: tuple[str, ...]) -> bool:
        return engine_family_id == self.engine and set(gpu_ids) <= set(self.gpus)

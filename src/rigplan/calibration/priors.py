"""Prior engine profiles: parameters from published evidence, before (or without) a fit.

Every number cites ``reference/perf-model.md`` (which tags its sources [S:…], [M], [D]).
``fit.py`` starts from these, refits what the calibration rows can tell, and writes every
profile (fitted or prior) to ``profiles/*.toml``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

from ..speed.profile import EngineBehaviour, SpeedParameters, Spread

#: Range of engines with no calibration rows: ±35 % around the point (log quantiles), the
#: spread of the engines' published efficiencies in perf-model.md §3.2 (vLLM 0.6–0.8 of BW).
PRIOR_RANGE = math.log(1.35)
#: HF transformers eager decode varies 3× with the host CPU (7.6 % vs 27 % of the floor on
#: H100, [M] vs [S:PHYS-AI]): a wider prior range.
TRANSFORMERS_RANGE = math.log(1.8)


@dataclass(frozen=True, slots=True)
class PriorProfile:
    name: str
    engines: tuple[str, ...]
    backend: str
    parameters: SpeedParameters
    behaviour: EngineBehaviour
    source: str
    notes: str
    range_log: float = PRIOR_RANGE
    #: Other starting points for the fit (the decode model has more than one basin: a GPU's
    #: low efficiency can come from its memory or from instruction issue); the fit keeps the
    #: start that fits the rows best.
    alternative_starts: tuple[dict[str, float], ...] = ()
    #: Prior uncertainty (log-sd) of each parameter the fit may move, for the MAP fit.
    prior_log_sd: dict[str, float] = field(default_factory=dict)
    #: First llama.cpp build of the profile's era (the fit lowers it to its oldest row).
    first_build: int = 0

    def spread(self) -> Spread:
        return Spread(-self.range_log, self.range_log)


# llama.cpp (CUDA) as in the calibration rows: builds 2824–2843 (May 2024), llama-bench
# defaults (n_batch 2048, n_ubatch 512, layer split, no flash attention, f16 KV, no CUDA graphs).
LLAMA_CPP_CUDA_2024 = PriorProfile(
    name="llama.cpp-cuda-2024",
    engines=("llama.cpp", "ollama"),
    backend="cuda",
    parameters=SpeedParameters(
        # perf-model §3.2: 0.80 fp16 on ≤1 TB/s GPUs [S:XJD]; the measured cuBLAS GEMV chain
        # on H100 reaches 0.76 [M] (the "×0.7 on H100-class" there is launch overhead, a
        # separate term here).
        memory_efficiency_gddr=0.85,
        memory_efficiency_hbm=0.76,
        memory_efficiency_unified=0.80,
        # k-quants are ALU-heavy at batch 1 (issue 3); 2–3-bit k-quants ≈ 0.2 SM-cycles per
        # weight (3090 and P40 rows agree), the rest a fraction of that [D].
        sm_cycles_per_weight={
            "float": 0.2,
            "q8_0": 0.05,
            "legacy": 0.08,
            "k4": 0.08,
            "k6": 0.05,
            "k_low": 0.2,
            "iquant": 0.25,
            "fp8": 0.05,
            "int8": 0.05,
            "int4": 0.08,
            "nf4": 0.3,
            "exl2": 0.08,
        },
        # ~20–25 kernels per layer at ~5–10 µs CPU launch each without CUDA graphs [D].
        launch_overhead_per_layer_s=150e-6,
        serial_overhead_per_layer_s=5e-6,
        layer_split_hop_s=150e-6,
        attention_read_factor=1.0,
        # perf-model §4: ≈0.45 of the FP16-accumulate tensor peak on consumer GPUs.
        tensor_efficiency=0.6,
        sm_flops_per_cycle_cap=1500.0,
        dequant_sm_cycles_per_weight=0.5,
        attention_score_passes=4.0,
        activation_passes=0.5,
        prefill_overhead_per_layer_s=100e-6,
        pipeline_hop_s=50e-6,
    ),
    behaviour=EngineBehaviour(
        fp16_accumulate=True,
        kv_read_per_query_head=True,
        micro_batch_tokens=512,
        batch_tokens=2048,
        pipeline_parallel_prefill=True,
        flash_attention=False,
        cuda_graphs=False,
        custom_all_reduce=False,
    ),
    source="perf-model.md §3.2, §4, §6.4; fitted to calibration/measurements/llamacpp_multi_gpu.csv",
    notes=(
        "llama-bench as in the calibration rows (May 2024 builds, no CUDA graphs, no flash "
        "attention). Newer builds with CUDA graphs and -fa are faster on fast GPUs; "
        "`rigplan calibrate` fits your own build."
    ),
    prior_log_sd={"memory_efficiency_hbm": 0.25, "memory_efficiency_gddr": 0.15},
    # f16 GEMV bound by instruction issue (≈0.37 SM-cycles per weight) rather than by HBM.
    alternative_starts=({"sm_cycles_per_weight.float": 0.37, "memory_efficiency_hbm": 0.8},),
)

LLAMA_CPP_METAL_2024 = PriorProfile(
    name="llama.cpp-metal-2024",
    engines=("llama.cpp", "ollama"),
    backend="metal",
    parameters=SpeedParameters(
        memory_efficiency_unified=0.80,
        memory_efficiency_gddr=0.80,
        memory_efficiency_hbm=0.80,
        # An Apple GPU core has 128 FP32 lanes like an NVIDIA SM: the CUDA priors [D].
        sm_cycles_per_weight={
            "float": 0.05,
            "q8_0": 0.05,
            "legacy": 0.08,
            "k4": 0.1,
            "k6": 0.1,
            "k_low": 0.25,
            "iquant": 0.3,
        },
        # llama.cpp's Metal backend encodes the graph into a few command buffers [D].
        launch_overhead_per_layer_s=20e-6,
        serial_overhead_per_layer_s=20e-6,
        layer_split_hop_s=0.0,
        # The M2 Ultra rows slow with context ≈2× faster than one KV read per query head.
        attention_read_factor=2.0,
        tensor_efficiency=0.6,
        sm_flops_per_cycle_cap=1e6,
        dequant_sm_cycles_per_weight=1.0,
        attention_score_passes=4.0,
        activation_passes=0.5,
        prefill_overhead_per_layer_s=100e-6,
        pipeline_hop_s=0.0,
    ),
    behaviour=EngineBehaviour(
        fp16_accumulate=False,
        kv_read_per_query_head=True,
        micro_batch_tokens=512,
        batch_tokens=2048,
        pipeline_parallel_prefill=False,
    ),
    source="perf-model.md §3.2; fitted to the M2 Ultra rows of llamacpp_multi_gpu.csv (Metal builds 2796)",
    # Per-layer costs large enough to show next to the GPU time (Metal waits on each command
    # buffer) rather than hidden behind it.
    alternative_starts=({"serial_overhead_per_layer_s": 150e-6},),
    notes="One Apple chip in the data: other M-series parts scale by bandwidth and GPU cores × clock.",
)

# vLLM-class engines: CUDA graphs, paged/flash attention, custom all-reduce, chunked prefill.
_VLLM_PARAMETERS = SpeedParameters(
    # "roughly 77% of the memory-bandwidth ceiling" on A100 [S:MUSGRAVE]; H100 GEMV 0.76 [M].
    memory_efficiency_hbm=0.78,
    memory_efficiency_gddr=0.80,
    memory_efficiency_unified=0.70,
    # Marlin / FP8 kernels reach most of their byte savings; bnb-nf4 does not (≈ bf16 speed
    # on L4: 59 vs 62 ms, [S:PHYS-AI]) → ~0.9 SM-cycles per weight.
    sm_cycles_per_weight={
        "float": 0.02,
        "fp8": 0.03,
        "int8": 0.03,
        "int4": 0.06,
        "nf4": 0.9,
        "exl2": 0.08,
    },
    launch_overhead_per_layer_s=5e-6,  # CUDA graphs
    # Scheduler + sampling per step after v0.6 [S:VLLM-060]: ≈0.5 ms [D].
    step_overhead_s=0.5e-3,
    layer_split_hop_s=30e-6,
    attention_read_factor=1.0,
    # perf-model §4: η_c 0.45–0.65 for vLLM/TRT-LLM/SGLang on H100/A100 at S ≥ 2k.
    tensor_efficiency=0.55,
    sm_flops_per_cycle_cap=1e6,
    dequant_sm_cycles_per_weight=0.05,
    attention_score_passes=0.0,
    activation_passes=1.0,
    prefill_overhead_per_layer_s=10e-6,
    pipeline_hop_s=20e-6,
)
_VLLM_BEHAVIOUR = EngineBehaviour(
    fp16_accumulate=False,
    kv_read_per_query_head=False,
    micro_batch_tokens=8192,  # chunked-prefill token budget per step [D: vLLM V1 default]
    batch_tokens=1 << 30,
    pipeline_parallel_prefill=True,
    flash_attention=True,
    cuda_graphs=True,
    custom_all_reduce=True,
)
VLLM = PriorProfile(
    name="vllm",
    engines=("vllm",),
    backend="cuda",
    parameters=_VLLM_PARAMETERS,
    behaviour=_VLLM_BEHAVIOUR,
    source="perf-model.md §3.2 (vLLM 0.77 of BW on A100 [S:MUSGRAVE]), §4, §6 (all-reduce α, busbw)",
    notes="No calibration rows of its own: prior efficiencies, range ±35%.",
)
SGLANG = PriorProfile(
    name="sglang",
    engines=("sglang",),
    backend="cuda",
    parameters=_VLLM_PARAMETERS,
    behaviour=_VLLM_BEHAVIOUR,
    source="perf-model.md §3.2: no batch-1 MBU figure found for SGLang; grouped with vLLM by assumption",
    notes="No calibration rows of its own: vLLM's prior efficiencies, range ±35%.",
)
TENSORRT_LLM = PriorProfile(
    name="tensorrt-llm",
    engines=("tensorrt-llm",),
    backend="cuda",
    parameters=_VLLM_PARAMETERS.with_values({"step_overhead_s": 0.2e-3}),
    behaviour=_VLLM_BEHAVIOUR,
    source=(
        "perf-model.md §3.2 (grouped with vLLM by assumption; C++ runtime: smaller step overhead [D]); "
        "engine_benchmarks.csv TRT-LLM rows are whole-system throughput, reported not fitted"
    ),
    notes="No single-stream calibration rows: vLLM-class prior, range ±35%.",
)
EXLLAMAV2 = PriorProfile(
    name="exllamav2",
    engines=("exllamav2",),
    backend="cuda",
    parameters=SpeedParameters(
        # perf-model §3.2: exllamav2 0.65–0.75 of BW on 3090/4090 [S:EXL2].
        memory_efficiency_gddr=0.80,
        memory_efficiency_hbm=0.65,
        memory_efficiency_unified=0.70,
        sm_cycles_per_weight={"float": 0.05, "exl2": 0.1, "int4": 0.1},
        launch_overhead_per_layer_s=60e-6,
        layer_split_hop_s=100e-6,
        attention_read_factor=1.0,
        tensor_efficiency=0.5,
        sm_flops_per_cycle_cap=1e6,
        dequant_sm_cycles_per_weight=0.2,
        attention_score_passes=0.0,
        activation_passes=1.0,
        prefill_overhead_per_layer_s=30e-6,
        pipeline_hop_s=100e-6,
    ),
    behaviour=EngineBehaviour(
        fp16_accumulate=False,
        kv_read_per_query_head=False,
        micro_batch_tokens=2048,
        batch_tokens=2048,
        pipeline_parallel_prefill=False,
        flash_attention=True,
    ),
    source="perf-model.md §3.2; fitted to the ExLlamaV2 rows of engine_benchmarks.csv (README speed table)",
    notes="Decode only in the rows (generation speed); prefill is prior.",
)
TRANSFORMERS = PriorProfile(
    name="transformers",
    engines=("transformers",),
    backend="cuda",
    parameters=SpeedParameters(
        memory_efficiency_hbm=0.76,
        memory_efficiency_gddr=0.80,
        memory_efficiency_unified=0.70,
        sm_cycles_per_weight={"float": 0.02, "nf4": 0.9, "int4": 0.7, "int8": 0.3, "fp8": 0.05},
        # Eager PyTorch: CPU-bound. 59 ms/token for 32 layers on a slow host [M] and 27 % of
        # the 4.5 ms floor ≈ 17 ms on a fast one [S:PHYS-AI] → ≈0.5 ms per layer [D].
        launch_overhead_per_layer_s=0.5e-3,
        step_overhead_s=2e-3,
        layer_split_hop_s=100e-6,
        attention_read_factor=1.0,
        # [M] HF forward 0.37–0.53 of 989 TFLOP/s at 512–8192 tokens on H100.
        tensor_efficiency=0.45,
        sm_flops_per_cycle_cap=1e6,
        dequant_sm_cycles_per_weight=0.5,
        attention_score_passes=0.0,
        activation_passes=4.0,
        prefill_overhead_per_layer_s=0.3e-3,
        pipeline_hop_s=100e-6,
    ),
    behaviour=EngineBehaviour(
        fp16_accumulate=False,
        kv_read_per_query_head=False,
        micro_batch_tokens=1 << 30,
        batch_tokens=1 << 30,
        pipeline_parallel_prefill=False,
        flash_attention=True,
    ),
    source="perf-model.md §3.2 ([M] HF eager 16.9 tok/s on H100; [S:PHYS-AI] 27 % of floor), §4 ([M] prefill MFU)",
    notes="Eager generate() is bound by the host CPU: the range is wide (×1.8).",
    range_log=TRANSFORMERS_RANGE,
)

# llama.cpp as people install it in 2025–26 (builds ≳ b4000): CUDA graphs on by default
# (ggml-org/llama.cpp#6766), flash attention on by default in llama-server/llama-cli since the
# "-fa auto" change (llama-bench reports the fa it ran), quantised prompt matmuls on INT8
# tensor cores (MMQ with MMA, ggml-org/llama.cpp#11048 era), fused MoE kernels (mul_mat_id).
# Starting values: the 2024 fit, with launches mostly gone under CUDA graphs [D].
CURRENT_ERA_FIRST_BUILD = 4000
_CURRENT_PARAMETERS = SpeedParameters(
    memory_efficiency_hbm=0.74,
    memory_efficiency_gddr=0.86,
    memory_efficiency_unified=0.80,
    sm_cycles_per_weight={
        "float": 0.23,
        "q8_0": 0.05,
        "legacy": 0.09,
        "k4": 0.09,
        "k6": 0.05,
        "k_low": 0.21,
        "iquant": 0.25,
        "fp8": 0.05,
        "int8": 0.05,
    },
    # CUDA graphs replay a whole decode step: a few µs of CPU per layer remain [D]; the ≈12–15
    # small non-matmul kernels of a layer (norms, rope, attention, adds, copies) still run one
    # after another on the GPU, ≈1.5 µs each → ≈20 µs per layer that does not overlap [D].
    launch_overhead_per_layer_s=10e-6,
    serial_overhead_per_layer_s=20e-6,
    # A MoE layer adds ≈8–10 small kernels (router mat-vec, softmax, top-k argsort, gathers,
    # mul_mat_id for gate/up/down, weighted sum) of ≈4–5 µs each [D].
    expert_overhead_per_layer_s=40e-6,
    layer_split_hop_s=150e-6,
    attention_read_factor=1.0,
    # MMQ on INT8 tensor cores reaches a smaller share of its (2×) peak than cuBLAS FP16 [D].
    tensor_efficiency=0.35,
    sm_flops_per_cycle_cap=1760.0,
    dequant_sm_cycles_per_weight=0.3,
    attention_score_passes=3.8,
    activation_passes=0.5,
    prefill_overhead_per_layer_s=50e-6,
    pipeline_hop_s=50e-6,
)
_CURRENT_BEHAVIOUR = EngineBehaviour(
    fp16_accumulate=True,
    kv_read_per_query_head=True,
    micro_batch_tokens=512,
    batch_tokens=2048,
    pipeline_parallel_prefill=True,
    flash_attention=True,
    cuda_graphs=True,
    custom_all_reduce=False,
    int8_mma_prefill=True,
)
_CURRENT_NOTES = (
    "llama.cpp builds of 2025–26: CUDA graphs, flash attention by default, MMQ on tensor cores, "
    "fused MoE. Pass engine_version (e.g. b2843) for the May-2024 profile."
)
LLAMA_CPP_CUDA = PriorProfile(
    name="llama.cpp-cuda",
    engines=("llama.cpp", "ollama"),
    backend="cuda",
    parameters=_CURRENT_PARAMETERS,
    behaviour=_CURRENT_BEHAVIOUR,
    source="calibration/measurements/llamacpp_current.csv (CUDA rows); priors from the 2024 fit",
    notes=_CURRENT_NOTES,
    # Efficiencies and kernel costs carry over from the 2024 fit (six GPUs) unless current rows
    # say otherwise: tight priors; the terms the new builds changed are loose.
    prior_log_sd={
        "memory_efficiency_hbm": 0.1,
        "memory_efficiency_gddr": 0.1,
        "memory_efficiency_unified": 0.25,
        "sm_cycles_per_weight.float": 0.3,
        "sm_cycles_per_weight.q8_0": 0.3,
        "sm_cycles_per_weight.legacy": 0.3,
        "sm_cycles_per_weight.k4": 0.3,
        "sm_cycles_per_weight.k6": 0.3,
        "sm_cycles_per_weight.k_low": 0.3,
        "tensor_efficiency": 0.4,
        "sm_flops_per_cycle_cap": 0.3,
    },
    first_build=CURRENT_ERA_FIRST_BUILD,
)
#: Backends without CUDA's kernels: the CUDA-era fit as prior, efficiencies refitted on their
#: own rows (ROCm = the CUDA code through HIP; Vulkan = its own shaders, no INT8 MMA prefill
#: on most drivers) [D: ggml-org/llama.cpp#2059 ROCm vs Vulkan].
LLAMA_CPP_ROCM = dataclasses.replace(
    LLAMA_CPP_CUDA,
    name="llama.cpp-rocm",
    backend="rocm",
    source="calibration/measurements/llamacpp_current.csv (ROCm rows); the CUDA fit as prior",
)
LLAMA_CPP_VULKAN = dataclasses.replace(
    LLAMA_CPP_CUDA,
    name="llama.cpp-vulkan",
    backend="vulkan",
    behaviour=dataclasses.replace(_CURRENT_BEHAVIOUR, int8_mma_prefill=False, fp16_accumulate=False),
    source="calibration/measurements/llamacpp_current.csv (Vulkan rows); the CUDA fit as prior",
)
LLAMA_CPP_METAL = dataclasses.replace(
    LLAMA_CPP_CUDA,
    name="llama.cpp-metal",
    backend="metal",
    parameters=LLAMA_CPP_METAL_2024.parameters,
    behaviour=dataclasses.replace(
        _CURRENT_BEHAVIOUR, int8_mma_prefill=False, fp16_accumulate=False, pipeline_parallel_prefill=False
    ),
    source="calibration/measurements/llamacpp_current.csv (Metal rows); the 2024 Metal fit as prior",
)

PRIORS: tuple[PriorProfile, ...] = (
    LLAMA_CPP_CUDA_2024,
    LLAMA_CPP_METAL_2024,
    LLAMA_CPP_CUDA,
    LLAMA_CPP_ROCM,
    LLAMA_CPP_VULKAN,
    LLAMA_CPP_METAL,
    VLLM,
    SGLANG,
    TENSORRT_LLM,
    EXLLAMAV2,
    TRANSFORMERS,
)

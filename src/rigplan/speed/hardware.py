"""What a GPU offers the speed model: memory class, bandwidth, SM throughput, matmul peak.

Efficiencies in the engine profiles are tied to these derived quantities (memory technology,
SM count × clock, architecture generation), never to a GPU id, so that a profile fitted on
some GPUs carries over to the rest of the catalogue.
"""

from __future__ import annotations

from ..catalog.records import GPU
from ..units import GB, TERA

#: Memory classes the efficiencies are keyed by.
HBM, GDDR, UNIFIED = "hbm", "gddr", "unified"
MEMORY_CLASSES = (HBM, GDDR, UNIFIED)

#: Dense FP16 tensor FLOPs per SM per clock where the catalogue row lacks a tensor figure
#: (FP16 accumulate on GeForce parts, which llama.cpp's cuBLAS calls use).  Derived from
#: catalogue rows that do list it: RTX 3090 142 TF = 82 SM × 1.695 GHz × 1022; RTX 4090 330.3 =
#: 128 × 2.52 × 1024; T4 65 = 40 × 1.59 × 1022; V100 125 = 80 × 1.53 × 1021; A100 312 = 108 ×
#: 1.41 × 2049; H100 SXM 989 = 132 × 1.98 × 3784 [D from gpu_specs.csv].
TENSOR_FLOPS_PER_SM_CLOCK: dict[str, float] = {
    "volta": 1024.0,
    "turing": 1024.0,
    "ampere": 1024.0,
    "ada": 1024.0,
    "blackwell": 1024.0,
    "hopper": 3784.0,
    "cdna3": 2048.0,
    "rdna3": 512.0,
}
#: GeForce cards run FP16 matmuls with FP32 accumulate at half their FP16-accumulate rate (Ada
#: whitepaper Appendix A: RTX 4090 165.2 vs 330.3 dense; RTX Blackwell whitepaper: RTX 5090 209.5 vs
#: 419; Ampere: RTX 3090 71 vs 142); workstation and datacenter parts run both at the full rate
#: (RTX 6000 Ada 364, RTX PRO 6000 503.8: 1024 per SM per clock with FP32 accumulate) [S].
GEFORCE_FP32_ACCUMULATE_SHARE = 0.5
#: Architectures without tensor cores: matmuls run on the FP32 units (Pascal's FP16 rate is
#: 1/64 of FP32, so llama.cpp computes in FP32 there).
NO_TENSOR_CORES = frozenset({"pascal", "maxwell", "kepler"})
#: Integer dot-product (dp4a) rate relative to FP32 on Pascal GP102: 4 int8 MACs per FP32 FMA
#: slot (NVIDIA Tesla P40 datasheet: 47 INT8 TOPS vs 12 FP32 TFLOPS).  llama.cpp's quantised
#: matmul kernels (MMQ) use dp4a where there are no tensor cores.
DP4A_SPEEDUP_OVER_FP32 = 4.0

#: Apple GPUs: 128 FP32 ALUs per GPU core, FP16 at the same rate, 2 FLOPs per FMA (Apple
#: Metal feature tables; the M2 Ultra's 27.2 TFLOPS = 76 cores × 128 × 2 × 1.398 GHz).
APPLE_ALUS_PER_CORE = 128
# FP32 lanes per NVIDIA SM since Ampere (GA102 whitepaper: 128 FP32 cores per SM; Turing and
# Volta have 64) — used only when the catalogue has no FP32 figure.
NVIDIA_FP32_LANES_PER_SM = {"volta": 64, "turing": 64}
DEFAULT_FP32_LANES_PER_SM = 128
FLOPS_PER_FMA = 2
#: GPU clock of each Apple generation in MHz (public spec tables, e.g. Wikipedia "Apple M2";
#: Apple does not publish clocks): M1 1278, M2 1398, M3 1380, M4 1578 [D].
APPLE_GPU_CLOCK_MHZ: dict[str, float] = {
    "apple-m1": 1278.0,
    "apple-m2": 1398.0,
    "apple-m3": 1380.0,
    "apple-m4": 1578.0,
}
#: Fallback for an Apple generation not in the table (the newest listed).
APPLE_DEFAULT_CLOCK_MHZ = 1578.0
#: Fallbacks when a catalogue row has no SM count or clock (a mid-range 2022 part: 60 SMs at
#: 2.0 GHz); used only to keep the model defined, the range is widened for such rows.
DEFAULT_SM_COUNT = 60
DEFAULT_CLOCK_MHZ = 2000.0
MHZ = 1e6


def memory_class(gpu: GPU) -> str:
    """ "hbm", "gddr" or "unified" (Apple's LPDDR shared with the CPU)."""
    kind = gpu.memory_type.lower()
    if gpu.is_apple or "lpddr" in kind or "unified" in kind:
        return UNIFIED
    if kind.startswith("hbm"):
        return HBM
    return GDDR


def is_lpddr_soc(gpu: GPU) -> bool:
    """A non-Apple SoC sharing LPDDR memory and its power budget with the CPU (DGX Spark, Strix
    Halo); Apple silicon has Metal profiles of its own."""
    return memory_class(gpu) == UNIFIED and not gpu.is_apple


def bandwidth_bytes_per_s(gpu: GPU) -> float:
    """Peak memory bandwidth in bytes per second."""
    return gpu.bandwidth_gb_per_s * GB


def sm_clock_per_s(gpu: GPU) -> float:
    """SM (Apple: GPU core) count × clock: SM-cycles per second, the unit ALU costs are in.

    >>> from rigplan.catalog import load_catalog
    >>> round(sm_clock_per_s(load_catalog().gpus["rtx-4090"]) / 1e9, 1)
    322.6
    """
    sms = gpu.sm_count or DEFAULT_SM_COUNT
    if gpu.is_apple:
        mhz = APPLE_GPU_CLOCK_MHZ.get(gpu.architecture, APPLE_DEFAULT_CLOCK_MHZ)
    else:
        mhz = float(gpu.boost_clock_mhz or DEFAULT_CLOCK_MHZ)
    return sms * mhz * MHZ


def fp32_flops(gpu: GPU) -> float:
    """Vector FP32 FLOP/s (Apple: cores × 128 ALUs × 2 × clock)."""
    if gpu.fp32_tflops:
        return gpu.fp32_tflops * TERA
    if gpu.is_apple:
        return sm_clock_per_s(gpu) * APPLE_ALUS_PER_CORE * FLOPS_PER_FMA
    lanes = NVIDIA_FP32_LANES_PER_SM.get(gpu.architecture, DEFAULT_FP32_LANES_PER_SM)
    return sm_clock_per_s(gpu) * lanes * FLOPS_PER_FMA


def matmul_peak_flops(gpu: GPU, *, fp16_accumulate: bool, quantized: bool = False, precision: str = "16") -> float:
    """Dense matmul peak the engine can reach on ``gpu``, in FLOP/s.

    Args:
        fp16_accumulate: the engine's GEMMs accumulate in FP16 (llama.cpp's cuBLAS calls use
            CUBLAS_COMPUTE_16F), which runs at twice the FP32-accumulate rate on GeForce cards.
        quantized: quantised weights on a GPU without tensor cores use dp4a integer kernels.
        precision: "fp8" or "int8" where weights and activations run in 8 bits (vLLM-class FP8 /
            W8A8 GEMMs) and the GPU has those tensor cores; else 16-bit.
    """
    if precision == "fp8" and gpu.fp8_tensor_tflops:
        return gpu.fp8_tensor_tflops * TERA
    if precision == "int8" and gpu.int8_tensor_tops:
        return gpu.int8_tensor_tops * TERA
    if gpu.is_apple:
        return fp32_flops(gpu)
    if gpu.architecture in NO_TENSOR_CORES:
        return fp32_flops(gpu) * (DP4A_SPEEDUP_OVER_FP32 if quantized else 1.0)
    if fp16_accumulate and gpu.fp16_acc16_tensor_tflops:
        return gpu.fp16_acc16_tensor_tflops * TERA
    # listed: the FP32-accumulate rate (a GeForce card's FP16-accumulate rate is twice it);
    # unlisted: the FP16-accumulate rate per SM-clock (a GeForce card's FP32-accumulate rate half)
    share = GEFORCE_FP32_ACCUMULATE_SHARE if is_geforce(gpu) else 1.0
    if gpu.fp16_tensor_tflops:
        return gpu.fp16_tensor_tflops * TERA / (share if fp16_accumulate else 1.0)
    per_clock = TENSOR_FLOPS_PER_SM_CLOCK.get(gpu.architecture, TENSOR_FLOPS_PER_SM_CLOCK["ada"])
    return sm_clock_per_s(gpu) * per_clock * (1.0 if fp16_accumulate else share)


def is_geforce(gpu: GPU) -> bool:
    """An NVIDIA consumer (GeForce) card: FP32-accumulate matmuls at half rate."""
    return gpu.vendor == "nvidia" and gpu.gpu_class == "consumer"


#: Dense INT8 tensor-core operations per SM per clock of NVIDIA's GeForce / workstation chips
#: (TU10x, GA10x, AD10x, GB20x, GB10), for cards whose INT8 rate the catalogue does not list:
#: every listed one of these chips runs 2043-2050 (RTX 2080 Ti, 3080, 3090, A6000, Quadro RTX 8000,
#: 4080, 4090, 5090, T4, A10, L4, A40, L40S: listed dense TOPS / (SMs x boost clock)) [D].  The
#: datacenter flagships (A100 4096, H100 ~7600, B200 ~15000) list their own; Volta has no INT8 MMA.
INT8_MMA_OPS_PER_SM_CLOCK: dict[str, float] = {"turing": 2048.0, "ampere": 2048.0, "ada": 2048.0, "blackwell": 2048.0}


def mmq_int8_ops(gpu: GPU) -> float | None:
    """INT8 tensor rate llama.cpp's MMQ prompt kernels run on (ops/s): the listed dense rate, else
    the chip family's rate per SM per clock (not for HBM flagships, whose SMs differ); None
    without INT8 MMA."""
    if gpu.int8_tensor_tops:
        return gpu.int8_tensor_tops * TERA
    per_clock = INT8_MMA_OPS_PER_SM_CLOCK.get(gpu.architecture)
    if per_clock is None or gpu.vendor != "nvidia" or memory_class(gpu) == HBM:
        return None
    return sm_clock_per_s(gpu) * per_clock


#: Dense FP16 matrix (WMMA) rate per FP16 vector rate, by AMD architecture.  RDNA3's WMMA runs
#: at the dual-issue vector rate (RX 7900 XTX: 122.8 TFLOPS both); RDNA4 doubles the matrix
#: rate per CU (AMD RX 9070 XT specifications: 195 TFLOPS FP16 matrix dense vs 97.3 vector;
#: Radeon AI PRO R9700: 191 vs 95.7), and llama.cpp's RDNA4 prompt kernels use it (HIP MMQ on
#: WMMA, Vulkan KHR_cooperative_matrix).  Unlisted architectures (RDNA3.5, CDNA, GCN): 1 [S:
#: amd.com product specifications].
AMD_MATRIX_PER_VECTOR_FP16: dict[str, float] = {"rdna4": 2.0}


#: AMD architectures whose Vulkan driver exposes VK_KHR_cooperative_matrix (RDNA3 and later):
#: ggml-vulkan prints "matrix cores: KHR_coopmat" for the Radeon 8060S (RADV GFX1151,
#: ggml-org/llama.cpp#18749), the RX 7900 XTX (RADV NAVI31, #27952) and the RX 9070 XT (RADV
#: gfx1201, maeddesg/vulkanforge); RDNA2, GCN and CDNA parts have no WMMA [S].
AMD_COOPMAT_ARCHITECTURES = frozenset({"rdna3", "rdna3.5", "rdna4"})


def has_amd_coopmat(gpu: GPU) -> bool:
    """An AMD GPU with cooperative-matrix (WMMA) support under Vulkan."""
    return gpu.vendor == "amd" and gpu.architecture in AMD_COOPMAT_ARCHITECTURES


def amd_vector_fp16_flops(gpu: GPU) -> float:
    """FP16 vector FLOP/s of an AMD GPU (packed FP16 = 2 × FP32): the one basis llama.cpp's
    prompt speed on AMD is priced on.

    The catalogue lists RDNA parts at this rate (RX 9070 XT 97.3 = 2 × 48.7, Strix Halo 29.7 =
    2 × 14.8; RX 7900 XTX's WMMA 122.8 equals it too) but CDNA parts at their matrix-core peak
    (MI300X FP16 1307, INT8 2615 = 8-16 × 2 × 81.7).  llama.cpp's HIP kernels reach a small
    fraction of that matrix peak: on the one CDNA3 source (ggml-org/llama.cpp#19806, MI300X,
    Qwen2.5-1.5B Q4_K_M) pp512 is 25-27k tok/s, about 6 % of it.  One basis per vendor lets
    the efficiency fitted on RDNA rows carry over to CDNA parts instead of trusting a peak
    no llama.cpp row reaches [D: llamacpp_current.csv].
    """
    return 2.0 * fp32_flops(gpu)


#: NVIDIA FP16 (half2) vector FLOPs per FP32 FLOP where it is not 1 (GeForce and workstation
#: Ampere–Blackwell run half2 at the FP32 rate: RTX 4090 82.6 TFLOPS both).  From NVIDIA's
#: datasheets: V100 31.4 vs 15.7, T4 16.2 vs 8.1, H100 SXM 133.8 vs 66.9; the HBM Ampere part
#: (A100: 78 vs 19.5) under ``"ampere-hbm"``.
NVIDIA_HALF2_PER_FP32: dict[str, float] = {"volta": 2.0, "turing": 2.0, "hopper": 2.0, "ampere-hbm": 4.0}


def vector_fp16_flops(gpu: GPU) -> float:
    """FP16 vector (non-tensor) FLOP/s: what a kernel doing half2 FMAs on the CUDA / shader
    cores can reach."""
    if gpu.vendor == "amd":
        return amd_vector_fp16_flops(gpu)
    key = f"{gpu.architecture}-hbm" if memory_class(gpu) == HBM else gpu.architecture
    return fp32_flops(gpu) * NVIDIA_HALF2_PER_FP32.get(key, NVIDIA_HALF2_PER_FP32.get(gpu.architecture, 1.0))


def amd_prompt_fp16_flops(gpu: GPU, *, wmma: bool) -> float:
    """The FP16 rate llama.cpp's prompt matmuls on an AMD GPU are priced on: the vector rate
    (:func:`amd_vector_fp16_flops`), times the architecture's matrix-over-vector ratio
    (:data:`AMD_MATRIX_PER_VECTOR_FP16`: RDNA4's WMMA doubles it) where the backend's kernels
    use the matrix units (``wmma``).

    >>> from rigplan.catalog import load_catalog
    >>> gpus = load_catalog().gpus
    >>> [round(amd_prompt_fp16_flops(gpus[g], wmma=True) / 1e12, 1) for g in ("rx-9070-xt", "rx-7900-xtx")]
    [194.8, 122.8]
    """
    ratio = AMD_MATRIX_PER_VECTOR_FP16.get(gpu.architecture, 1.0) if wmma else 1.0
    return amd_vector_fp16_flops(gpu) * ratio


def hardware_kind(gpu: GPU) -> str:
    """A GPU's kind for "was this kind of hardware in the calibration data": memory class and
    architecture generation ("gddr/ada", "hbm/hopper", "unified/apple-m2")."""
    return f"{memory_class(gpu)}/{gpu.architecture}"

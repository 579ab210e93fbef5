"""llama.cpp (``llama-server``) and Ollama (a Modelfile) launch forms."""

from __future__ import annotations

from typing import Any

from ..errors import UnsupportedError
from .launch_common import (
    _LLAMA_CPP_KV,
    _OLLAMA_KV,
    _QUANTISED_KV,
    Command,
    ConfigFile,
    _gguf_placeholder,
    _ModelInput,
)


def _llama_cpp_layers(est: Any) -> tuple[int, list[int]]:
    """llama.cpp -ngl (blocks on GPUs + 1 for the output head) and blocks per GPU for -ts."""
    placement = est.memory.placement
    ngl = placement.gpu_layers + (0 if placement.output_on_host else 1)
    counts = [len(d.layers) + (1 if d.holds_output else 0) for d in placement.devices]
    return ngl, counts


def _gguf_path(m: _ModelInput, est: Any, notes: list[str]) -> str:
    if m.kind == "gguf":
        return m.launch_path
    path = _gguf_placeholder(m, est.quant.id)
    notes.append(
        f"{path} stands for a GGUF file of {m.model.name} at {est.quant.id.upper()}: download one "
        f"or convert with llama.cpp's convert_hf_to_gguf.py and llama-quantize"
    )
    return path


def _llama_server(
    m: _ModelInput, est: Any, ctx: int, users: int, kv: str, notes: list[str]
) -> tuple[list[Command], list[ConfigFile]]:
    placement = est.memory.placement
    n_gpus = len(placement.devices)
    ngl, counts = _llama_cpp_layers(est)
    total_layers = m.model.num_layers + 1
    argv = [
        "llama-server",
        "-m",
        _gguf_path(m, est, notes),
        # -c is the whole KV cache; with -np N each slot gets c / N tokens.
        "-c",
        str(ctx * users),
        "-np",
        str(users),
        "-ngl",
        "999" if ngl >= total_layers else str(ngl),
    ]
    split = placement.split
    if n_gpus > 1:
        sm = {"layer": "layer", "pipeline": "layer", "row": "row", "tensor": "tensor"}[split]
        argv += ["-sm", sm]
        if sm == "row":
            notes.append("-sm row is deprecated in current llama.cpp in favour of -sm tensor")
        if est.rig.is_mixed and sm in ("layer", "row"):
            # layer: blocks per GPU, which reproduces rigplan's placement exactly;
            # row: rows in proportion to memory (GiB).
            ratios = counts if sm == "layer" else [round(d.gpu.memory_mib / 1024) for d in placement.devices]
            argv += ["-ts", ",".join(map(str, ratios))]
        if sm == "tensor":
            argv += ["-fa", "on", "-fit", "off"]
            if kv in _QUANTISED_KV:
                raise UnsupportedError("llama.cpp -sm tensor needs an unquantised KV cache (f16, bf16)")
    ctk = _LLAMA_CPP_KV[kv]
    if ctk:
        argv += ["-ctk", ctk, "-ctv", ctk]
        if kv in _QUANTISED_KV and "-fa" not in argv:
            argv += ["-fa", "on"]  # a quantised V cache needs flash attention
    if placement.host_layers:
        notes.append(
            f"{len(placement.host_layers)} of {m.model.num_layers} layers stay in host RAM "
            f"(-ngl {ngl}); decode runs at host memory speed for those"
        )
    return [Command(tuple(argv))], []


def _ollama(
    m: _ModelInput, est: Any, ctx: int, users: int, kv: str, notes: list[str]
) -> tuple[list[Command], list[ConfigFile]]:
    ngl, _ = _llama_cpp_layers(est)
    name = (m.model.id.split("/")[-1].removesuffix(".gguf").lower().replace(" ", "-") or "model") + "-rigplan"
    path = _gguf_path(m, est, notes)
    modelfile = "\n".join(
        [
            f"FROM {path if path.startswith(('/', '.')) else './' + path}",
            f"PARAMETER num_ctx {ctx}",
            f"PARAMETER num_gpu {ngl}",
            "",
        ]
    )
    env: list[tuple[str, str]] = []
    if users > 1:
        env.append(("OLLAMA_NUM_PARALLEL", str(users)))
    if _OLLAMA_KV[kv]:
        env += [("OLLAMA_FLASH_ATTENTION", "1"), ("OLLAMA_KV_CACHE_TYPE", _OLLAMA_KV[kv])]  # type: ignore[list-item]
    if len(est.memory.placement.devices) > 1:
        env.append(("OLLAMA_SCHED_SPREAD", "1"))
        notes.append(
            "Ollama chooses its own split across GPUs (no tensor-split option); "
            "OLLAMA_SCHED_SPREAD=1 makes it use every GPU as rigplan assumed"
        )
    commands = [
        Command(("ollama", "serve"), where="server", env=tuple(env)),
        Command(("ollama", "create", name, "-f", "Modelfile")),
        Command(("ollama", "run", name)),
    ]
    return commands, [ConfigFile("Modelfile", modelfile)]

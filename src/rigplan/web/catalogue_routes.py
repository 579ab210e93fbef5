"""Catalogue and server routes: GPUs, models, quants, uploads and /api/meta."""

from __future__ import annotations

import functools
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from starlette.concurrency import run_in_threadpool

from rigplan import (
    GGUF_HEADER_LIMIT_BYTES,
    UnknownGPUError,
    __version__,
    gpu_dict,
    list_gpus,
    list_models,
    list_quants,
    load_catalog,
    model_dict,
    quant_bits_text,
)

from . import schemas, uploads
from .inputs import Inputs, features
from .limits import MAX_BODY_BYTES

GGUF_UPLOAD_PATH = "/api/models/upload-gguf"
# The raw body of a GGUF header upload, as OpenAPI states it.
GGUF_BODY = {
    "required": True,
    "content": {
        "application/octet-stream": {
            "schema": {"type": "string", "format": "binary", "maxLength": GGUF_HEADER_LIMIT_BYTES}
        }
    },
}
UploadName = Annotated[
    str,
    Query(
        min_length=1,
        max_length=schemas.MAX_ID_CHARS,
        pattern=schemas.UPLOAD_NAME_PATTERN,
        description="A name to show for the model.",
    ),
]


def add_catalogue_routes(api: APIRouter, inputs: Inputs) -> None:
    """GET routes over the shipped catalogue, the upload routes and /api/meta."""
    add_upload_routes(api)

    @api.get("/gpus/{gpu_id}", tags=["catalogue"], summary="One GPU", operation_id="gpu_get")
    def gpu(gpu_id: Annotated[str, Path(max_length=schemas.MAX_NAME_CHARS)]) -> dict[str, Any]:
        """One GPU by id, alias or loose form ("4090")."""
        from rigplan import resolve_gpu

        catalog = load_catalog()
        found = resolve_gpu(gpu_id, catalog)
        view = next((v for v in list_gpus(catalog=catalog) if v.gpu.id == found.id), None)
        if view is None:  # pragma: no cover - resolve_gpu only returns catalogue GPUs
            raise UnknownGPUError(gpu_id)
        return gpu_dict(view)

    @api.get("/models", tags=["catalogue"], summary="List models", operation_id="models_get")
    def models() -> dict[str, Any]:
        """The model catalogue with architectures and sources (`rigplan models --json`)."""
        return models_listing()

    @api.get("/models/{model_id}", tags=["catalogue"], summary="One model", operation_id="model_get")
    def model(model_id: Annotated[str, Path(max_length=schemas.MAX_NAME_CHARS)]) -> dict[str, Any]:
        """One catalogue model by id or alias (or an uploaded model by its `upload-…` id)."""
        from rigplan import resolve_model

        uploaded = uploads.lookup(model_id)
        if uploaded is not None:
            return model_dict(uploaded)
        return model_dict(resolve_model(model_id, load_catalog()))

    @api.get("/quants", tags=["catalogue"], summary="List quant formats", operation_id="quants_get")
    def quants() -> dict[str, Any]:
        """Every quant id with its family and bits per weight."""
        return {"quants": [quant_dict(q) for q in list_quants()]}

    @api.get("/meta", tags=["meta"], summary="What this server offers", operation_id="meta_get")
    def meta() -> dict[str, Any]:
        """Version, which optional parts are installed, and the choices the page offers."""
        from rigplan import ENGINES

        return {
            "version": __version__,
            "allow_paths": inputs.allow_paths,
            "allow_network": inputs.allow_network,
            "features": features(),
            "engines": list(ENGINES),
            "launch_engines": launch_engines(),
            "limits": {
                "max_body_bytes": MAX_BODY_BYTES,
                "max_list_items": schemas.MAX_LIST_ITEMS,
                "max_gpus_per_type": schemas.MAX_GPUS_PER_TYPE,
                "max_upload_chars": schemas.MAX_UPLOAD_CHARS,
                "max_gguf_header_bytes": GGUF_HEADER_LIMIT_BYTES,
            },
        }


def gpus(req: schemas.GpusRequest, inputs: Inputs) -> dict[str, Any]:
    """The GPU catalogue, filtered and sorted (`rigplan gpus --json`)."""
    rows = list_gpus(
        min_memory_gb=req.min_memory_gb,
        nvlink=req.nvlink,
        vendor=req.vendor,
        gpu_class=req.gpu_class,
        sort=req.sort,
    )
    return {"gpus": [gpu_dict(v) for v in rows]}


def quant_dict(q: Any) -> dict[str, Any]:
    """One quant format as the API lists it."""
    return {
        "id": q.id,
        "family": q.family.value,
        "bits_per_weight": q.bits_per_weight,
        "bits_text": quant_bits_text(q),  # the wording `rigplan quants` prints
        "description": q.description,
    }


@functools.cache
def models_listing() -> dict[str, Any]:
    """The model catalogue as JSON (the shipped catalogue never changes while the server runs;
    counting parameters does cost)."""
    return {"models": [model_dict(m) for m in list_models()]}


def launch_engines() -> list[str]:
    """Engines the launch view offers (none without the launch integration)."""
    if not features()["launch"]:
        return []
    from rigplan import SERVE_ENGINES

    return list(SERVE_ENGINES)


def add_upload_routes(api: APIRouter) -> None:
    """POST routes that make a model of a config.json (JSON) or a GGUF header (raw bytes)."""

    @api.post("/models/upload", tags=["catalogue"], summary="Upload a config.json", operation_id="model_upload_post")
    def upload(body: schemas.UploadRequest) -> dict[str, Any]:
        """Parse a Hugging Face `config.json` (as text; depth- and size-limited, never executed)
        and keep it as a model: `id` (`upload-…`) then works as `model` in every operation."""
        return uploads.register(body.name, body.config)

    @api.post(
        "/models/upload-gguf",
        tags=["catalogue"],
        summary="Upload a GGUF header",
        operation_id="model_upload_gguf_post",
        openapi_extra={"requestBody": GGUF_BODY},
    )
    async def upload_gguf(request: Request, name: UploadName = "uploaded") -> dict[str, Any]:
        """The first bytes of a `.gguf` file (its metadata and tensor table, at most 16 MiB; the
        tensor data is not needed) as the raw body: parsed by the gguf package with bounds, and
        kept as a model like an uploaded config.json.  A cut or malformed header is a 422 that
        names the field."""
        data = await request.body()
        return await run_in_threadpool(uploads.register_gguf, name, data)

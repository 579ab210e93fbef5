"""Rigs: which GPUs, how many, on how many nodes — and the rig-string grammar.

``rig := [N "nodes" "x"] term ("+" term)* | "local"``, ``term := [N "x"] gpu-id``
(spaces optional, case-insensitive, "x" or "×").  "local" is resolved at the API's edge from
the detected GPUs, never here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .catalog.records import GPU, Catalog, Model
from .errors import InvalidValueError, RigSyntaxError, UnknownGPUError, UnknownModelError, closest

MAX_GPUS_PER_NODE = 16
MAX_NODES = 1024
NETWORKS = ("ib-ndr", "ib-hdr", "roce-400g", "eth-100g", "eth-25g", "eth-10g")
DEFAULT_NETWORK = "ib-ndr"


@dataclass(frozen=True, slots=True)
class Rig:
    """GPUs of one node in order (every node alike), the node count and the network."""

    gpus: tuple[GPU, ...]
    nodes: int = 1
    network: str = DEFAULT_NETWORK

    @property
    def gpus_per_node(self) -> int:
        return len(self.gpus)

    @property
    def gpu_count(self) -> int:
        return len(self.gpus) * self.nodes

    @property
    def all_gpus(self) -> tuple[GPU, ...]:
        """Every GPU in the order of the rig string, nodes × GPUs."""
        return self.gpus * self.nodes

    @property
    def is_mixed(self) -> bool:
        return len({g.id for g in self.gpus}) > 1

    def describe(self) -> str:
        """Canonical rig string: ``'2x rtx-4090'``, ``'rtx-4090 + 2x rtx-3090'``."""
        terms: list[tuple[int, str]] = []
        for g in self.gpus:
            if terms and terms[-1][1] == g.id:
                terms[-1] = (terms[-1][0] + 1, g.id)
            else:
                terms.append((1, g.id))
        body = " + ".join(f"{n}x {gid}" if n > 1 else gid for n, gid in terms)
        return f"{self.nodes} nodes x {body}" if self.nodes > 1 else body


def _norm(text: str) -> str:
    return re.sub(r"[\s_]+", "-", text.strip().lower())


def _squash(text: str) -> str:
    return re.sub(r"[^a-z0-9.]", "", text.lower())


def resolve_gpu(name: str, catalog: Catalog) -> GPU:
    """A GPU by id, alias or loose form ("RTX 4090", "4090", "nvidia h100 sxm").

    Raises:
        UnknownGPUError: with the closest ids.
    """
    key = _norm(name)
    if key in catalog.gpus:
        return catalog.gpus[key]
    check_name_chars(name, UnknownGPUError(name, closest(key, catalog.gpus)))
    squashed = _squash(name).removeprefix("nvidia").removeprefix("geforce")
    for gpu in catalog.gpus.values():
        forms = {_squash(gpu.id), _squash(gpu.name)} | {_squash(a) for a in gpu.aliases}
        if squashed in forms or _squash(name) in forms:
            return gpu
    raise UnknownGPUError(name, closest(key, catalog.gpus))


# Characters a model or GPU name may hold: letters, digits, space, "." "_" "-" "/" (org/name).
# Anything else is a typo, and dropping it silently could pick the wrong model.
_NAME_CHARS = re.compile(r"^[A-Za-z0-9 ._/-]+$")
# Words that name a tuning or packaging of the same weights' shapes ("Llama-3-70B-Instruct",
# "llama-2-7b-chat-hf", "gemma-2-9b-it"); memory and speed do not depend on them.
_TUNING_WORDS = frozenset({"instruct", "chat", "it", "hf", "base"})


def model_key(text: str) -> str:
    """The one form model names are compared in: no org prefix, case, punctuation or tuning word.

    >>> model_key("Qwen/Qwen2.5-72B-Instruct") == model_key("qwen2.5-72b")
    True
    """
    words = re.split(r"[\s_-]+", text.strip().lower().rsplit("/", 1)[-1])
    return "".join(re.sub(r"[^a-z0-9.]", "", w) for w in words if w not in _TUNING_WORDS)


def check_name_chars(name: str, error: UnknownModelError | UnknownGPUError) -> None:
    """Raise ``error`` (with the offending character named) when ``name`` holds junk."""
    if not _NAME_CHARS.match(name.strip()):
        bad = next((c for c in name.strip() if not _NAME_CHARS.match(c)), name)
        error.args = (f"{error}; {bad!r} cannot be part of a name",)
        raise error


def _looks_like_path(name: str) -> bool:
    text = name.strip()
    return text.startswith((".", "/", "~")) or "\\" in text or text.count("/") > 1


def resolve_model(name: str, catalog: Catalog) -> Model:
    """A catalogue model by id or alias: case, punctuation, an ``org/`` prefix and the tuning
    words -instruct, -chat, -it, -hf, -base do not matter.

    Raises:
        UnknownModelError: with the closest ids; also for a name with characters no name has.
    """
    key = _norm(name)
    if key in catalog.models:
        return catalog.models[key]
    if _looks_like_path(name):  # "./llama-3-8b" is a folder, never the catalogue model
        raise UnknownModelError(name, closest(key, catalog.models))
    wanted = model_key(name)
    check_name_chars(name, UnknownModelError(name, closest(wanted, catalog.models) or closest(key, catalog.models)))
    for model in catalog.models.values():
        forms = {model.id, model.name, model.hf_repo, *model.aliases}
        if wanted and wanted in {model_key(f) for f in forms}:
            return model
    raise UnknownModelError(name, closest(key, catalog.models))


_NODES = re.compile(r"^\s*(\d+)\s*nodes?\s*[x×*]\s*(.+)$", re.IGNORECASE)
_TERM = re.compile(r"^\s*(?:(\d+)\s*[x×*]\s*)?(.+?)\s*$", re.IGNORECASE)


def parse_rig(text: str, catalog: Catalog, *, network: str = DEFAULT_NETWORK) -> Rig:
    """Parse a rig string into a :class:`Rig`.

    >>> from rigplan.catalog import load_catalog
    >>> parse_rig("2 nodes x 8x h100-sxm", load_catalog()).gpu_count
    16

    Raises:
        RigSyntaxError: empty terms, zero or absurd counts.
        UnknownGPUError: a GPU name that is not in the catalogue.
    """
    if not isinstance(text, str) or not text.strip():
        raise RigSyntaxError(str(text), "the rig is empty")
    if text.strip().lower() == "local":
        raise RigSyntaxError(text, "'local' (the GPUs of this machine) is not accepted here")
    nodes = 1
    body = text
    if m := _NODES.match(text):
        nodes, body = int(m.group(1)), m.group(2)
        if not 1 <= nodes <= MAX_NODES:
            raise RigSyntaxError(text, f"node count must be 1–{MAX_NODES}, got {nodes}")
    if "," in body or "&" in body:
        raise RigSyntaxError(text, "join different GPUs with '+', not ',' or '&'")
    gpus: list[GPU] = []
    for term in body.split("+"):
        m = _TERM.match(term)
        if not term.strip() or not m:
            raise RigSyntaxError(text, "a '+' has no GPU on one side")
        count = int(m.group(1)) if m.group(1) else 1
        name = m.group(2).strip()
        if not name or (m.group(1) is None and re.fullmatch(r"\d+\s*[x×*]", name, re.IGNORECASE)):
            raise RigSyntaxError(text, f"the term {term.strip()!r} has a count but no GPU")
        if count < 1:
            raise RigSyntaxError(text, f"a GPU count must be at least 1, got {count}")
        if len(gpus) + count > MAX_GPUS_PER_NODE:
            raise RigSyntaxError(text, f"at most {MAX_GPUS_PER_NODE} GPUs per node, got {len(gpus) + count}")
        gpus.extend([resolve_gpu(name, catalog)] * count)
    system = next((g for g in gpus if g.is_system), None)
    if system is not None and (len(gpus) > 1 or nodes > 1):
        raise RigSyntaxError(
            text, f"{system.id} is a whole machine ({system.vendor.capitalize()} computer on one chip): use one per rig"
        )
    modules = {g.form_factor for g in gpus} & {"sxm", "oam"}
    if modules and len({g.form_factor for g in gpus}) > 1:
        raise RigSyntaxError(
            text, "SXM/OAM modules sit on their own baseboard: they cannot share a node with other GPUs"
        )
    return Rig(gpus=tuple(gpus), nodes=nodes, network=check_network(network))


def check_network(network: str) -> str:
    """``network`` if it is one of :data:`NETWORKS`, else an error that lists them."""
    if network not in NETWORKS:
        raise InvalidValueError("network", f"must be one of {', '.join(NETWORKS)}, got {network!r}")
    return network

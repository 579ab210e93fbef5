"""The pure core stays pure: importing it loads no UI or web library (style.md rule 1)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import rigplan

CORE = [
    "rigplan",
    "rigplan.estimate",
    "rigplan.memory",
    "rigplan.speed",
    "rigplan.arch",
    "rigplan.catalog",
    "rigplan.quant",
    "rigplan.placement",
    "rigplan.requests",
    "rigplan.core",
    "rigplan.planner",
]
UI = ["typer", "click", "rich", "fastapi", "uvicorn", "starlette", "torch", "pynvml", "huggingface_hub", "gguf"]


def test_core_imports_no_ui_library():
    code = (
        "import sys\n"
        f"for m in {CORE!r}: __import__(m)\n"
        "import rigplan; rigplan.estimate('llama-3-8b', 'rtx-4090')\n"
        f"print(','.join(m for m in {UI!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


# --- one-way imports ------------------------------------------------------------------------
# units → catalog → arch → memory/speed/power/placement → core → planner → edge, with
# integrations, cli and web outside (design.md §4).  A module may import its own layer and the
# layers below; a layer below "edge" never imports integrations, cli or web; cli and web import
# only the public API (``rigplan`` and its ``__all__``) and their own modules.

SRC = Path(__file__).resolve().parents[1] / "src"
LAYERS = ("units", "catalog", "arch", "models", "core", "planner", "present", "edge")
#: Module prefixes → layer; the longest matching prefix wins.
LAYER_OF = {
    "rigplan.units": "units",
    "rigplan.errors": "units",
    # reads a packaged or user text file with one error for every loader (the loaders' edge)
    "rigplan.textfiles": "units",
    "rigplan.catalog": "catalog",
    "rigplan.rig": "catalog",
    "rigplan.engines": "catalog",
    "rigplan.backends": "catalog",
    "rigplan.support": "catalog",
    "rigplan.owned_host": "catalog",
    "rigplan.arch": "arch",
    "rigplan.quant": "arch",
    "rigplan.ggml_types": "arch",
    "rigplan.quant_mix": "arch",
    # the catalogue's list views (``rigplan gpus/models/quants``) count weights with quant formats
    "rigplan.catalog.query": "models",
    "rigplan.memory": "models",
    "rigplan.speed": "models",
    "rigplan.power": "models",
    "rigplan.power_records": "models",
    "rigplan.power_limit": "models",
    "rigplan.placement": "models",
    "rigplan.platforms": "models",
    "rigplan.offload": "models",
    "rigplan.training.frameworks": "models",
    "rigplan.training.memory": "models",
    "rigplan.training.shape": "models",
    "rigplan.training.setup": "models",
    "rigplan.training.speed": "models",
    "rigplan.training.profile": "models",
    "rigplan.training.settings": "models",
    "rigplan.training.options": "models",
    "rigplan.training.step": "models",
    "rigplan.training.uncertainty": "models",
    "rigplan.calibration.load": "models",
    "rigplan.calibration.priors": "models",
    "rigplan.calibration.prior_files": "models",
    "rigplan.calibration.dataset": "models",
    "rigplan.calibration.stand_ins": "models",
    "rigplan.calibration.tomlwrite": "models",
    "rigplan.requests": "core",
    "rigplan.headroom": "core",
    "rigplan.expert_offload": "core",
    "rigplan.results": "core",
    "rigplan.core": "core",
    # the training model over resolved records (core.evaluate_training calls it) and the cost
    # tables and records it shares with the planner (they import nothing above the core)
    "rigplan.training.evaluate": "core",
    "rigplan.training.result": "core",
    "rigplan.training.provenance": "core",
    "rigplan.training.cost": "core",
    "rigplan.planner.costing": "core",
    "rigplan.planner.records": "core",
    "rigplan.planner": "planner",
    "rigplan.present": "present",
    "rigplan.edge": "edge",
    "rigplan.capacity": "edge",
    "rigplan.what_fits": "edge",
    "rigplan.estimate": "edge",
    "rigplan.planning": "edge",
    "rigplan.power_report": "edge",
    "rigplan.vram": "edge",
    "rigplan.training": "edge",  # estimate_training / plan_training resolve names
    # the user's store, the fit and the accuracy report; the fit scripts' main() are edges too
    "rigplan.calibration": "edge",
    "rigplan": "edge",
}
OUTSIDE = ("rigplan.integrations", "rigplan.cli", "rigplan.web")
#: Private imports of the web package still to switch to ``from rigplan import ...``: none since
#: issue 16's fourth session; a new one fails.
WEB_PENDING: frozenset[str] = frozenset()


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(name: str) -> bool:
    base = SRC.joinpath(*name.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def imports_of(path: Path) -> list[tuple[str, str, int]]:
    """(imported module, imported name or "", line) for every rigplan import in ``path``, lazy
    ones inside functions included; ``from pkg import submodule`` counts as the submodule."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out += [(a.name, "", node.lineno) for a in node.names if a.name.startswith("rigplan")]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith("rigplan"):
                continue
            for a in node.names:
                sub = f"{target}.{a.name}"
                exported = target == "rigplan" and a.name in rigplan.__all__  # e.g. the function estimate
                out.append(
                    (sub, "", node.lineno) if _is_module(sub) and not exported else (target, a.name, node.lineno)
                )
    return out


def layer(module: str) -> str | None:
    """The layer of ``module`` (None: integrations, cli or web, outside the layers)."""
    if module.startswith(OUTSIDE):
        return None
    prefixes = [p for p in LAYER_OF if module == p or module.startswith(p + ".")]
    return LAYER_OF[max(prefixes, key=len)]


def violation(importer: str, imported: str, name: str = "") -> str | None:
    """Why ``importer`` may not import ``imported`` (None when it may)."""
    if importer.startswith(("rigplan.cli", "rigplan.web")):
        own = importer.split(".")[:2]
        if imported.split(".")[:2] == own or (own[1] == "cli" and imported.startswith("rigplan.web")):
            return None  # its own modules; ``rigplan serve`` starts the web app
        if imported == "rigplan" and (name in rigplan.__all__):
            return None
        if own[1] == "web" and f"{imported}.{name}".rstrip(".") in WEB_PENDING:
            return None
        return f"the CLI and the web import only the public API (`from rigplan import ...`), not {imported}.{name}"
    if imported.startswith(("rigplan.cli", "rigplan.web")):
        return "nothing below the interfaces imports cli or web"
    mine, theirs = layer(importer), layer(imported)
    if mine is None:  # integrations: any layer, never cli or web
        return None
    if theirs is None:
        return None if mine == "edge" else f"{importer} ({mine}) imports integrations: only the edge may"
    if LAYERS.index(theirs) > LAYERS.index(mine):
        return f"{importer} ({mine}) imports {imported} ({theirs}), an upper layer"
    return None


def all_violations() -> list[str]:
    found = []
    for path in sorted((SRC / "rigplan").rglob("*.py")):
        importer = _module_name(path)
        for imported, name, line in imports_of(path):
            why = violation(importer, imported, name)
            if why:
                found.append(f"{path.relative_to(SRC)}:{line}: {why}")
    return found


def test_imports_run_one_way():
    assert all_violations() == []


def test_every_module_has_a_layer():
    """A new top-level module must be placed in LAYER_OF (else it would pass as "edge")."""
    modules = [_module_name(p) for p in (SRC / "rigplan").rglob("*.py")]
    unplaced = [
        m
        for m in modules
        if m != "rigplan"
        and not m.startswith(OUTSIDE)
        and not any(m == p or m.startswith(p + ".") for p in LAYER_OF if p != "rigplan")
    ]
    assert unplaced == []


@pytest.mark.parametrize(
    ("importer", "imported", "name"),
    [
        pytest.param("rigplan.memory.kv_cache", "rigplan.planner", "", id="memory-imports-planner"),
        pytest.param("rigplan.catalog.load", "rigplan.arch", "", id="catalog-imports-arch"),
        pytest.param("rigplan.core", "rigplan.edge", "", id="core-imports-edge"),
        pytest.param("rigplan.planner.plan", "rigplan.estimate", "", id="planner-calls-the-edge"),
        pytest.param("rigplan.speed", "rigplan.integrations.nvml", "", id="speed-reads-nvml"),
        pytest.param("rigplan.cli.plan_cmds", "rigplan.planner.costing", "", id="cli-imports-a-private-module"),
        pytest.param("rigplan.web.app", "rigplan", "_LAZY", id="web-imports-a-private-name"),
        pytest.param("rigplan.estimate", "rigplan.cli", "", id="edge-imports-cli"),
        pytest.param("rigplan.core", "rigplan.training.estimate", "", id="core-calls-the-training-edge"),
        pytest.param("rigplan.headroom", "rigplan.estimate", "", id="headroom-calls-the-edge"),
        pytest.param("rigplan.catalog.user", "rigplan.edge", "", id="catalog-reads-the-config-through-the-edge"),
    ],
)
def test_the_layering_check_catches_wrong_imports(importer, imported, name):
    assert violation(importer, imported, name)


def test_the_layering_check_allows_the_way_down():
    assert violation("rigplan.planner.plan", "rigplan.core") is None
    assert violation("rigplan.core", "rigplan.training.evaluate") is None
    assert violation("rigplan.estimate", "rigplan.headroom") is None
    assert violation("rigplan.cli.plan_cmds", "rigplan", "plan_rigs") is None
    assert violation("rigplan.edge", "rigplan.integrations.sources") is None


# --- no input or output outside the named edges -----------------------------------------------
#: Calls that reach the machine: only the edges below (and integrations, cli, web) make them.
IO_CALLS = {
    "print", "open", "input", "exit", "getenv", "home", "expanduser", "system",
    # platformdirs: the user's config, cache and data directories live under HOME
    "user_config_dir", "user_cache_dir", "user_data_dir", "user_state_dir", "user_log_dir",
}  # fmt: skip
IO_NAMES = {"environ", "stdin", "stdout", "stderr", "argv"}
IO_MODULES = {"platformdirs", "os.environ"}
#: Every module outside cli/, web/ and integrations/ that may touch the machine, by name, with
#: what it does there.  A module not listed fails on its first print/open/env/home access; an
#: entry that no longer touches the machine fails too (keep the list true).
IO_EDGES = {
    "rigplan.textfiles": "the one text-file reader every loader shares (packaged and user files)",
    "rigplan.edge": "finds the user's config dir (platformdirs) and reads config.toml",
    "rigplan.calibration.user_store": "reads and writes the user's calibration store",
    "rigplan.calibration.fit": "the llama.cpp fit script's main(): prints, exits on bad input",
    "rigplan.calibration.power_curve": "the power-curve fit script's main(): prints, exits",
    "rigplan.calibration.serving_fit": "the serving fit script's main(): prints",
    "rigplan.calibration.serving_memory": "the serving-memory check script's main(): prints",
    "rigplan.training.fit": "the training fit script's main(): prints",
    "rigplan.training.validate": "the training validation script's main(): prints",
}


def io_uses(source: str) -> list[tuple[str, int]]:
    """(what, line) for every call, name or import in ``source`` that reaches the machine."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call):
            f = node.func
            name = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else ""
            if name in IO_CALLS:
                found.append((name, node.lineno))
        elif isinstance(node, ast.Attribute) and node.attr in IO_NAMES:
            found.append((node.attr, node.lineno))
        elif isinstance(node, ast.Import):
            found += [(a.name, node.lineno) for a in node.names if a.name.split(".")[0] in IO_MODULES]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = {node.module, *(f"{node.module}.{a.name}" for a in node.names)}
            found += [(n, node.lineno) for n in sorted(names & IO_MODULES)]
    return found


def _io_by_module() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for path in sorted((SRC / "rigplan").rglob("*.py")):
        module = _module_name(path)
        if module.startswith(OUTSIDE):
            continue
        uses = io_uses(path.read_text("utf-8"))
        if uses:
            out[module] = [f"{path.relative_to(SRC)}:{line}: {what}" for what, line in uses]
    return out


def test_no_io_outside_the_named_edges():
    """No print, exit, open, environment or home-directory access outside IO_EDGES, cli, web
    and integrations."""
    found = [use for module, uses in _io_by_module().items() if module not in IO_EDGES for use in uses]
    assert found == []


def test_every_named_edge_still_reaches_the_machine():
    assert sorted(set(IO_EDGES) - set(_io_by_module())) == []


def test_no_named_edge_is_below_the_edge_layer_but_the_file_reader():
    assert [m for m in IO_EDGES if layer(m) != "edge" and m != "rigplan.textfiles"] == []


@pytest.mark.parametrize(
    "source",
    [
        "print('x')",
        "import sys\nsys.exit(1)",
        "open('f')",
        "import os\nos.environ['A']",
        "from pathlib import Path\nPath.home()",
        "import os\nos.path.expanduser('~')",
        "from platformdirs import user_config_dir\nuser_config_dir('rigplan')",
        "import platformdirs",
        "from os import environ",
    ],
)
def test_the_io_check_catches_machine_access(source):
    assert io_uses(source)

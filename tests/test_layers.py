"""hpcfit's layers: no import cycles, numerics that know nothing of the job's configuration,
and float64 switched on in one place.

Imports inside functions count as well (a cycle hidden by a function-local import is still a
cycle: the two modules cannot be understood apart). The graph has one node per module;
``from pkg import name`` is an edge to ``pkg.name`` when that is a module and to ``pkg``
otherwise, and ``import pkg.mod`` an edge to ``pkg.mod``. ``make lint`` runs this file.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "hpcfit"


def modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def import_graph(external: bool = False) -> dict[str, set[str]]:
    """Module → the hpcfit modules it imports (and, with ``external``, the top-level names of
    the other packages it imports)."""
    mods = modules()

    def owner(name: str) -> str | None:  # the module a dotted name lives in
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {m: set() for m in mods}
    for module, path in mods.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [
                    f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in mods else node.module
                    for a in node.names
                ]
            else:
                continue
            for target in targets:
                if target.split(".")[0] != "hpcfit":
                    if external:
                        graph[module].add(target.split(".")[0])
                    continue
                dep = owner(target)
                if dep is not None and dep != module:
                    graph[module].add(dep)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_checker_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_hpcfit_has_no_import_cycle() -> None:
    graph = import_graph()
    assert len(graph) > 50 and graph["hpcfit.validation"] >= {"hpcfit.config"}
    assert cycles(graph) == []


NUMERICS = ("hpcfit.xpcs", "hpcfit.cmc", "hpcfit.kuramoto", "hpcfit.nrpt")
FOUNDATION = ("hpcfit", "hpcfit.errors", "hpcfit.records", "hpcfit.status", "hpcfit.parallel.keys")
"""Modules below the numerics: the version, error types, result records, exit statuses, the
random-key derivation, and ``hpcfit.runtime`` (process setup, memory, compile meter)."""
RUNTIME = ("hpcfit.runtime",)
SCHEMA = ("hpcfit.config", "hpcfit.config_workloads", "hpcfit.validation", "hydra", "omegaconf")
ABOVE = ("hpcfit.pipelines", "hpcfit.cli", "hpcfit.launch", "hpcfit.rank")
STILL_ABOVE_NUMERICS = {
    # the CMC summary writer, the Kuramoto entry's device routing, and the NRPT driver (the
    # communicator, routing and round checkpoints), which still live beside their numerics
    "hpcfit.cmc.summary": ["hpcfit.io.atomic"],
    "hpcfit.kuramoto.entry": ["hpcfit.device"],
    "hpcfit.nrpt.checkpoint": ["hpcfit.io.checkpoint"],
    "hpcfit.nrpt.distributed": ["hpcfit.parallel.comm"],
    "hpcfit.nrpt.run": ["hpcfit.device", "hpcfit.parallel.balance", "hpcfit.parallel.comm"],
}


def _within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def test_numerics_import_neither_the_schema_nor_the_job_layers() -> None:
    graph = import_graph(external=True)
    reached = {
        module: sorted(d for d in deps if _within(d, SCHEMA + ABOVE))
        for module, deps in graph.items()
        if _within(module, NUMERICS)
    }
    assert {m: d for m, d in reached.items() if d} == {}
    assert graph["hpcfit.xpcs.nlsq"] >= {"hpcfit.xpcs.settings"}  # its settings, not the schema


def test_numerics_reach_io_parallel_and_routing_only_where_listed() -> None:
    """The modules of the numeric packages that still import I/O, MPI or device routing are
    the listed ones: a new one fails here, and so does a listed one that no longer needs to be
    (then the list shrinks)."""
    found = {}
    for module, deps in import_graph().items():
        if _within(module, NUMERICS):
            below = (d for d in deps if d in FOUNDATION or _within(d, NUMERICS + RUNTIME))
            upward = sorted(set(deps) - set(below))
            if upward:
                found[module] = upward
    assert found == STILL_ABOVE_NUMERICS


def test_float64_is_switched_on_in_one_place() -> None:
    """Only ``hpcfit/__init__`` (through ``runtime.process``) switches JAX to float64."""
    callers = []
    for module, path in modules().items():
        text = path.read_text()
        if "ensure_x64()" in text or "jax_enable_x64" in text:
            callers.append(module)
    assert sorted(callers) == ["hpcfit", "hpcfit.cmc.combine", "hpcfit.runtime.process"]
    # combine only checks the flag (its error names the process setup)
    assert "config.update" not in (PACKAGE / "cmc" / "combine.py").read_text()


def test_every_numeric_package_computes_in_float64_even_when_the_environment_says_not() -> None:
    code = (
        "import importlib, sys\n"
        "for name in sys.argv[1:]:\n"
        "    importlib.import_module(name)\n"
        "import jax.numpy as jnp\n"
        "print(jnp.zeros(1).dtype, jnp.asarray(0.1).dtype)\n"
    )
    env = {**os.environ, "JAX_ENABLE_X64": "0", "JAX_PLATFORMS": "cpu"}
    for name in ("hpcfit.kuramoto.rk4", "hpcfit.nrpt.engine", "hpcfit.xpcs.model", "hpcfit.cmc"):
        out = subprocess.run(
            [sys.executable, "-c", code, name], env=env, capture_output=True, text=True, timeout=120
        )
        assert out.returncode == 0, out.stderr
        assert out.stdout.split() == ["float64", "float64"], (name, out.stdout)

"""The layers of ``src/parley`` (docs/architecture.md), checked on the source: every import
goes down, never up, and no two packages import each other (directly or round a loop).

Parsed with ``ast`` (every import counts — inside functions and ``TYPE_CHECKING`` blocks
too: a type-only arrow up is still an arrow up). A new top-level module or package must be
given its layer in ``LAYERS``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from tests.support.paths import REPO
from tests.support.python_source import parse

SOURCE = REPO / "src" / "parley"

# Lowest first. A unit may import units of lower layers only (and itself).
LAYERS: list[set[str]] = [
    {"__init__", "errors", "clock", "ids", "url_text", "e2ee"},  # e2ee: the wire formats
    {"redis_urls"},  # reads a Redis URL (its checks are url_text's)
    {"config", "background"},
    # foundations and adapters: each stands alone on the layer below
    {"fields", "wire", "store", "observability", "outbound", "media", "security", "jobs"},
    {"redis_clients"},  # a client for any Redis topology (single, Sentinel, Cluster)
    {"bus", "presence"},  # cross-node backends
    {"services"},  # the domain
    {"notifications"},  # reacts to the domain's events
    # on the domain and the mail: retention, exports, erasure, backup; bots, webhooks,
    # commands; passwords (change, reset by mailed link)
    {"lifecycle", "integrations", "credentials"},
    {"api", "gateway", "client"},  # the edges: REST, the socket, the SDK
    {"chat_cli"},  # the terminal client, on the SDK
    {"backends"},  # picks the backends
    {"container"},  # builds the services
    {"lifecycle_cli"},  # the lifecycle commands (backup, restore, retention)
    {"app", "cli"},  # the ASGI app and the command
    {"__main__"},
]
RANK = {unit: rank for rank, units in enumerate(LAYERS) for unit in units}
WIRING = {"app", "cli", "lifecycle_cli", "__main__"}  # the only units that may import the container


def unit_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def modules() -> Iterator[tuple[str, Path]]:
    for path in sorted(SOURCE.rglob("*.py")):
        relative = path.relative_to(SOURCE.parent).with_suffix("")
        if "migrations" in relative.parts:  # Alembic's scripts, run by store.migrate
            continue
        yield ".".join(relative.parts).removesuffix(".__init__"), path


def _imported(module: str, name: str) -> str:
    """``from parley import x`` imports the submodule x when there is one."""
    if module == "parley" and ((SOURCE / name).is_dir() or (SOURCE / f"{name}.py").exists()):
        return f"parley.{name}"
    return module


def imports(path: Path) -> Iterator[tuple[int, str]]:
    """(line, imported module) for every absolute import of a parley module."""
    for node in ast.walk(parse(path)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [_imported(node.module, alias.name) for alias in node.names]
        else:
            continue
        for name in names:
            if name == "parley" or name.startswith("parley."):
                yield node.lineno, name


def edges() -> list[tuple[str, str, str]]:
    """(importing module, imported module, where) across units."""
    found = []
    for module, path in modules():
        for line, name in imports(path):
            if unit_of(name) != unit_of(module):
                found.append((module, name, f"{path.relative_to(SOURCE.parent)}:{line}"))
    return found


def test_every_unit_has_a_layer() -> None:
    units = {unit_of(module) for module, _ in modules()}
    assert units - set(RANK) == set(), "give the new module or package its layer in LAYERS"


def test_no_import_goes_up() -> None:
    upward = [
        f"{where}: {importer} imports {imported}"
        for importer, imported, where in edges()
        if RANK[unit_of(imported)] >= RANK[unit_of(importer)]
    ]
    assert not upward, "imports going up (or sideways) a layer:\n" + "\n".join(upward)


def test_no_package_cycle() -> None:
    graph: dict[str, set[str]] = {}
    for importer, imported, _ in edges():
        graph.setdefault(unit_of(importer), set()).add(unit_of(imported))
    state: dict[str, int] = {}  # 1 on the path, 2 done

    def visit(unit: str, path: list[str]) -> list[str] | None:
        state[unit] = 1
        for target in sorted(graph.get(unit, ())):
            if state.get(target) == 1:
                return [*path, unit, target]
            if target not in state and (cycle := visit(target, [*path, unit])):
                return cycle
        state[unit] = 2
        return None

    for unit in sorted(graph):
        if unit not in state:
            cycle = visit(unit, [])
            assert cycle is None, "package cycle: " + " -> ".join(cycle or [])


def test_the_container_is_wired_in_only_at_the_top() -> None:
    offenders = [
        f"{where}: {importer}"
        for importer, imported, where in edges()
        if unit_of(imported) == "container" and unit_of(importer) not in WIRING
    ]
    assert not offenders, "only app and cli build on the container:\n" + "\n".join(offenders)


def test_the_gateway_sees_no_store() -> None:
    offenders = [
        f"{where}: {imported}"
        for importer, imported, where in edges()
        if unit_of(importer) == "gateway" and unit_of(imported) in {"store", "container"}
    ]
    assert not offenders, "the gateway goes through its ports:\n" + "\n".join(offenders)


def test_the_checks_catch_an_upward_import(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("from parley.container import Container\nimport parley.gateway.node\n")
    found = [name for _, name in imports(bad)]
    assert found == ["parley.container", "parley.gateway.node"]
    assert RANK[unit_of("parley.container")] > RANK[unit_of("parley.services.messages")]

"""The import graph of the packages and the first-party plugins: no cycle, and no import against the
layering drawn in docs/architecture.md ("Import rules").

Every import counts: at module level, under ``if TYPE_CHECKING:`` and inside functions (a lazy
import still ties the two modules together: it only moves the cost). The graph is read from the
source with ``ast``, so a module that is never imported by the suite is checked too.
"""

from __future__ import annotations

import ast
import textwrap
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# stand-alone scripts run by the node's python3, never imported by the SDK
EXCLUDED = ("proximity_sdk/sandbox/standins/",)


@dataclass(frozen=True)
class Import:
    source: str  # the importing module
    target: str  # the imported module (a package's __init__ when the name is not a module)
    where: str  # "path:line"
    kind: str  # "module level", "type-only" or "lazy"


def package_roots(root: Path) -> dict[str, Path]:
    """proximity_sdk, proximity_agent and the package of every first-party plugin distribution."""
    roots = {"proximity_sdk": root / "proximity_sdk", "proximity_agent": root / "proximity_agent"}
    for init in sorted(root.glob("plugins/*/*/__init__.py")):
        roots[init.parent.name] = init.parent
    return roots


def _modules(roots: Mapping[str, Path]) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for directory in roots.values():
        for path in sorted(directory.rglob("*.py")):
            rel = path.relative_to(directory.parent)
            if any(rel.as_posix().startswith(prefix) for prefix in EXCLUDED):
                continue
            parts = list(rel.with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    assert found, f"no modules under {list(roots.values())}"
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return "TYPE_CHECKING" in ast.unparse(test)


@dataclass
class _Reader:
    """Collects the imports of one module."""

    module: str
    path: Path
    modules: Mapping[str, Path]
    packages: Iterable[str]
    imports: list[Import]

    def add(self, target: str, node: ast.stmt, kind: str) -> None:
        if target.split(".")[0] in self.packages and target != self.module:
            where = f"{self.path.relative_to(self.path.parents[1])}:{node.lineno}"
            found = Import(self.module, target, where, kind)
            if found not in self.imports:
                self.imports.append(found)

    def base(self, node: ast.ImportFrom) -> str:
        if not node.level:
            return node.module or ""
        parts = self.module.split(".")
        if self.path.name != "__init__.py":
            parts.pop()
        parts = parts[: len(parts) - (node.level - 1)]
        return ".".join([*parts, *([node.module] if node.module else [])])

    def visit(self, body: Iterable[ast.AST], kind: str) -> None:
        for node in body:
            if isinstance(node, ast.Import):
                for alias in node.names:
                    self.add(alias.name, node, kind)
            elif isinstance(node, ast.ImportFrom):
                base = self.base(node)
                for alias in node.names:
                    candidate = f"{base}.{alias.name}"
                    self.add(candidate if candidate in self.modules else base, node, kind)
            elif isinstance(node, ast.If) and _is_type_checking(node.test):
                self.visit(node.body, "type-only" if kind == "module level" else kind)
                self.visit(node.orelse, kind)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                self.visit(node.body, "lazy")
            else:
                # classes, try/with/if/for bodies: same kind as where they stand
                for field in ("body", "orelse", "finalbody", "handlers"):
                    inner = getattr(node, field, None)
                    if isinstance(inner, list):
                        self.visit(inner, kind)


def import_graph(roots: Mapping[str, Path]) -> dict[str, list[Import]]:
    """For every module of the packages, its imports of other modules of the packages."""
    modules = _modules(roots)
    graph: dict[str, list[Import]] = {}
    for module, path in modules.items():
        reader = _Reader(module, path, modules, tuple(roots), [])
        reader.visit(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)).body, "module level")
        graph[module] = reader.imports
    return graph


def cycles(graph: Mapping[str, list[Import]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    edges = {m: sorted({i.target for i in imports if i.target in graph}) for m, imports in graph.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in sorted(edges):
        if start in index:
            continue
        work = [(start, 0)]
        while work:
            node, i = work.pop()
            if i == 0:
                index[node] = low[node] = len(index)
                stack.append(node)
                on_stack.add(node)
            if i < len(edges[node]):
                work.append((node, i + 1))
                nxt = edges[node][i]
                if nxt not in index:
                    work.append((nxt, 0))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    return found


def _under(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


# what each room must not import, and why (docs/architecture.md, "Import rules")
_TOP = (
    "proximity_sdk._client",
    "proximity_sdk._resources",
    "proximity_sdk._remote",
    "proximity_sdk.cli",
    "proximity_sdk.sandbox",
    "proximity_agent",
)
RULES: dict[str, tuple[tuple[str, ...], str]] = {
    "proximity_sdk.errors": (("proximity_sdk",), "the error tree is the root: everything imports it"),
    "proximity_sdk.models": (
        (
            "proximity_sdk.store",
            "proximity_sdk.proxmox",
            "proximity_sdk._wire",
            "proximity_sdk._pb",
            "proximity_sdk.catalog",
            "proximity_sdk.engine",
            "proximity_sdk.operations",
            "proximity_sdk.plugins",
            *_TOP,
        ),
        "models are the data: no storage, no Proxmox, no wire",
    ),
    "proximity_sdk.catalog": (
        (
            "proximity_sdk.proxmox",
            "proximity_sdk.store",
            "proximity_sdk.engine",
            "proximity_sdk.operations",
            "proximity_sdk._wire",
            *_TOP,
        ),
        "the catalog reads and renders apps; it never talks to Proxmox",
    ),
    "proximity_sdk.proxmox": (
        (
            "proximity_sdk.store",
            "proximity_sdk.catalog",
            "proximity_sdk.engine",
            "proximity_sdk.operations",
            "proximity_sdk._wire",
            *_TOP,
        ),
        "the Proxmox building blocks know nothing of operations or the store",
    ),
    "proximity_sdk.store": (
        ("proximity_sdk.proxmox", "proximity_sdk.engine", "proximity_sdk.operations", "proximity_sdk._wire", *_TOP),
        "the store keeps records; it acts on nothing",
    ),
    "proximity_sdk.engine": (
        ("proximity_sdk.operations", "proximity_sdk._wire", *_TOP),
        "the engine runs kinds registered into it; it names none of them",
    ),
    "proximity_sdk.operations": (("proximity_sdk._wire", *_TOP), "operation kinds sit under the namespaces"),
    "proximity_sdk._notebook": (
        (
            "proximity_sdk.store",
            "proximity_sdk.proxmox",
            "proximity_sdk.catalog",
            "proximity_sdk.engine",
            "proximity_sdk.operations",
            "proximity_sdk._wire",
            *_TOP,
        ),
        "the display and poll helpers serve the local and the remote handle alike",
    ),
    "proximity_sdk._wire": (
        (
            "proximity_sdk.store",
            "proximity_sdk.proxmox",
            "proximity_sdk.catalog",
            "proximity_sdk.engine",
            "proximity_sdk.operations",
            *_TOP,
        ),
        "the wire converts models and messages, for the agent and the remote client alike",
    ),
    "proximity_sdk._remote": (
        (
            "proximity_sdk.store",
            "proximity_sdk.proxmox",
            "proximity_sdk.catalog",
            "proximity_sdk.engine",
            "proximity_sdk.operations",
            "proximity_sdk._client",
            "proximity_sdk._resources",
            "proximity_sdk.cli",
            "proximity_sdk.sandbox",
            "proximity_agent",
        ),
        "a client of an agent never loads the local machinery",
    ),
    "proximity_sdk.plugins": (
        ("proximity_sdk.cli", "proximity_sdk._remote", "proximity_sdk.sandbox", "proximity_agent"),
        "hook specs serve every surface",
    ),
    "proximity_sdk": (("proximity_agent",), "the SDK does not depend on the agent"),
}


def violations(graph: Mapping[str, list[Import]], rules: Mapping[str, tuple[tuple[str, ...], str]]) -> list[str]:
    found = []
    for imports in graph.values():
        for imp in imports:
            for room, (forbidden, why) in rules.items():
                if not _under(imp.source, room):
                    continue
                for banned in forbidden:
                    # a room's own modules are never forbidden to it (errors -> errors is fine)
                    if _under(imp.target, banned) and not _under(imp.target, room if room != banned else "\0"):
                        found.append(
                            f"{imp.where}: {imp.source} imports {imp.target} ({imp.kind}); "
                            f"{room} must not import {banned}: {why}"
                        )
    return sorted(set(found))


def _describe(component: list[str], graph: Mapping[str, list[Import]]) -> str:
    inside = set(component)
    lines = [
        f"  {i.where}: {i.source} -> {i.target} ({i.kind})" for m in component for i in graph[m] if i.target in inside
    ]
    return "cycle of " + ", ".join(component) + ":\n" + "\n".join(lines)


@pytest.fixture(scope="module")
def graph() -> dict[str, list[Import]]:
    return import_graph(package_roots(ROOT))


def test_the_graph_covers_the_packages_and_the_plugins(graph: dict[str, list[Import]]) -> None:
    packages = {m.split(".")[0] for m in graph}
    assert {"proximity_sdk", "proximity_agent", "proximity_sftp", "proximity_hosts"} <= packages
    kinds = {i.kind for imports in graph.values() for i in imports}
    assert kinds == {"module level", "type-only", "lazy"}


def test_no_import_cycle(graph: dict[str, list[Import]]) -> None:
    found = cycles(graph)
    assert not found, "\n\n".join(_describe(c, graph) for c in found)


def test_no_import_against_the_layering(graph: dict[str, list[Import]]) -> None:
    found = violations(graph, RULES)
    assert not found, "\n".join(found)


def test_every_rule_names_a_room_that_exists(graph: dict[str, list[Import]]) -> None:
    # a rule about a renamed package would silently check nothing
    for room in RULES:
        assert any(_under(m, room) for m in graph), f"no module under {room}"


def test_the_checker_finds_a_cycle_and_a_forbidden_import(tmp_path: Path) -> None:
    package = tmp_path / "proximity_sdk"
    (package / "models").mkdir(parents=True)
    (package / "store").mkdir()
    files = {
        "__init__.py": "",
        "models/__init__.py": "",
        "models/a.py": """
            from typing import TYPE_CHECKING
            if TYPE_CHECKING:
                from proximity_sdk.models.b import B
        """,
        "models/b.py": """
            def f():
                from . import a
                from proximity_sdk.store import rows
        """,
        "store/__init__.py": "",
        "store/rows.py": "import proximity_sdk.models.a\n",
    }
    for name, text in files.items():
        (package / name).write_text(textwrap.dedent(text))
    graph = import_graph({"proximity_sdk": package})
    assert cycles(graph) == [["proximity_sdk.models.a", "proximity_sdk.models.b", "proximity_sdk.store.rows"]]
    found = violations(graph, {"proximity_sdk.models": (("proximity_sdk.store",), "data only")})
    assert len(found) == 1
    assert "models/b.py:4: proximity_sdk.models.b imports proximity_sdk.store.rows (lazy)" in found[0]
    kinds = {(i.source, i.kind) for imports in graph.values() for i in imports}
    assert ("proximity_sdk.models.a", "type-only") in kinds

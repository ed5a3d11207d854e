"""The package's import graph has no cycles: every `import` of `sandbox_kernel/` and of
`magics/` (which installs as `sandbox_kernel.magics`), read with `ast`, `TYPE_CHECKING` and
function-level imports included, since a reader follows those arrows too."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "sandbox_kernel"
SOURCES = {PACKAGE: ROOT / PACKAGE, f"{PACKAGE}.magics": ROOT / "magics"}
"""Where each part of the package lives in the checkout."""

KNOWN_CYCLES: set[frozenset[str]] = set()
"""Cycles left as they are for now, each with the issue that removes it."""


def modules() -> dict[str, Path]:
    """Every module of the package: dotted name -> file (the link to magics/ not followed)."""
    found = {}
    for prefix, folder in SOURCES.items():
        for path in sorted(folder.rglob("*.py")):
            if path.is_relative_to(ROOT / PACKAGE / "magics"):
                continue  # the link; its files are read from magics/
            parts = path.relative_to(folder).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join((prefix, *parts))] = path
    return found


def imported(name: str, path: Path, known: set[str]) -> set[str]:
    """The package's modules that the module `name` imports, anywhere in its code."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                targets.add(submodule if submodule in known else base)
    return {target for target in targets if target in known and target != name}


def cycles(graph: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(component)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def import_graph() -> dict[str, set[str]]:
    found = modules()
    return {name: imported(name, path, set(found)) for name, path in found.items()}


def test_the_graph_covers_the_whole_package():
    graph = import_graph()
    assert {"sandbox_kernel", "sandbox_kernel.magics.sbx", "sandbox_kernel.server.app"} <= set(
        graph
    )
    assert "sandbox_kernel.magics.verbs" in graph["sandbox_kernel.magics.files"]


def test_the_package_imports_have_no_cycles_but_the_known_ones():
    found = [frozenset(component) for component in cycles(import_graph())]
    new = [sorted(component) for component in found if component not in KNOWN_CYCLES]
    assert new == [], f"import cycles: {new}"


def test_the_client_imports_nothing_of_ours_but_itself():
    graph = import_graph()
    client = {name for name in graph if name.startswith("sandbox_kernel.client")}
    for name in client:
        assert graph[name] <= client, (name, graph[name] - client)


def test_the_magics_import_neither_their_magic_class_nor_a_cycle():
    graph = import_graph()
    magics = {name for name in graph if name.startswith("sandbox_kernel.magics.")}
    for name in magics - {"sandbox_kernel.magics.sbx"}:
        if name != "sandbox_kernel.magics":
            assert "sandbox_kernel.magics.sbx" not in graph[name], name
    assert not [component for component in cycles(graph) if component & magics]


def test_the_magics_use_of_the_kernel_is_its_cell_runner_only():
    """The kernel loads the magics (by the extension's name); the magics take from `kernel/`
    only the cell runner that `%%sbx run` shares with it (see magics/contexts.py)."""
    graph = import_graph()
    used = {
        target
        for name, targets in graph.items()
        if name.startswith("sandbox_kernel.magics")
        for target in targets
        if target.startswith("sandbox_kernel.kernel")
    }
    assert used == {"sandbox_kernel.kernel.cells"}
    kernel = [name for name in graph if name.startswith("sandbox_kernel.kernel")]
    assert not [name for name in kernel if any("magics" in target for target in graph[name])]

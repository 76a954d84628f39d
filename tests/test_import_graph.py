"""Which modules import which, read from the source with ``ast`` (every import statement, at
module level, inside functions and under ``TYPE_CHECKING``), so a layer rule cannot be hidden by
importing late.

The helpers are for any layer rule: ``imports_of(package)`` maps each module of a package to the
modules it imports, ``cycles(graph)`` finds import cycles, and ``offending(graph, allowed)`` lists
the imports a rule forbids.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCES = (ROOT / "src", ROOT / "examples" / "county_template" / "src")

Graph = dict[str, set[str]]


def _is_module(module: str, roots: Iterable[Path]) -> bool:
    parts = module.split(".")
    return any(
        root.joinpath(*parts).with_suffix(".py").is_file() or root.joinpath(*parts).is_dir()
        for root in roots
    )


def _modules_of(package: str, roots: Iterable[Path]) -> dict[str, Path]:
    """Every module of ``package`` (itself included when it is a module) and its file."""
    found: dict[str, Path] = {}
    for root in roots:
        base = root.joinpath(*package.split("."))
        if base.with_suffix(".py").is_file():
            found[package] = base.with_suffix(".py")
        if not base.is_dir():
            continue
        for path in sorted(base.rglob("*.py")):
            relative = path.relative_to(root).with_suffix("")
            parts = relative.parts[:-1] if relative.name == "__init__" else relative.parts
            found[".".join(parts)] = path
    return found


def imported_by(path: Path, module: str, roots: Iterable[Path] = SOURCES) -> set[str]:
    """The modules that the file of ``module`` imports anywhere in it, by absolute name.

    ``from package import name`` counts as importing ``package.name`` when that is a module,
    else ``package``; relative imports are resolved against ``module``.
    """
    roots = tuple(roots)
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = module.split(".")
                anchor = anchor[: len(anchor) - node.level + (1 if is_package else 0)]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            else:
                base = node.module or ""
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                found.add(submodule if _is_module(submodule, roots) else base)
    return found


def imports_of(package: str, roots: Iterable[Path] = SOURCES) -> Graph:
    """Each module of ``package`` mapped to every module it imports (inside or outside it)."""
    roots = tuple(roots)
    return {
        module: imported_by(path, module, roots)
        for module, path in _modules_of(package, roots).items()
    }


def cycles(graph: Graph) -> list[list[str]]:
    """The import cycles among the graph's own modules: each strongly connected group of two or
    more modules (or a module importing itself), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node] & graph.keys()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group: list[str] = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1 or node in graph[node]:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(groups)


def offending(graph: Graph, allowed: Callable[[str, str], bool]) -> dict[str, list[str]]:
    """``{module: [imports]}`` of the imports of ``approvalflow`` modules that ``allowed(module,
    imported)`` refuses (the standard library and other distributions are not judged)."""
    found = {
        module: sorted(
            imported
            for imported in imports
            if imported.split(".")[0] == "approvalflow" and not allowed(module, imported)
        )
        for module, imports in graph.items()
    }
    return {module: imports for module, imports in found.items() if imports}


class TestTheHelpers:
    def test_an_import_inside_a_function_closes_a_cycle(self, tmp_path: Path) -> None:
        """A cycle hidden by a late import (and a relative one) is found all the same."""
        package = tmp_path / "pkg"
        package.mkdir()
        (package / "__init__.py").write_text("")
        (package / "a.py").write_text("from pkg import b\n")
        (package / "b.py").write_text("def later():\n    from . import c\n")
        (package / "c.py").write_text("import pkg.a\n")
        (package / "d.py").write_text("from pkg.a import thing\n")
        graph = imports_of("pkg", [tmp_path])
        assert graph["pkg.b"] == {"pkg.c"}
        assert graph["pkg.d"] == {"pkg.a"}
        assert cycles(graph) == [["pkg.a", "pkg.b", "pkg.c"]]

    def test_offending_lists_only_the_forbidden_imports(self) -> None:
        """A rule is a predicate on (module, imported); other distributions are not judged."""
        graph = {"approvalflow.x": {"attrs", "approvalflow.errors", "approvalflow.rules.context"}}
        rule = offending(graph, lambda _module, imported: not imported.startswith("approvalflow.r"))
        assert rule == {"approvalflow.x": ["approvalflow.rules.context"]}


def test_rules_have_no_import_cycle() -> None:
    """``approvalflow.rules`` imports point one way: shared branch operations in
    ``rules.branches``, the context importing no mechanism."""
    graph = imports_of("approvalflow.rules")
    assert "approvalflow.rules.branches" in graph["approvalflow.rules.copies"]
    assert cycles(graph) == []


def test_the_context_imports_no_mechanism() -> None:
    """The context is what every rule is given; it knows no rule."""
    graph = imports_of("approvalflow.rules")
    assert (
        offending(
            {"approvalflow.rules.context": graph["approvalflow.rules.context"]},
            lambda _module, imported: not imported.startswith("approvalflow.rules."),
        )
        == {}
    )


def test_stores_import_nothing_from_rules() -> None:
    """Stores keep what the read side defines; they run no rule."""
    graph = imports_of("approvalflow.stores")
    rule = offending(graph, lambda _module, imported: not imported.startswith("approvalflow.rules"))
    assert rule == {}


# That counties and the template import only the public API is checked, import by import, in
# test_import_graph_plugins.py.

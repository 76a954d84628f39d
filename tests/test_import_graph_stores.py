"""Stores import nothing from ``approvalflow.rules``: they keep read models, and the read side
(``approvalflow.readmodels``) defines what those hold.

Read from the source with ``ast``, every import counts: at the top of a module, inside a
function, or under ``TYPE_CHECKING``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import approvalflow.stores

STORES = Path(approvalflow.stores.__file__).parent


def _imported(path: Path) -> set[str]:
    """Every module ``path`` imports (``from a.b import c`` counts as ``a.b`` and ``a.b.c``)."""
    package = "approvalflow.stores"
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


def _is_rules(name: str) -> bool:
    return name == "approvalflow.rules" or name.startswith("approvalflow.rules.")


def test_the_stores_package_has_modules_to_check() -> None:
    modules = {path.name for path in STORES.glob("*.py")}
    assert {"sql.py", "sqlite.py", "postgres.py", "memory.py", "projections.py"} <= modules


def test_no_module_of_the_stores_imports_the_rules() -> None:
    found = {
        path.name: sorted(name for name in _imported(path) if _is_rules(name))
        for path in sorted(STORES.glob("*.py"))
    }
    assert {module: names for module, names in found.items() if names} == {}


def test_the_check_sees_an_import_inside_a_function(tmp_path: Path) -> None:
    """The check would catch the kind of import the stores once hid in a function."""
    module = tmp_path / "m.py"
    module.write_text(
        "def f():\n    from approvalflow.rules.metrics import metric_day\n    return metric_day\n"
    )
    assert any(_is_rules(name) for name in _imported(module))
    module.write_text("from ..rules import points\n")
    assert any(_is_rules(name) for name in _imported(module))

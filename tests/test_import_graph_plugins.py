"""County plugins import only the public API: ``approvalflow`` and ``approvalflow.plugin``.

The five counties (``approvalflow.counties``) and the template county
(``examples/county_template``) are what a county developer copies, so they must not reach
into private modules (``approvalflow.rules``, ``approvalflow.project``...). Every import is
checked, at module level and inside functions, and so is ``importlib.import_module`` with a
literal name. A county's own package (``approvalflow.counties`` for the five, the template's
``county_template``) may import itself.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

import approvalflow

ROOT = Path(__file__).resolve().parents[1]
PUBLIC = frozenset({"approvalflow", "approvalflow.plugin"})
PACKAGES = {
    "approvalflow.counties": ROOT / "src" / "approvalflow" / "counties",
    "county_template": ROOT / "examples" / "county_template" / "src" / "county_template",
}


def imported_modules(source: str, package: str) -> Iterator[tuple[int, str]]:
    """``(line, module)`` for every import in ``source`` (a module of ``package``)."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            yield node.lineno, module
            if module == "approvalflow":
                # ``from approvalflow import rules`` names a submodule, not a public name.
                for alias in node.names:
                    if alias.name not in approvalflow.__all__:
                        yield node.lineno, f"approvalflow.{alias.name}"
        elif (
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", getattr(node.func, "id", None)) == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            yield node.lineno, node.args[0].value


def private_imports(source: str, package: str) -> list[str]:
    found = []
    for line, module in imported_modules(source, package):
        if not (module == "approvalflow" or module.startswith("approvalflow.")):
            continue
        if module in PUBLIC or module == package or module.startswith(f"{package}."):
            continue
        found.append(f"line {line}: {module}")
    return found


def county_modules() -> list[tuple[str, Path]]:
    return [
        (package, path)
        for package, folder in PACKAGES.items()
        for path in sorted(folder.glob("*.py"))
    ]


@pytest.mark.parametrize(
    ("package", "path"),
    county_modules(),
    ids=[f"{package}:{path.name}" for package, path in county_modules()],
)
def test_a_county_module_imports_only_the_public_api(package: str, path: Path) -> None:
    assert private_imports(path.read_text(encoding="utf-8"), package) == []


def test_every_county_and_the_template_are_checked() -> None:
    names = {path.stem for _, path in county_modules()}
    assert {"huguan", "jiaocheng", "jiangle", "gaoqing", "shangnan", "plugin"} <= names


@pytest.mark.parametrize(
    "source",
    [
        "from approvalflow.rules import arguments",
        "import approvalflow.project",
        "def f():\n    from approvalflow.states import BRANCH_OPEN\n",
        "from approvalflow import rules",
        "import importlib\nimportlib.import_module('approvalflow.engine')",
    ],
)
def test_the_check_finds_a_private_import_wherever_it_is(source: str) -> None:
    assert private_imports(source, "approvalflow.counties") != []


@pytest.mark.parametrize(
    "source",
    [
        "from approvalflow.plugin import Context, hookimpl",
        "from approvalflow import Engine, Settings",
        "import approvalflow",
        "from approvalflow.counties import county_data",
        "from . import county_data",
    ],
)
def test_public_and_own_imports_pass(source: str) -> None:
    assert private_imports(source, "approvalflow.counties") == []

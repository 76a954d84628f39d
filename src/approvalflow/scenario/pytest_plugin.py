"""The pytest plugin: every ``*.yaml``/``*.yml`` file (any case) with a top-level ``scenario:``
key is a test.

Registered through the ``pytest11`` entry point, so installing approvalflow is enough;
``-p no:approvalflow`` turns it off. Other YAML files are left alone. A failure shows the same
text as ``approvalflow scenario run``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from approvalflow.scenario.loader import is_scenario_file


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("approvalflow")
    group.addoption(
        "--approvalflow-store",
        default=None,
        help="run scenario files against this store URL (default: a fresh in-memory store)",
    )


def pytest_collect_file(parent: pytest.Collector, file_path: Path) -> pytest.Collector | None:
    # The same test as `approvalflow scenario run` (suffixes in any case: .yml, .YML, .yaml).
    if is_scenario_file(file_path):
        return ScenarioFile.from_parent(parent, path=file_path)
    return None


class ScenarioFile(pytest.File):
    def collect(self) -> Iterator[pytest.Item]:
        yield ScenarioItem.from_parent(self, name=self.path.stem)


class ScenarioFailed(Exception):
    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


class ScenarioItem(pytest.Item):
    def runtest(self) -> None:
        from approvalflow.scenario.runner import run_file
        from approvalflow.stores import open_store

        url = self.config.getoption("--approvalflow-store")
        store = open_store(url, create=True) if url else None
        try:
            result = run_file(self.path, store=store)
        finally:
            if store is not None:
                store.close()
        if not result.passed:
            raise ScenarioFailed(result.render())

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, ScenarioFailed):
            return excinfo.value.text
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, f"scenario: {self.path.name}"

"""The example scenario library in ``scenarios/``: every file passes, and together they use every
command, notice kind and error code of the built-in workflow (WORKFLOW.md)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pytest

from approvalflow.errors import ERROR_CODES
from approvalflow.model import NOTICE_KINDS
from approvalflow.rules.commands import BUILTIN_COMMANDS
from approvalflow.scenario.loader import find_scenario_files
from approvalflow.scenario.model import CommandStep, ExpectStep, Scenario
from approvalflow.scenario.runner import load, run_file

LIBRARY = Path(__file__).resolve().parents[1] / "scenarios"

# Codes no scenario can show, each with the reason. A scenario runs single-threaded on one
# store, so two writers never race for the same project version: ConcurrencyConflict is
# covered by the store conformance tests and the engine's retry tests, not faked here.
# Archiving is a store operation (``Engine.archive``, ``approvalflow store archive``), not a
# command, and a scenario has no step that archives (D274): NotArchivable, and ProjectArchived
# (a command on an archived project), are shown by ``ArchiveConformance`` on every store and by
# tests/test_store_archive.py.
EXCUSED_ERROR_CODES = frozenset({"ConcurrencyConflict", "NotArchivable", "ProjectArchived"})


def library_files() -> list[Path]:
    return find_scenario_files([LIBRARY]) if LIBRARY.is_dir() else []


@pytest.fixture(scope="module")
def scenarios() -> list[Scenario]:
    files = library_files()
    if not files:
        pytest.skip(f"no scenario files under {LIBRARY}")
    return [load(path) for path in files]


def missing(wanted: Iterable[str], used: set[str]) -> list[str]:
    return sorted(name for name in wanted if name not in used)


class TestEveryScenarioPasses:
    def test_every_file_under_scenarios_passes(self) -> None:
        """Runs every scenario file (subfolders included) and lists each failure in full."""
        files = library_files()
        assert files, f"no scenario files under {LIBRARY}"
        failures = [result.render() for result in map(run_file, files) if not result.passed]
        summary = f"{len(failures)} of {len(files)} scenarios failed"
        assert not failures, summary + ":\n\n" + "\n\n".join(failures)

    @pytest.mark.parametrize("backend", ["sqlite", "postgres"])
    def test_every_file_passes_on_the_durable_stores(
        self, backend: str, tmp_path: Path, request: pytest.FixtureRequest
    ) -> None:
        """The same library on one shared SQLite file and one PostgreSQL schema, each run in its
        own namespace; the audit chain verifies afterwards."""
        import uuid

        from approvalflow.stores import open_store
        from approvalflow.stores.audit import verify_chain

        if backend == "sqlite":
            store = open_store(f"sqlite:///{tmp_path / 'library.db'}", create=True)
        else:
            url = request.getfixturevalue("postgres_url")
            store = open_store(f"{url}?schema=t_{uuid.uuid4().hex[:16]}", create=True)
        try:
            files = library_files()
            results = [run_file(path, store=store) for path in files]
            failures = [result.render() for result in results if not result.passed]
            assert not failures, "\n\n".join(failures)
            assert verify_chain(store).ok
        finally:
            if hasattr(store, "drop"):
                store.drop()
            store.close()


class TestCoverage:
    def test_every_command_is_used_by_some_step(self, scenarios: list[Scenario]) -> None:
        """A command counts when a step (create or do) runs it."""
        used = {
            step.command
            for scenario in scenarios
            for step in scenario.steps
            if isinstance(step, CommandStep)
        }
        assert not missing(BUILTIN_COMMANDS, used), (
            f"commands no scenario uses: {', '.join(missing(BUILTIN_COMMANDS, used))}"
        )

    def test_every_notice_kind_is_expected_somewhere(self, scenarios: list[Scenario]) -> None:
        """A notice kind counts when a `notices` or `no_notices` entry of an expect names it."""
        used = {
            str(expectation.value.get("kind"))
            for scenario in scenarios
            for step in scenario.steps
            if isinstance(step, ExpectStep)
            for expectation in (*step.notices, *step.no_notices)
        }
        assert not missing(NOTICE_KINDS, used), (
            f"notice kinds no scenario expects: {', '.join(missing(NOTICE_KINDS, used))}"
        )

    def test_every_error_code_is_shown_by_some_step(self, scenarios: list[Scenario]) -> None:
        """An error code counts when a step's `error:` names it; see EXCUSED_ERROR_CODES."""
        used = {
            step.error
            for scenario in scenarios
            for step in scenario.steps
            if isinstance(step, CommandStep) and step.error is not None
        }
        wanted = [code for code in ERROR_CODES if code not in EXCUSED_ERROR_CODES]
        assert not missing(wanted, used), (
            f"error codes no scenario shows: {', '.join(missing(wanted, used))}"
        )

    def test_the_excused_codes_are_real_codes(self) -> None:
        """An excuse for a code that no longer exists would hide nothing and mislead."""
        assert EXCUSED_ERROR_CODES.issubset(ERROR_CODES)

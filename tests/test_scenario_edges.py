"""Scenario runs that used to go wrong quietly: a fault in a step stopped the whole run, running
nothing passed, replayed creates and dotted ids were misread, and a long id passed in memory
but not on a store."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import attrs
import pytest
from test_scenario_runner import GOOD, write

from approvalflow.cli import main
from approvalflow.errors import ERROR_CODES
from approvalflow.plugins.hookspecs import hookimpl
from approvalflow.project import ProjectState
from approvalflow.scenario.loader import loads_scenario
from approvalflow.scenario.runner import known_commands, run_file, run_scenario
from approvalflow.settings import Settings
from approvalflow.stores import open_store


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    capsys.readouterr()
    status = main(argv)
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return status, out, err


class TestAFaultInAStep:
    def test_is_that_steps_failure_and_the_next_file_still_runs(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A KeyError from the engine used to stop the whole run with a traceback."""
        from approvalflow.engine import Engine

        original = Engine.execute

        def faulty(self: Engine, command: str, *args: Any, **kwargs: Any) -> Any:
            if command == "negotiate" and args[0].endswith("P9"):
                raise KeyError("branch")
            return original(self, command, *args, **kwargs)

        monkeypatch.setattr(Engine, "execute", faulty)
        write(tmp_path, "a_faulty.yaml", GOOD.replace("P1", "P9"))
        write(tmp_path, "b_good.yaml", GOOD)
        status, out, _ = run(["scenario", "run", str(tmp_path)], capsys)
        assert status == 1
        assert "FAIL A lead starts negotiating\n  step 2 (line 12): negotiate P9 by zhao" in out
        assert "found:    unexpected error KeyError: 'branch'" in out
        assert "PASS A lead starts negotiating" in out
        assert out.splitlines()[-1] == "1 passed, 1 failed"


class TestRunningNothing:
    def test_an_empty_folder_fails(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """It used to report `0 passed, 0 failed` with exit 0."""
        status, out, err = run(["scenario", "run", str(tmp_path)], capsys)
        assert status == 1 and out == ""
        assert f"no scenario files under {tmp_path}" in err

    def test_a_folder_with_a_misspelt_top_key_says_which_file(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """The near miss is named, so the author sees why nothing ran."""
        path = write(tmp_path, "typo.yaml", GOOD.replace("scenario:", "senario:"))
        status, _, err = run(["scenario", "run", str(tmp_path)], capsys)
        assert status == 1
        assert f"{path}: top key 'senario' (did you mean 'scenario'?)" in err

    def test_a_named_file_with_a_misspelt_top_key_is_an_invalid_scenario(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A named file is read as a scenario, and the loader says what is wrong."""
        path = write(tmp_path, "typo.yaml", GOOD.replace("scenario:", "senario:"))
        status, out, _ = run(["scenario", "run", str(path)], capsys)
        assert status == 2
        assert "$.senario: unknown key (did you mean 'scenario'?)" in out
        assert out.splitlines()[-1] == "0 passed, 1 failed"

    def test_a_named_txt_file_is_not_a_scenario(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """It counts as an invalid file, with the reason."""
        path = write(tmp_path, "story.txt", GOOD)
        status, out, _ = run(["scenario", "run", str(path)], capsys)
        assert status == 2
        assert f"{path}: not a scenario file: scenario files end in .yaml or .yml" in out
        assert out.splitlines()[-1] == "0 passed, 1 failed"


class TestPytestCollects:
    @pytest.mark.parametrize("name", ["upper.YML", "upper.YAML", "lower.yml", "lower.yaml"])
    def test_every_suffix_the_cli_runs(self, tmp_path: Path, name: str) -> None:
        """The pytest plugin takes the suffixes the CLI takes, in any case."""
        write(tmp_path, name, GOOD)
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "-q",
                "-p",
                "no:randomly",
                "-p",
                "no:cacheprovider",
                str(tmp_path),
            ],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
            cwd=tmp_path,
        )
        assert "1 passed" in done.stdout, done.stdout + done.stderr


CREATE = (
    "  - create: P1\n"
    "    by: zhao\n"
    "    command_id: {command_id}\n"
    "    project: {{name: 铝合金, investment: 1.5亿, applicant: fuyuan, leader: li,\n"
    "              department: gxj, team: new_materials}}\n"
)


def replayed(first: str, second: str) -> str:
    """GOOD with its create written twice, with these command ids."""
    head, rest = GOOD.split("  - create: P1\n", 1)
    rest = rest.split("  - {do: negotiate", 1)[1]
    return (
        head
        + CREATE.format(command_id=first)
        + CREATE.format(command_id=second)
        + "  - {do: negotiate"
        + rest
    )


class TestScenarioFiles:
    @pytest.mark.parametrize("store", [None, "sqlite"])
    def test_a_replayed_create_is_answered_with_the_first_result(
        self, tmp_path: Path, store: str | None, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Rule 10: the engine answers a command id seen before with the first result."""
        path = write(tmp_path, "replay.yaml", replayed("c-1", "c-1"))
        argv = ["scenario", "run", str(path)]
        if store:
            argv += ["--store", f"sqlite:///{tmp_path / 'a.db'}"]
        status, out, _ = run(argv, capsys)
        assert status == 0, out

    def test_a_second_create_with_another_command_id_is_still_refused(self) -> None:
        """Only a replay (the same command id) may create a project twice."""
        with pytest.raises(ValueError, match="created already by step 1"):
            loads_scenario(
                replayed("c-1", "c-2"),
                known_commands=known_commands(),
                known_error_codes=ERROR_CODES,
            )

    @pytest.mark.parametrize("store", [None, "sqlite"])
    def test_an_expect_key_naming_a_project_with_a_dot(
        self, tmp_path: Path, store: str | None, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """`P.1.approval.zj` names project P.1, not project P."""
        path = write(tmp_path, "dotted.yaml", GOOD.replace("P1", "P.1"))
        argv = ["scenario", "run", str(path)]
        if store:
            argv += ["--store", f"sqlite:///{tmp_path / 'a.db'}"]
        status, out, _ = run(argv, capsys)
        assert status == 0, out

    @pytest.mark.parametrize("length", [63, 64, 99, 100])
    @pytest.mark.parametrize("store", ["memory", "sqlite"])
    def test_the_id_the_file_wrote_is_what_is_limited(
        self, tmp_path: Path, length: int, store: str
    ) -> None:
        """Under --store the run's prefix used to count toward the 100-character limit."""
        long_id = "P" * length
        path = write(tmp_path, "long.yaml", GOOD.replace("P1", long_id))
        shared = (
            open_store(f"sqlite:///{tmp_path / 'a.db'}", create=True) if store == "sqlite" else None
        )
        try:
            result = run_file(path, store=shared)
            again = run_file(path, store=shared)
        finally:
            if shared is not None:
                shared.close()
        assert result.passed and again.passed, result.render() + again.render()

    @pytest.mark.parametrize("store", ["memory", "sqlite"])
    def test_an_id_over_the_limit_is_refused_on_every_store(
        self, tmp_path: Path, store: str
    ) -> None:
        """The same InvalidCommand in memory and on SQLite."""
        long_id = "P" * 101
        text = GOOD.replace("    by: zhao\n", "    by: zhao\n    error: InvalidCommand\n", 1)
        text = text.replace("P1", long_id).split("  - {do: negotiate")[0]
        text += "  - expect:\n      points: {new_materials: 0}\n"
        path = write(tmp_path, "too_long.yaml", text)
        shared = (
            open_store(f"sqlite:///{tmp_path / 'a.db'}", create=True) if store == "sqlite" else None
        )
        try:
            result = run_file(path, store=shared)
        finally:
            if shared is not None:
                shared.close()
        assert result.passed, result.render()


class Grade:
    """A plugin whose metric is text: a grade for the county's portfolio."""

    @hookimpl
    def approvalflow_metrics(
        self, projects: list[ProjectState], settings: Settings
    ) -> dict[str, Any]:
        return {"county.grade": "A" if projects else "-", "county.count": len(projects)}


class TestPluginMetrics:
    def test_a_scenario_checks_a_metric_whose_value_is_text(self) -> None:
        """The loader accepts text; the runner compares it exactly."""
        text = GOOD.replace(
            "      points: {new_materials: 2}\n",
            "      points: {new_materials: 2}\n      metrics: {county.grade: A, county.count: 1}\n",
        )
        scenario = loads_scenario(
            text, known_commands=known_commands(), known_error_codes=ERROR_CODES
        )
        passing = run_scenario(attrs.evolve(scenario, plugins=(Grade(),)))
        assert passing.passed, passing.render()
        failing = run_scenario(
            attrs.evolve(
                loads_scenario(
                    text.replace("county.grade: A", "county.grade: B"),
                    known_commands=known_commands(),
                    known_error_codes=ERROR_CODES,
                ),
                plugins=(Grade(),),
            )
        )
        assert failing.failure is not None
        assert (failing.failure.expected, failing.failure.found) == ("B", "A")

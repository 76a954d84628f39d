"""The scenario harness as its users see it: the CLI's lines, exit codes and failure text, and
the two contract examples in ../shared/scenarios passing as they are."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from approvalflow.cli import main
from approvalflow.scenario.runner import run_file

SHARED = Path(__file__).resolve().parents[2] / "shared" / "scenarios"
REPO_SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"

GOOD = textwrap.dedent(
    """\
    scenario: A lead starts negotiating
    start: 2026-07-06 09:00
    actors:
      zhao: {roles: [recruiter]}
      fuyuan: {roles: [applicant]}
      li: {roles: [leader]}
    steps:
      - create: P1
        by: zhao
        project: {name: 铝合金, investment: 1.5亿, applicant: fuyuan, leader: li,
                  department: gxj, team: new_materials}
      - {do: negotiate, project: P1, by: zhao}
      - expect:
          P1: negotiating
          points: {new_materials: 2}
    """
)


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


class TestContractExamples:
    @pytest.mark.parametrize("name", ["lead_to_effective.yaml", "rejected_and_withdrawn.yaml"])
    def test_the_shared_examples_pass_as_they_are(self, name: str) -> None:
        """The two complete examples of SCENARIOS.md pass unchanged."""
        if not SHARED.is_dir():
            pytest.skip(
                f"{SHARED} is absent (a user's own clone): the contract examples live there"
            )
        result = run_file(SHARED / name)
        assert result.passed, result.render()


class TestCommandLine:
    def test_a_passing_run_prints_pass_lines_and_the_closing_line(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """One PASS line per scenario, then `1 passed, 0 failed`; exit status 0."""
        write(tmp_path, "good.yaml", GOOD)
        write(tmp_path, "other.yaml", "not_a_scenario: true\n")
        assert main(["scenario", "run", str(tmp_path)]) == 0
        assert capsys.readouterr().out.splitlines() == [
            "PASS A lead starts negotiating",
            "1 passed, 0 failed",
        ]

    def test_a_failing_expectation_shows_step_line_expected_and_found(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """The contract's failure text; exit status 1."""
        write(tmp_path, "bad.yaml", GOOD.replace("P1: negotiating", "P1: lead"))
        assert main(["scenario", "run", str(tmp_path)]) == 1
        out = capsys.readouterr().out
        assert out.splitlines() == [
            "FAIL A lead starts negotiating",
            "  step 3 (line 14): expect P1",
            "    expected: lead",
            "    found:    negotiating",
            "0 passed, 1 failed",
        ]

    def test_a_refused_command_shows_the_error_code_and_message(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A command step without `error:` that the engine refuses fails at that step."""
        text = GOOD.replace(
            "{do: negotiate, project: P1, by: zhao}", "{do: negotiate, project: P1, by: fuyuan}"
        )
        write(tmp_path, "refused.yaml", text)
        assert main(["scenario", "run", str(tmp_path)]) == 1
        out = capsys.readouterr().out
        assert "step 2 (line 12): negotiate P1 by fuyuan" in out
        assert "found:    NotAuthorized: fuyuan may not negotiate on P1" in out

    def test_an_invalid_file_counts_as_failed_and_exits_2(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """The run goes on with the others; the message names file, line and key."""
        write(tmp_path, "a_good.yaml", GOOD)
        write(tmp_path, "b_broken.yaml", GOOD.replace("    by: zhao\n", "", 1))
        assert main(["scenario", "run", str(tmp_path)]) == 2
        out = capsys.readouterr().out
        assert "PASS A lead starts negotiating" in out
        assert "b_broken.yaml:8: $.steps[1].by: missing" in out
        assert out.splitlines()[-1] == "1 passed, 1 failed"

    def test_expected_events_match_by_type_actor_and_payload(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """`events:` entries match the events recorded since the previous expect step."""
        text = GOOD.replace(
            "      points: {new_materials: 2}\n",
            "      points: {new_materials: 2}\n"
            "      events:\n"
            "        - {type: stage_changed, project: P1, from: lead, to: negotiating,\n"
            "           by: zhao, on_behalf_of: null}\n",
        )
        write(tmp_path, "events.yaml", text)
        assert main(["scenario", "run", str(tmp_path)]) == 0
        assert capsys.readouterr().out.splitlines()[-1] == "1 passed, 0 failed"

    def test_an_event_not_recorded_shows_the_events_found(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A missing event fails at its line and lists what was recorded in the window."""
        text = GOOD.replace(
            "      points: {new_materials: 2}\n",
            "      points: {new_materials: 2}\n      events: [{type: stage_changed, by: fuyuan}]\n",
        )
        write(tmp_path, "events.yaml", text)
        assert main(["scenario", "run", str(tmp_path)]) == 1
        out = capsys.readouterr().out.splitlines()
        assert out[1:4] == [
            "  step 3 (line 16): expect events[1]",
            "    expected: {type: stage_changed, by: fuyuan}",
            "    found:    {type: created, project: P1, by: zhao}",
        ]
        assert "              {type: stage_changed, project: P1, by: zhao}" in out

    def test_json_output_for_machines(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """--json prints one object with the counts and each scenario."""
        write(tmp_path, "good.yaml", GOOD)
        assert main(["scenario", "run", "--json", str(tmp_path)]) == 0
        report = json.loads(capsys.readouterr().out)
        assert report["passed"] == 1 and report["failed"] == 0
        assert report["scenarios"][0]["name"] == "A lead starts negotiating"

    def test_the_console_script_is_installed(self, tmp_path: Path) -> None:
        """`approvalflow scenario run` works as a program, with the closing line last."""
        write(tmp_path, "good.yaml", GOOD)
        script = Path(sys.executable).with_name("approvalflow")
        done = subprocess.run(
            [str(script), "scenario", "run", str(tmp_path)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines()[-1] == "1 passed, 0 failed"


class TestRulesStep:
    def test_new_rules_apply_to_projects_created_after_the_step(self, tmp_path: Path) -> None:
        """The rules step restarts the engine over the same store; P1 keeps 2026-1."""
        text = GOOD + (
            '  - rules: {rules_version: "2026-2", points: {lead: 5}}\n'
            "  - create: P2\n"
            "    by: zhao\n"
            "    project: {name: 铝合金二期, investment: 1亿, applicant: fuyuan, leader: li,\n"
            "              department: gxj, team: new_materials}\n"
            "  - expect:\n"
            "      points: {new_materials: 7}\n"
        )
        result = run_file(write(tmp_path, "rules.yaml", text))
        assert result.passed, result.render()

    def test_rules_that_cannot_be_used_fail_the_step(self, tmp_path: Path) -> None:
        text = GOOD + "  - rules: {supply_deadline_wd: 0}\n"
        result = run_file(write(tmp_path, "bad_rules.yaml", text))
        assert not result.passed
        assert "supply_deadline_wd" in result.render()


class TestSharedStore:
    def test_reruns_on_one_store_never_collide(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Project ids and command ids are namespaced per run; what a run wrote stays."""
        text = GOOD.replace(
            "- {do: negotiate, project: P1, by: zhao}",
            "- {do: negotiate, project: P1, by: zhao, command_id: req-1}",
        )
        write(tmp_path, "good.yaml", text)
        url = f"sqlite:///{tmp_path / 'shared.db'}"
        for _ in range(2):
            assert main(["scenario", "run", str(tmp_path / "good.yaml"), "--store", url]) == 0
        capsys.readouterr()
        assert main(["show", "--store", url]) == 0
        listed = capsys.readouterr().out.splitlines()
        assert len(listed) == 2 and all(line.startswith("good-") for line in listed)

    def test_a_run_fires_only_its_own_timers(self, tmp_path: Path) -> None:
        """Another run's pending deadline in the same store is left alone by this run's
        advance (its project's history gets no timer event)."""
        from approvalflow.stores import open_store

        pending = GOOD.replace(
            "- {do: negotiate, project: P1, by: zhao}",
            "- {do: negotiate, project: P1, by: zhao}\n"
            "  - {do: submit_pre_review, project: P1, by: zhao, args: {materials: []}}",
        ).replace("P1: negotiating", "P1: pre_review")
        later = GOOD.replace("  - expect:", "  - advance: 30 days\n  - expect:")
        write(tmp_path, "a_pending.yaml", pending)
        write(tmp_path, "b_later.yaml", later)
        url = f"sqlite:///{tmp_path / 'shared.db'}"
        assert main(["scenario", "run", str(tmp_path), "--store", url]) == 0
        store = open_store(url)
        try:
            (first,) = [p for p in store.project_ids() if p.startswith("a_pending-")]
            assert [t.kind for t in store.timers(first)] == ["pre_review_deadline"]
            assert all(event.by is not None for event in store.events(first))
        finally:
            store.close()

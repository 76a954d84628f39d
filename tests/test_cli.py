"""The CLI beyond scenario runs: show, audit verify and worker, on a store filled by scenarios."""

from __future__ import annotations

import sqlite3
import textwrap
from pathlib import Path

import pytest

from approvalflow.cli import main

SCENARIO = textwrap.dedent(
    """\
    scenario: A signed project in approval, one branch deficient
    start: 2026-03-02 09:00
    actors:
      guo: {roles: [recruiter]}
      fuyuan: {roles: [applicant]}
      huang: {roles: [leader]}
      chair: {roles: [chair, member]}
      m1: {roles: [member]}
      r_gxj: {roles: [reviewer], department: gxj}
      r_fgw: {roles: [reviewer], department: fgw}
      r_zrzy: {roles: [reviewer], department: zrzy}
      r_sthj: {roles: [reviewer], department: sthj}
      o_zj: {roles: [officer], department: zj}
    steps:
      - create: P1
        by: guo
        project: {name: 华晋磁材年产千吨磁材, investment: 1亿, applicant: fuyuan, leader: huang,
                  department: gxj, team: new_materials}
      - {do: negotiate, project: P1, by: guo}
      - {do: submit_pre_review, project: P1, by: guo, args: {materials: [business_license]}}
      - {do: opinion, project: P1, by: r_gxj, args: {verdict: pass}}
      - {do: opinion, project: P1, by: r_fgw, args: {verdict: pass}}
      - {do: opinion, project: P1, by: r_zrzy, args: {verdict: pass}}
      - {do: opinion, project: P1, by: r_sthj, args: {verdict: pass}}
      - {do: convene, project: P1, by: chair, args: {present: [chair, m1]}}
      - {do: vote, project: P1, by: chair, args: {vote: approve}}
      - {do: vote, project: P1, by: m1, args: {vote: approve}}
      - {do: close_meeting, project: P1, by: chair}
      - {do: sign, project: P1, by: guo}
      - {do: apply, project: P1, by: fuyuan, args: {departments: [zj]}}
      - {do: accept, project: P1, by: o_zj, args: {deficient: [site_photos]}}
      - expect:
          P1.approval.zj: deficient
    """
)


# The same story, with zj handed to o_zj2, who entrusts o_zj3 until 03-04; the leader copies the
# project to lu.
HANDLED = SCENARIO.replace(
    "  o_zj: {roles: [officer], department: zj}\n",
    "  o_zj: {roles: [officer], department: zj}\n"
    "  o_zj2: {roles: [officer], department: zj}\n"
    "  o_zj3: {roles: [officer], department: zj}\n"
    "  zj_head: {roles: [head], department: zj}\n"
    "  lu: {roles: [leader]}\n",
).replace(
    "  - {do: accept, project: P1, by: o_zj, args: {deficient: [site_photos]}}\n",
    "  - {do: transfer, project: P1, by: zj_head, args: {to: o_zj2, reason: 专人负责}}\n"
    "  - {do: entrust, project: P1, by: o_zj2, args: {to: o_zj3, until: 2026-03-04}}\n"
    "  - {do: accept, project: P1, by: o_zj3, args: {deficient: [site_photos]}}\n"
    "  - {do: copy, project: P1, by: huang, args: {to: [lu], note: 请关注}}\n",
)


@pytest.fixture
def filled(tmp_path: Path) -> str:
    """A SQLite store holding one scenario run; returns its URL."""
    (tmp_path / "story.yaml").write_text(SCENARIO, encoding="utf-8")
    url = f"sqlite:///{tmp_path / 'county.db'}"
    assert main(["scenario", "run", str(tmp_path / "story.yaml"), "--store", url]) == 0
    return url


def project_id(url: str, capsys: pytest.CaptureFixture[str]) -> str:
    capsys.readouterr()
    assert main(["show", "--store", url]) == 0
    return capsys.readouterr().out.split()[0]


class TestShow:
    def test_lists_projects_then_shows_one_with_deadlines_and_holder(
        self, filled: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """The project's branch, its open deadlines in working days left, and who holds it up."""
        project = project_id(filled, capsys)
        assert project.startswith("story-") and project.endswith("-P1")
        assert main(["show", project, "--store", filled, "--at", "2026-03-04 10:00"]) == 0
        out = capsys.readouterr().out
        assert "approval (并联审批)" in out
        assert "zj    住建      deficient (容缺受理)  missing: 现场照片 (site_photos)" in out
        assert f"{project}.approval.zj" in out and "2026-03-11 24:00  5 wd left" in out
        assert f"{project}.approval.zj.supply" in out
        assert "Holding it up: 住建 (zj), deficient, due 2026-03-11 24:00" in out
        assert "stage_changed             signed -> approval" in out
        # What the stage allows, by title with the id the commands take.
        assert "The stage takes: " in out
        assert "受理 (accept)" in out and "撤回 (withdraw)" in out

    def test_shows_the_handler_the_acting_deputy_and_the_copies(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """The branch line and the holder name o_zj2 and o_zj3; the timeline shows the deputy
        acting for the handler; after 03-04 the entrustment shows as ended."""
        (tmp_path / "story.yaml").write_text(HANDLED, encoding="utf-8")
        url = f"sqlite:///{tmp_path / 'county.db'}"
        assert main(["scenario", "run", str(tmp_path / "story.yaml"), "--store", url]) == 0
        project = project_id(url, capsys)
        assert main(["show", project, "--store", url, "--at", "2026-03-04 10:00"]) == 0
        out = capsys.readouterr().out
        assert "  copied to lu\n" in out
        assert (
            "zj    住建      deficient (容缺受理)  missing: 现场照片 (site_photos)  "
            "handler: o_zj2  deputy: o_zj3 until 2026-03-04 24:00\n"
        ) in out
        assert (
            "Holding it up: 住建 (zj), deficient, handled by o_zj2 (entrusted to o_zj3), "
            "due 2026-03-11 24:00"
        ) in out
        assert "deficient department=zj" in out and "by o_zj3 for o_zj2" in out
        assert main(["show", project, "--store", url, "--at", "2026-03-05 10:00"]) == 0
        out = capsys.readouterr().out
        assert "deputy: o_zj3 until 2026-03-04 24:00, ended" in out
        assert "Holding it up: 住建 (zj), deficient, handled by o_zj2, due" in out

    def test_an_unknown_project_is_an_error(
        self, filled: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Exit status 1 and the reason."""
        assert main(["show", "NOPE", "--store", filled]) == 1
        assert "no project 'NOPE'" in capsys.readouterr().err


class TestAudit:
    def test_an_intact_chain_verifies_and_prints_its_head(
        self, filled: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """OK with the count and head; the head given back with --expect verifies too."""
        capsys.readouterr()
        assert main(["audit", "verify", "--store", filled]) == 0
        out = capsys.readouterr().out
        assert out.startswith("OK: ")
        head = out.split("head: ")[1].splitlines()[0].strip()
        assert "unanchored: " in out
        assert main(["audit", "verify", "--store", filled, "--expect", head]) == 0

    def test_an_edited_event_is_named(
        self, filled: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Changing one stored payload by hand makes verify fail at that event."""
        path = filled.removeprefix("sqlite:///")
        with sqlite3.connect(path) as db:
            db.execute(
                "UPDATE events SET payload = replace(payload, 'business_license', 'x') "
                "WHERE type = 'materials_submitted'"
            )
        capsys.readouterr()
        assert main(["audit", "verify", "--store", filled]) == 1
        out = capsys.readouterr().out
        assert out.startswith("FAIL: 1 findings") and ", version 5: " in out and "edited" in out

    def test_removing_the_newest_events_is_caught_with_an_expected_head(
        self, filled: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """With the head recorded before, deleting the last event (and its project's row
        version) is still found."""
        capsys.readouterr()
        main(["audit", "verify", "--store", filled])
        head = capsys.readouterr().out.split("head: ")[1].splitlines()[0].strip()
        path = filled.removeprefix("sqlite:///")
        with sqlite3.connect(path) as db:
            db.execute("DELETE FROM events WHERE seq = (SELECT max(seq) FROM events)")
            db.execute("UPDATE projects SET version = version - 1")
        assert main(["audit", "verify", "--store", filled, "--expect", head]) == 1


class TestWorker:
    def test_once_fires_what_is_due_and_delivers(
        self, filled: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Months later every deadline of the scenario is past: the worker fires them once."""
        assert main(["worker", "--store", filled, "--once"]) == 0
        assert "timers fired" in capsys.readouterr().err
        project = project_id(filled, capsys)
        main(["show", project, "--store", filled])
        out = capsys.readouterr().out
        assert "revoked (已撤销)" in out
        assert main(["worker", "--store", filled, "--once"]) == 0
        assert "0 timers fired" in capsys.readouterr().err


class TestReports:
    def test_the_leaderboard_ranks_teams_in_the_month(
        self, filled: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """The scenario's team earned 1+1+2+3+5 points in March 2026; JSON for machines."""
        capsys.readouterr()
        assert (
            main(
                [
                    "report",
                    "leaderboard",
                    "--month",
                    "2026-03",
                    "--store",
                    filled,
                    "--format",
                    "json",
                ]
            )
            == 0
        )
        rows = __import__("json").loads(capsys.readouterr().out)
        assert rows == [
            {
                "rank": 1,
                "team": "new_materials",
                "team_name": "new_materials",
                "points": 12,
                "previous_rank": None,
                "previous_points": 0,
                "change": "new",
            }
        ]
        assert main(["report", "leaderboard", "--month", "2026-04", "--store", filled]) == 0
        assert "(no rows)" in capsys.readouterr().out
        assert main(["report", "leaderboard", "--month", "March", "--store", filled]) == 2

    def test_metrics_as_csv_per_team(self, filled: str, capsys: pytest.CaptureFixture[str]) -> None:
        """One signed project of 1亿, nothing started: start rate 0."""
        capsys.readouterr()
        assert main(["report", "metrics", "--store", filled, "--format", "csv"]) == 0
        lines = capsys.readouterr().out.splitlines()
        assert lines[0].startswith("scope,name,display_name,signed_count,signed_amount,start_rate")
        assert lines[1].startswith("all,,,1,100000000,0.0,0.0,0,0.0")
        assert lines[2].startswith("team,new_materials,new_materials,1,100000000")

    def test_metrics_of_the_projects_signed_in_a_month(
        self, filled: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """The project was signed in March: March's rows are the report's, April has none."""
        capsys.readouterr()
        base = ["report", "metrics", "--store", filled, "--format", "csv"]
        assert main([*base, "--month", "2026-03"]) == 0
        march = capsys.readouterr().out.splitlines()
        assert march[1].startswith("all,,,1,100000000,0.0,0.0,0,0.0")
        assert march[2].startswith("team,new_materials,new_materials,1,100000000")
        assert main([*base, "--month", "2026-04"]) == 0
        april = capsys.readouterr().out.splitlines()
        assert april[1].startswith("all,,,0,0,")
        assert not any(line.startswith("team,") for line in april)
        assert main([*base, "--month", "2026-4"]) == 2
        assert "--month takes YYYY-MM" in capsys.readouterr().err

    def test_late_items_by_department(
        self, filled: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """zj's deficient branch was due 2026-03-11 24:00: late on 03-13 by 2 working days."""
        capsys.readouterr()
        assert (
            main(
                [
                    "report",
                    "late",
                    "--store",
                    filled,
                    "--at",
                    "2026-03-13 10:00",
                    "--format",
                    "json",
                ]
            )
            == 0
        )
        rows = __import__("json").loads(capsys.readouterr().out)
        assert [
            (r["department"], r["department_name"], r["what"], r["due"], r["wd_overdue"])
            for r in rows
        ] == [("zj", "住建", "approval", "2026-03-11 24:00", 2)]
        assert (rows[0]["handler"], rows[0]["deputy"]) == ("", "")
        assert main(["report", "late", "--store", filled, "--at", "2026-03-10 10:00"]) == 0
        assert "(no rows)" in capsys.readouterr().out

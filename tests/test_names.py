"""Display names: people, teams, departments and materials by name, ids kept as the keys.

`Names` gathers them from the county's settings and the actor directory; `show` and `report`
print `name (id)` and their JSON/CSV keep each id with a `*_name` beside it; amounts print the
way people write them, exactly.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from builders import County

from approvalflow import Actor
from approvalflow.cli import main
from approvalflow.display import COMMAND_NAMES, TRANSITION_NAMES
from approvalflow.errors import SettingsError
from approvalflow.money import MAX_YUAN, format_amount, parse_amount
from approvalflow.names import KINDS, Names
from approvalflow.rules.commands import BUILTIN_COMMANDS
from approvalflow.settings import Settings
from approvalflow.states import investment_project

TEAMS = {"light_alloy": "轻合金招商小分队"}


def names() -> Names:
    settings = Settings.default().merged({"teams": TEAMS})
    actors = [
        Actor("guo", ["recruiter"], name="郭强"),
        Actor("huang", ["leader"], name="黄副县长"),
        Actor("m1", ["member"]),
    ]
    return Names.of(settings, actors)


class TestNames:
    def test_each_kind_answers_its_display_name(self) -> None:
        """Actors from the directory, departments/teams/materials from the settings, states,
        commands and cards from display.py."""
        found = names()
        assert found.actor("guo") == "郭强"
        assert found.team("light_alloy") == "轻合金招商小分队"
        assert found.department("fgw") == "发改"
        assert found.material("business_license") == "营业执照"
        assert found.state("approval") == "并联审批"
        assert found.branch_state("deficient") == "容缺受理"
        assert found.command("accept") == "受理"
        assert found.card("yellow") == "黄牌"

    def test_an_unknown_id_is_shown_as_itself(self) -> None:
        """Never an error: an actor without a name, an unknown team or command keeps its id."""
        found = names()
        assert found.actor("m1") == "m1"
        assert found.actor("nobody") == "nobody"
        assert found.team("digital") == "digital"
        assert found.department("rf") == "rf"
        assert found.command("county.raise_issue") == "county.raise_issue"
        assert found.state("somewhere") == "somewhere"

    def test_labelled_is_name_then_id_or_the_id_alone(self) -> None:
        found = names()
        assert found.labelled("actor", "guo") == "郭强 (guo)"
        assert found.labelled("department", "zj") == "住建 (zj)"
        assert found.labelled("actor", "m1") == "m1"
        assert found.many("actor", ["guo", "m1"]) == "郭强 (guo), m1"
        with pytest.raises(ValueError, match="unknown kind of name 'person'"):
            found.labelled("person", "guo")
        for kind in KINDS:
            assert found.labelled(kind, "no_such_id") == "no_such_id"

    def test_approval_stages_are_states_by_their_names(self) -> None:
        settings = Settings.default().merged({"approval": {"stages": "national"}})
        found = Names.of(settings)
        first = settings.approval.stages[0]
        assert found.state(first.id) == first.name

    def test_names_are_frozen(self) -> None:
        found = names()
        with pytest.raises(TypeError):
            found.actors["guo"] = "x"  # type: ignore[index]


class TestDisplayTables:
    def test_every_builtin_command_has_a_chinese_name(self) -> None:
        """rules/commands.py's table and COMMAND_NAMES list the same commands."""
        assert set(BUILTIN_COMMANDS) <= set(COMMAND_NAMES)
        assert set(COMMAND_NAMES) <= set(BUILTIN_COMMANDS)
        for name in COMMAND_NAMES.values():
            assert any("\u4e00" <= char <= "\u9fff" for char in name), name

    def test_every_transition_of_both_machines_has_a_name(self) -> None:
        machines = investment_project()
        triggers = {spec["trigger"] for spec in machines.stages.transitions}
        triggers |= {spec["trigger"] for spec in machines.branch.transitions}
        assert triggers - set(TRANSITION_NAMES) == set()


class TestTeamsSetting:
    def test_teams_are_set_like_departments(self) -> None:
        settings = Settings.default().merged({"teams": TEAMS})
        assert settings.team_name("light_alloy") == "轻合金招商小分队"
        assert settings.team_name("digital") == "digital"
        assert Settings.default().teams == {}

    @pytest.mark.parametrize("bad", ["", "  ", "两行\n名字", "x" * 65])
    def test_a_bad_team_name_is_refused(self, bad: str) -> None:
        with pytest.raises(SettingsError, match=r"settings\.teams\.light_alloy"):
            Settings.default().merged({"teams": {"light_alloy": bad}})

    def test_a_team_name_must_be_text(self) -> None:
        with pytest.raises(SettingsError, match="teams"):
            Settings.default().merged({"teams": {"light_alloy": 3}})


class TestFormatAmount:
    @pytest.mark.parametrize(
        ("yuan", "text"),
        [
            (0, "0元"),
            (1234, "1,234元"),
            (10_000, "1万"),
            (28_000_000, "2,800万"),
            (28_005_000, "2,800.5万"),
            (350_000_000, "3.5亿"),
            (1_500_000_000, "15亿"),
            (150_000_000_000, "1,500亿"),
            (100_010_000, "1.0001亿"),
            (123_456_789, "1.23456789亿"),
            (99_999_999, "9,999.9999万"),
            (9_999, "9,999元"),
        ],
    )
    def test_amounts_as_people_write_them(self, yuan: int, text: str) -> None:
        assert format_amount(yuan) == text

    def test_what_is_printed_reads_back_to_the_same_yuan(self) -> None:
        """Exact both ways: no float anywhere (a float would print 0.30000000000000004亿)."""
        rng = random.Random(16)
        samples = [MAX_YUAN, 30_000_000, 10**8 - 1, 10**8 + 1]
        samples += [rng.randrange(MAX_YUAN) for _ in range(2000)]
        samples += [rng.randrange(10**11) * 10**4 for _ in range(2000)]
        for yuan in samples:
            assert parse_amount(format_amount(yuan)) == yuan, yuan

    def test_only_whole_yuan(self) -> None:
        with pytest.raises(TypeError):
            format_amount(1.5)  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            format_amount(True)


PEOPLE = """\
guo: {name: 郭强, roles: [recruiter], teams: [new_materials]}
fuyuan: {name: 华晋磁材, roles: [applicant]}
huang: {name: 黄副县长, roles: [leader]}
o_zj: {name: 住建局审批科, roles: [officer], department: zj}
"""


@pytest.fixture
def filled(tmp_path: Path) -> str:
    """test_cli's story in a SQLite store (guo, huang, fuyuan; zj deficient and late)."""
    from test_cli import SCENARIO

    (tmp_path / "story.yaml").write_text(SCENARIO, encoding="utf-8")
    url = f"sqlite:///{tmp_path / 'county.db'}"
    assert main(["scenario", "run", str(tmp_path / "story.yaml"), "--store", url]) == 0
    (tmp_path / "people.yaml").write_text(PEOPLE, encoding="utf-8")
    return url


def _project(url: str, capsys: pytest.CaptureFixture[str]) -> str:
    capsys.readouterr()
    assert main(["show", "--store", url]) == 0
    return capsys.readouterr().out.split()[0]


class TestShowByName:
    def test_people_appear_by_name_with_the_actors_file(
        self, filled: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        project = _project(filled, capsys)
        people = str(tmp_path / "people.yaml")
        argv = ["show", project, "--store", filled, "--at", "2026-03-04 10:00"]
        assert main([*argv, "--actors", people]) == 0
        out = capsys.readouterr().out
        assert (
            "  applicant 华晋磁材 (fuyuan) · leader 黄副县长 (huang) · department 工信 (gxj) · "
            "team new_materials · recruiter 郭强 (guo)\n"
        ) in out
        assert "住建      deficient (容缺受理)  missing: 现场照片 (site_photos)" in out
        assert "by 郭强 (guo)" in out and "by 住建局审批科 (o_zj)" in out
        assert "决策结果 (decision) to 郭强 (guo), 黄副县长 (huang)" in out
        # Without the file the ids stand alone, the units still by name.
        assert main(argv) == 0
        out = capsys.readouterr().out
        assert "leader huang · department 工信 (gxj)" in out and "by guo" in out

    def test_a_missing_or_bad_actors_file_is_a_usage_error(
        self, filled: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Exit 2, the reason on stderr with the line, no traceback, nothing printed."""
        project = _project(filled, capsys)
        assert main(["show", project, "--store", filled, "--actors", "nope.yaml"]) == 2
        captured = capsys.readouterr()
        assert captured.out == "" and "--actors" in captured.err
        assert "Traceback" not in captured.err
        bad = tmp_path / "bad.yaml"
        bad.write_text("guo: {name: 郭强, roles: [recruiter]}\nhuang: [leader]\n", "utf-8")
        assert main(["report", "late", "--store", filled, "--actors", str(bad)]) == 2
        captured = capsys.readouterr()
        assert captured.out == "" and "bad.yaml:2: $.huang" in captured.err
        assert "Traceback" not in captured.err


class TestReportsByName:
    def test_late_items_name_department_and_people(
        self, filled: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """JSON keeps the ids with `*_name` beside them; the table prints `name (id)`."""
        argv = ["report", "late", "--store", filled, "--at", "2026-03-13 10:00"]
        people = ["--actors", str(tmp_path / "people.yaml")]
        capsys.readouterr()
        assert main([*argv, "--format", "json", *people]) == 0
        (row,) = json.loads(capsys.readouterr().out)
        assert (row["department"], row["department_name"]) == ("zj", "住建")
        assert row["project_name"] == "华晋磁材年产千吨磁材"
        assert main([*argv, *people]) == 0
        table = capsys.readouterr().out
        assert "住建 (zj)" in table and "department_name" not in table
        assert f"华晋磁材年产千吨磁材 ({row['project']})" in table
        assert main([*argv, "--format", "csv"]) == 0
        header = capsys.readouterr().out.splitlines()[0].split(",")
        assert header[:2] == ["department", "department_name"]

    def test_metrics_print_amounts_as_people_write_them(
        self, filled: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """1亿 signed: the table says 1亿, JSON keeps whole yuan."""
        capsys.readouterr()
        assert main(["report", "metrics", "--store", filled]) == 0
        table = capsys.readouterr().out
        all_row = next(line for line in table.splitlines() if line.startswith("all "))
        assert "1亿" in all_row and "100000000" not in table
        assert main(["report", "metrics", "--store", filled, "--format", "json"]) == 0
        rows = json.loads(capsys.readouterr().out)
        assert rows[0]["signed_amount"] == 100_000_000
        team = next(row for row in rows if row["scope"] == "team")
        assert (team["name"], team["display_name"]) == ("new_materials", "new_materials")

    def test_team_names_from_the_settings(self) -> None:
        """A county's `teams` setting names the 赛马榜's teams; the table shows both."""
        from approvalflow.cli.report import _render, leaderboard_rows, metrics_rows

        county = County(settings={"teams": TEAMS})
        county.to_signed()
        rows = leaderboard_rows(county.engine, "2026-03")
        assert [(r["team"], r["team_name"], r["points"]) for r in rows] == [
            ("light_alloy", "轻合金招商小分队", 12)
        ]
        assert "轻合金招商小分队 (light_alloy)" in _render(rows, "table", "赛马榜")
        team = next(r for r in metrics_rows(county.engine) if r["scope"] == "team")
        assert team["display_name"] == "轻合金招商小分队"
        county.do("apply", "P1", "fuyuan")
        county.approve_all()
        departments = [r for r in metrics_rows(county.engine) if r["scope"] == "department"]
        assert {(r["name"], r["display_name"]) for r in departments} >= {("fgw", "发改")}


def test_the_tutorial_people_file_shape_is_the_services() -> None:
    """`--actors` takes the very file `serve` takes (examples/java/actors.yaml)."""
    from approvalflow.cli.worker import load_actors

    actors = load_actors(Path(__file__).parents[1] / "examples" / "java" / "actors.yaml")
    found = Names.of(Settings.default(), actors)
    assert found.labelled("actor", "guo") == "郭强 (guo)"
    assert found.labelled("actor", "huang") == "黄副县长 (huang)"


def test_huguan_names_its_five_squads_on_the_leaderboard(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The seed's "五支专项招商小分队" by name in `report leaderboard`, ids kept in JSON."""
    url = f"sqlite:///{tmp_path / 'huguan.db'}"
    scenarios = Path(__file__).parents[1] / "scenarios" / "huguan"
    assert main(["scenario", "run", str(scenarios), "--store", url]) == 0
    capsys.readouterr()
    argv = ["report", "leaderboard", "--month", "2026-03", "--store", url, "--plugin", "huguan"]
    assert main([*argv, "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    named = {row["team"]: row["team_name"] for row in rows}
    assert named.get("new_energy") == "新能源产业招商小分队", named
    assert main(argv) == 0
    assert "新能源产业招商小分队 (new_energy)" in capsys.readouterr().out


@pytest.mark.parametrize("county", ["huguan", "jiangle", "gaoqing", "shangnan", "county_template"])
def test_every_county_command_has_a_title_the_names_answer(county: str) -> None:
    """A county's own commands carry a Chinese title (``CommandSpec.title``, D178), which
    ``Names.command`` answers in place of the id."""
    from approvalflow import Engine
    from approvalflow.rules.commands import BUILTIN_COMMANDS

    engine = Engine(actors=[], plugins=[county])
    own = {name: spec for name, spec in engine.commands.items() if name not in BUILTIN_COMMANDS}
    assert own  # (Jiaocheng adds no command of its own)
    names = Names.of(engine.settings, engine.actors, engine.commands)
    for name, spec in own.items():
        assert spec.title, name
        assert names.command(name) == spec.title != name

"""Province reports: counties ranked on the seeds' rates and the month's points, the red and
black lists, departments across counties; each figure is the county's own report's."""

from __future__ import annotations

from datetime import timedelta
from fractions import Fraction

import pytest
from builders import County

from approvalflow.province import COUNTY_MEASURES, Province


def started(county: County, project: str, *, funds: str | None = None) -> None:
    county.to_approval(project)
    county.approve_all(project)
    county.do("start_construction", project, "fuyuan")
    if funds:
        county.do("report_funds", project, "guo", amount=funds)


@pytest.fixture
def counties() -> dict[str, County]:
    """Huguan: 2 signed, 1 started (3亿 in place of 30亿); Jiaocheng: 1 signed, 1 started
    (15亿 in place); Gaoqing: nothing signed yet, one project in pre-review."""
    huguan, jiaocheng, gaoqing = County(), County(), County()
    started(huguan, "H1", funds="3亿")
    huguan.to_signed("H2")
    started(jiaocheng, "J1", funds="15亿")
    gaoqing.to_pre_review("G1")
    return {"huguan": huguan, "jiaocheng": jiaocheng, "gaoqing": gaoqing}


@pytest.fixture
def province(counties: dict[str, County]) -> Province:
    return Province(
        {name: county.engine for name, county in counties.items()},
        names={"huguan": "壶关县", "jiaocheng": "交城县", "gaoqing": "高青县"},
    )


class TestCountyRanking:
    def test_the_figures_are_each_countys_own_report(
        self, every_store: str, province: Province, counties: dict[str, County]
    ) -> None:
        """A province figure is the county's own ``metrics`` and the sum of its own board, on
        every store (the SQL stores add them up from the counts their commits keep, D313)."""
        counties["huguan"].do("terminate", "H2", "huang", reason="违约")  # signed, then not
        figures = province.county_figures("2026-03")
        for name, county in counties.items():
            own = county.engine.metrics(plugins=False)
            for measure in COUNTY_MEASURES[:-1]:
                assert figures[name][measure] == own[measure], (name, measure)
            board = county.engine.leaderboard("2026-03")
            assert figures[name]["points"] == sum(row.points for row in board)
        assert figures["huguan"]["start_rate"] == Fraction(1, 2)
        assert figures["jiaocheng"]["start_rate"] == 1
        assert figures["gaoqing"]["start_rate"] is None

    def test_counties_ranked_best_first_and_without_a_value_last(self, province: Province) -> None:
        ranked = province.ranking("start_rate")
        assert [(r.rank, r.county, r.name) for r in ranked] == [
            (1, "jiaocheng", "交城县"),
            (2, "huguan", "壶关县"),
            (None, "gaoqing", "高青县"),
        ]
        assert ranked[0].value == 1

    def test_ties_share_a_rank_and_the_next_skips(self) -> None:
        one, two, three = County(), County(), County()
        for county in (one, two):
            county.to_signed("P1")
        three.to_pre_review("P1")
        province = Province({"a": one.engine, "b": two.engine, "c": three.engine})
        assert [(r.rank, r.county) for r in province.ranking("signed_count")] == [
            (1, "a"),
            (1, "b"),
            (3, "c"),
        ]

    def test_points_of_a_month(self, province: Province, counties: dict[str, County]) -> None:
        """March's 赛马榜 points: Huguan's two projects earned more than Jiaocheng's one."""
        ranked = province.ranking("points", month="2026-03")
        assert [r.county for r in ranked] == ["huguan", "jiaocheng", "gaoqing"]
        assert all(r.rank is not None for r in ranked)
        april = province.ranking("points", month="2026-04")
        assert {r.value for r in april} == {0}

    def test_red_and_black_lists(self, province: Province) -> None:
        found = province.red_black("funds_rate", 1)
        assert [r.county for r in found.red] == ["jiaocheng"]
        assert [r.county for r in found.black] == ["huguan"]
        both = province.red_black("funds_rate", 5)
        assert [r.county for r in both.red] == ["jiaocheng", "huguan"]
        assert [r.county for r in both.black] == ["huguan", "jiaocheng"]

    @pytest.mark.parametrize(
        ("measure", "kwargs", "message"),
        [
            ("speed", {}, "no county measure 'speed'"),
            ("points", {}, "give the month"),
        ],
    )
    def test_a_bad_measure_is_refused(
        self, province: Province, measure: str, kwargs: dict[str, str], message: str
    ) -> None:
        with pytest.raises(ValueError, match=message):
            province.ranking(measure, **kwargs)

    def test_a_list_names_at_least_one(self, province: Province) -> None:
        with pytest.raises(ValueError, match="at least one county"):
            province.red_black("start_rate", 0)


class TestDepartmentRanking:
    def test_departments_ranked_on_late_items_then_days_taken(
        self, counties: dict[str, County], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Huguan's branches of H2 and Gaoqing's pre-review run late; Jiaocheng's departments
        decided J1 on the day it was applied for. The late items are counted, not each made
        (the late board's groups: a province's 600 a county were seconds of CPU, D278)."""
        huguan = counties["huguan"]
        huguan.do("apply", "H2", "fuyuan")
        later = huguan.clock.now() + timedelta(days=40)
        province = Province({n: c.engine for n, c in counties.items()})

        def every_item(*_args: object) -> None:
            raise AssertionError("the ranking made every late item")

        for county in counties.values():
            monkeypatch.setattr(county.engine, "late_items", every_item)
        ranked = province.department_ranking(later)
        monkeypatch.undo()
        late = {(r.county, r.department): r.late for r in ranked}
        own = huguan.engine.late_items(later)
        assert {d: n for (c, d), n in late.items() if c == "huguan"} == {
            d: len(own.get(d, ())) for d in {d for (c, d) in late if c == "huguan"}
        }
        assert late[("huguan", "zrzy")] == 1
        assert late[("jiaocheng", "zrzy")] == 0
        assert late[("gaoqing", "zrzy")] == 1  # its pre-review unit, silent past 3 wd
        keys = [(r.late, r.avg_days is None, r.avg_days or 0) for r in ranked]
        assert keys == sorted(keys)
        assert ranked[0].late == 0 and ranked[0].avg_days == 0
        assert [r.rank for r in ranked] == sorted(r.rank for r in ranked)
        assert ranked[0].department_name  # named by the county's settings

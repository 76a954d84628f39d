"""Cross-county intake (异地受理, 省内通办; Jiaocheng's seed): an application accepted at one
county's hall for another county's project is created there, with the intake point recorded,
the handling county's own role checks deciding, and the accepting county seeing its status."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from builders import PROJECT_FIELDS, County

from approvalflow import Actor
from approvalflow.errors import InvalidCommand, NotAuthorized, ProvinceError, UnknownCounty
from approvalflow.province import INTAKE, Province


@pytest.fixture
def counties() -> dict[str, County]:
    """Huguan handles projects (its own directory, with guo as the intake receiver);
    Jiaocheng's hall has its window officer and a reviewer; Gaoqing takes in one too."""
    huguan = County(plugins=[INTAKE])
    jiaocheng = County(
        actors=[
            Actor("jc_window", ["agent"], name="交城县政务服务中心 王"),
            Actor("jc_reviewer", ["reviewer"], department="gxj"),
        ],
        plugins=[INTAKE],
    )
    gaoqing = County(actors=[Actor("gq_window", ["recruiter"], name="高青窗口")])
    return {"huguan": huguan, "jiaocheng": jiaocheng, "gaoqing": gaoqing}


@pytest.fixture
def province(counties: dict[str, County]) -> Province:
    return Province(
        {name: county.engine for name, county in counties.items()},
        names={"huguan": "壶关县", "jiaocheng": "交城县", "gaoqing": "高青县"},
        receivers={"huguan": "guo"},
    )


class TestIntake:
    def test_an_application_taken_in_elsewhere_is_handled_at_home_end_to_end(
        self, province: Province, counties: dict[str, County]
    ) -> None:
        """Jiaocheng's window takes in Huguan's project: it is created in Huguan by Huguan's
        receiver with the intake point; Huguan's people move it on; Jiaocheng's officer cannot
        act on it; Jiaocheng sees its stage, who holds it up and until when."""
        huguan = counties["huguan"]
        result = province.intake(
            "jiaocheng", "huguan", "HG-9", PROJECT_FIELDS, by="jc_window", hall="交城县政务服务中心"
        )
        assert result.version >= 1
        state = huguan.engine.project("HG-9")
        (created,) = [e for e in huguan.engine.history("HG-9") if e.type == "created"]
        assert created.by == "guo"  # Huguan's own receiver registered it
        point = state.extra["intake"]
        assert point["county"] == "jiaocheng" and point["by"] == "jc_window"
        assert point["hall"] == "交城县政务服务中心" and point["by_name"] == "交城县政务服务中心 王"
        assert point["at"] == counties["jiaocheng"].clock.now().isoformat()
        assert counties["jiaocheng"].engine.project_ids() == []  # nothing kept at the hall

        # Huguan's role checks still decide: the hall's officer is nobody in Huguan.
        with pytest.raises(NotAuthorized):
            huguan.engine.execute("negotiate", "HG-9", "jc_window", {})
        huguan.do("negotiate", "HG-9", "guo")
        huguan.do("submit_pre_review", "HG-9", "guo", materials=[])

        (status,) = province.intakes(at="jiaocheng")
        assert (status.project, status.county, status.county_name) == ("HG-9", "huguan", "壶关县")
        assert status.name == PROJECT_FIELDS["name"]
        assert status.stage == "pre_review.reviewing"
        assert status.stage_name == "即时初审"
        assert {party for party, _ in status.held_by} == {"gxj", "fgw", "zrzy", "sthj"}
        assert dict(status.held_by)["gxj"] == "工信"
        assert status.due == min(h.due for h in huguan.engine.holdups("HG-9"))
        assert status.accepted_by == "jc_window"

        huguan.pass_pre_review("HG-9")
        (moved,) = province.intakes(at="jiaocheng")
        assert moved.stage == "decision.pending"

    def test_the_accepting_county_sees_only_its_own_intakes(
        self, province: Province, counties: dict[str, County]
    ) -> None:
        counties["huguan"].create("HG-1")  # Huguan's own project
        province.intake("jiaocheng", "huguan", "HG-2", PROJECT_FIELDS, by="jc_window")
        province.intake("gaoqing", "huguan", "HG-3", PROJECT_FIELDS, by="gq_window")
        assert [s.project for s in province.intakes(at="jiaocheng")] == ["HG-2"]
        assert [s.project for s in province.intakes(at="gaoqing")] == ["HG-3"]
        assert province.intakes(at="huguan") == []

    @pytest.mark.parametrize(
        ("at", "county", "by", "error", "message"),
        [
            ("jiaocheng", "huguan", "jc_reviewer", NotAuthorized, "may not accept applications"),
            ("jiaocheng", "huguan", "guo", NotAuthorized, "not in its directory"),
            ("huguan", "jiaocheng", "guo", ProvinceError, "names no intake receiver"),
            ("jiaocheng", "shangnan", "jc_window", UnknownCounty, "no county 'shangnan'"),
            ("huguan", "huguan", "guo", InvalidCommand, "huguan's own"),
        ],
    )
    def test_a_refused_intake_changes_nothing(
        self,
        province: Province,
        counties: dict[str, County],
        at: str,
        county: str,
        by: str,
        error: type[Exception],
        message: str,
    ) -> None:
        with pytest.raises(error, match=message):
            province.intake(at, county, "X-1", PROJECT_FIELDS, by=by)
        assert all(c.engine.project_ids() == [] for c in counties.values())

    def test_the_handling_countys_checks_refuse_what_it_would_refuse(
        self, province: Province, counties: dict[str, County]
    ) -> None:
        """A leader Huguan does not have is refused by Huguan's own create, naming it."""
        with pytest.raises(InvalidCommand, match="leader 'nobody' is not in the actor directory"):
            province.intake(
                "jiaocheng", "huguan", "X-1", {**PROJECT_FIELDS, "leader": "nobody"}, by="jc_window"
            )
        with pytest.raises(InvalidCommand, match="the province's to record"):
            province.intake(
                "jiaocheng", "huguan", "X-1", {**PROJECT_FIELDS, "intake": {}}, by="jc_window"
            )
        assert counties["huguan"].engine.project_ids() == []

    def test_an_engine_without_the_intake_field_is_refused(self) -> None:
        plain = County()
        hall = County(actors=[Actor("w", ["agent"])])
        province = Province({"a": plain.engine, "b": hall.engine}, receivers={"a": "guo"})
        with pytest.raises(ProvinceError, match="lacks the intake field"):
            province.intake("b", "a", "X-1", PROJECT_FIELDS, by="w")

    def test_deadlines_run_in_the_handling_county(
        self, province: Province, counties: dict[str, County]
    ) -> None:
        """The intake's deadlines are Huguan's timers: they fire there, seen from Jiaocheng."""
        huguan = counties["huguan"]
        province.intake("jiaocheng", "huguan", "HG-5", PROJECT_FIELDS, by="jc_window")
        huguan.do("negotiate", "HG-5", "guo")
        huguan.do("submit_pre_review", "HG-5", "guo", materials=[])
        huguan.advance(timedelta(days=10))
        (status,) = province.intakes(at="jiaocheng")
        assert status.stage == huguan.stage("HG-5")


def _province_on(store: Any) -> tuple[Province, County]:
    """Huguan and Jiaocheng on one SQL store's county views, with Jiaocheng's window."""
    huguan = County(plugins=[INTAKE], store=store.for_county("huguan"))
    jiaocheng = County(
        actors=[Actor("jc_window", ["agent"], name="交城县政务服务中心 王")],
        plugins=[INTAKE],
        store=store.for_county("jiaocheng"),
    )
    province = Province(
        {"huguan": huguan.engine, "jiaocheng": jiaocheng.engine}, receivers={"huguan": "guo"}
    )
    return province, huguan


@pytest.fixture(params=["sqlite", "postgres"])
def sql_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """An empty SQLite or PostgreSQL store that keeps county views."""
    if request.param == "sqlite":
        from approvalflow.stores.sqlite import SQLiteStore

        store: Any = SQLiteStore(str(tmp_path / "province.db"))
        yield store
        store.close()
        return
    from approvalflow.stores.postgres import PostgresStore

    url = request.getfixturevalue("postgres_url")
    store = PostgresStore.from_url(url, schema=f"t_{uuid.uuid4().hex[:12]}")
    try:
        yield store
    finally:
        store.drop()


class TestIntakeQuery:
    """The accepting county's list reads the intake index (D275), not every project."""

    def test_the_store_finds_the_projects_taken_in_at_a_hall_and_no_others(
        self, sql_store: Any
    ) -> None:
        """``intake_projects`` names the projects of the county whose intake names the hall:
        not the county's own projects, not those taken in at another hall."""
        province, huguan = _province_on(sql_store)
        province.intake("jiaocheng", "huguan", "HG-9", PROJECT_FIELDS, by="jc_window")
        huguan.create("HG-1")
        view = sql_store.for_county("huguan")
        assert view.intake_projects("jiaocheng") == ["HG-9"]
        assert view.intake_projects("gaoqing") == []
        assert sql_store.for_county("jiaocheng").intake_projects("jiaocheng") == []

    def test_intakes_load_no_project_the_index_does_not_name(
        self, sql_store: Any, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """With the store's query, listing what Jiaocheng took in never reads every project
        of Huguan (which the list would, project by project, without it)."""
        province, huguan = _province_on(sql_store)
        for n in range(3):
            huguan.create(f"HG-{n}")
        province.intake("jiaocheng", "huguan", "HG-9", PROJECT_FIELDS, by="jc_window")

        projects = huguan.engine.projects
        asked: list[Any] = []

        def only_named(ids: Any = None) -> Any:
            assert ids is not None, "intakes loaded every project"
            asked.append(list(ids))
            return projects(asked[-1])

        monkeypatch.setattr(huguan.engine, "projects", only_named)
        (status,) = province.intakes(at="jiaocheng")
        assert (status.project, status.county, status.stage) == ("HG-9", "huguan", "lead")
        assert asked == [["HG-9"]]

    def test_a_version_12_store_gains_the_index_and_finds_its_earlier_intakes(
        self, tmp_path: Path
    ) -> None:
        """Migration 13 builds ``events_by_intake`` over the events already there: a project
        taken in before the upgrade is found after it."""
        import sqlite3

        from approvalflow.stores import schema
        from approvalflow.stores.sqlite import SQLiteStore

        path = str(tmp_path / "v12.db")
        store = SQLiteStore(path)
        province, _ = _province_on(store)
        province.intake("jiaocheng", "huguan", "HG-9", PROJECT_FIELDS, by="jc_window")
        store.close()
        # Version 12 is version 13 without the index: take the store back to it.
        with sqlite3.connect(path) as connection:
            connection.execute(f"DROP INDEX {schema.INTAKE_INDEX}")
            connection.execute("UPDATE meta SET schema_version = 12")
        store = SQLiteStore(path)
        try:
            with sqlite3.connect(path) as connection:
                found = connection.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'index' AND name = ?",
                    (schema.INTAKE_INDEX,),
                ).fetchall()
                version = connection.execute("SELECT schema_version FROM meta").fetchone()
            assert found == [(schema.INTAKE_INDEX,)] and version == (schema.SCHEMA_VERSION,)
            assert store.for_county("huguan").intake_projects("jiaocheng") == ["HG-9"]
        finally:
            store.close()

"""A province: the counties one host serves, from engines or a counties file."""

from __future__ import annotations

from pathlib import Path

import pytest
from builders import County

from approvalflow import Engine
from approvalflow.errors import CountiesFileError, ProvinceError, ScenarioFileError, UnknownCounty
from approvalflow.province import Province, load_counties
from approvalflow.stores import MemoryStore

HU = "$.counties.huguan"
ACTORS = """\
guo: {name: 郭强, roles: [recruiter], teams: [light_alloy]}
fuyuan: {name: 富远铝业, roles: [applicant]}
"""


def write_counties(tmp_path: Path, body: str) -> Path:
    (tmp_path / "huguan-actors.yaml").write_text(ACTORS, encoding="utf-8")
    (tmp_path / "jiaocheng-actors.yaml").write_text(
        "zhao: {name: 招商专班, roles: [recruiter]}\n", encoding="utf-8"
    )
    path = tmp_path / "counties.yaml"
    path.write_text(body, encoding="utf-8")
    return path


def two_stores(tmp_path: Path) -> str:
    return f"""\
store: sqlite:///{tmp_path}/province.db
counties:
  huguan:
    name: 壶关县
    plugins: [huguan]
    actors: huguan-actors.yaml
    settings: {{pre_review: {{members: [gxj, fgw]}}}}
    store: sqlite:///{tmp_path}/huguan.db
  jiaocheng:
    name: 交城县
    plugins: [jiaocheng]
    actors: jiaocheng-actors.yaml
    store: sqlite:///{tmp_path}/jiaocheng.db
"""


class TestFromEngines:
    def test_a_province_maps_each_county_to_its_engine(self) -> None:
        """The counties in the order given, each engine under its id, with display names."""
        huguan, jiaocheng = County().engine, County().engine
        province = Province({"huguan": huguan, "jiaocheng": jiaocheng}, names={"huguan": "壶关县"})
        assert province.counties == ["huguan", "jiaocheng"]
        assert province.engine("huguan") is huguan
        assert province["jiaocheng"] is jiaocheng
        assert province.name("huguan") == "壶关县"
        assert province.name("jiaocheng") == "jiaocheng"
        assert dict(province) == {"huguan": huguan, "jiaocheng": jiaocheng}

    def test_an_unknown_county_is_refused_with_the_served_ones(self) -> None:
        """Asking for a county the province does not serve names the ones it does."""
        province = Province({"huguan": County().engine})
        with pytest.raises(UnknownCounty, match=r"no county 'gaoqing' \(it serves huguan\)"):
            province.engine("gaoqing")
        with pytest.raises(UnknownCounty):
            province["gaoqing"]
        with pytest.raises(UnknownCounty):
            province.name("gaoqing")

    @pytest.mark.parametrize("county", ["Huguan", "1county", "hu-guan", "", "a" * 33])
    def test_a_county_id_must_look_like_one(self, county: str) -> None:
        with pytest.raises(ProvinceError, match="not a county id"):
            Province({county: County().engine})

    def test_two_counties_on_one_store_without_views_are_refused(self) -> None:
        """One county's projects must never be read as another's: a shared store is refused
        unless it keeps county views."""
        store = MemoryStore()
        one, two = County(store=store).engine, County(store=store).engine
        with pytest.raises(ProvinceError, match="huguan and jiaocheng are given one store"):
            Province({"huguan": one, "jiaocheng": two})

    def test_an_empty_province_is_refused(self) -> None:
        with pytest.raises(ProvinceError, match="at least one county"):
            Province({})


class TestCountiesFile:
    def test_each_county_gets_its_plugins_actors_and_settings(self, tmp_path: Path) -> None:
        """A county's plugins and settings are its own: none leaks into another's engine."""
        path = write_counties(tmp_path, two_stores(tmp_path))
        province = Province.open(path, create=True)
        try:
            huguan, jiaocheng = province.engine("huguan"), province.engine("jiaocheng")
            assert province.names == {"huguan": "壶关县", "jiaocheng": "交城县"}
            assert "huguan" in huguan.definition.plugin_names
            assert "huguan" not in jiaocheng.definition.plugin_names
            assert "jiaocheng" in jiaocheng.definition.plugin_names
            assert huguan.settings.pre_review.members == ("gxj", "fgw")
            assert jiaocheng.settings.pre_review.members != ("gxj", "fgw")
            assert huguan.actors.get("guo") is not None
            assert jiaocheng.actors.get("guo") is None
            assert jiaocheng.actors.get("zhao") is not None
            assert huguan.store is not jiaocheng.store
            assert province.store is not huguan.store
        finally:
            province.close()

    def test_a_project_of_one_county_is_not_in_the_other(self, tmp_path: Path) -> None:
        path = write_counties(tmp_path, two_stores(tmp_path))
        province = Province.open(path, create=True)
        try:
            County(store=province.engine("huguan").store).create("P1")
            assert province.engine("huguan").project_ids() == ["P1"]
            assert province.engine("jiaocheng").project_ids() == []
        finally:
            province.close()

    def test_the_store_url_given_replaces_the_files(self, tmp_path: Path) -> None:
        """``store_url`` is the province's store, and the store of counties without their own."""
        path = write_counties(
            tmp_path, "counties:\n  huguan: {name: 壶关县, actors: huguan-actors.yaml}\n"
        )
        province = Province.open(path, store_url=f"sqlite:///{tmp_path}/given.db", create=True)
        try:
            assert province.store is province.engine("huguan").store
            assert (tmp_path / "given.db").exists()
        finally:
            province.close()

    def test_two_counties_on_one_sql_store_each_work_on_their_own_view(
        self, tmp_path: Path
    ) -> None:
        """Two counties on one SQLite URL: each engine reads and writes its county's rows only,
        the same project id in both."""
        path = write_counties(
            tmp_path,
            f"store: sqlite:///{tmp_path}/one.db\n"
            "counties:\n  huguan: {name: 壶关县}\n  jiaocheng: {name: 交城县}\n",
        )
        province = Province.open(path, create=True)
        try:
            huguan, jiaocheng = province.engine("huguan"), province.engine("jiaocheng")
            assert (huguan.store.county, jiaocheng.store.county) == ("huguan", "jiaocheng")
            County(store=huguan.store).create("P1")
            assert huguan.project_ids() == ["P1"]
            assert jiaocheng.project_ids() == []
            assert province.store.counties() == ["huguan"]
        finally:
            province.close()

    def test_counties_on_one_store_with_views_are_its_tenants(self, tmp_path: Path) -> None:
        """One store for every county: each county's engine runs on its own view of it, so
        the same project id in two counties is two projects, each seen by its county only."""
        path = write_counties(
            tmp_path,
            "store: memory://\n"
            "counties:\n"
            "  huguan: {name: 壶关县, actors: huguan-actors.yaml}\n"
            "  jiaocheng: {name: 交城县, actors: huguan-actors.yaml}\n",
        )
        province = Province.open(path)
        try:
            huguan, jiaocheng = province.engine("huguan"), province.engine("jiaocheng")
            assert (huguan.store.county, jiaocheng.store.county) == ("huguan", "jiaocheng")
            County(store=huguan.store).create("P1")
            County(store=jiaocheng.store).create("P1", name="交城项目")
            assert huguan.project("P1").name != jiaocheng.project("P1").name
            assert huguan.project_ids() == jiaocheng.project_ids() == ["P1"]
            assert province.store.counties() == ["huguan", "jiaocheng"]
        finally:
            province.close()

    def test_a_county_without_a_store_is_refused(self, tmp_path: Path) -> None:
        path = write_counties(tmp_path, "counties:\n  huguan: {name: 壶关县}\n")
        with pytest.raises(ProvinceError, match="county huguan has no store"):
            Province.open(path)

    @pytest.mark.parametrize(
        ("body", "line", "key", "message"),
        [
            ("stor: x\ncounties: {huguan: {}}\n", 1, "$.stor", "unknown key"),
            ("counties:\n  huguan: {}\n  Jiao: {}\n", 3, "$.counties.Jiao", "a county id is"),
            ("counties:\n  huguan:\n    plugin: [a]\n", 3, f"{HU}.plugin", "unknown key"),
            ("counties:\n  huguan:\n    plugins: a\n", 3, f"{HU}.plugins", "must be a list"),
            ("counties:\n  huguan:\n    settings: [1]\n", 3, f"{HU}.settings", "a mapping"),
            ("counties: []\n", 1, "$.counties", "must map each county"),
            ("counties:\n  huguan: {name: [x]\n", None, "$", ""),
        ],
    )
    def test_a_malformed_file_names_the_line_and_key(
        self, tmp_path: Path, body: str, line: int | None, key: str, message: str
    ) -> None:
        path = write_counties(tmp_path, body)
        with pytest.raises(CountiesFileError) as caught:
            load_counties(path)
        if line is not None:
            assert caught.value.line == line
        assert caught.value.key == key
        assert message in caught.value.message
        assert str(caught.value).startswith(str(path))

    def test_a_malformed_actors_file_names_its_own_line(self, tmp_path: Path) -> None:
        path = write_counties(
            tmp_path,
            f"store: sqlite:///{tmp_path}/p.db\ncounties:\n  huguan: {{actors: bad.yaml}}\n",
        )
        (tmp_path / "bad.yaml").write_text("guo: {roles: [recruiter]}\nli: {role: [x]}\n")
        with pytest.raises(ScenarioFileError) as caught:
            Province.open(path, create=True)
        assert caught.value.path.endswith("bad.yaml")
        assert caught.value.line == 2

    def test_the_intake_receiver_is_one_of_the_countys_actors(self, tmp_path: Path) -> None:
        ok = write_counties(
            tmp_path,
            f"store: sqlite:///{tmp_path}/p.db\n"
            "counties:\n  huguan: {actors: huguan-actors.yaml, intake_receiver: guo}\n",
        )
        province = Province.open(ok, create=True)
        province.close()
        bad = write_counties(
            tmp_path,
            f"store: sqlite:///{tmp_path}/p.db\n"
            "counties:\n  huguan: {actors: huguan-actors.yaml, intake_receiver: zhao}\n",
        )
        with pytest.raises(CountiesFileError, match="'zhao' is not in huguan's actors"):
            Province.open(bad, create=True)

    def test_an_engine_built_by_hand_joins_a_province(self) -> None:
        """``Province`` takes any engines, each on its own store."""
        engines = {name: Engine(actors=[]) for name in ("huguan", "gaoqing")}
        assert Province(engines).counties == ["huguan", "gaoqing"]

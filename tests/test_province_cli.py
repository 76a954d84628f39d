"""The CLI over a province: ``show``, ``report``, ``worker`` and ``token`` with ``--counties``
and ``--county`` read and write one county only."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from builders import County

from approvalflow.cli import main
from approvalflow.stores import open_store

ACTORS = """\
guo: {name: 郭强, roles: [recruiter], teams: [light_alloy]}
fuyuan: {name: 富远铝业, roles: [applicant]}
huang: {name: 黄副县长, roles: [leader]}
"""


@pytest.fixture
def counties(tmp_path: Path) -> Path:
    """Huguan with HG1 (in pre-review, its deadline passed by a day), Jiaocheng with JC1."""
    for county, project in (("huguan", "HG1"), ("jiaocheng", "JC1")):
        store = open_store(f"sqlite:///{tmp_path / county}.db", create=True)
        County(store=store).to_pre_review(project)
        store.close()
    (tmp_path / "actors.yaml").write_text(ACTORS, encoding="utf-8")
    path = tmp_path / "counties.yaml"
    path.write_text(
        f"store: sqlite:///{tmp_path}/province.db\n"
        "counties:\n"
        f"  huguan: {{name: 壶关县, actors: actors.yaml, store: 'sqlite:///{tmp_path}/huguan.db'}}\n"
        f"  jiaocheng: {{name: 交城县, store: 'sqlite:///{tmp_path}/jiaocheng.db'}}\n",
        encoding="utf-8",
    )
    open_store(f"sqlite:///{tmp_path}/province.db", create=True).close()
    return path


def test_show_lists_and_shows_one_countys_projects(
    counties: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["show", "--counties", str(counties), "--county", "huguan"]) == 0
    listed = capsys.readouterr().out
    assert "HG1" in listed and "JC1" not in listed
    assert main(["show", "JC1", "--counties", str(counties), "--county", "huguan"]) == 1
    assert "JC1" in capsys.readouterr().err
    assert main(["show", "HG1", "--counties", str(counties), "--county", "huguan"]) == 0
    assert "郭强" in capsys.readouterr().out  # the county's own actors file names people


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--county", "gaoqing"], "no county 'gaoqing' (it has huguan, jiaocheng)"),
        ([], "--county: which county? (huguan, jiaocheng)"),
        (["--county", "huguan", "--plugin", "huguan"], "--plugin does not go with --counties"),
    ],
)
def test_show_refuses_what_does_not_name_one_county(
    counties: Path, capsys: pytest.CaptureFixture[str], arguments: list[str], message: str
) -> None:
    assert main(["show", "--counties", str(counties), *arguments]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


def test_county_without_counties_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path}/one.db"
    open_store(url, create=True).close()
    assert main(["show", "--store", url, "--county", "huguan"]) == 2
    assert "--county needs --counties" in capsys.readouterr().err


def test_a_malformed_counties_file_names_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "counties.yaml"
    path.write_text("counties:\n  huguan:\n    plugin: [huguan]\n", encoding="utf-8")
    assert main(["show", "--counties", str(path)]) == 2
    assert f"{path}:3: $.counties.huguan.plugin: unknown key" in capsys.readouterr().err


def test_report_reads_one_county(counties: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["report", "late", "--counties", str(counties), "--format", "json", "--at"]
    assert main([*base, "2026-03-10 10:00", "--county", "jiaocheng"]) == 0
    late = capsys.readouterr().out
    assert "JC1" in late and "HG1" not in late


def test_the_worker_serves_every_county_or_one(
    counties: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A worker on the counties file fires each county's due timers in its own store."""

    # The pre-review deadline passed long ago (the fixture's clock was March 2026).
    def versions() -> dict[str, int]:
        found = {}
        for county, project in (("huguan", "HG1"), ("jiaocheng", "JC1")):
            store = open_store(f"sqlite:///{tmp_path / county}.db")
            found[county] = store.load(project).version
            store.close()
        return found

    before = versions()
    assert main(["worker", "--counties", str(counties), "--county", "huguan", "--once"]) == 0
    assert "timers fired" in capsys.readouterr().err
    once = versions()
    assert once["huguan"] > before["huguan"]
    assert once["jiaocheng"] == before["jiaocheng"]
    assert main(["worker", "--counties", str(counties), "--once"]) == 0
    assert versions()["jiaocheng"] > before["jiaocheng"]


def test_tokens_of_a_province(counties: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``token issue --counties F --county C`` keeps a county's token in the province's
    store; ``--province`` marks a province token; a county the file lacks is refused."""
    file = ["--counties", str(counties)]
    assert main(["token", "issue", *file, "--system", "oa", "--trusted", "--county", "huguan"]) == 0
    assert capsys.readouterr().err.startswith("token ")
    assert main(["token", "issue", *file, "--system", "sheng", "--province"]) == 0
    capsys.readouterr()
    assert main(["token", "issue", *file, "--system", "x", "--county", "gaoqing"]) == 2
    assert "no county 'gaoqing'" in capsys.readouterr().err
    assert main(["token", "issue", *file, "--system", "x"]) == 2
    assert "names its --county (or --province)" in capsys.readouterr().err
    assert main(["token", "list", *file, "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["system"], r["county"]) for r in rows] == [("oa", "huguan"), ("sheng", "*")]
    assert main(["token", "list", *file]) == 0
    listing = capsys.readouterr().out
    assert " huguan " in listing and " province " in listing
    assert main(["token", "list", *file, "--county", "huguan", "--json"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 1
    assert main(["token", "revoke", *file, rows[0]["token_id"]]) == 0


def test_serve_refuses_one_county_flags_with_counties(
    counties: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("uvicorn")
    assert main(["serve", "--counties", str(counties), "--plugin", "huguan"]) == 2
    assert "--plugin does not go with --counties" in capsys.readouterr().err
    assert main(["serve", "--counties", str(counties), "--public-leaderboard"]) == 2
    assert "each 赛马榜 is a county's" in capsys.readouterr().err
    assert main(["serve"]) == 2
    assert "--store URL (or --counties FILE)" in capsys.readouterr().err


def test_report_province_ranks_counties_and_departments(
    counties: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Both counties have one project in pre-review: tied on signed projects; the table
    names each county; the red and black lists mark their rows; departments rank too."""
    base = ["report", "province", "--counties", str(counties)]
    assert main([*base, "--on", "signed_count", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows == [
        {"rank": 1, "county": "huguan", "county_name": "壶关县", "signed_count": 0},
        {"rank": 1, "county": "jiaocheng", "county_name": "交城县", "signed_count": 0},
    ]
    assert main([*base, "--on", "points", "--month", "2026-03", "--top", "1"]) == 0
    table = capsys.readouterr().out
    assert "壶关县 (huguan)" in table and "red" in table and "black" in table
    assert main([*base, "--departments", "--at", "2026-03-10 10:00", "--format", "json"]) == 0
    departments = json.loads(capsys.readouterr().out)
    assert {(r["county"], r["department"]) for r in departments} >= {
        ("huguan", "gxj"),
        ("jiaocheng", "gxj"),
    }
    assert all(r["late"] == 1 for r in departments)  # each silent pre-review unit


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--on", "points"], "give --month"),
        (["--month", "March"], "--month takes YYYY-MM"),
        (["--top", "0"], "--top takes a positive number"),
    ],
)
def test_report_province_refuses_bad_options(
    counties: Path, capsys: pytest.CaptureFixture[str], arguments: list[str], message: str
) -> None:
    assert main(["report", "province", "--counties", str(counties), *arguments]) == 2
    assert message in capsys.readouterr().err


def test_serve_counties_serves_each_county_by_its_token(
    counties: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``serve --counties`` builds the province service (uvicorn's loop stood in for): a
    token issued with ``token issue --counties --county`` reads its own county only."""
    uvicorn = pytest.importorskip("uvicorn")
    from litestar.testing import TestClient

    answers: list[int] = []
    file = ["--counties", str(counties)]
    assert main(["token", "issue", *file, "--county", "jiaocheng", "--system", "oa"]) == 0
    headers = {"Authorization": f"Bearer {capsys.readouterr().out.strip()}"}

    def run(app: Any, **options: Any) -> None:
        # Called while the stores are open, as uvicorn's loop would be.
        with TestClient(app) as client:
            for path in ("/projects/JC1", "/projects/HG1", "/"):
                found = client.get(path, headers=headers, follow_redirects=False)
                answers.append(found.status_code)

    monkeypatch.setattr(uvicorn, "run", run)
    assert main(["serve", *file]) == 0
    # Its own project; not Huguan's; the workbench asks people to sign in (D218).
    assert answers == [200, 404, 303]


def test_store_archive_packs_one_countys_finished_projects(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``store archive --finished --counties F --county huguan`` packs Huguan's finished
    projects only: Jiaocheng's withdrawn project, finished too, stays live in its store."""
    stores = {}
    for county, project in (("huguan", "HG9"), ("jiaocheng", "JC9")):
        stores[county] = url = f"sqlite:///{tmp_path / county}.db"
        store = open_store(url, create=True)
        builder = County(store=store)
        builder.create(project)
        builder.do("withdraw", project, "fuyuan", reason="项目调整")
        store.close()
    path = tmp_path / "counties.yaml"
    path.write_text(
        "counties:\n"
        f"  huguan: {{name: 壶关县, store: '{stores['huguan']}'}}\n"
        f"  jiaocheng: {{name: 交城县, store: '{stores['jiaocheng']}'}}\n",
        encoding="utf-8",
    )
    archive = ["store", "archive", "--finished", "--name", "2026_q4", "--counties", str(path)]
    assert main([*archive, "--county", "huguan"]) == 0
    assert "archived 1 project(s) into 2026_q4; 0 not finished" in capsys.readouterr().out
    for county, project, expected in (("huguan", "HG9", "2026_q4"), ("jiaocheng", "JC9", None)):
        store = open_store(stores[county])
        try:
            assert store.archive_of(project) == expected
        finally:
            store.close()
    assert main(archive) == 2
    assert "--county: which county? (huguan, jiaocheng)" in capsys.readouterr().err

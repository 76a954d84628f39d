"""The workbench as people use it, through Litestar's test client: sign-in, each page, command
forms and their refusals, CSRF, and who sees what.

Projects are driven with the standard county of ``builders`` on the same store the service
reads, at the same manual clock.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("litestar", reason="the server extra is not installed")

from builders import County
from litestar.testing import TestClient

from approvalflow import hookimpl
from approvalflow.names import Names
from approvalflow.server import create_app, issue_token
from approvalflow.stores import open_store
from approvalflow.tasks import TaskItem

CSRF = re.compile(r'name="_csrf" value="([0-9a-f]+)"')


class Browser:
    """A test client signed in (or not) as one person, reading forms as a browser would."""

    def __init__(self, client: TestClient[Any], county: County) -> None:
        self.client = client
        self.county = county

    def sign_in(self, actor: str) -> Any:
        token, _ = issue_token(self.county.engine.store, "workbench", actor=actor)
        return self.sign_in_with(token)

    def sign_in_with(self, token: str) -> Any:
        form = self.client.get("/signin")
        assert form.status_code == 200
        return self.client.post("/signin/token", data={"_csrf": csrf_of(form.text), "token": token})

    def csrf(self) -> str:
        return csrf_of(self.client.get("/").text)

    def do(self, project: str, command: str, **fields: str | list[str]) -> Any:
        return self.client.post(
            f"/project/{project}/do/{command}", data={"_csrf": self.csrf(), **fields}
        )


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found, "the page carries no CSRF token"
    return found.group(1)


def forms(html: str) -> list[str]:
    """The actions of the command forms on a page."""
    return re.findall(r'action="(/project/[^"]+/do/[^"]+)"', html)


@pytest.fixture(params=["memory", "sqlite"])
def county(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[County]:
    url = "memory://" if request.param == "memory" else f"sqlite:///{tmp_path / 'county.db'}"
    store = open_store(url, create=True)
    yield County(store=store)
    store.close()


def _app(county: County, **options: Any) -> Any:
    return create_app(
        store=county.engine.store,
        actors=list(county.engine.actors),
        clock=county.clock,
        **options,
    )


@pytest.fixture
def browser(county: County) -> Iterator[Browser]:
    with TestClient(_app(county)) as client:
        yield Browser(client, county)


# -- sign-in ---------------------------------------------------------------------------------


class TestSignIn:
    def test_pages_send_a_stranger_to_the_sign_in_page(self, browser: Browser) -> None:
        for path in ("/", "/project/P1", "/late", "/metrics", "/calendar", "/leaderboard"):
            response = browser.client.get(path, follow_redirects=False)
            assert response.status_code == 303, path
            assert response.headers["location"] == "/signin"
        page = browser.client.get("/signin")
        assert '<label for="token">个人令牌</label>' in page.text

    def test_a_personal_token_signs_in_with_a_strict_http_only_cookie(
        self, browser: Browser
    ) -> None:
        token, _ = issue_token(browser.county.engine.store, "workbench", actor="guo")
        form = browser.client.get("/signin")
        response = browser.client.post(
            "/signin/token",
            data={"_csrf": csrf_of(form.text), "token": token},
            follow_redirects=False,
        )
        assert response.status_code == 303
        [cookie] = [
            c for c in response.headers.get_list("set-cookie") if c.startswith("afw_session=")
        ]
        attributes = [a.strip().lower() for a in cookie.split(";")]
        assert "httponly" in attributes
        assert "samesite=strict" in attributes
        page = browser.client.get("/")
        assert '<strong id="me">郭强</strong>' in page.text

    @pytest.mark.parametrize("token", ["", "afw_not-one-this-service-issued"], ids=["empty", "bad"])
    def test_a_bad_token_is_refused_with_its_reason(self, browser: Browser, token: str) -> None:
        response = browser.sign_in_with(token)
        assert response.status_code in (401, 422)
        assert 'class="refusal"' in response.text
        assert browser.client.get("/", follow_redirects=False).status_code == 303

    def test_a_system_token_that_names_nobody_cannot_sign_in(self, browser: Browser) -> None:
        token, _ = issue_token(browser.county.engine.store, "oa", trusted=True)
        response = browser.sign_in_with(token)
        assert response.status_code == 403
        assert "NotAuthorized" in response.text
        assert "--actor" in response.text

    def test_a_person_not_in_the_directory_cannot_sign_in(self, browser: Browser) -> None:
        token, _ = issue_token(browser.county.engine.store, "workbench", actor="nobody")
        response = browser.sign_in_with(token)
        assert response.status_code == 403
        assert "not in the actor directory" in response.text
        assert browser.client.get("/", follow_redirects=False).status_code == 303

    def test_sign_in_without_its_csrf_token_is_refused(self, browser: Browser) -> None:
        token, _ = issue_token(browser.county.engine.store, "workbench", actor="guo")
        browser.client.get("/signin")
        response = browser.client.post("/signin/token", data={"token": token})
        assert response.status_code == 403
        assert "CSRF" in response.text
        assert browser.client.get("/", follow_redirects=False).status_code == 303

    def test_revoking_the_token_ends_the_session(self, browser: Browser) -> None:
        token, record = issue_token(browser.county.engine.store, "workbench", actor="guo")
        browser.sign_in_with(token)
        assert browser.client.get("/", follow_redirects=False).status_code == 200
        browser.county.engine.store.revoke_token(record.token_id, datetime.now(UTC))
        assert browser.client.get("/", follow_redirects=False).status_code == 303

    def test_a_forged_session_cookie_is_not_a_session(self, browser: Browser) -> None:
        browser.sign_in("guo")
        value = browser.client.cookies["afw_session"]
        body, _, mac = value.rpartition(".")
        browser.client.cookies.clear()
        browser.client.cookies["afw_session"] = body + "." + ("0" * len(mac))
        assert browser.client.get("/", follow_redirects=False).status_code == 303

    def test_sign_out(self, browser: Browser) -> None:
        browser.sign_in("guo")
        response = browser.client.post("/signout", data={"_csrf": browser.csrf()})
        assert response.url.path == "/signin"
        assert browser.client.get("/", follow_redirects=False).status_code == 303

    def test_the_proxy_jwt_header_signs_a_person_in(self, county: County) -> None:
        jwt = pytest.importorskip("jwt")
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ec

        from approvalflow.server import JWTSettings

        key = ec.generate_private_key(ec.SECP256R1())
        public = (
            key.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )
        app = _app(county, jwt=JWTSettings(public_key=public), jwt_header="X-Auth-Token")
        good = jwt.encode(
            {"sub": "huang", "azp": "portal", "exp": int(datetime.now(UTC).timestamp()) + 600},
            key,
            algorithm="ES256",
        )
        with TestClient(app) as client:
            page = client.get("/", headers={"X-Auth-Token": good})
            assert page.status_code == 200
            assert '<strong id="me">黄副县长</strong>' in page.text
            # The session cookie carries on without the header.
            assert client.get("/", follow_redirects=False).status_code == 200
        with TestClient(app) as client:
            forged = client.get("/", headers={"X-Auth-Token": good[:-4] + "AAAA"})
            assert forged.url.path == "/signin"


# -- 我的待办 / 已办 -----------------------------------------------------------------------------


class TestMyTasks:
    def test_a_person_sees_their_tasks_urgency_first_with_forms(self, browser: Browser) -> None:
        county = browser.county
        county.to_approval("P1")
        county.to_pre_review("P2")
        browser.sign_in("o_fgw")
        page = browser.client.get("/").text
        assert "我的待办" in page
        assert 'data-project="P1" data-kind="accept"' in page
        assert "剩 5 个工作日" in page
        assert forms(page) == [
            "/project/P1/do/accept",
            "/project/P1/do/return",
            "/project/P1/do/reject",
        ]
        assert 'href="/project/P1"' in page

    def test_two_rectifications_of_one_project_are_two_lines_each_with_its_item(
        self, tmp_path: Path
    ) -> None:
        """zj owes the rectification of its branch and of the stage's result (D187): two
        lines naming their rated item, each form carrying it, so each rectifies its own."""
        from builders import TWO_STAGES

        store = open_store(f"sqlite:///{tmp_path / 'county.db'}", create=True)
        county = County(settings=TWO_STAGES, store=store)
        county.to_two_rectifications("P1")
        with TestClient(_app(county, settings=TWO_STAGES)) as client:
            browser = Browser(client, county)
            browser.sign_in("o_zj")
            page = client.get("/").text
            for item in ("approval.two", "approval.two.zj"):
                assert f'data-kind="rectify" data-item="{item}"' in page
                assert f'<span class="item">评价事项 {item}</span>' in page
                assert f'<input type="hidden" name="item" value="{item}">' in page
            assert forms(page) == ["/project/P1/do/rectify"] * 2
            assert len(set(re.findall(r'id="(f-P1-rectify[^"]*)-b"', page))) == 2
            done = browser.do("P1", "rectify", item="approval.two.zj", text="已整改", back="tasks")
            assert done.status_code == 200
            assert 'data-item="approval.two.zj"' not in done.text
            assert 'data-kind="rectify" data-item="approval.two"' in done.text
        store.close()

    def test_a_refused_rectification_shows_its_error_once_under_its_own_form(
        self, tmp_path: Path
    ) -> None:
        """Two rectify forms of one project: a refusal of one shows under that form alone,
        not under both (nor again above the list)."""
        from builders import TWO_STAGES

        store = open_store(f"sqlite:///{tmp_path / 'county.db'}", create=True)
        county = County(settings=TWO_STAGES, store=store)
        county.to_two_rectifications("P1")
        with TestClient(_app(county, settings=TWO_STAGES)) as client:
            browser = Browser(client, county)
            browser.sign_in("o_zj")
            for back in ("tasks", "project"):
                refused = browser.do("P1", "rectify", item="approval.two", text="", back=back)
                assert refused.status_code != 200
                page = refused.text
                assert page.count("未能办理：") == 1, back
                form = page[page.index('<input type="hidden" name="item" value="approval.two">') :]
                form = form[: form.index("</form>")]
                assert "未能办理：" in form, back
        store.close()

    def test_a_person_sees_only_their_own_tasks(self, browser: Browser) -> None:
        county = browser.county
        county.to_pre_review("P1")
        browser.sign_in("r_gxj")
        page = browser.client.get("/").text
        assert forms(page) == ["/project/P1/do/opinion"]
        assert 'for="f-P1-opinion-verdict">意见</label>' in page
        browser.client.cookies.clear()
        browser.sign_in("o_fgw")
        assert forms(browser.client.get("/").text) == []
        assert "目前没有等待您办理的事项" in browser.client.get("/").text

    def test_a_form_runs_the_command_as_the_signed_in_person(self, browser: Browser) -> None:
        county = browser.county
        county.to_pre_review("P1")
        browser.sign_in("r_gxj")
        response = browser.do("P1", "opinion", verdict="pass", back="tasks")
        assert response.status_code == 200
        assert response.url.path == "/"
        opinion = county.engine.history("P1")[-1]
        assert (opinion.type, opinion.by, opinion.payload["verdict"]) == (
            "opinion_given",
            "r_gxj",
            "pass",
        )
        page = response.text
        assert forms(page) == []
        assert '<td>初审意见 <span class="id">opinion_given</span></td>' in page  # 已办

    def test_materials_are_ticked_from_the_catalogue_by_name(self, browser: Browser) -> None:
        county = browser.county
        county.to_approval("P1")
        browser.sign_in("o_fgw")
        page = browser.client.get("/").text
        form = page[page.index('action="/project/P1/do/return"') :]
        form = form[: form.index("</form>")]
        assert "<legend>需补正的材料</legend>" in form
        assert (
            '<input type="checkbox" name="corrections" value="business_license"> 营业执照' in form
        )
        response = browser.do(
            "P1", "return", corrections=["business_license", "land_certificate"], back="tasks"
        )
        assert response.status_code == 200, response.text
        branch = county.engine.project("P1").branches["fgw"]
        assert branch.state == "returned"
        assert sorted(branch.corrections) == ["business_license", "land_certificate"]

    def test_a_refused_command_shows_the_engines_reason_in_place(self, browser: Browser) -> None:
        county = browser.county
        county.to_pre_review("P1")
        browser.sign_in("r_gxj")
        before = county.engine.project("P1").version
        response = browser.do("P1", "opinion", verdict="fail", back="tasks")  # no reason
        assert response.status_code == 422
        assert re.search(
            r'class="refusal" role="alert"><strong>未能办理：InvalidCommand</strong>', response.text
        )
        assert "reason" in response.text
        assert county.engine.project("P1").version == before

    def test_a_person_without_the_role_posting_a_form_anyway_is_refused(
        self, browser: Browser
    ) -> None:
        county = browser.county
        county.to_approval("P1")
        browser.sign_in("guo")  # a recruiter, not the officer
        project = browser.client.get("/project/P1").text
        assert "/project/P1/do/approve" not in project
        assert "/project/P1/do/accept" not in project
        before = county.engine.project("P1").version
        response = browser.do("P1", "accept", back="project")
        assert response.status_code == 403
        assert "未能办理：NotAuthorized" in response.text
        assert county.engine.project("P1").version == before

    @pytest.mark.parametrize("csrf", [None, "0" * 64], ids=["missing", "wrong"])
    def test_a_post_without_the_right_csrf_token_is_refused(
        self, browser: Browser, csrf: str | None
    ) -> None:
        county = browser.county
        county.to_approval("P1")
        browser.sign_in("o_fgw")
        data = {"back": "tasks"} if csrf is None else {"_csrf": csrf, "back": "tasks"}
        response = browser.client.post("/project/P1/do/accept", data=data)
        assert response.status_code == 403
        assert "CSRF" in response.text
        assert county.branch("fgw") == "pending"

    def test_a_csrf_token_of_another_session_is_refused(self, county: County) -> None:
        county.to_approval("P1")
        app = _app(county)
        with TestClient(app) as first, TestClient(app) as second:
            one, two = Browser(first, county), Browser(second, county)
            one.sign_in("o_fgw")
            two.sign_in("o_fgw")
            response = second.post(
                "/project/P1/do/accept", data={"_csrf": one.csrf(), "back": "tasks"}
            )
            assert response.status_code == 403
            assert county.branch("fgw") == "pending"

    def test_a_post_without_a_session_is_refused(self, browser: Browser) -> None:
        county = browser.county
        county.to_approval("P1")
        response = browser.client.post("/project/P1/do/accept", data={"_csrf": "0" * 64})
        assert response.status_code == 403
        assert county.branch("fgw") == "pending"


# -- 项目 ------------------------------------------------------------------------------------


class TestProject:
    def test_the_project_page(self, browser: Browser) -> None:
        county = browser.county
        county.to_approval("P1")
        county.do("accept", "P1", "o_fgw")
        county.do("pause_clock", "P1", "o_fgw", reason="hearing")
        browser.sign_in("huang")
        response = browser.client.get("/project/P1")
        assert response.status_code == 200
        page = response.text
        assert 'data-stage="approval">并联审批</strong>' in page
        # The five ones by name.
        for name in ("富远新型铝材产业园", "15亿", "黄副县长", "工信", "郭强", "富远铝业"):
            assert name in page, name
        # Who holds it up, by department name.
        assert '<tr class="holdup"><td>住建</td>' in page
        # The Gantt: one row per pre-review round, the decision, each branch, with its pause.
        for key in ("pre_review.1", "decision", "approval.fgw", "approval.zj"):
            assert f'data-key="{key}"' in page, key
        assert "<title>暂停 " in page
        assert "承诺时限" in page
        # The diagram with the current stage.
        assert 'class="state current" data-state="approval"' in page
        # The history, newest first, with names.
        assert "branch_changed" in page
        assert page.index("branch_changed") < page.index("<code>created</code>")

    def test_an_officer_approves_a_branch_on_the_project_page(self, browser: Browser) -> None:
        county = browser.county
        county.to_approval("P1")
        county.do("accept", "P1", "o_fgw")
        browser.sign_in("o_fgw")
        page = browser.client.get("/project/P1").text
        assert "/project/P1/do/approve" in forms(page)
        response = browser.do("P1", "approve", back="project")
        assert response.url.path == "/project/P1"
        assert county.branch("fgw") == "approved"
        assert "已批准" in response.text

    def test_an_unknown_project_is_a_404_page(self, browser: Browser) -> None:
        browser.sign_in("guo")
        response = browser.client.get("/project/NOPE")
        assert response.status_code == 404
        assert "UnknownProject" in response.text


# -- the other pages ---------------------------------------------------------------------------


class TestPages:
    def test_the_leaderboard_page_carries_the_reports_figures(self, browser: Browser) -> None:
        county = browser.county
        county.to_approval("P1")
        browser.sign_in("guo")
        response = browser.client.get("/leaderboard", params={"month": "2026-03"})
        assert response.status_code == 200
        page = response.text
        assert '<script src="/static/echarts.min.js" defer></script>' in page
        [row] = county.engine.leaderboard("2026-03")
        assert f'<tr data-team="light_alloy"><td>{row.rank}</td>' in page
        assert f'<td class="points">{row.points}</td>' in page
        assert '<td class="change">新</td>' in page
        print_view = browser.client.get(
            "/leaderboard", params={"month": "2026-03", "view": "print"}
        ).text
        assert "/static/print.css" in print_view

    def test_a_bad_month_is_refused(self, browser: Browser) -> None:
        browser.sign_in("guo")
        response = browser.client.get("/leaderboard", params={"month": "2026-13"})
        assert response.status_code == 422
        assert "InvalidCommand" in response.text

    def test_a_public_leaderboard_needs_no_sign_in_and_offers_no_form(self, county: County) -> None:
        county.to_approval("P1")
        with TestClient(_app(county, public_leaderboard=True)) as client:
            page = client.get("/leaderboard", params={"month": "2026-03"})
            assert page.status_code == 200
            assert 'data-team="light_alloy"' in page.text
            assert "<form" not in page.text
            assert client.get("/", follow_redirects=False).status_code == 303

    def test_the_late_page_lights_departments_by_week(self, browser: Browser) -> None:
        from datetime import timedelta

        county = browser.county
        county.to_approval("P1")
        county.advance(timedelta(days=9))  # fgw due 03-09 24:00 is past
        browser.sign_in("guo")
        page = browser.client.get("/late").text
        assert '<tr data-department="fgw"><th scope="row">发改</th>' in page
        row = page[page.index('data-department="fgw"') :]
        row = row[: row.index("</tr>")]
        assert "黄灯" in row
        assert "富远新型铝材产业园" in row
        gxj = page[page.index('data-department="gxj"') :]
        assert "绿灯" in gxj[: gxj.index("</tr>")]

    def test_a_late_cell_names_eight_projects_and_counts_the_rest(self, browser: Browser) -> None:
        from datetime import timedelta

        county = browser.county
        for n in range(1, 11):
            county.to_approval(f"P{n}")
        county.advance(timedelta(days=9))
        browser.sign_in("guo")
        page = browser.client.get("/late").text
        row = page[page.index('data-department="fgw"') :]
        row = row[: row.index("</tr>")]
        assert row.count('<a href="/project/P') == 8
        assert "另 2 项" in row
        assert '<a href="/project/P1">' in row and '<a href="/project/P9">' not in row

    def test_the_metrics_page_writes_amounts_in_yi_and_wan(self, browser: Browser) -> None:
        county = browser.county
        county.to_approval("P1")
        county.do("report_funds", "P1", "guo", amount="6000万")
        browser.sign_in("guo")
        page = browser.client.get("/metrics").text
        assert "<td>15亿</td>" in page
        assert "<td>6,000万</td>" in page
        assert "<td>4.0%</td>" in page  # funds rate 6000万 / 15亿
        assert '<tr data-team="light_alloy">' in page

    def test_the_metrics_page_by_signing_month(self, browser: Browser) -> None:
        """``?month=`` shows the projects signed in that month, the county's row the sum of
        the teams'; a month with none signs nothing; a bad month is refused."""
        county = browser.county
        county.to_approval("P1")  # signed in 2026-03
        browser.sign_in("guo")
        march = browser.client.get("/metrics", params={"month": "2026-03"}).text
        assert '<span id="month">2026-03</span>' in march
        assert '<tr data-team="light_alloy">' in march and "<td>15亿</td>" in march
        assert 'href="/metrics?month=2026-02" rel="prev"' in march
        april = browser.client.get("/metrics", params={"month": "2026-04"}).text
        assert "data-team=" not in april
        overall = april[april.index('<tr class="overall">') :]
        assert overall.startswith('<tr class="overall"><th scope="row">全县</th><td>0</td>')
        assert county.engine.team_metrics(month="2026-04") == {}
        bad = browser.client.get("/metrics", params={"month": "2026-3"})
        assert bad.status_code == 422 and "InvalidCommand" in bad.text

    def test_the_metrics_page_shows_the_rates_by_team_and_month(self, browser: Browser) -> None:
        """The team × month table: a cell per month a team signed in, its four rates and the
        amount in 亿/万, read from the counts (the same figures as the month's own page)."""
        county = browser.county
        county.to_approval("P1")  # signed in 2026-03
        county.do("report_funds", "P1", "guo", amount="6000万")
        county.do("terminate", "P1", "huang", reason="不再推进")
        browser.sign_in("guo")
        page = browser.client.get("/metrics").text
        table = page[page.index('class="metrics team-months"') :]
        assert '<th scope="col">2026-03</th>' in table
        row = table[table.index('<tr data-cohort-team="light_alloy">') :]
        row = row[: row.index("</tr>")]
        assert '<td data-month="2026-03">' in row
        assert "签约 1 个 · 15亿" in row
        assert "开工 0.0% · 投产 0.0%" in row
        assert "到位 4.0% · 履约 0.0%" in row  # terminated: no longer performing
        march = browser.client.get("/metrics", params={"month": "2026-03"}).text
        assert "<td>4.0%</td>" in march
        before = browser.client.get("/metrics", params={"month": "2026-02"}).text
        assert "team-months" not in before  # nothing signed up to February

    def test_a_county_command_shows_its_title_on_its_form(self, tmp_path: Path) -> None:
        """A plugin command's ``CommandSpec.title`` is what its button says."""
        from approvalflow.plugin import CommandSpec, Party

        class Visits:
            @hookimpl
            def approvalflow_commands(self) -> list[CommandSpec]:
                return [
                    CommandSpec(
                        "note_visit",
                        (Party.LEADER,),
                        lambda ctx: None,
                        stage_trigger=None,
                        title="登记走访",
                    )
                ]

            @hookimpl
            def approvalflow_task_items(self, project: Any, settings: Any) -> list[TaskItem]:
                item = ("visit", ("note_visit",))
                return [TaskItem(project.leader, project.id, project.name, *item)]

        county = County(plugins=[Visits()])
        county.create("P1")
        app = create_app(
            store=county.engine.store,
            actors=list(county.engine.actors),
            clock=county.clock,
            plugins=[Visits()],
        )
        with TestClient(app) as client:
            browser = Browser(client, county)
            browser.sign_in(county.engine.project("P1").leader)
            page = client.get("/").text
        assert "/project/P1/do/note_visit" in forms(page)
        assert ">登记走访</button>" in page
        names = Names.of(county.engine.settings, county.engine.actors, county.engine.commands)
        assert names.command("note_visit") == "登记走访"
        assert names.command("accept") == "受理" and names.command("unknown") == "unknown"

    def test_the_calendar_shows_days_off_and_make_up_working_days(self, browser: Browser) -> None:
        browser.sign_in("guo")
        page = browser.client.get("/calendar", params={"month": "2026-10"}).text
        assert 'data-day="2026-10-01" data-kind="holiday"' in page
        assert 'data-day="2026-10-12" data-kind="working"' in page
        # The first make-up working day of 2026 the calendar knows is shown as 补班.
        cal = browser.county.engine.calendar
        from datetime import date, timedelta

        day = date(2026, 1, 1)
        makeup = None
        while day.year == 2026:
            if day.weekday() >= 5 and cal.is_working_day(day):
                makeup = day
                break
            day += timedelta(days=1)
        assert makeup is not None
        month_page = browser.client.get("/calendar", params={"month": f"{makeup:%Y-%m}"}).text
        assert f'data-day="{makeup.isoformat()}" data-kind="makeup"' in month_page

    def test_pages_are_chinese_first_and_load_nothing_from_outside(self, browser: Browser) -> None:
        county = browser.county
        county.to_approval("P1")
        browser.sign_in("o_fgw")
        for path in ("/", "/project/P1", "/leaderboard", "/late", "/metrics", "/calendar"):
            response = browser.client.get(path)
            assert response.status_code == 200, path
            assert '<html lang="zh-CN">' in response.text
            assert "default-src 'self'" in response.headers["content-security-policy"]
            for url in re.findall(r'(?:src|href)="([^"]+)"', response.text):
                assert url.startswith(("/", "#")), (path, url)

    def test_every_form_field_has_a_label(self, browser: Browser) -> None:
        county = browser.county
        county.to_pre_review("P1")
        browser.sign_in("r_gxj")
        page = browser.client.get("/").text
        fields = re.findall(r'<(?:input|select) id="([^"]+)"', page)
        assert fields
        for field in fields:
            assert f'<label for="{field}">' in page, field

    def test_the_vendored_echarts_and_its_licence_are_served(self, browser: Browser) -> None:
        script = browser.client.get("/static/echarts.min.js")
        assert script.status_code == 200
        assert "5.6.0" in script.text[:2000] or "5.6.0" in script.text
        assert "Apache License" in browser.client.get("/static/ECHARTS-LICENSE").text

    def test_the_workbench_is_not_in_the_openapi_document(self, browser: Browser) -> None:
        paths = browser.client.get("/openapi.json").json()["paths"]
        assert not [p for p in paths if p in ("/", "/signin") or p.startswith("/project/")]


class TestPointsByMilestone:
    def test_the_stores_query_answers_as_the_projects_do(self, every_store: str) -> None:
        from approvalflow.rules.points import points_by_milestone

        county = County()
        county.to_approval("P1")
        county.create("P2", by="any_recruiter", team="new_energy")
        county.do("negotiate", "P2", "any_recruiter")
        engine = county.engine
        for month in ("2026-03", "2026-02", None):
            expected = points_by_milestone(engine.projects(), month=month)
            assert engine.points_by_milestone(month) == expected, month
        by_kind = engine.points_by_milestone("2026-03")
        assert by_kind["new_energy"] == {"lead": 1, "negotiating": 1}
        assert {row.team: row.points for row in engine.leaderboard("2026-03")} == {
            team: sum(per.values()) for team, per in by_kind.items()
        }

    def test_the_leaderboard_page_splits_points_by_milestone(self, browser: Browser) -> None:
        county = browser.county
        county.to_approval("P1")
        browser.sign_in("guo")
        page = browser.client.get("/leaderboard", params={"month": "2026-03"}).text
        assert '<th scope="col">线索</th><th scope="col">洽谈</th>' in page
        row = page[page.index('<tr data-team="light_alloy">') :]
        row = row[: row.index("</tr>")]
        from approvalflow.settings import MILESTONES

        per = county.engine.points_by_milestone("2026-03")["light_alloy"]
        expected = [per[m] for m in MILESTONES if m in per]
        cells = re.findall(r"<td>(\d+)</td>", row)
        assert [int(c) for c in cells[-len(expected) :]] == expected


class TestServeOptions:
    def test_a_jwt_header_without_a_key_is_a_usage_error(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        from approvalflow.cli import main

        url = f"sqlite:///{tmp_path / 'county.db'}"
        open_store(url, create=True).close()
        status = main(["serve", "--store", url, "--jwt-header", "X-Auth-Token"])
        err = capsys.readouterr().err
        assert status == 2
        assert "--jwt-header needs --jwt-public-key" in err
        assert "Traceback" not in err

    def test_a_short_session_key_is_refused(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        from approvalflow.cli import main

        url = f"sqlite:///{tmp_path / 'county.db'}"
        open_store(url, create=True).close()
        key = tmp_path / "key"
        key.write_text("short")
        status = main(["serve", "--store", url, "--session-key-file", str(key)])
        assert status == 2
        assert "at least 32 bytes" in capsys.readouterr().err

    def test_the_same_session_key_keeps_sessions_across_restarts(self, county: County) -> None:
        key = b"k" * 32
        token, _ = issue_token(county.engine.store, "workbench", actor="guo")
        with TestClient(_app(county, session_key=key)) as first:
            Browser(first, county).sign_in_with(token)
            cookie = first.cookies["afw_session"]
        with TestClient(_app(county, session_key=key)) as second:
            second.cookies["afw_session"] = cookie
            assert second.get("/", follow_redirects=False).status_code == 200
        with TestClient(_app(county)) as other:
            other.cookies["afw_session"] = cookie
            assert other.get("/", follow_redirects=False).status_code == 303

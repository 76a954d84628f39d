"""The workbench in a real browser: Playwright for Python driving Debian's chromium.

A live service (uvicorn on 127.0.0.1) over a SQLite store the county's test engine drives at
the same manual clock. Every request the browser makes is intercepted: one to anywhere but
127.0.0.1 is aborted and fails the test, and so does any console error. With
``APPROVALFLOW_SCREENSHOTS=1`` the same tests save a screenshot of each page to
``docs/_static/workbench/``.

The browser is never downloaded (no ``playwright install``): the tests skip when
``/usr/bin/chromium`` is missing, except in CI (``CI`` set), where they must run.
"""

from __future__ import annotations

import io
import json
import os
import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists() and not os.environ.get("CI"):
    pytest.skip("Debian's chromium is not installed (/usr/bin/chromium)", allow_module_level=True)
pytest.importorskip("litestar", reason="the server extra is not installed")
playwright_api = pytest.importorskip("playwright.sync_api")

from datetime import timedelta  # noqa: E402

from builders import MONDAY, County  # noqa: E402

from approvalflow.cli import main  # noqa: E402
from approvalflow.server import create_app, issue_token  # noqa: E402
from approvalflow.stores import open_store  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SHOTS = ROOT / "docs" / "_static" / "workbench"
SCREENSHOTS = os.environ.get("APPROVALFLOW_SCREENSHOTS") == "1"


class LiveService:
    def __init__(self, county: County, url: str, store_url: str) -> None:
        self.county = county
        self.url = url
        self.store_url = store_url

    def token(self, actor: str) -> str:
        token, _ = issue_token(self.county.engine.store, "workbench", actor=actor)
        return token


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def live(tmp_path: Path) -> Iterator[LiveService]:
    import uvicorn

    store_url = f"sqlite:///{tmp_path / 'county.db'}"
    store = open_store(store_url, create=True)
    county = County(store=store, start=MONDAY - timedelta(days=14))
    _story(county)
    app = create_app(store=store, actors=list(county.engine.actors), clock=county.clock)
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(200):
        if server.started:
            break
        time.sleep(0.05)
    assert server.started, "the service did not start"
    try:
        yield LiveService(county, f"http://127.0.0.1:{port}", store_url)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        store.close()


def _story(county: County) -> None:
    """February: another team's project P0 (last month's board). March: P1 through
    pre-review, decision and approval over some days, one branch paused, another returned and
    supplied, so that only fgw's branch (accepted) is left; P2 just sent to pre-review; P0
    passes pre-review."""
    county.create("P0", by="any_recruiter", team="new_energy", name="光伏组件扩产")
    county.do("negotiate", "P0", "any_recruiter")
    county.advance_to(MONDAY)
    county.create("P1")
    county.do("negotiate", "P1", "guo")
    county.do("submit_pre_review", "P1", "guo", materials=[])
    county.advance(timedelta(days=1))
    county.pass_pre_review("P1")
    county.advance(timedelta(days=1))
    county.approve_in_meeting("P1")
    county.advance(timedelta(days=1))
    county.do("sign", "P1", "guo")
    county.do("apply", "P1", "fuyuan")
    county.advance(timedelta(days=3))
    county.do("accept", "P1", "o_sthj")
    county.do("pause_clock", "P1", "o_sthj", reason="hearing")
    county.do("accept", "P1", "o_zj")
    county.do("approve", "P1", "o_zj")
    county.advance(timedelta(days=1))
    material = next(iter(county.engine.settings.materials))
    county.do("return", "P1", "o_zrzy", corrections=[material])
    county.advance(timedelta(days=2))
    county.do("supply", "P1", "fuyuan", materials=[material])
    county.do("resume_clock", "P1", "o_sthj")
    county.advance(timedelta(days=1))
    for dept in ("zrzy", "sthj", "yj"):
        if county.branch(dept, "P1") != "accepted":
            county.do("accept", "P1", f"o_{dept}")
        county.do("approve", "P1", f"o_{dept}")
    county.do("accept", "P1", "o_fgw")
    county.to_pre_review("P2")
    county.do("submit_pre_review", "P0", "any_recruiter", materials=[])
    county.pass_pre_review("P0")


def _arrow(row: dict[str, Any]) -> str:
    """The report's rank change as the board writes it: 新, ↑n, ↓n or —."""
    before, now = row["previous_rank"], row["rank"]
    if before is None:
        return "新"
    return f"↑{before - now}" if before > now else f"↓{now - before}" if before < now else "—"


class Watch:
    """What the page did wrong: console errors, uncaught exceptions, requests off the host."""

    def __init__(self) -> None:
        self.console_errors: list[str] = []
        self.outside: list[str] = []

    def check(self) -> None:
        assert self.outside == [], f"requests left 127.0.0.1: {self.outside}"
        assert self.console_errors == [], f"console errors: {self.console_errors}"


@pytest.fixture
def browser() -> Iterator[Any]:
    with playwright_api.sync_playwright() as p:
        launched = p.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
        )
        try:
            yield launched
        finally:
            launched.close()


def _page(browser: Any, watch: Watch) -> Any:
    context = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900})

    def route(route: Any) -> None:
        host = urlsplit(route.request.url).hostname
        if host != "127.0.0.1":
            watch.outside.append(route.request.url)
            route.abort()
        else:
            route.continue_()

    context.route("**/*", route)
    page = context.new_page()
    page.on(
        "console",
        lambda message: (
            watch.console_errors.append(message.text) if message.type == "error" else None
        ),
    )
    page.on("pageerror", lambda error: watch.console_errors.append(str(error)))
    return page


def _sign_in(page: Any, live: LiveService, actor: str) -> None:
    page.goto(live.url + "/")
    assert page.url.endswith("/signin")
    page.get_by_label("个人令牌").fill(live.token(actor))
    page.get_by_label("个人令牌").press("Enter")
    page.wait_for_url(live.url + "/")


def _shot(page: Any, name: str) -> None:
    if SCREENSHOTS:
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def test_an_officer_signs_in_sees_the_task_and_approves_the_branch(
    live: LiveService, browser: Any
) -> None:
    watch = Watch()
    page = _page(browser, watch)
    _sign_in(page, live, "o_fgw")
    task = page.locator('tr.task[data-project="P1"]')
    assert task.count() == 1
    [item] = live.county.engine.tasks("o_fgw")
    assert "审批决定" in task.inner_text()
    left = item.working_days_left
    assert left is not None
    assert ("今日到期" if left == 0 else f"剩 {left} 个工作日") in task.inner_text()
    _shot(page, "tasks")
    # Open the project from the task list, then approve through the project's form.
    task.get_by_role("link", name="富远新型铝材产业园").click()
    page.wait_for_url(live.url + "/project/P1")
    assert page.locator("#stage").inner_text() == "并联审批"
    assert page.locator('svg.gantt g.bar[data-key="approval.fgw"]').count() == 1
    _shot(page, "project")
    page.get_by_role("button", name="批准", exact=True).click()
    page.wait_for_url(live.url + "/project/P1")
    assert page.locator("#stage").inner_text() == "审批完成"
    assert page.locator('#diagram g.current[data-state="approved"]').count() == 1
    assert live.county.engine.project("P1").stage == "approved"
    assert live.county.branch("fgw") == "approved"
    watch.check()


def test_the_leaderboard_chart_shows_the_reports_figures(live: LiveService, browser: Any) -> None:
    # The report first, before the browser opens: a request the page still makes (its icon)
    # would log a line into the captured standard output.
    out = io.StringIO()
    with redirect_stdout(out):
        assert (
            main(
                [
                    "report",
                    "leaderboard",
                    "--month",
                    "2026-03",
                    "--store",
                    live.store_url,
                    "--format",
                    "json",
                ]
            )
            == 0
        )
    report = json.loads(out.getvalue())
    watch = Watch()
    page = _page(browser, watch)
    _sign_in(page, live, "guo")
    page.goto(live.url + "/leaderboard?month=2026-03")
    page.wait_for_function("window.approvalflowBoard !== undefined")
    option = page.evaluate(
        "() => { const o = window.approvalflowBoard.chart.getOption();"
        " return {labels: o.yAxis[0].data, points: o.series[o.series.length - 1].data}; }"
    )
    # The chart lists the first rank on top (ECharts draws a category axis bottom up).
    drawn = list(zip(reversed(option["labels"]), reversed(option["points"]), strict=True))
    assert report, "the report has rows"
    assert [(label.split(". ")[1].split()[0], points) for label, points in drawn] == [
        (row["team"], row["points"]) for row in report
    ]
    assert [label.split()[-1] for label, _ in drawn] == [_arrow(row) for row in report]
    assert "↓1" in [label.split()[-1] for label, _ in drawn]  # new_energy was first in February
    # The chart is drawn (a canvas with pixels in it), with its own image export.
    assert page.locator("#board-chart canvas").count() >= 1
    _shot(page, "leaderboard")
    page.goto(live.url + "/leaderboard?month=2026-03&renderer=svg")
    page.wait_for_function("window.approvalflowBoard !== undefined")
    assert page.locator("#board-chart svg").count() >= 1
    page.goto(live.url + "/leaderboard?month=2026-03&view=print")
    page.wait_for_function("window.approvalflowBoard !== undefined")
    page.emulate_media(media="print")
    assert page.locator("header.top").is_hidden()
    _shot(page, "leaderboard-print")
    watch.check()


def test_a_legend_on_several_lines_leaves_the_bars_below_it(
    live: LiveService, browser: Any
) -> None:
    """On a narrow screen the milestones' legend takes several lines; the plot starts below
    its last one (ECharts does not move it), so no team's bar or name is drawn under it."""
    watch = Watch()
    page = _page(browser, watch)
    page.set_viewport_size({"width": 360, "height": 900})
    _sign_in(page, live, "guo")
    page.goto(live.url + "/leaderboard?month=2026-03&renderer=svg")
    page.wait_for_function("window.approvalflowBoard !== undefined")
    found = page.evaluate(
        """() => {
        const board = window.approvalflowBoard;
        const top = document.getElementById('board-chart').getBoundingClientRect().top;
        const legend = new Set(board.board.milestones.labels);
        const items = [...document.querySelectorAll('#board-chart svg text')]
            .filter((t) => legend.has(t.textContent)).map((t) => t.getBoundingClientRect());
        return {
            items: items.length,
            lines: new Set(items.map((b) => Math.round(b.top))).size,
            legendBottom: Math.max(...items.map((b) => b.bottom)) - top,
            plotTop: board.chart.getOption().grid[0].top,
        };
    }"""
    )
    assert found["items"] >= 2, found  # the milestones' legend is drawn
    assert found["lines"] >= 2, found  # the narrow screen wraps it
    assert found["legendBottom"] <= found["plotTop"], found
    watch.check()


def test_the_other_pages_draw_without_errors(live: LiveService, browser: Any) -> None:
    from datetime import timedelta

    live.county.advance(timedelta(days=12))  # P1's and P2's deadlines pass
    watch = Watch()
    page = _page(browser, watch)
    _sign_in(page, live, "guo")
    page.goto(live.url + "/late")
    assert "逾期事项" in page.locator("h1").inner_text()
    _shot(page, "late")
    page.goto(live.url + "/metrics")
    assert page.locator("table.metrics tr.overall").count() == 1
    _shot(page, "metrics")
    page.goto(live.url + "/calendar?month=2026-10")
    assert page.locator('td[data-day="2026-10-01"][data-kind="holiday"]').count() == 1
    _shot(page, "calendar")
    page.goto(live.url + "/project/P2")
    _shot(page, "project-pre-review")
    # Keyboard: the skip link is the first stop and leads to the page's main part.
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "跳到正文"
    watch.check()


def test_a_person_without_the_role_gets_no_form_and_a_forged_post_is_refused(
    live: LiveService, browser: Any
) -> None:
    watch = Watch()
    page = _page(browser, watch)
    _sign_in(page, live, "guo")
    page.goto(live.url + "/project/P1")
    assert page.locator('form[data-command="approve"]').count() == 0
    assert page.locator("#no-forms").is_visible()
    before = live.county.engine.project("P1").version
    html = page.content()
    csrf = re.search(r'name="_csrf" value="([0-9a-f]+)"', html)
    assert csrf
    # The same browser (its session cookie) posts the officer's form anyway.
    response = page.request.post(
        live.url + "/project/P1/do/approve", form={"_csrf": csrf.group(1), "back": "project"}
    )
    assert response.status == 403
    assert "NotAuthorized" in response.text()
    assert live.county.engine.project("P1").version == before
    # And a post from a page of another site (no CSRF token) is refused too.
    forged = page.request.post(live.url + "/project/P1/do/approve", form={"back": "project"})
    assert forged.status == 403
    assert live.county.engine.project("P1").version == before
    watch.check()

"""The workbench: the service's pages for people, at ``/`` of the same app.

A person signs in with a personal token the CLI issues (``approvalflow token issue --system
workbench --actor ID``) or, behind the county's reverse proxy, with the JWT the proxy passes in
the configured header. The session is a signed HttpOnly, SameSite=Strict cookie
(``sessions.py``); every form carries an HMAC CSRF token. Each command form is sent to the
engine as the signed-in person, so the engine's own role checks decide, and a refusal is shown
in place with its error code and message.

Pages (Jinja2 templates and static files in the package; nothing from outside): 我的待办/已办,
项目 (stage, the five ones, a Gantt and the workflow diagram as server-side SVG, who holds it up,
the history), 赛马榜 (an Apache ECharts chart, vendored, with a print view and PNG/SVG export),
逾期 (department × week traffic lights), 指标 and 日历. With ``public_leaderboard`` the 赛马榜 is
read without signing in.
"""

from __future__ import annotations

import contextvars
import json
import secrets
from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Annotated, Any, cast

from litestar import MediaType, Request, Response, get, post
from litestar.datastructures import Cookie
from litestar.enums import RequestEncodingType
from litestar.handlers import HTTPRouteHandler
from litestar.params import Body, FromPath, QueryParameter
from litestar.response import Redirect
from litestar.static_files import create_static_files_router
from litestar.types import ControllerRouterHandler

from approvalflow.calendar import format_local, to_local
from approvalflow.engine import Engine
from approvalflow.errors import ApprovalflowError, InvalidCommand, NotAuthorized
from approvalflow.money import format_amount
from approvalflow.rules.metrics import TeamMonthCounts
from approvalflow.server.auth import Authenticator, Caller
from approvalflow.server.names import Names
from approvalflow.server.problems import status_for
from approvalflow.server.sessions import (
    CSRF_FIELD,
    SESSION_COOKIE,
    SIGNIN_COOKIE,
    Session,
    SessionKeys,
)
from approvalflow.server.svg import gantt_bars, gantt_svg, month_days
from approvalflow.settings import Settings
from approvalflow.tasks import open_items, working_days_left

__all__ = ["WORKBENCH_QUERY", "workbench_handlers"]

_HERE = Path(__file__).parent
_Query = Annotated[str | None, QueryParameter()]
WORKBENCH_QUERY: Mapping[str, frozenset[str]] = {
    "wb_leaderboard": frozenset({"month", "view", "renderer"}),
    "wb_calendar": frozenset({"month"}),
    "wb_late": frozenset({"at"}),
    "wb_metrics": frozenset({"month"}),
}
"""The query parameters each page takes (the service refuses any other)."""

KIND_NAMES: Mapping[str, str] = {
    "review": "初审意见",
    "supply_materials": "补交材料",
    "convene": "召开决策会",
    "vote": "投票",
    "close_meeting": "结束会议",
    "accept": "受理",
    "decide": "审批决定",
    "accept_commitment": "告知承诺",
    "verify": "核查承诺",
    "consent_removal": "减签同意",
    "issue_stage_result": "统一出件",
    "rectify": "差评整改",
    "confirm_rectification": "确认整改",
    "next_step": "下一步",
}

MILESTONE_NAMES: Mapping[str, str] = {
    "lead": "线索",
    "negotiating": "洽谈",
    "pre_review_passed": "初审通过",
    "decision_approved": "决策通过",
    "signed": "签约",
    "approval_complete": "审批完成",
    "construction": "开工",
    "production": "投产",
    "effective": "达效",
}
_MILESTONE_ORDER = tuple(MILESTONE_NAMES)

EVENT_NAMES: Mapping[str, str] = {
    "created": "登记项目",
    "materials_submitted": "提交初审材料",
    "opinion_given": "初审意见",
    "materials_supplied": "补交材料",
    "meeting_convened": "召开决策会",
    "vote_cast": "投票",
    "meeting_closed": "结束会议",
    "signed": "签约",
    "branch_opened": "申请并联审批",
    "branch_changed": "审批办理",
    "limit_extended": "延长时限",
    "commitment_accepted": "告知承诺",
    "urged": "催办",
    "funds_reported": "报送到位资金",
    "stage_changed": "推进阶段",
}
"""The 已办 list names what a command did by its first event; other events show their id."""

WHAT_NAMES: Mapping[str, str] = {
    "pre_review": "初审",
    "approval": "审批",
    "materials": "补交材料",
    "corrections": "补正",
    "removal_consent": "减签同意",
    "stage_result": "统一出件",
    "verification": "承诺核查",
}

# How each command argument is asked for in a form (D133): choices, yes/no, a number, a list
# (comma separated), else text.
_CHOICES: Mapping[str, tuple[tuple[str, str], ...]] = {
    "verdict": (("pass", "通过"), ("supplement", "需补充材料"), ("fail", "不通过")),
    "vote": (("approve", "同意"), ("reject", "反对"), ("abstain", "弃权")),
    "passed": (("true", "核查通过"), ("false", "核查不通过")),
    "consent": (("true", "同意"), ("false", "不同意")),
}
_BOOLEANS = frozenset({"passed", "consent"})
_NUMBERS = frozenset({"days"})
_LISTS = frozenset({"materials", "missing", "corrections", "present", "departments", "deficient"})
MATERIAL_ARGUMENTS = frozenset({"materials", "missing", "corrections", "deficient"})
"""Arguments naming materials: the form offers the catalogue as boxes to tick."""
ARGUMENT_LABELS: Mapping[str, str] = {
    "verdict": "意见",
    "missing": "缺少的材料",
    "reason": "理由",
    "materials": "材料",
    "present": "出席成员",
    "vote": "表决",
    "agreed_investment": "协议投资额（如 15亿）",
    "departments": "审批部门（以逗号分隔，可留空）",
    "deficient": "容缺材料（可不选）",
    "corrections": "需补正的材料",
    "department": "部门",
    "passed": "核查结果",
    "consent": "是否同意",
    "until": "截止日期（YYYY-MM-DD）",
    "note": "备注",
    "days": "延长的工作日数",
    "authority": "批准机关",
    "amount": "金额（如 600万）",
}


def _rate(value: object) -> str:
    if value is None:
        return "—"
    if isinstance(value, Fraction | Decimal | float | int):
        return f"{float(value) * 100:.1f}%"
    return str(value)


def _yuan(value: object) -> str:
    return format_amount(value) if isinstance(value, int) else "—"


def _change(rank: int, previous: int | None) -> str:
    if previous is None:
        return "新"
    if previous > rank:
        return f"↑{previous - rank}"
    if previous < rank:
        return f"↓{rank - previous}"
    return "—"


def _form_arguments(arguments: Sequence[str], form: Mapping[str, Any]) -> dict[str, Any]:
    """The command's arguments from a posted form: empty fields are left out."""
    found: dict[str, Any] = {}
    for name in arguments:
        raw = form.get(name)
        if name in _LISTS and isinstance(raw, list):  # ticked boxes, one value each
            found[name] = [p.strip() for v in raw for p in str(v).split(",") if p.strip()]
            continue
        if isinstance(raw, list):
            raw = raw[-1] if raw else None
        if raw is None or str(raw).strip() == "":
            continue
        text = str(raw).strip()
        if name in _BOOLEANS:
            found[name] = text == "true"
        elif name in _NUMBERS:
            if not text.lstrip("-").isdigit():
                raise InvalidCommand(f"{name} takes a whole number of working days, not {text!r}")
            found[name] = int(text)
        elif name in _LISTS:
            found[name] = [p.strip() for p in text.replace("，", ",").split(",") if p.strip()]
        else:
            found[name] = text
    return found


def _environment() -> Any:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(_HERE / "templates"),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["local"] = lambda m: format_local(m) if m else "—"
    env.filters["yuan"] = _yuan
    env.filters["rate"] = _rate
    env.globals["kind_names"] = KIND_NAMES
    env.globals["what_names"] = WHAT_NAMES
    env.globals["event_names"] = EVENT_NAMES
    env.globals["choices"] = _CHOICES
    env.globals["argument_labels"] = ARGUMENT_LABELS
    env.globals["material_arguments"] = MATERIAL_ARGUMENTS
    return env


_SECURITY_HEADERS = {
    # Nothing from outside: every script, style, font and image comes from this service.
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data: blob:; connect-src 'self'; frame-ancestors 'none'; "
        "form-action 'self'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


class _SessionEngine:
    """A province's workbench: the engine of the signed-in person's county, chosen for each
    request when its session is read (``select``), so every page reads that county alone.
    Before a session is read, or without one, there is no engine to read (``NotAuthorized``)."""

    def __init__(self, engines: Mapping[str, Engine]) -> None:
        self.engines = dict(engines)
        self._chosen: contextvars.ContextVar[Engine | None] = contextvars.ContextVar(
            "approvalflow_workbench_engine", default=None
        )

    def select(self, county: str | None) -> None:
        self._chosen.set(None if county is None else self.engines.get(county))

    def chosen(self) -> Engine | None:
        return self._chosen.get()

    def __getattr__(self, name: str) -> Any:
        engine = self._chosen.get()
        if engine is None:
            raise NotAuthorized("sign in first: the pages are those of your own county")
        return getattr(engine, name)


def workbench_handlers(
    engine: Engine,
    authenticator: Authenticator,
    *,
    keys: SessionKeys,
    jwt_header: str | None = None,
    public_leaderboard: bool = False,
    engines: Mapping[str, Engine] | None = None,
) -> list[ControllerRouterHandler]:
    """The workbench's route handlers over ``engine`` (none appears in the OpenAPI document).

    With ``engines`` (a province's counties) each page reads the engine of the signed-in
    person's county: the session carries the credential's county, and a person of no county
    served, or none at all, is not signed in."""
    env = _environment()
    province = None if engines is None else _SessionEngine(engines)
    token_store = authenticator.store
    if province is not None:
        engine = cast(Engine, province)
        public_leaderboard = False

    def names() -> Names:
        if province is not None and province.chosen() is None:
            return Names.of(Settings.default())
        return Names.of(engine.settings, engine.actors, engine.commands)

    def secure(request: Request[Any, Any, Any]) -> bool:
        return request.url.scheme == "https"

    def session_cookie(request: Request[Any, Any, Any], session: Session) -> Cookie:
        return Cookie(
            key=SESSION_COOKIE,
            value=keys.dump(session),
            path="/",
            httponly=True,
            samesite="strict",
            secure=secure(request),
            max_age=max(0, session.expires - int(datetime.now().timestamp())),
        )

    def session_of(caller: Caller, token_hash: str | None, until: int | None) -> Session:
        if caller.actor is None:
            raise NotAuthorized(
                f"the credential of system {caller.system!r} names no person: ask for a "
                "personal token (approvalflow token issue --system workbench --actor ID)"
            )
        if province is None:
            directory = engine.actors
        else:
            county_engine = province.engines.get(caller.county or "")
            if county_engine is None:
                raise NotAuthorized(
                    f"the credential names no county served here ({caller.county or 'none'})"
                )
            directory = county_engine.actors
        if directory.get(caller.actor) is None:
            raise NotAuthorized(f"{caller.actor!r} is not in the actor directory")
        return keys.new(
            caller.actor, caller.system, caller.credential, token_hash, until, caller.county
        )

    def from_proxy(request: Request[Any, Any, Any]) -> Session | None:
        if jwt_header is None:
            return None
        value = request.headers.get(jwt_header.lower())
        if not value:
            return None
        value = value.removeprefix("Bearer ").strip()
        caller = authenticator.authenticate(f"Bearer {value}")
        until = _jwt_expiry(value)
        return session_of(caller, None, until)

    def current(request: Request[Any, Any, Any]) -> tuple[Session | None, Session | None]:
        """The request's session, and a new one to set as the cookie (from the proxy's JWT)."""
        if province is not None:
            province.select(None)  # nothing of the thread's previous request stays chosen
        session = keys.load(request.cookies.get(SESSION_COOKIE))
        if session is not None and session.token_hash is not None:
            record = token_store.token_with_hash(session.token_hash)
            if (
                record is None
                or record.revoked_at is not None
                or record.actor != session.actor
                or record.county != session.county
            ):
                session = None
        if session is not None and province is not None and session.county not in province.engines:
            session = None
        if session is None:
            try:
                session = from_proxy(request)
            except ApprovalflowError:
                return None, None
            made = session
        else:
            made = None
        if province is not None and session is not None:
            province.select(session.county)
        return session, made

    def page(
        request: Request[Any, Any, Any],
        template: str,
        session: Session | None,
        *,
        status: int = 200,
        new_session: Session | None = None,
        **context: Any,
    ) -> Response[str]:
        shown = names()
        unchosen = province is not None and province.chosen() is None
        html = env.get_template(template).render(
            catalogue=[] if unchosen else sorted(engine.settings.materials),
            members=[]
            if unchosen
            else sorted(a.id for a in engine.actors if a.has_role("member", "chair")),
            me=session,
            me_name=shown.actor(session.actor) if session else None,
            csrf=keys.csrf(session.sid) if session else "",
            csrf_field=CSRF_FIELD,
            names=shown,
            path=request.url.path,
            **context,
        )
        cookies = [session_cookie(request, new_session)] if new_session else []
        return Response(
            html,
            status_code=status,
            media_type=MediaType.HTML,
            headers=_SECURITY_HEADERS,
            cookies=cookies,
        )

    def refused(
        request: Request[Any, Any, Any], session: Session | None, error: ApprovalflowError
    ) -> Response[str]:
        return page(
            request,
            "error.html",
            session,
            status=status_for(error),
            code=error.code,
            message=error.message,
        )

    def signin_redirect() -> Response[Any]:
        return Redirect("/signin", status_code=303)

    def require(
        request: Request[Any, Any, Any],
    ) -> tuple[Session, Session | None] | Response[Any]:
        session, made = current(request)
        if session is None:
            return signin_redirect()
        return session, made

    # -- sign-in -------------------------------------------------------------------------------

    @get("/signin", sync_to_thread=True, include_in_schema=False, name="wb_signin_form")
    def signin_form(request: Request[Any, Any, Any]) -> Response[Any]:
        session, made = current(request)
        if session is not None:
            response: Response[Any] = Redirect("/", status_code=303)
            if made is not None:
                response.set_cookie(session_cookie(request, made))
            return response
        nonce = secrets.token_urlsafe(16)
        response = page(
            request, "signin.html", None, signin_csrf=keys.csrf("signin|" + nonce), error=None
        )
        response.set_cookie(
            Cookie(
                key=SIGNIN_COOKIE,
                value=nonce,
                path="/signin",
                httponly=True,
                samesite="strict",
                secure=secure(request),
                max_age=3600,
            )
        )
        return response

    @post("/signin/token", sync_to_thread=True, include_in_schema=False, name="wb_signin")
    def signin(
        request: Request[Any, Any, Any],
        data: Annotated[dict[str, Any], Body(media_type=RequestEncodingType.URL_ENCODED)],
    ) -> Response[Any]:
        nonce = request.cookies.get(SIGNIN_COOKIE) or ""
        if not nonce or not keys.csrf_ok("signin|" + nonce, data.get(CSRF_FIELD)):
            return _csrf_refused(page, request)
        token = str(data.get("token") or "").strip()
        try:
            if not token:
                raise InvalidCommand("请输入个人令牌 (a personal token)")
            caller = authenticator.authenticate(f"Bearer {token}")
            token_hash = None
            if caller.credential == "token":
                from approvalflow.stores.tokens import token_hash as hash_of

                token_hash = hash_of(token)
            session = session_of(
                caller, token_hash, _jwt_expiry(token) if caller.credential == "jwt" else None
            )
        except ApprovalflowError as error:
            return page(
                request,
                "signin.html",
                None,
                status=status_for(error),
                signin_csrf=keys.csrf("signin|" + nonce),
                error=error,
            )
        response: Response[Any] = Redirect("/", status_code=303)
        response.set_cookie(session_cookie(request, session))
        response.delete_cookie(SIGNIN_COOKIE, path="/signin")
        return response

    @post("/signout", sync_to_thread=True, include_in_schema=False, name="wb_signout")
    def signout(
        request: Request[Any, Any, Any],
        data: Annotated[dict[str, Any], Body(media_type=RequestEncodingType.URL_ENCODED)],
    ) -> Response[Any]:
        session, _ = current(request)
        if session is None or not keys.csrf_ok(session.sid, data.get(CSRF_FIELD)):
            return _csrf_refused(page, request)
        response: Response[Any] = Redirect("/signin", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    # -- 我的待办 / 已办 ---------------------------------------------------------------------------

    def tasks_page(
        request: Request[Any, Any, Any],
        session: Session,
        made: Session | None,
        *,
        error: dict[str, str] | None = None,
        status: int = 200,
    ) -> Response[Any]:
        items = engine.tasks(session.actor)
        done = engine.done(session.actor, 50)
        return page(
            request,
            "tasks.html",
            session,
            status=status,
            new_session=made,
            items=items,
            done=done,
            error_in_form=_in_form(items, error),
            arguments={name: spec.arguments for name, spec in engine.commands.items()},
            error=error,
        )

    @get("/", sync_to_thread=True, include_in_schema=False, name="wb_tasks")
    def my_tasks(request: Request[Any, Any, Any]) -> Response[Any]:
        found = require(request)
        if isinstance(found, Response):
            return found
        session, made = found
        try:
            return tasks_page(request, session, made)
        except ApprovalflowError as error:
            return refused(request, session, error)

    # -- 项目 ------------------------------------------------------------------------------------

    def project_page(
        request: Request[Any, Any, Any],
        session: Session,
        made: Session | None,
        project_id: str,
        *,
        error: dict[str, str] | None = None,
        status: int = 200,
    ) -> Response[Any]:
        state = engine.project(project_id)
        actor = engine.actors.get(session.actor)
        if actor is None:
            raise NotAuthorized(f"{session.actor!r} is not in the actor directory")
        now = engine.clock.now()
        items = open_items(state, engine.rules_for(state), actor, calendar=engine.calendar, now=now)
        shown = names()
        history = engine.history(project_id)[: state.version]  # the version the page shows
        settings = engine.rules_for(state)
        bars = gantt_bars(
            history,
            department_name=shown.department,
            branch_state_name=shown.branch_state,
            state_name=shown.state,
            statutory_wd=dict(settings.statutory_limit_wd),
            calendar=engine.calendar,
        )
        holdups = [(h, h.working_days_left(engine.calendar, now)) for h in engine.holdups_of(state)]
        return page(
            request,
            "project.html",
            session,
            status=status,
            new_session=made,
            state=state,
            items=items,
            error_in_form=_in_form(items, error),
            holdups=holdups,
            deadlines=sorted(engine.deadlines_of(state).items()),
            history=list(reversed(history))[:200],
            history_count=len(history),
            gantt=gantt_svg(bars, engine.calendar, now),
            diagram=_workflow_svg(engine, state, settings, shown),
            arguments={name: spec.arguments for name, spec in engine.commands.items()},
            error=error,
        )

    @get(
        "/project/{project_id:str}", sync_to_thread=True, include_in_schema=False, name="wb_project"
    )
    def project(request: Request[Any, Any, Any], project_id: FromPath[str]) -> Response[Any]:
        found = require(request)
        if isinstance(found, Response):
            return found
        session, made = found
        try:
            return project_page(request, session, made, project_id)
        except ApprovalflowError as error:
            return refused(request, session, error)

    @post(
        "/project/{project_id:str}/do/{command:str}",
        sync_to_thread=True,
        include_in_schema=False,
        name="wb_command",
    )
    def run_command(
        request: Request[Any, Any, Any],
        project_id: FromPath[str],
        command: FromPath[str],
        data: Annotated[dict[str, Any], Body(media_type=RequestEncodingType.URL_ENCODED)],
    ) -> Response[Any]:
        session, _ = current(request)
        if session is None:
            return _csrf_refused(page, request, signed_in=False)
        if not keys.csrf_ok(session.sid, data.get(CSRF_FIELD)):
            return _csrf_refused(page, request)
        back = "project" if data.get("back") == "project" else "tasks"
        try:
            spec = engine.commands.get(command)
            if spec is None:
                raise InvalidCommand(f"unknown command {command!r}")
            engine.execute(
                command, project_id, session.actor, _form_arguments(spec.arguments, data)
            )
        except ApprovalflowError as error:
            shown = {
                "project": project_id,
                "command": command,
                # A rated item's forms share project and command: the item tells them apart, so
                # the refusal shows under the one form that was posted.
                "item": str(data.get("item") or ""),
                "code": error.code,
                "message": error.message,
            }
            try:
                if back == "project":
                    return project_page(
                        request, session, None, project_id, error=shown, status=status_for(error)
                    )
                return tasks_page(request, session, None, error=shown, status=status_for(error))
            except ApprovalflowError:
                return refused(request, session, error)
        target = f"/project/{project_id}" if back == "project" else "/"
        return Redirect(target, status_code=303)

    # -- 赛马榜 ----------------------------------------------------------------------------------

    @get("/leaderboard", sync_to_thread=True, include_in_schema=False, name="wb_leaderboard")
    def leaderboard(
        request: Request[Any, Any, Any],
        month: _Query = None,
        view: _Query = None,
        renderer: _Query = None,
    ) -> Response[Any]:
        session, made = current(request)
        if session is None and not public_leaderboard:
            return signin_redirect()
        month = month or to_local(engine.clock.now()).strftime("%Y-%m")
        if not _valid_month(month):
            return refused(request, session, InvalidCommand(f"month takes YYYY-MM, not {month!r}"))
        shown = names()
        rows = [
            {
                "rank": r.rank,
                "team": r.team,
                "team_name": shown.team(r.team),
                "points": r.points,
                "previous_rank": r.previous_rank,
                "previous_points": r.previous_points,
                "change": _change(r.rank, r.previous_rank),
            }
            for r in engine.leaderboard(month)
        ]
        milestones = _points_by_milestone(engine, month, [str(r["team"]) for r in rows])
        chart = {
            "month": month,
            "rows": rows,
            "milestones": milestones,
            "renderer": "svg" if renderer == "svg" else "canvas",
        }
        return page(
            request,
            "leaderboard.html",
            session,
            new_session=made,
            month=month,
            previous=_shift_month(month, -1),
            following=_shift_month(month, 1),
            rows=rows,
            milestones=milestones,
            chart_json=json.dumps(chart, ensure_ascii=False).replace("<", "\\u003c"),
            print_view=view == "print",
            renderer=chart["renderer"],
            public=session is None,
        )

    # -- 逾期 ------------------------------------------------------------------------------------

    @get("/late", sync_to_thread=True, include_in_schema=False, name="wb_late")
    def late(request: Request[Any, Any, Any], at: _Query = None) -> Response[Any]:
        found = require(request)
        if isinstance(found, Response):
            return found
        session, made = found
        now = engine.clock.now()
        if at:
            from approvalflow.calendar import parse_local

            try:
                now = parse_local(at)
            except ValueError as error:
                return refused(request, session, InvalidCommand(str(error)))
        grid = _late_grid(engine, now)
        return page(request, "late.html", session, new_session=made, now=now, **grid)

    # -- 指标 ------------------------------------------------------------------------------------

    @get("/metrics", sync_to_thread=True, include_in_schema=False, name="wb_metrics")
    def metrics(request: Request[Any, Any, Any], month: _Query = None) -> Response[Any]:
        found = require(request)
        if isinstance(found, Response):
            return found
        session, made = found
        if month is not None and not _valid_month(month):
            return refused(request, session, InvalidCommand(f"month takes YYYY-MM, not {month!r}"))
        # The counts the commits keep, by team and signing month (Engine.team_month_counts):
        # a few hundred rows, whatever the number of projects. The county's row is the sum of
        # its teams' (every project has a team).
        counts = engine.team_month_counts()
        by_team: dict[str, TeamMonthCounts] = {}
        for (team, signed_in), cohort in counts.items():
            if month is None or signed_in == month:
                by_team[team] = by_team.get(team, TeamMonthCounts()) + cohort
        overall = sum(by_team.values(), TeamMonthCounts()).figures()
        teams = [(team, cohort.figures()) for team, cohort in by_team.items()]
        table = _team_month_table(counts, month or to_local(engine.clock.now()).strftime("%Y-%m"))
        extra = {}
        if engine.plugin_manager.hook.approvalflow_metrics.get_hookimpls():
            extra = {k: v for k, v in engine.metrics(month=month).items() if k not in overall}
        fulfilment = next((v for k, v in extra.items() if k.endswith("fulfilment_rate")), None)
        return page(
            request,
            "metrics.html",
            session,
            new_session=made,
            overall=overall,
            teams=teams,
            fulfilment=fulfilment,
            table=table,
            month=month,
            this_month=to_local(engine.clock.now()).strftime("%Y-%m"),
            previous=_shift_month(month, -1) if month else None,
            following=_shift_month(month, 1) if month else None,
        )

    # -- 日历 ------------------------------------------------------------------------------------

    @get("/calendar", sync_to_thread=True, include_in_schema=False, name="wb_calendar")
    def calendar(request: Request[Any, Any, Any], month: _Query = None) -> Response[Any]:
        found = require(request)
        if isinstance(found, Response):
            return found
        session, made = found
        month = month or to_local(engine.clock.now()).strftime("%Y-%m")
        if not _valid_month(month):
            return refused(request, session, InvalidCommand(f"month takes YYYY-MM, not {month!r}"))
        year, number = (int(p) for p in month.split("-"))
        try:
            weeks = _month_grid(engine, year, number)
        except ApprovalflowError as error:
            return refused(request, session, error)
        return page(
            request,
            "calendar.html",
            session,
            new_session=made,
            month=month,
            previous=_shift_month(month, -1),
            following=_shift_month(month, 1),
            weeks=weeks,
            today=to_local(engine.clock.now()).date(),
        )

    static = create_static_files_router(
        path="/static", directories=[_HERE / "static"], include_in_schema=False, name="wb_static"
    )
    handlers: list[HTTPRouteHandler] = [
        signin_form,
        signin,
        signout,
        my_tasks,
        project,
        run_command,
        leaderboard,
        late,
        metrics,
        calendar,
    ]
    return [*handlers, static]


def _csrf_refused(
    page: Any, request: Request[Any, Any, Any], *, signed_in: bool = True
) -> Response[Any]:
    message = (
        "表单的校验码缺失或不符 (CSRF token missing or wrong): 请刷新页面后重试"
        if signed_in
        else "请先登录 (not signed in)"
    )
    refused: Response[Any] = page(
        request, "error.html", None, status=403, code="CSRFRefused", message=message
    )
    return refused


def _workflow_svg(engine: Engine, state: Any, settings: Any, shown: Names) -> str:
    """The library's SVG diagram of the stages (``approvalflow.diagram.diagram_svg``, labels in
    Chinese) with the project's stage marked, inline; unmarked where the stage is not one of
    the diagram's (a county plugin's own)."""
    from approvalflow.diagram import DiagramError
    from approvalflow.diagram import diagram_svg as library_svg
    from approvalflow.rules import stages as stage_rules
    from approvalflow.rules.commands import BUILTIN_COMMANDS

    run = stage_rules.current_stage(state)
    highlight = run.id if run is not None and state.stage == "approval" else state.stage
    extra = sorted(set(engine.commands) - set(BUILTIN_COMMANDS))
    for mark in (highlight, state.stage, None):
        try:
            drawn = library_svg(
                "stages",
                highlight=mark,
                extra_commands=extra,
                stages=settings.approval.stages,
                names=shown,
            )
        except DiagramError:
            continue
        return drawn.split("?>", 1)[1].lstrip() if drawn.startswith("<?xml") else drawn
    raise AssertionError("the stages diagram draws without a highlight")


def _in_form(items: Sequence[Any], error: Mapping[str, str] | None) -> bool:
    """Whether a refusal is shown beside the form it came from (else above the list)."""
    return error is not None and any(
        i.project == error["project"]
        and error["command"] in i.commands
        and (i.item or "") == error.get("item", "")
        for i in items
    )


def _jwt_expiry(token: str) -> int | None:
    """A verified JWT's ``exp`` (read after verification), so a session ends with it."""
    try:
        import jwt

        claims = jwt.decode(token, options={"verify_signature": False})
    except Exception:
        return None
    exp = claims.get("exp")
    return int(exp) if isinstance(exp, int | float) else None


def _valid_month(month: str) -> bool:
    import re

    return re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", month) is not None


def _shift_month(month: str, by: int) -> str:
    year, number = (int(p) for p in month.split("-"))
    index = year * 12 + number - 1 + by
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def _points_by_milestone(engine: Engine, month: str, teams: Sequence[str]) -> dict[str, Any]:
    """Points per milestone for each team of the board (``Engine.points_by_milestone``), the
    milestones in the order a project reaches them."""
    found = engine.points_by_milestone(month)
    seen = {kind for per in found.values() for kind in per}
    kinds = [k for k in _MILESTONE_ORDER if k in seen] + sorted(seen - set(_MILESTONE_ORDER))
    if not kinds:
        return {}
    return {
        "kinds": kinds,
        "labels": [MILESTONE_NAMES.get(kind, kind) for kind in kinds],
        "series": {kind: [found.get(team, {}).get(kind, 0) for team in teams] for kind in kinds},
    }


_TABLE_MONTHS = 12
"""The team × month table shows at most this many months, the chosen one last."""


def _team_month_table(
    counts: Mapping[tuple[str, str | None], TeamMonthCounts], last: str
) -> dict[str, Any]:
    """The four rates of each team's projects signed in each month (D258), for the months up
    to ``last`` with a signing, at most ``_TABLE_MONTHS`` of them: a row per team, a cell per
    month (``None`` where the team signed nothing that month)."""
    months = sorted({m for (_, m) in counts if m is not None and m <= last})[-_TABLE_MONTHS:]
    chosen = set(months)
    cells: dict[str, dict[str, dict[str, Any]]] = {}
    for (team, signed_in), found in counts.items():
        if signed_in in chosen and found.signed_count:
            cells.setdefault(team, {})[str(signed_in)] = found.figures()
    return {
        "months": months,
        "rows": [(team, [cells[team].get(m) for m in months]) for team in sorted(cells)],
    }


_CELL_LIMIT = 8
"""At most this many projects are named in one cell of the late grid; the rest are counted."""


def _late_grid(engine: Engine, now: datetime) -> dict[str, Any]:
    """Departments × the weeks (Monday) late items fell due in, each cell its light: 红灯 for a
    red card or more than five working days late, 黄灯 for late, 绿灯 for none (D134)."""
    shown = Names.of(engine.settings, engine.actors, engine.commands)
    # By department and deadline, the earliest first, each with its count and first items
    # (Engine.late_summary): a cell adds up its deadlines and names the first eight items.
    late = engine.late_summary(now, _CELL_LIMIT)
    weeks: set[date] = set()
    cells: dict[tuple[str, date], dict[str, Any]] = {}
    calendar = engine.calendar
    total = 0
    for dept, groups in late.items():
        for group in groups:
            day = (to_local(group.due) - timedelta(days=1)).date()
            week = day - timedelta(days=day.weekday())
            left = working_days_left(group.due, calendar, now)
            overdue = -left if left is not None else None
            weeks.add(week)
            total += group.count
            cell = cells.get((dept, week))
            if cell is None:
                cell = cells[(dept, week)] = {"items": [], "count": 0, "red": False}
            cell["count"] += group.count
            if "red" in group.cards or (overdue or 0) > 5:
                cell["red"] = True
            for item in group.first[: _CELL_LIMIT - len(cell["items"])]:
                cell["items"].append(
                    {
                        "project": item.project,
                        "what": item.what,
                        "overdue": overdue,
                        "card": item.card,
                    }
                )
    this_week = to_local(now).date() - timedelta(days=to_local(now).weekday())
    weeks.add(this_week)
    columns = sorted(weeks)[-12:]
    named = {i["project"] for cell in cells.values() for i in cell["items"]}
    project_names = engine.project_names(sorted(named))
    departments = sorted(set(engine.settings.departments) | set(late))
    rows = []
    for dept in departments:
        row = []
        for week in columns:
            cell = cells.get((dept, week))
            if cell is None:
                row.append({"light": "green", "items": [], "more": 0})
                continue
            for i in cell["items"]:
                i["name"] = project_names.get(i["project"], i["project"])
            row.append(
                {
                    "light": "red" if cell["red"] else "yellow",
                    "items": cell["items"],
                    "more": cell["count"] - len(cell["items"]),
                }
            )
        rows.append({"department": dept, "name": shown.department(dept), "cells": row})
    return {"columns": columns, "rows": rows, "count": total, "cell_limit": _CELL_LIMIT}


def _month_grid(engine: Engine, year: int, month: int) -> list[list[dict[str, Any]]]:
    """The month as weeks (Monday first) of days: working or not, and why (周末, 节假日,
    调休上班)."""
    weeks: list[list[dict[str, Any]]] = []
    week: list[dict[str, Any]] = [{} for _ in range(7)]
    for day in month_days(year, month):
        working = engine.calendar.is_working_day(day)
        weekend = day.weekday() >= 5
        if working and weekend:
            kind = "makeup"
        elif not working and not weekend:
            kind = "holiday"
        elif not working:
            kind = "weekend"
        else:
            kind = "working"
        week[day.weekday()] = {"day": day, "working": working, "kind": kind}
        if day.weekday() == 6:
            weeks.append(week)
            week = [{} for _ in range(7)]
    if any(week):
        weeks.append(week)
    return weeks

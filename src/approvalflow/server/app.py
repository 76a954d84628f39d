"""The HTTP service: an ASGI app (Litestar) over one engine.

Litestar builds the OpenAPI document from the attrs classes of ``views`` as they are (no second
model system beside attrs); ``GET /openapi.json`` serves it and ``docs/openapi.json`` is the
committed copy a test compares with. Handlers are synchronous, run in worker threads (the
engine and its stores are synchronous and thread-safe).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Annotated, Any

from litestar import Litestar, MediaType, Request, Response, get, post
from litestar.datastructures import ResponseHeader
from litestar.enums import ScopeType
from litestar.exceptions import HTTPException, NotFoundException, ValidationException
from litestar.openapi import OpenAPIConfig, ResponseSpec
from litestar.openapi.spec import Components, SecurityScheme
from litestar.params import FromPath, HeaderParameter, JSONBody, QueryParameter
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from approvalflow import __version__
from approvalflow.clock import Clock
from approvalflow.engine import Engine
from approvalflow.errors import ApprovalflowError, InvalidCommand
from approvalflow.model import Actor, ActorDirectory
from approvalflow.plugins import hookimpl
from approvalflow.rules.context import Context
from approvalflow.server.auth import ACTOR_HEADER, SYSTEM_HEADER, Authenticator, Caller, JWTSettings
from approvalflow.server.problems import PROBLEM_TYPE, PreconditionFailed, status_for
from approvalflow.server.views import (
    AuditHead,
    AuditReport,
    CommandOutcome,
    DoneView,
    EventView,
    HistoryPage,
    LeaderboardEntry,
    NewProject,
    NoticeView,
    OutboxAck,
    OutboxClaim,
    OutboxFailure,
    PreviewRequest,
    PreviewView,
    Problem,
    ProjectView,
    TaskView,
)
from approvalflow.server.workbench import WORKBENCH_QUERY
from approvalflow.settings import Settings

__all__ = ["IF_MATCH_GUARD", "create_app"]

PROBLEM_MEDIA = "application/problem+json"
_ERRORS = {
    401: "no credential, or one this service does not accept",
    403: "the credential or the acting person may not do this",
    404: "no such project",
    409: "not allowed in the project's current state, or lost to a concurrent writer",
    412: "If-Match names a version the project has left",
    422: "bad or missing arguments",
}


def _problems(*statuses: int) -> dict[int, ResponseSpec]:
    return {
        status: ResponseSpec(
            Problem, description=_ERRORS[status], media_type=PROBLEM_MEDIA, generate_examples=False
        )
        for status in statuses
    }


_READ = _problems(401, 403, 422)
_PROJECT_READ = _problems(401, 403, 404, 422)
_WRITE = _problems(401, 403, 404, 409, 412, 422)
_SECURITY: list[dict[str, list[str]]] = [{"bearer": []}]
_ETAG = [
    ResponseHeader(
        name="ETag",
        description='the project\'s version, quoted ("7"): send it back as If-Match',
        documentation_only=True,
    )
]


class _IfMatch(threading.local):
    expected: int | None = None


_if_match = _IfMatch()


class _IfMatchGuard:
    """Refuses, inside the engine's attempt, a write decided on a version other than the one
    the request's ``If-Match`` named: the check before the call cannot see a writer that
    commits between it and the engine's read."""

    @hookimpl
    def approvalflow_check_command(self, context: Context, command: str) -> None:
        expected = _if_match.expected
        if expected is not None and command != "create" and context.state.version != expected:
            raise PreconditionFailed(
                f"{context.state.id} is at version {context.state.version}, not {expected}"
            )


IF_MATCH_GUARD = _IfMatchGuard()


def _logger() -> Any:
    import structlog

    return structlog.get_logger("approvalflow.service")


def _problem(error: ApprovalflowError, status: int | None = None) -> Response[Problem]:
    status = status or status_for(error)
    problem = Problem(PROBLEM_TYPE + error.code, error.code, status, error.message, error.code)
    headers = {"WWW-Authenticate": 'Bearer realm="approvalflow"'} if status == 401 else {}
    return Response(problem, status_code=status, media_type=PROBLEM_MEDIA, headers=headers)


def _set_outcome(request: Request[Any, Any, Any], code: str) -> None:
    request.scope.setdefault("state", {})["approvalflow_code"] = code


def _on_library_error(request: Request[Any, Any, Any], error: Exception) -> Response[Problem]:
    assert isinstance(error, ApprovalflowError)
    _set_outcome(request, error.code)
    return _problem(error)


def _on_validation(request: Request[Any, Any, Any], error: Exception) -> Response[Problem]:
    assert isinstance(error, ValidationException)
    detail = f"{error.detail}: {error.extra}" if error.extra else str(error.detail)
    _set_outcome(request, InvalidCommand.code)
    return _problem(InvalidCommand(detail), 422)


def _on_http(request: Request[Any, Any, Any], error: Exception) -> Response[Problem]:
    assert isinstance(error, HTTPException)
    if error.status_code == 400:
        # A body or parameter the framework could not read: the library's bad-argument error.
        return _on_validation(request, ValidationException(str(error.detail)))
    code = "NotFound" if isinstance(error, NotFoundException) else "HTTPError"
    _set_outcome(request, code)
    status = error.status_code
    problem = Problem(PROBLEM_TYPE + code, code, status, str(error.detail), code)
    # Keep the framework's headers: a 405 names the allowed methods (Allow, RFC 9110).
    return Response(
        problem, status_code=status, media_type=PROBLEM_MEDIA, headers=dict(error.headers or {})
    )


def _on_crash(request: Request[Any, Any, Any], error: Exception) -> Response[Problem]:
    _logger().error("approvalflow.request_failed", path=request.url.path, error=repr(error))
    _set_outcome(request, "InternalError")
    problem = Problem(
        PROBLEM_TYPE + "InternalError", "InternalError", 500, "the service failed", "InternalError"
    )
    return Response(problem, status_code=500, media_type=PROBLEM_MEDIA)


def _request_log(app: ASGIApp) -> ASGIApp:
    """One log line per request: method, path, status, system, actor, outcome code, time."""

    # Bound once, when the app is built, not per request: a bind is a fifth of the line's cost.
    log = _logger().bind()

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        started = time.perf_counter()
        status = [500]

        async def watch(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await app(scope, receive, watch)
        finally:
            state = scope.get("state", {})
            caller: Caller | None = state.get("approvalflow_caller")
            log.info(
                "approvalflow.request",
                method=scope.get("method"),
                path=scope.get("path"),
                status=status[0],
                system=caller.system if caller else None,
                actor=caller.actor if caller else None,
                outcome=state.get("approvalflow_code", "ok" if status[0] < 400 else None),
                ms=round((time.perf_counter() - started) * 1000, 1),
            )

    return middleware


_QUERY: Mapping[str, frozenset[str]] = {
    **WORKBENCH_QUERY,
    "history": frozenset({"after", "limit"}),
    "done": frozenset({"limit"}),
    "leaderboard": frozenset({"month"}),
    "audit_verify": frozenset({"expect_count", "expect_hash"}),
    "outbox_claim": frozenset({"limit"}),
}


async def _refuse_unknown_query(request: Request[Any, Any, Any]) -> None:
    """A query parameter the operation does not take is refused, not ignored: a misspelt
    ``limt=5`` would otherwise answer as if it were not there. An async hook: a sync one
    would cost every request a trip to the thread pool."""
    if not request.scope["query_string"]:
        return  # nothing to refuse, and most requests (every command) carry no query
    handler = request.route_handler
    allowed = _QUERY.get(handler.name or handler.handler_name, frozenset())
    unknown = sorted(set(request.query_params) - allowed)
    if unknown:
        raise InvalidCommand(
            f"unknown query parameter(s) {', '.join(map(repr, unknown))} "
            f"(this operation takes: {', '.join(sorted(allowed)) or 'none'})"
        )


def _etag(version: int) -> str:
    return f'"{version}"'


def _parse_if_match(value: str | None) -> int | None:
    """The version an ``If-Match`` header names (``"7"``, ``W/"7"`` or ``7``); ``None`` for no
    header or ``*``."""
    if value is None or value.strip() == "*":
        return None
    text = value.strip().removeprefix("W/").strip('"')
    if not text.isdigit():
        raise InvalidCommand(
            f"If-Match must name a project version as its ETag does, not {value!r}"
        )
    return int(text)


def create_app(
    *,
    store: Any,
    actors: ActorDirectory | Iterable[Actor] = (),
    plugins: Sequence[str | object] = (),
    settings: Settings | Mapping[str, Any] | None = None,
    clock: Clock | None = None,
    jwt: JWTSettings | None = None,
    notice_lease: timedelta = timedelta(minutes=5),
    workbench: bool = True,
    session_key: bytes | None = None,
    jwt_header: str | None = None,
    public_leaderboard: bool = False,
) -> Litestar:
    """The service over ``store`` (a ``Store`` or a store URL), for the county's ``actors``,
    ``plugins`` and ``settings``. Notices stay in the outbox (for a worker, or for systems that
    pull them through ``/outbox``).

    With ``workbench`` the people's pages are served at ``/`` (``workbench.py``): sessions are
    signed with ``session_key`` (default: a key of this process), ``jwt_header`` names the
    header in which the county's reverse proxy passes a person's JWT, and
    ``public_leaderboard`` lets anyone read the 赛马榜 page without signing in."""
    engine = Engine(
        actors=actors,
        store=store,
        settings=settings,
        plugins=[*plugins, IF_MATCH_GUARD],
        clock=clock,
        deliver="outbox",
    )
    authenticator = Authenticator(engine.store, jwt)

    def caller_of(request: Request[Any, Any, Any]) -> Caller:
        caller = authenticator.authenticate(
            request.headers.get("authorization"),
            request.headers.get(ACTOR_HEADER.lower()),
            request.headers.get(SYSTEM_HEADER.lower()),
        )
        request.scope.setdefault("state", {})["approvalflow_caller"] = caller
        return caller

    def version_of(project_id: FromPath[str]) -> int:
        return engine.project(project_id).version

    def command_id_of(caller: Caller, key: str | None) -> str | None:
        # Command ids are unique in the whole store: one system's key never replays another's.
        return None if key is None else f"{caller.system}:{key}"

    @get("/health", sync_to_thread=False, tags=["service"])
    def health() -> dict[str, str]:
        """Unauthenticated: the service answers and can read its store."""
        engine.store.next_due()
        return {"status": "ok", "version": __version__}

    @post(
        "/projects",
        sync_to_thread=True,
        status_code=201,
        response_headers=_ETAG,
        responses=_WRITE,
        security=_SECURITY,
        tags=["projects"],
    )
    def create_project(
        request: Request[Any, Any, Any],
        data: JSONBody[NewProject],
        idempotency_key: Annotated[str | None, HeaderParameter(name="Idempotency-Key")] = None,
    ) -> Response[CommandOutcome]:
        """Create a project (the ``create`` command) as the acting person."""
        caller = caller_of(request)
        result = engine.execute(
            "create",
            data.id,
            caller.acting(),
            data.fields,
            command_id=command_id_of(caller, idempotency_key),
        )
        return Response(
            CommandOutcome.of(result),
            status_code=200 if result.replayed else 201,
            headers={"ETag": _etag(result.version), "Location": f"/projects/{data.id}"},
        )

    @get(
        "/projects/{project_id:str}",
        sync_to_thread=True,
        response_headers=_ETAG,
        responses=_PROJECT_READ,
        security=_SECURITY,
        tags=["projects"],
    )
    def read_project(
        request: Request[Any, Any, Any], project_id: FromPath[str]
    ) -> Response[ProjectView]:
        """The project now: stage, branches, open deadlines, who holds it up; its version is
        the ``ETag`` to send back as ``If-Match``."""
        caller_of(request)
        state = engine.project(project_id)
        view = ProjectView.of(state, engine.deadlines(project_id), engine.holdups(project_id))
        return Response(view, headers={"ETag": _etag(state.version)})

    @get(
        "/projects/{project_id:str}/history",
        sync_to_thread=True,
        responses=_PROJECT_READ,
        security=_SECURITY,
        tags=["projects"],
    )
    def history(
        request: Request[Any, Any, Any],
        project_id: FromPath[str],
        after: Annotated[
            int, QueryParameter(ge=0, description="the last version already read")
        ] = 0,
        limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 100,
    ) -> HistoryPage:
        """The project's events after version ``after``, oldest first, a page at a time."""
        caller_of(request)
        engine.project(project_id)
        events = engine.store.events(project_id, after)
        page = events[:limit]
        more = len(events) > limit
        return HistoryPage(
            project_id, [EventView.of(e) for e in page], page[-1].version if more else None
        )

    @post(
        "/projects/{project_id:str}/commands/{name:str}",
        sync_to_thread=True,
        response_headers=_ETAG,
        status_code=200,
        responses=_WRITE,
        security=_SECURITY,
        tags=["projects"],
    )
    def command(
        request: Request[Any, Any, Any],
        project_id: FromPath[str],
        name: FromPath[str],
        data: JSONBody[dict[str, Any] | None] = None,
        idempotency_key: Annotated[str | None, HeaderParameter(name="Idempotency-Key")] = None,
        if_match: Annotated[str | None, HeaderParameter(name="If-Match")] = None,
    ) -> Response[CommandOutcome]:
        """Run command ``name`` with the body as its arguments, as ``Engine.execute`` does:
        the same errors, and ``Idempotency-Key`` as its command id. With ``If-Match`` (the
        ``ETag`` read before), a project that moved on since refuses it with 412."""
        caller = caller_of(request)
        expected = _parse_if_match(if_match)
        # The guard checks the version inside the engine's attempt, so a command that goes
        # through read no other version and costs no read of its own. A stale If-Match still
        # answers 412 before any other refusal (RFC 9110: the precondition comes first): only
        # a refused or replayed command reads the version, to tell which answer is due (D115).
        _if_match.expected = expected
        try:
            result = engine.execute(
                name,
                project_id,
                caller.acting(),
                data or {},
                command_id=command_id_of(caller, idempotency_key),
            )
        except ApprovalflowError as error:
            if expected is None or name == "create" or isinstance(error, PreconditionFailed):
                raise
            found = version_of(project_id)
            if found != expected:
                raise PreconditionFailed(
                    f"{project_id} is at version {found}, not {expected}"
                ) from None
            raise
        finally:
            _if_match.expected = None
        if result.replayed and expected is not None and name != "create":
            found = version_of(project_id)
            if found != expected:
                raise PreconditionFailed(f"{project_id} is at version {found}, not {expected}")
        return Response(CommandOutcome.of(result), headers={"ETag": _etag(result.version)})

    @get("/tasks", sync_to_thread=True, responses=_READ, security=_SECURITY, tags=["tasks"])
    def tasks(request: Request[Any, Any, Any]) -> list[TaskView]:
        """What waits on the acting person (待办), most urgent first."""
        caller = caller_of(request)
        return [TaskView.of(item) for item in engine.tasks(caller.acting())]

    @get("/done", sync_to_thread=True, responses=_READ, security=_SECURITY, tags=["tasks"])
    def done(
        request: Request[Any, Any, Any],
        limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 100,
    ) -> list[DoneView]:
        """What the acting person did (已办), the latest first."""
        caller = caller_of(request)
        return [DoneView.of(item) for item in engine.done(caller.acting(), limit)]

    @post(
        "/preview",
        sync_to_thread=True,
        status_code=200,
        responses=_READ,
        security=_SECURITY,
        tags=["projects"],
    )
    def preview(request: Request[Any, Any, Any], data: JSONBody[PreviewRequest]) -> PreviewView:
        """What-if: the departments and every deadline a project with these fields would get.
        Writes nothing."""
        caller = caller_of(request)
        found = engine.preview(
            data.fields, caller.acting(), start=data.start, approval_start=data.approval_start
        )
        return PreviewView.of(found)

    @get(
        "/reports/leaderboard",
        sync_to_thread=True,
        responses=_READ,
        security=_SECURITY,
        tags=["reports"],
    )
    def leaderboard(
        request: Request[Any, Any, Any],
        month: Annotated[str, QueryParameter(pattern=r"^\d{4}-(0[1-9]|1[0-2])$")],
    ) -> list[LeaderboardEntry]:
        """The month's board (``YYYY-MM``) with last month's ranks."""
        caller_of(request)
        return [LeaderboardEntry.of(row) for row in engine.leaderboard(month)]

    @get(
        "/reports/metrics",
        sync_to_thread=True,
        responses=_READ,
        security=_SECURITY,
        tags=["reports"],
    )
    def metrics(request: Request[Any, Any, Any]) -> dict[str, Any]:
        """WORKFLOW.md's metrics (rule 12) and the plugins' over every project; rates as
        decimal strings of exact fractions."""
        caller_of(request)
        found: dict[str, Any] = _plain(engine.metrics())
        return found

    @get(
        "/reports/late-items",
        sync_to_thread=True,
        responses=_READ,
        security=_SECURITY,
        tags=["reports"],
    )
    def late_items(request: Request[Any, Any, Any]) -> dict[str, list[dict[str, Any]]]:
        """Every open review or branch past its deadline, by department."""
        caller_of(request)
        return {
            dept: [{"project": h.project, **_plain(_holdup(h))} for h in items]
            for dept, items in engine.late_items().items()
        }

    @get("/audit/head", sync_to_thread=True, responses=_READ, security=_SECURITY, tags=["audit"])
    def audit_head(request: Request[Any, Any, Any]) -> AuditHead:
        """The store's head (``InvalidCommand`` on a store that keeps no chain)."""
        caller_of(request)
        head = getattr(engine.store, "chain_head", None)
        if head is None:
            raise InvalidCommand(f"{type(engine.store).__name__} keeps no audit chain")
        found = head()
        return AuditHead(found.count, found.hash)

    @get("/audit/verify", sync_to_thread=True, responses=_READ, security=_SECURITY, tags=["audit"])
    def audit_verify(
        request: Request[Any, Any, Any],
        expect_count: Annotated[int | None, QueryParameter(ge=0)] = None,
        expect_hash: Annotated[str | None, QueryParameter(pattern=r"^[0-9a-f]{64}$")] = None,
    ) -> AuditReport:
        """Replay every project's chain and name the first finding (timers and checkpoints
        are checked by ``approvalflow audit verify``); with ``expect_count`` and
        ``expect_hash`` (a head taken earlier) the store must still be at that head."""
        from approvalflow.stores.audit import ChainHead, verify_chain

        caller_of(request)
        expected = None
        if (expect_count is None) != (expect_hash is None):
            raise InvalidCommand("expect_count and expect_hash go together")
        if expect_count is not None and expect_hash is not None:
            expected = ChainHead(expect_count, expect_hash)
        try:
            report = verify_chain(engine.store, expected)
        except TypeError as error:
            raise InvalidCommand(str(error)) from None
        bad = report.first_bad
        return AuditReport(
            report.ok,
            report.count,
            report.head,
            bad[0] if bad else None,
            bad[1] if bad else None,
            report.reason,
        )

    @post(
        "/outbox/claim",
        sync_to_thread=True,
        status_code=200,
        responses=_READ,
        security=_SECURITY,
        tags=["outbox"],
    )
    def outbox_claim(
        request: Request[Any, Any, Any],
        limit: Annotated[int, QueryParameter(ge=1, le=500)] = 50,
    ) -> list[OutboxClaim]:
        """Claim up to ``limit`` notices due for delivery; acknowledge each (``/outbox/ack``)
        or report its failure (``/outbox/fail``) within the lease, else it is claimed again."""
        caller_of(request)
        now = engine.clock.now()
        until = now + notice_lease
        return [
            OutboxClaim(NoticeView.of(e.notice), e.attempts, e.last_error, until)
            for e in engine.store.claim_notices(now, limit)
        ]

    @post(
        "/outbox/ack",
        sync_to_thread=True,
        status_code=200,
        responses=_READ,
        security=_SECURITY,
        tags=["outbox"],
    )
    def outbox_ack(request: Request[Any, Any, Any], data: JSONBody[OutboxAck]) -> dict[str, int]:
        """The notices were delivered: they leave the outbox."""
        caller_of(request)
        engine.store.mark_delivered(list(data.notice_ids))
        return {"acknowledged": len(data.notice_ids)}

    @post(
        "/outbox/fail",
        sync_to_thread=True,
        status_code=200,
        responses=_READ,
        security=_SECURITY,
        tags=["outbox"],
    )
    def outbox_fail(
        request: Request[Any, Any, Any], data: JSONBody[OutboxFailure]
    ) -> dict[str, str]:
        """The notice could not be delivered: it is offered again after the delay."""
        caller_of(request)
        if not 0 <= data.retry_after_seconds <= 7 * 24 * 3600:
            raise InvalidCommand("retry_after_seconds must be between 0 and 604800 (a week)")
        when = engine.clock.now() + timedelta(seconds=data.retry_after_seconds)
        engine.store.mark_failed(data.notice_id, data.error, when)
        return {"notice_id": data.notice_id, "next_attempt": when.isoformat()}

    pages: list[Any] = []
    if workbench:
        from approvalflow.server.sessions import SessionKeys
        from approvalflow.server.workbench import workbench_handlers

        pages = workbench_handlers(
            engine,
            authenticator,
            keys=SessionKeys(session_key),
            jwt_header=jwt_header,
            public_leaderboard=public_leaderboard,
        )
    app = Litestar(
        route_handlers=[
            *pages,
            health,
            create_project,
            read_project,
            history,
            command,
            tasks,
            done,
            preview,
            leaderboard,
            metrics,
            late_items,
            audit_head,
            audit_verify,
            outbox_claim,
            outbox_ack,
            outbox_fail,
        ],
        exception_handlers={
            ApprovalflowError: _on_library_error,
            ValidationException: _on_validation,
            HTTPException: _on_http,
            Exception: _on_crash,
        },
        openapi_config=OpenAPIConfig(
            title="approvalflow",
            version=__version__,
            description=(
                "The approval workflow of county investment projects over HTTP. Errors are RFC "
                "9457 problem details whose `code` is the library's error code."
            ),
            components=Components(
                security_schemes={
                    "bearer": SecurityScheme(
                        type="http",
                        scheme="bearer",
                        description=(
                            "A token the county issued (`approvalflow token issue`) or a JWT "
                            "from the host's identity service"
                        ),
                    )
                }
            ),
            path="/schema",
            use_handler_docstrings=True,
        ),
        middleware=[_request_log],
        # The app is built by hosts and tests too: like the rest of the library it leaves the
        # process's logging to whoever runs it (the CLI configures it for `serve`).
        logging_config=None,
        before_request=_refuse_unknown_query,
        debug=False,
    )

    @get("/openapi.json", sync_to_thread=False, include_in_schema=False, media_type=MediaType.JSON)
    def openapi_document() -> dict[str, Any]:
        return published_document(app)

    app.register(openapi_document)
    app.state["engine"] = engine
    return app


def published_document(app: Litestar) -> dict[str, Any]:
    """The OpenAPI document as published: Litestar's, less the 400 answers it declares for
    validation (the service answers those 422 ``InvalidCommand``, declared on each operation),
    with a schema on each response header, and with a command's body optional (most commands
    take no arguments)."""
    document: dict[str, Any] = app.openapi_schema.to_schema()
    for item in document.get("paths", {}).values():
        for operation in item.values():
            if isinstance(operation, dict):
                operation.get("responses", {}).pop("400", None)
                for response in operation.get("responses", {}).values():
                    # A header needs a schema (OpenAPI 3.1); Litestar writes none for ETag.
                    for header in response.get("headers", {}).values():
                        header.setdefault("schema", {"type": "string"})
    command = document["paths"]["/projects/{project_id}/commands/{name}"]["post"]
    command["requestBody"]["required"] = False
    return document


def _holdup(holdup: Any) -> dict[str, Any]:
    return {
        "waiting_on": holdup.waiting_on,
        "what": holdup.what,
        "due": holdup.due.isoformat() if holdup.due else None,
        "state": holdup.state,
        "handler": holdup.handler,
        "deputy": holdup.deputy,
        "card": holdup.card,
    }


def _plain(value: Any) -> Any:
    """JSON-ready: exact fractions and decimals as decimal strings, datetimes as ISO text."""
    from decimal import Decimal
    from fractions import Fraction

    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Fraction):
        return str(round(Decimal(value.numerator) / Decimal(value.denominator), 6))
    if isinstance(value, datetime):
        return value.isoformat()
    return value

"""The HTTP service: an ASGI app (Litestar) over one engine.

Litestar builds the OpenAPI document from the attrs classes of ``views`` as they are (no second
model system beside attrs); ``GET /openapi.json`` serves it and ``docs/openapi.json`` is the
committed copy a test compares with. Handlers are synchronous, run in worker threads (the
engine and its stores are synchronous and thread-safe).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Annotated, Any

import msgspec
from litestar import Litestar, MediaType, Request, Response, get, post
from litestar.concurrency import sync_to_thread
from litestar.datastructures import ResponseHeader
from litestar.enums import ScopeType
from litestar.exceptions import HTTPException, NotFoundException, ValidationException
from litestar.openapi import OpenAPIConfig, ResponseSpec
from litestar.openapi.spec import Components, SecurityScheme
from litestar.params import FromPath, HeaderParameter, JSONBody, QueryParameter
from litestar.serialization import default_serializer, encode_json
from litestar.types import (
    ASGIApp,
    HTTPResponseBodyEvent,
    HTTPResponseStartEvent,
    Message,
    Receive,
    ReceiveMessage,
    Scope,
    Send,
)

from approvalflow import __version__
from approvalflow.clock import Clock
from approvalflow.engine import Engine
from approvalflow.engine.definition import RuleBook
from approvalflow.errors import (
    ApprovalflowError,
    CheckpointError,
    InvalidCommand,
    NotAuthorized,
    ProvinceError,
)
from approvalflow.model import Actor, ActorDirectory
from approvalflow.plugins import hookimpl
from approvalflow.province import COUNTY_MEASURES, Province
from approvalflow.rules.context import Context
from approvalflow.server.auth import ACTOR_HEADER, SYSTEM_HEADER, Authenticator, Caller, JWTSettings
from approvalflow.server.problems import PROBLEM_TYPE, PreconditionFailed, status_for
from approvalflow.server.views import (
    AuditFinding,
    AuditHead,
    AuditReport,
    CommandOutcome,
    CountyRankView,
    DepartmentRankView,
    DoneView,
    EventView,
    HistoryPage,
    IntakeRequest,
    IntakeView,
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
    RedBlackView,
    TaskView,
)
from approvalflow.server.workbench import WORKBENCH_QUERY
from approvalflow.settings import Settings
from approvalflow.stores.audit import ChainHead
from approvalflow.stores.checkpoints import SealKey
from approvalflow.stores.tokens import PROVINCE

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
    _set_outcome(request, InvalidCommand.code)
    return _problem(InvalidCommand(_validation_detail(error)), 422)


def _validation_detail(error: ValidationException) -> str:
    """The framework's refusal as one readable sentence: each value it refused, where it came
    from (query, body, header) and why ("limit (query): Expected `int`, got `str`"), not the
    Python repr of its list (which showed ``<ParamType.QUERY: 'query'>`` to the caller)."""
    extra = error.extra
    if not extra:
        return str(error.detail)
    if not isinstance(extra, list) or not all(isinstance(item, dict) for item in extra):
        return f"{error.detail}: {extra}"
    parts = []
    for item in extra:
        source = item.get("source")
        source = getattr(source, "value", source)
        key = item.get("key")
        where = f"{key} ({source})" if key and source else str(key or source or "the request")
        parts.append(f"{where}: {item.get('message')}")
    return f"{error.detail}: {'; '.join(parts)}"


def _on_http(request: Request[Any, Any, Any], error: Exception) -> Response[Problem]:
    assert isinstance(error, HTTPException)
    if error.status_code == 400:
        # A body or parameter the framework could not read: the library's bad-argument error.
        return _on_validation(request, ValidationException(str(error.detail)))
    code = "NotFound" if isinstance(error, NotFoundException) else "HTTPError"
    _set_outcome(request, code)
    status = error.status_code
    _log_unrouted(request, status, code)
    problem = Problem(PROBLEM_TYPE + code, code, status, str(error.detail), code)
    # Keep the framework's headers: a 405 names the allowed methods (Allow, RFC 9110).
    return Response(
        problem, status_code=status, media_type=PROBLEM_MEDIA, headers=dict(error.headers or {})
    )


def _on_crash(request: Request[Any, Any, Any], error: Exception) -> Response[Problem]:
    response = _crash(request.url.path, request.scope.setdefault("state", {}), error)
    _log_unrouted(request, 500, "InternalError")
    return response


def _log_unrouted(request: Request[Any, Any, Any], status: int, code: str) -> None:
    """The log line of a request no route took (a path the service does not have, a method
    its path does not take): the request log is the routes' middleware, which such a request
    never reaches, so without this line it would leave no trace."""
    state = request.scope.setdefault("state", {})
    if state.get(_LOGGED):
        return
    _logger().info(
        "approvalflow.request",
        method=request.scope.get("method"),
        path=request.scope.get("path"),
        status=status,
        system=None,
        actor=None,
        outcome=code,
        ms=None,
    )


# Set on a request the routes' request log writes the line of (``_logged``).
_LOGGED = "approvalflow_logged"


def _crash(path: str, state: dict[str, Any], error: Exception) -> Response[Problem]:
    _logger().error("approvalflow.request_failed", path=path, error=repr(error))
    state["approvalflow_code"] = "InternalError"
    problem = Problem(
        PROBLEM_TYPE + "InternalError", "InternalError", 500, "the service failed", "InternalError"
    )
    return Response(problem, status_code=500, media_type=PROBLEM_MEDIA)


class _Answering:
    """How many HTTP requests one app is answering now (read and written on its event loop)."""

    __slots__ = ("count",)

    def __init__(self) -> None:
        self.count = 0


def _request_log(answering: _Answering) -> Callable[[ASGIApp], ASGIApp]:
    """One log line per request: method, path, status, system, actor, outcome code, time;
    and the count of requests being answered, which the lean command route reads (D307)."""

    def request_log(app: ASGIApp) -> ASGIApp:
        # Bound once, when the app is built, not per request: a bind is a fifth of the line's
        # cost.
        log = _logger().bind()

        async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != ScopeType.HTTP:
                await app(scope, receive, send)
                return
            answering.count += 1
            try:
                await _logged(app, log, scope, receive, send)
            finally:
                answering.count -= 1

        return middleware

    return request_log


async def _logged(app: ASGIApp, log: Any, scope: Scope, receive: Receive, send: Send) -> None:
    """``app`` answering one request, then its log line."""
    started = time.perf_counter()
    status = [500]
    scope.setdefault("state", {})[_LOGGED] = True

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


# The headers the lean command route reads, as ASGI gives them (lowercase) and as it names them.
_LEAN_HEADERS = {
    name.encode("latin-1"): name
    for name in (
        "authorization",
        ACTOR_HEADER.lower(),
        SYSTEM_HEADER.lower(),
        "idempotency-key",
        "if-match",
    )
}

LeanWork = Callable[[dict[str, Any], Mapping[str, str], str, str, dict[str, Any]], Any]


def _lean_commands(work: LeanWork, answering: _Answering) -> Callable[[ASGIApp], ASGIApp]:
    """The command route's own middleware: the common request (no query string, each header
    once, a body that is a JSON object or nothing, sent as JSON or untyped) runs ``work`` and
    writes its answer directly, without Litestar's parameter extraction, signature model and
    response building, which cost about as much CPU as the command itself (D185). Any other
    request, and every refusal, goes the framework's way, so its answers and errors are those
    of the documented route: the lean path only leaves out work, never changes an answer.

    ``work`` runs on the event loop itself when this is the only request the app is answering
    (``answering``), in the thread pool otherwise (D307): alone, the trip to a worker thread and
    back is the largest cost a command has beyond its own, and there is nobody to make wait."""

    def middleware(app: ASGIApp) -> ASGIApp:
        async def lean(scope: Scope, receive: Receive, send: Send) -> None:
            messages: list[ReceiveMessage] = []
            while True:
                message = await receive()
                messages.append(message)
                if message["type"] != "http.request" or not message.get("more_body", False):
                    break
            args = _lean_arguments(scope, messages)
            headers = None if args is None else _lean_headers(scope)
            if args is None or headers is None:
                await app(scope, _replay(messages, receive), send)
                return
            params = scope["path_params"]
            call = (scope["state"], headers, params["project_id"], params["name"], args)
            try:
                if answering.count == 1:
                    # A request that comes in meanwhile waits for this one command at most,
                    # then finds two being answered, and goes to the pool.
                    outcome = work(*call)
                else:
                    outcome = await sync_to_thread(work, *call)
            except ApprovalflowError as error:
                # Answered here, as the route's own handler would: the framework's handler sits
                # inside this middleware, and the request log outside it must see the answer.
                scope["state"]["approvalflow_code"] = error.code
                await _send(send, _problem(error))
                return
            except Exception as error:
                await _send(send, _crash(scope["path"], scope["state"], error))
                return
            await _send(
                send,
                Response(outcome, headers={"ETag": _etag(outcome.version)}),
                media_type="application/json",
            )

        return lean

    return middleware


async def _send(send: Send, response: Response[Any], media_type: str | None = None) -> None:
    """Write ``response`` as Litestar would (its encoder, its header order), without it."""
    body = encode_json(response.content, default_serializer)
    headers = [
        (name.lower().encode("latin-1"), value.encode("latin-1"))
        for name, value in response.headers.items()
    ]
    start: HTTPResponseStartEvent = {
        "type": "http.response.start",
        "status": response.status_code or 200,
        "headers": [
            *headers,
            (b"content-type", (media_type or str(response.media_type)).encode("latin-1")),
            (b"content-length", str(len(body)).encode()),
        ],
    }
    await send(start)
    end: HTTPResponseBodyEvent = {"type": "http.response.body", "body": body, "more_body": False}
    await send(end)


def _lean_arguments(scope: Scope, messages: list[ReceiveMessage]) -> dict[str, Any] | None:
    """A command's arguments from a plain request, or ``None`` to leave it to Litestar."""
    if scope["query_string"] or messages[-1]["type"] != "http.request":
        return None
    chunks: list[bytes] = []
    for message in messages:
        if message["type"] == "http.request":
            chunks.append(message.get("body", b""))
    body = b"".join(chunks)
    if not body:
        return {}
    try:
        found = msgspec.json.decode(body)
    except msgspec.DecodeError:
        return None  # Litestar says what is wrong with it
    if found is None:
        return {}
    return found if isinstance(found, dict) else None


def _lean_headers(scope: Scope) -> dict[str, str] | None:
    """The headers the command reads, or ``None`` if one comes twice or the body says it is
    not JSON (Litestar decides those)."""
    found: dict[str, str] = {}
    for raw, value in scope["headers"]:
        if raw == b"content-type" and not value.lower().startswith(b"application/json"):
            return None
        name = _LEAN_HEADERS.get(raw)
        if name is not None:
            if name in found:
                return None
            found[name] = value.decode("latin-1")
    return found


def _replay(messages: list[ReceiveMessage], receive: Receive) -> Receive:
    """``receive`` again from the start: the lean route read the body already."""
    pending = list(messages)

    async def replay() -> ReceiveMessage:
        return pending.pop(0) if pending else await receive()

    return replay


_QUERY: Mapping[str, frozenset[str]] = {
    **WORKBENCH_QUERY,
    "history": frozenset({"after", "limit"}),
    "done": frozenset({"limit"}),
    "leaderboard": frozenset({"month"}),
    "audit_verify": frozenset({"expect_count", "expect_hash"}),
    "outbox_claim": frozenset({"limit"}),
    "province_counties": frozenset({"on", "month"}),
    "province_red_black": frozenset({"on", "month", "n"}),
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


class _OneCounty(Authenticator):
    """An authenticator that refuses credentials of any county but ``county`` (and province
    credentials): what a one-county service told its county accepts, on its API and its
    workbench alike."""

    def __init__(self, store: Any, jwt: JWTSettings | None, county: str) -> None:
        super().__init__(store, jwt)
        self._county = county

    def authenticate(
        self,
        authorization: str | None,
        asserted_actor: str | None = None,
        asserted_system: str | None = None,
    ) -> Caller:
        caller = super().authenticate(authorization, asserted_actor, asserted_system)
        if caller.county is not None and caller.county != self._county:
            whose = "the province" if caller.county == PROVINCE else caller.county
            raise NotAuthorized(f"the credential is {whose}'s; this service serves {self._county}")
        return caller


def create_app(
    *,
    store: Any = None,
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
    province: Province | None = None,
    county: str | None = None,
    audit_key: SealKey | None = None,
) -> Litestar:
    """The service over ``store`` (a ``Store`` or a store URL), for the county's ``actors``,
    ``plugins`` and ``settings``. Notices stay in the outbox (for a worker, or for systems that
    pull them through ``/outbox``).

    With ``workbench`` the people's pages are served at ``/`` (``workbench.py``): sessions are
    signed with ``session_key`` (default: a key of this process), ``jwt_header`` names the
    header in which the county's reverse proxy passes a person's JWT, and
    ``public_leaderboard`` lets anyone read the 赛马榜 page without signing in.

    With ``province`` (in place of ``store``, ``actors``, ``plugins`` and ``settings``) the
    service serves several counties: each request goes to the engine of its credential's
    county, tokens are the province store's, and ``/province/...`` answers a province
    credential; the workbench's pages are those of the signed-in person's county
    (docs/province.md). ``county`` names the county a
    one-county service serves, so a credential of another county is refused there.

    ``audit_key`` is the Ed25519 public key that checks the store's checkpoints in
    ``/audit/verify``; the service holds no key that can seal one (``CheckpointError``)."""
    if audit_key is not None and audit_key.can_sign:
        raise CheckpointError(
            "the service checks checkpoints with an Ed25519 public key and holds no key that "
            "can seal one: give it the public key (openssl pkey -pubout)"
        )
    if province is not None:
        if store is not None or plugins or settings is not None or actors:
            raise ProvinceError(
                "a province service takes its counties' stores, actors, plugins and settings "
                "from the province: give province= alone"
            )
        for name, served in province.items():
            if IF_MATCH_GUARD not in served.plugin_manager.get_plugins():
                raise ProvinceError(
                    f"the engine of {name} lacks the service's If-Match guard: build the "
                    "province with Province.open(..., plugins=[IF_MATCH_GUARD]) or give each "
                    "engine plugins=[..., IF_MATCH_GUARD]"
                )
        if public_leaderboard:
            raise ProvinceError(
                "a province service has no public 赛马榜 page: each board is a county's"
            )
        engines: dict[str, Engine] = dict(province)
        token_store = province.store
    served_county: str | None = None
    if province is None:
        engine = Engine(
            actors=actors,
            store=store,
            settings=settings,
            plugins=[*plugins, IF_MATCH_GUARD],
            clock=clock,
            deliver="outbox",
        )
        served_county = county or getattr(engine.store, "county", None)
        engines = {served_county or "": engine}
        token_store = engine.store
    authenticator = (
        Authenticator(token_store, jwt)
        if served_county is None
        else _OneCounty(token_store, jwt, served_county)
    )

    def caller_of(request: Request[Any, Any, Any]) -> Caller:
        caller = authenticator.authenticate(
            request.headers.get("authorization"),
            request.headers.get(ACTOR_HEADER.lower()),
            request.headers.get(SYSTEM_HEADER.lower()),
        )
        request.scope.setdefault("state", {})["approvalflow_caller"] = caller
        return caller

    def engine_of(caller: Caller) -> Engine:
        """The engine of the caller's county: nothing of another county is reachable."""
        if caller.county == PROVINCE:
            raise NotAuthorized(
                f"system {caller.system!r} holds a province credential: it reads the province "
                "reports (/province/...) only"
            )
        if province is None:
            if caller.county is not None and caller.county != served_county:
                raise NotAuthorized(
                    f"the credential is {caller.county}'s; this service serves "
                    f"{served_county or 'one county and was not told which (--county)'}"
                )
            return engine
        if caller.county is None:
            raise NotAuthorized(
                f"the credential of system {caller.system!r} names no county; this service "
                f"serves {', '.join(engines)} and routes each request by its county"
            )
        found = engines.get(caller.county)
        if found is None:
            raise NotAuthorized(
                f"the credential is {caller.county}'s; this service serves {', '.join(engines)}"
            )
        return found

    def province_of(caller: Caller) -> Province:
        if province is None or caller.county != PROVINCE:
            raise NotAuthorized(
                "the province reports answer a province credential of a province service only"
            )
        return province

    def version_of(engine: Engine, project_id: str) -> int:
        return engine.project(project_id).version

    def command_id_of(caller: Caller, key: str | None) -> str | None:
        # Command ids are unique in the whole store: one system's key never replays another's.
        return None if key is None else f"{caller.system}:{key}"

    @get("/health", sync_to_thread=False, tags=["service"])
    def health() -> dict[str, str]:
        """Unauthenticated: the service answers and can read its store."""
        for served in engines.values():
            served.store.next_due()
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
        result = engine_of(caller).execute(
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
        engine = engine_of(caller_of(request))
        state = engine.project(project_id)
        # One read: the ETag's version is the deadlines' and the holdups' too.
        view = ProjectView.of(state, engine.deadlines_of(state), engine.holdups_of(state))
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
        engine = engine_of(caller_of(request))
        engine.project(project_id)
        events = engine.store.events(project_id, after)
        page = events[:limit]
        more = len(events) > limit
        return HistoryPage(
            project_id, [EventView.of(e) for e in page], page[-1].version if more else None
        )

    # The requests this app is answering: the request log counts them, the lean command
    # route reads the count (D307).
    answering = _Answering()

    def run_command(
        caller: Caller,
        project_id: str,
        name: str,
        args: dict[str, Any],
        idempotency_key: str | None,
        if_match: str | None,
    ) -> CommandOutcome:
        """A command as both routes run it (the lean one and Litestar's, see ``_lean_commands``)."""
        engine = engine_of(caller)
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
                args,
                command_id=command_id_of(caller, idempotency_key),
            )
        except ApprovalflowError as error:
            if expected is None or name == "create" or isinstance(error, PreconditionFailed):
                raise
            found = version_of(engine, project_id)
            if found != expected:
                raise PreconditionFailed(
                    f"{project_id} is at version {found}, not {expected}"
                ) from None
            raise
        finally:
            _if_match.expected = None
        if result.replayed and expected is not None and name != "create":
            found = version_of(engine, project_id)
            if found != expected:
                raise PreconditionFailed(f"{project_id} is at version {found}, not {expected}")
        return CommandOutcome.of(result)

    def lean_work(
        state: dict[str, Any],
        headers: Mapping[str, str],
        project_id: str,
        name: str,
        args: dict[str, Any],
    ) -> CommandOutcome:
        caller = authenticator.authenticate(
            headers.get("authorization"),
            headers.get("approvalflow-actor"),
            headers.get("approvalflow-system"),
        )
        # Set before the command runs: the log line names the caller of a refused one too.
        state["approvalflow_caller"] = caller
        return run_command(
            caller,
            project_id,
            name,
            args,
            headers.get("idempotency-key"),
            headers.get("if-match"),
        )

    @post(
        "/projects/{project_id:str}/commands/{name:str}",
        sync_to_thread=True,
        middleware=[_lean_commands(lean_work, answering)],
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
        outcome = run_command(caller, project_id, name, data or {}, idempotency_key, if_match)
        return Response(outcome, headers={"ETag": _etag(outcome.version)})

    @get("/tasks", sync_to_thread=True, responses=_READ, security=_SECURITY, tags=["tasks"])
    def tasks(request: Request[Any, Any, Any]) -> list[TaskView]:
        """What waits on the acting person (待办), most urgent first."""
        caller = caller_of(request)
        return [TaskView.of(item) for item in engine_of(caller).tasks(caller.acting())]

    @get("/done", sync_to_thread=True, responses=_READ, security=_SECURITY, tags=["tasks"])
    def done(
        request: Request[Any, Any, Any],
        limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 100,
    ) -> list[DoneView]:
        """What the acting person did (已办), the latest first."""
        caller = caller_of(request)
        return [DoneView.of(item) for item in engine_of(caller).done(caller.acting(), limit)]

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
        found = engine_of(caller).preview(
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
        engine = engine_of(caller_of(request))
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
        engine = engine_of(caller_of(request))
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
        engine = engine_of(caller_of(request))
        return {
            dept: [{"project": h.project, **_plain(_holdup(h))} for h in items]
            for dept, items in engine.late_items().items()
        }

    @get("/audit/head", sync_to_thread=True, responses=_READ, security=_SECURITY, tags=["audit"])
    def audit_head(request: Request[Any, Any, Any]) -> AuditHead:
        """The store's head (``InvalidCommand`` on a store that keeps no chain)."""
        engine = engine_of(caller_of(request))
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
        """Replay every project's chain as ``approvalflow audit verify`` does: versions,
        snapshots, the timers each state derives, command records, summaries, and the newest
        checkpoint's heads; its signature is checked when the service was given the public key
        (``--audit-public-key``), else the report says ``unanchored``. With ``expect_count``
        and ``expect_hash`` (a head taken earlier) the store must still be at that head."""
        engine = engine_of(caller_of(request))
        expected = None
        if (expect_count is None) != (expect_hash is None):
            raise InvalidCommand("expect_count and expect_hash go together")
        if expect_count is not None and expect_hash is not None:
            expected = ChainHead(expect_count, expect_hash)
        return _audit_report(engine, audit_key, expected)

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
        engine = engine_of(caller_of(request))
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
        engine = engine_of(caller_of(request))
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
        engine = engine_of(caller_of(request))
        if not 0 <= data.retry_after_seconds <= 7 * 24 * 3600:
            raise InvalidCommand("retry_after_seconds must be between 0 and 604800 (a week)")
        when = engine.clock.now() + timedelta(seconds=data.retry_after_seconds)
        engine.store.mark_failed(data.notice_id, data.error, when)
        return {"notice_id": data.notice_id, "next_attempt": when.isoformat()}

    @get(
        "/province/counties",
        sync_to_thread=True,
        responses=_READ,
        security=_SECURITY,
        tags=["province"],
    )
    def province_counties(
        request: Request[Any, Any, Any],
        on: Annotated[
            str, QueryParameter(description="the measure: " + ", ".join(COUNTY_MEASURES))
        ] = "start_rate",
        month: Annotated[str | None, QueryParameter(pattern=r"^\d{4}-(0[1-9]|1[0-2])$")] = None,
    ) -> list[CountyRankView]:
        """For a province credential: the counties ranked on one measure (the built-in
        metrics, or ``points`` of a ``month``), best first; each county's figure is its own
        report's."""
        found = province_of(caller_of(request))
        try:
            return [CountyRankView.of(row) for row in found.ranking(on, month=month)]
        except ValueError as error:
            raise InvalidCommand(str(error)) from None

    @get(
        "/province/red-black",
        sync_to_thread=True,
        responses=_READ,
        security=_SECURITY,
        tags=["province"],
    )
    def province_red_black(
        request: Request[Any, Any, Any],
        on: Annotated[str, QueryParameter()] = "start_rate",
        n: Annotated[int, QueryParameter(ge=1, le=100)] = 3,
        month: Annotated[str | None, QueryParameter(pattern=r"^\d{4}-(0[1-9]|1[0-2])$")] = None,
    ) -> RedBlackView:
        """For a province credential: 红黑榜, the best ``n`` counties and the worst ``n``."""
        found = province_of(caller_of(request))
        try:
            lists = found.red_black(on, n, month=month)
        except ValueError as error:
            raise InvalidCommand(str(error)) from None
        return RedBlackView(
            lists.measure,
            [CountyRankView.of(row) for row in lists.red],
            [CountyRankView.of(row) for row in lists.black],
        )

    @get(
        "/province/departments",
        sync_to_thread=True,
        responses=_READ,
        security=_SECURITY,
        tags=["province"],
    )
    def province_departments(request: Request[Any, Any, Any]) -> list[DepartmentRankView]:
        """For a province credential: every county's departments ranked across the province,
        fewest late items now first, then fewest working days taken per branch."""
        found = province_of(caller_of(request))
        return [DepartmentRankView.of(row) for row in found.department_ranking()]

    def intake_province(caller: Caller) -> Province:
        engine_of(caller)  # the caller's own county, as for every county route
        if province is None:
            raise NotAuthorized("intake for another county needs a province service")
        return province

    @post(
        "/intakes",
        sync_to_thread=True,
        status_code=201,
        responses=_WRITE,
        security=_SECURITY,
        tags=["province"],
    )
    def take_in(
        request: Request[Any, Any, Any],
        data: JSONBody[IntakeRequest],
        idempotency_key: Annotated[str | None, HeaderParameter(name="Idempotency-Key")] = None,
    ) -> Response[CommandOutcome]:
        """异地受理: the acting person, an officer of the caller's county, accepts an
        application for a project of ``county``; it is created there by that county's intake
        receiver, whose own role checks decide, with this intake point recorded."""
        caller = caller_of(request)
        found = intake_province(caller)
        assert caller.county is not None
        if data.county not in found:
            raise InvalidCommand(
                f"this province serves no county {data.county!r} ({', '.join(found)})"
            )
        try:
            result = found.intake(
                caller.county,
                data.county,
                data.id,
                data.fields,
                by=caller.acting(),
                hall=data.hall,
                command_id=None
                if idempotency_key is None
                else f"{caller.system}:{idempotency_key}",
            )
        except ProvinceError as error:
            # The handling county takes no applications from other halls: a refusal, not a
            # failure of the service.
            raise NotAuthorized(error.message) from None
        return Response(CommandOutcome.of(result), status_code=200 if result.replayed else 201)

    @get(
        "/intakes/status",
        sync_to_thread=True,
        responses=_READ,
        security=_SECURITY,
        tags=["province"],
    )
    def intake_list(request: Request[Any, Any, Any]) -> list[IntakeView]:
        """What the caller's county took in for other counties, and where each stands: its
        stage, who holds it up and until when; nothing else of the handling county's."""
        caller = caller_of(request)
        found = intake_province(caller)
        assert caller.county is not None
        return [IntakeView.of(status) for status in found.intakes(caller.county)]

    pages: list[Any] = []
    if workbench:
        from approvalflow.server.sessions import SessionKeys
        from approvalflow.server.workbench import workbench_handlers

        pages = workbench_handlers(
            next(iter(engines.values())) if province is not None else engine,
            authenticator,
            keys=SessionKeys(session_key),
            jwt_header=jwt_header,
            public_leaderboard=public_leaderboard,
            engines=engines if province is not None else None,
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
            province_counties,
            province_red_black,
            province_departments,
            take_in,
            intake_list,
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
        middleware=[_request_log(answering)],
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
    app.state["engines"] = engines
    if province is None:
        app.state["engine"] = engine
    else:
        app.state["province"] = province
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


def _audit_report(engine: Engine, key: SealKey | None, expected: ChainHead | None) -> AuditReport:
    """The service's verification: ``verify_store`` with the engine's own timer derivation and
    folds, and the store's newest checkpoint (D188)."""
    from approvalflow.stores.audit import ChainSource, Finding, verify_store
    from approvalflow.stores.checkpoints import newest_checkpoint

    store = engine.store
    if not isinstance(store, ChainSource):
        raise InvalidCommand(f"{type(store).__name__} keeps no audit chain")
    unreadable: list[Finding] = []
    try:
        checkpoint = newest_checkpoint(store)
    except CheckpointError as error:
        checkpoint = None
        unreadable.append(Finding(None, "checkpoint", "newest checkpoint", error.message))
    with engine.definition.folds.folding():
        report = verify_store(
            store,
            timers_for=RuleBook(engine.definition, store).timers_for,
            checkpoint=checkpoint,
            key=key,
            expected_head=expected,
        )
    findings = [*unreadable, *report.findings]
    first = findings[0] if findings else None
    version = None
    # The first bad version, as before: a finding placed at a version of one project's chain.
    if (
        first is not None
        and first.project is not None
        and first.where.startswith("version ")
        and first.what in ("chain", "command", "replay")
    ):
        version = int(first.where.split()[1])
    unanchored = report.unanchored
    if report.anchor is None and checkpoint is None and not unreadable:
        unanchored = "the store has no checkpoint (seal one with `approvalflow audit seal`)"
    elif report.anchor is None and key is None and checkpoint is not None:
        unanchored = (
            f"{report.unanchored}: the service was given no public key to check the "
            "checkpoint's signature with (serve --audit-public-key)"
        )
    return AuditReport(
        not findings,
        report.head.count,
        report.head.hash,
        first.project if version is not None and first is not None else None,
        version,
        str(first) if first is not None else None,
        report.projects,
        [AuditFinding(f.project, f.what, f.where, f.detail) for f in findings],
        report.anchor,
        None if report.anchor is not None else unanchored,
    )


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

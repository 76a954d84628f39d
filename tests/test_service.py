"""The HTTP service as its callers use it: credentials, commands, versions, errors, the outbox.

Each test talks to the ASGI app through Litestar's test client, on the memory store and on
SQLite (and PostgreSQL for the token table), with the standard county of ``builders``.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("litestar", reason="the server extra is not installed")

from builders import MONDAY, PROJECT_FIELDS, county_actors
from litestar.testing import TestClient
from structlog.testing import capture_logs

from approvalflow import ManualClock
from approvalflow.cli import main
from approvalflow.server import JWTSettings, create_app, issue_token
from approvalflow.stores import MemoryStore, open_store
from approvalflow.stores.tokens import token_hash

ROOT = Path(__file__).resolve().parents[1]


class Service:
    """A client on the app, with a trusted token (``as_``) and helpers for the usual calls."""

    def __init__(self, client: TestClient[Any], store: Any, token: str) -> None:
        self.client = client
        self.store = store
        self.token = token

    def headers(self, actor: str | None = None, **extra: str) -> dict[str, str]:
        found = {"Authorization": f"Bearer {self.token}", **extra}
        if actor is not None:
            found["Approvalflow-Actor"] = actor
        return found

    def create(self, project: str = "P1", **extra: str) -> Any:
        return self.client.post(
            "/projects",
            json={"id": project, "fields": PROJECT_FIELDS},
            headers=self.headers("guo", **extra),
        )

    def do(self, command: str, by: str, project: str = "P1", args: Any = None, **extra: str) -> Any:
        return self.client.post(
            f"/projects/{project}/commands/{command}",
            json=args,
            headers=self.headers(by, **extra),
        )

    def history(self, project: str = "P1") -> list[str]:
        page = self.client.get(
            f"/projects/{project}/history", params={"limit": 1000}, headers=self.headers()
        )
        return [e["type"] for e in page.json()["events"]]


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    url = "memory://" if request.param == "memory" else f"sqlite:///{tmp_path / 'county.db'}"
    opened = open_store(url, create=True)
    yield opened
    opened.close()


@pytest.fixture
def service(store: Any) -> Iterator[Service]:
    token, _ = issue_token(store, "oa", trusted=True)
    app = create_app(store=store, actors=county_actors(), clock=ManualClock(MONDAY))
    with TestClient(app) as client:
        yield Service(client, store, token)


def assert_problem(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert (body["status"], body["code"], body["title"]) == (status, code, code)
    assert body["type"] == f"urn:approvalflow:error:{code}"
    assert body["detail"]
    return body


# -- who is calling ------------------------------------------------------------------------------


class TestCredentials:
    def test_health_needs_no_credential(self, service: Service) -> None:
        assert service.client.get("/health").json() == {"status": "ok", "version": "0.1.0"}

    @pytest.mark.parametrize(
        "authorization",
        [None, "Bearer", "Basic Z3VvOmd1bw==", "Bearer afw_not-a-token-this-service-issued"],
        ids=["none", "empty", "basic", "wrong"],
    )
    def test_a_request_without_a_good_credential_gets_401_and_changes_nothing(
        self, service: Service, authorization: str | None
    ) -> None:
        headers = {"Approvalflow-Actor": "guo"}
        if authorization is not None:
            headers["Authorization"] = authorization
        for response in (
            service.client.get("/projects/P1", headers=headers),
            service.client.get("/tasks", headers=headers),
            service.client.post(
                "/projects", json={"id": "P1", "fields": PROJECT_FIELDS}, headers=headers
            ),
        ):
            assert_problem(response, 401, "Unauthenticated")
            assert response.headers["www-authenticate"].startswith("Bearer")
        assert service.store.load("P1") is None

    def test_a_revoked_token_is_refused(self, service: Service) -> None:
        token, record = issue_token(service.store, "gis", actor="guo")
        assert service.client.get("/tasks", headers={"Authorization": f"Bearer {token}"}).is_success
        assert service.store.revoke_token(record.token_id, datetime.now(UTC))
        response = service.client.get("/tasks", headers={"Authorization": f"Bearer {token}"})
        assert "revoked" in assert_problem(response, 401, "Unauthenticated")["detail"]

    def test_a_token_acts_only_as_its_own_person(self, service: Service) -> None:
        """The portal's token speaks for the enterprise; naming someone else is forged."""
        service.create()
        token, _ = issue_token(service.store, "portal", actor="fuyuan")
        headers = {"Authorization": f"Bearer {token}", "Approvalflow-Actor": "guo"}
        forged = service.client.post("/projects/P1/commands/negotiate", headers=headers)
        assert "not trusted" in assert_problem(forged, 403, "NotAuthorized")["detail"]
        assert service.store.load("P1").version == 2
        own = service.client.post(
            "/projects/P1/commands/negotiate", headers={"Authorization": f"Bearer {token}"}
        )
        # As the enterprise it authenticates, and the engine's role check refuses it.
        assert "fuyuan may not negotiate" in assert_problem(own, 403, "NotAuthorized")["detail"]

    def test_another_systems_token_is_refused(self, service: Service) -> None:
        token, _ = issue_token(service.store, "portal", actor="fuyuan")
        response = service.client.get(
            "/tasks", headers={"Authorization": f"Bearer {token}", "Approvalflow-System": "oa"}
        )
        assert (
            "issued to system 'portal'" in assert_problem(response, 403, "NotAuthorized")["detail"]
        )

    def test_a_read_only_token_reads_but_acts_as_nobody(self, service: Service) -> None:
        service.create()
        token, _ = issue_token(service.store, "dashboard")
        headers = {"Authorization": f"Bearer {token}"}
        assert service.client.get("/projects/P1", headers=headers).json()["stage"] == "lead"
        response = service.client.post("/projects/P1/commands/negotiate", headers=headers)
        assert "acts as nobody" in assert_problem(response, 403, "NotAuthorized")["detail"]
        assert service.store.load("P1").version == 2

    def test_only_the_hash_of_a_token_is_stored(self, service: Service) -> None:
        token, record = issue_token(service.store, "gis", actor="guo")
        assert record.hash == token_hash(token) and token not in repr(service.store.tokens())

    def test_every_request_is_logged_with_system_actor_and_outcome(self, service: Service) -> None:
        service.create()
        with capture_logs() as logs:
            service.do("approve", "guo")
            service.client.get("/health")
            service.client.get("/projects/NOPE", headers=service.headers("guo"))
            # No route takes these two: they are logged all the same, once each.
            service.client.get("/no/such/path")
            service.client.delete("/health")
        lines = [line for line in logs if line["event"] == "approvalflow.request"]
        assert [
            (line["path"], line["status"], line["system"], line["actor"], line["outcome"])
            for line in lines
        ] == [
            ("/projects/P1/commands/approve", 403, "oa", "guo", "NotAuthorized"),
            ("/health", 200, None, None, "ok"),
            ("/projects/NOPE", 404, "oa", "guo", "UnknownProject"),
            ("/no/such/path", 404, None, None, "NotFound"),
            ("/health", 405, None, None, "HTTPError"),
        ]
        assert [line["method"] for line in lines[-2:]] == ["GET", "DELETE"]


def test_serve_writes_each_log_line_as_one_json_object_masked_but_for_its_time(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``serve``'s request log (D286): one JSON object per line on stderr, personal numbers
    masked in every value the caller gave, the level and a full timestamp added after the
    masking, text as it is (not escaped), and a value JSON cannot hold written as its repr."""
    import structlog

    from approvalflow.cli import serve

    serve._log_requests()
    try:
        structlog.get_logger("approvalflow.service").info(
            "approvalflow.request",
            path="/projects/P1",
            phone="138-1234-5678",
            name="富远",
            error=ValueError("no"),
            ms=1.5,
        )
    finally:
        structlog.reset_defaults()
    [line] = capsys.readouterr().err.splitlines()
    assert "富远" in line
    found = json.loads(line)
    assert found == {
        "path": "/projects/P1",
        "phone": "138****5678",
        "name": "富远",
        "error": "ValueError('no')",
        "ms": 1.5,
        "event": "approvalflow.request",
        "level": "info",
        "timestamp": found["timestamp"],
    }
    assert datetime.fromisoformat(found["timestamp"]).tzinfo is not None


class TestJWT:
    @pytest.fixture
    def keys(self) -> tuple[Any, str]:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        public = private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return private, public.decode()

    def test_a_signed_jwt_acts_as_its_subject_and_a_forged_one_is_refused(
        self, keys: tuple[Any, str]
    ) -> None:
        import jwt

        private, public = keys
        store = open_store(None)
        app = create_app(
            store=store,
            actors=county_actors(),
            clock=ManualClock(MONDAY),
            jwt=JWTSettings(public_key=public, audience="approvalflow"),
        )
        claims = {
            "sub": "guo",
            "azp": "oa",
            "aud": "approvalflow",
            "exp": datetime.now(UTC) + timedelta(minutes=5),
        }
        good = jwt.encode(claims, private, algorithm="RS256")
        other_key = keys_of_another_service()
        forged = jwt.encode(claims, other_key, algorithm="RS256")
        expired = jwt.encode(
            {**claims, "exp": datetime.now(UTC) - timedelta(minutes=1)}, private, algorithm="RS256"
        )
        with TestClient(app) as client:
            body = {"id": "P1", "fields": PROJECT_FIELDS}
            ok = client.post("/projects", json=body, headers={"Authorization": f"Bearer {good}"})
            assert ok.status_code == 201
            assert store.events("P1")[0].by == "guo"
            for bad in (forged, expired):
                response = client.get("/tasks", headers={"Authorization": f"Bearer {bad}"})
                assert_problem(response, 401, "Unauthenticated")
            as_other = client.get(
                "/tasks", headers={"Authorization": f"Bearer {good}", "Approvalflow-Actor": "huang"}
            )
            assert_problem(as_other, 403, "NotAuthorized")


def keys_of_another_service() -> Any:
    from cryptography.hazmat.primitives.asymmetric import rsa

    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


# -- commands ------------------------------------------------------------------------------------


class TestCommands:
    def test_a_project_is_created_read_and_moved_on(self, service: Service) -> None:
        created = service.create()
        assert created.status_code == 201
        assert (created.headers["etag"], created.headers["location"]) == ('"2"', "/projects/P1")
        assert service.do("negotiate", "guo").json()["state"] == "negotiating"
        moved = service.do("submit_pre_review", "guo", args={"materials": []})
        assert moved.headers["etag"] == f'"{moved.json()["version"]}"'
        project = service.client.get("/projects/P1", headers=service.headers())
        body = project.json()
        assert (body["stage"], project.headers["etag"]) == (
            "pre_review.reviewing",
            moved.headers["etag"],
        )
        assert [d["key"] for d in body["deadlines"]] == ["P1.pre_review"]
        assert {h["waiting_on"] for h in body["holdups"]} == {"gxj", "fgw", "zrzy", "sthj"}

    @pytest.mark.parametrize(
        ("command", "by", "args", "status", "code"),
        [
            ("approve", "guo", None, 403, "NotAuthorized"),
            ("convene", "chair", {"present": ["chair"]}, 409, "InvalidTransition"),
            ("negotiate", "guo", {"speed": "fast"}, 422, "InvalidCommand"),
            ("fly", "guo", None, 422, "InvalidCommand"),
        ],
    )
    def test_errors_are_problem_details_with_the_librarys_code(
        self, service: Service, command: str, by: str, args: Any, status: int, code: str
    ) -> None:
        service.create()
        assert_problem(service.do(command, by, args=args), status, code)
        assert service.store.load("P1").version == 2

    def test_an_unknown_project_is_404_and_a_duplicate_409(self, service: Service) -> None:
        assert_problem(service.do("negotiate", "guo", project="P9"), 404, "UnknownProject")
        assert_problem(
            service.client.get("/projects/P9", headers=service.headers()), 404, "UnknownProject"
        )
        service.create()
        assert_problem(service.create(), 409, "DuplicateProject")

    @pytest.mark.parametrize(
        ("command", "by", "args"),
        [
            ("negotiate", "guo", None),
            ("negotiate", "guo", {}),
            ("approve", "guo", None),
            ("negotiate", "guo", {"speed": "fast"}),
            ("negotiate", None, None),
        ],
    )
    def test_the_lean_command_route_answers_as_the_frameworks_route(
        self, service: Service, command: str, by: str | None, args: Any
    ) -> None:
        """A command sent as JSON takes the lean route; sent as text, Litestar answers it (and
        reads the body as JSON all the same). Both answers (status, headers, body) are the
        same, bar the project's id; ``by`` None sends no credential (401)."""
        answers = []
        for project, media in (("P1", "application/json"), ("P2", "text/plain")):
            service.create(project)
            headers = service.headers(by, **{"Content-Type": media})
            if by is None:
                headers = {"Content-Type": media}
            response = service.client.post(
                f"/projects/{project}/commands/{command}",
                content=b"" if args is None else json.dumps(args).encode(),
                headers=headers,
            )
            answers.append(
                (
                    response.status_code,
                    sorted(response.headers.items()),
                    response.text.replace(project, "P"),
                )
            )
        assert answers[0] == answers[1]

    @pytest.mark.parametrize(("answering", "on_the_loop"), [(1, True), (2, False)])
    def test_a_lone_command_runs_on_the_event_loop_and_one_among_others_in_the_pool(
        self, answering: int, on_the_loop: bool
    ) -> None:
        """D307: the only request being answered runs its command on the event loop (no trip
        to a worker thread and back); with another request being answered it goes to the
        thread pool, so a commit's wait never holds up the other. The answer is the same."""
        import asyncio

        from approvalflow.server.app import _Answering, _lean_commands
        from approvalflow.server.views import CommandOutcome

        seen: list[bool] = []

        def work(*_args: Any) -> CommandOutcome:
            try:
                asyncio.get_running_loop()
                seen.append(True)
            except RuntimeError:
                seen.append(False)
            return CommandOutcome("P1", "negotiate", 2, "lead", [], [], False)

        async def framework(*_args: Any) -> None:
            raise AssertionError("a plain command request went to the framework")

        count = _Answering()
        count.count = answering
        lean = _lean_commands(work, count)(framework)
        scope: Any = {
            "type": "http",
            "path": "/projects/P1/commands/negotiate",
            "query_string": b"",
            "headers": [(b"content-type", b"application/json")],
            "path_params": {"project_id": "P1", "name": "negotiate"},
            "state": {},
        }
        messages: list[Any] = [{"type": "http.request", "body": b"{}", "more_body": False}]
        sent: list[Any] = []

        async def receive() -> Any:
            return messages.pop(0)

        async def send(message: Any) -> None:
            sent.append(message)

        asyncio.run(lean(scope, receive, send))
        assert seen == [on_the_loop]
        assert sent[0]["status"] == 200 and (b"etag", b'"2"') in sent[0]["headers"]
        assert json.loads(sent[1]["body"])["version"] == 2

    def test_a_body_that_is_not_an_object_is_422(self, service: Service) -> None:
        service.create()
        response = service.client.post(
            "/projects/P1/commands/negotiate",
            content=b"[1, 2",
            headers={**service.headers("guo"), "Content-Type": "application/json"},
        )
        assert_problem(response, 422, "InvalidCommand")

    @pytest.mark.parametrize(
        ("path", "said"),
        [
            ("/done?limit=abc", "limit (query): Expected `int`, got `str`"),
            ("/projects/P1/history?after=-1", "after (query): Expected `int` >= 0"),
        ],
    )
    def test_a_refused_parameter_is_named_with_where_it_came_from_and_why(
        self, service: Service, path: str, said: str
    ) -> None:
        """The framework's refusal reads as a sentence for a caller in any language: no
        Python repr of its list (``<ParamType.QUERY: 'query'>``) in the detail."""
        service.create()
        response = service.client.get(path, headers=service.headers("guo"))
        detail = assert_problem(response, 422, "InvalidCommand")["detail"]
        assert said in detail
        assert "<" not in detail and "{'" not in detail

    def test_an_idempotency_key_replays_the_first_result(self, service: Service) -> None:
        service.create()
        first = service.do("negotiate", "guo", **{"Idempotency-Key": "k-1"})
        again = service.do("negotiate", "guo", **{"Idempotency-Key": "k-1"})
        assert (first.json()["replayed"], again.json()["replayed"]) == (False, True)
        assert again.json()["version"] == first.json()["version"]
        assert service.history().count("stage_changed") == 1
        other = service.do(
            "submit_pre_review", "guo", args={"materials": []}, **{"Idempotency-Key": "k-1"}
        )
        assert "used already" in assert_problem(other, 422, "InvalidCommand")["detail"]

    def test_one_systems_key_never_replays_anothers(self, service: Service) -> None:
        service.create()
        service.do("negotiate", "guo", **{"Idempotency-Key": "k-1"})
        token, _ = issue_token(service.store, "portal", actor="guo")
        response = service.client.post(
            "/projects/P1/commands/submit_pre_review",
            json={"materials": []},
            headers={"Authorization": f"Bearer {token}", "Idempotency-Key": "k-1"},
        )
        assert response.json()["replayed"] is False
        assert response.json()["state"] == "pre_review.reviewing"

    def test_if_match_refuses_a_stale_write_with_412_and_stores_nothing(
        self, service: Service
    ) -> None:
        etag = service.create().headers["etag"]
        assert service.do("negotiate", "guo", **{"If-Match": etag}).status_code == 200
        stale = service.do("submit_pre_review", "guo", args={"materials": []}, **{"If-Match": etag})
        assert "at version 4, not 2" in assert_problem(stale, 412, "PreconditionFailed")["detail"]
        assert service.store.load("P1").stage == "negotiating"
        bad = service.do("submit_pre_review", "guo", args={"materials": []}, **{"If-Match": "x"})
        assert_problem(bad, 422, "InvalidCommand")

    def test_a_stale_if_match_answers_412_before_any_other_refusal(self, service: Service) -> None:
        """The precondition is judged first (RFC 9110): a command the project would refuse
        anyway still answers 412 on a stale version, 409 only on the current one."""
        stale = service.create().headers["etag"]
        current = service.do("negotiate", "guo").headers["etag"]
        again = service.do("negotiate", "guo", **{"If-Match": stale})
        assert "not 2" in assert_problem(again, 412, "PreconditionFailed")["detail"]
        assert_problem(
            service.do("negotiate", "guo", **{"If-Match": current}), 409, "InvalidTransition"
        )
        # The acting person's own refusal too: fuyuan may not negotiate, and the version is gone.
        assert_problem(
            service.do("negotiate", "fuyuan", **{"If-Match": stale}), 412, "PreconditionFailed"
        )
        assert_problem(
            service.do("negotiate", "guo", "P9", **{"If-Match": stale}), 404, "UnknownProject"
        )
        assert service.store.load("P1").version == 4
        # A replay of a keyed command is judged on the version it names too.
        keyed = {"Idempotency-Key": "s-1", "If-Match": current}
        first = service.do("submit_pre_review", "guo", args={"materials": []}, **keyed)
        assert first.status_code == 200, first.text
        replay = service.do("submit_pre_review", "guo", args={"materials": []}, **keyed)
        assert_problem(replay, 412, "PreconditionFailed")
        assert service.history().count("pre_review_round_opened") == 1

    def test_history_comes_page_by_page(self, service: Service) -> None:
        service.create()
        service.do("negotiate", "guo")
        seen: list[int] = []
        after: int | None = 0
        while after is not None:
            page = service.client.get(
                "/projects/P1/history",
                params={"after": after, "limit": 3},
                headers=service.headers(),
            ).json()
            seen += [e["version"] for e in page["events"]]
            after = page["next_after"]
        assert seen == [1, 2, 3, 4]


class TestConcurrency:
    def test_two_writers_on_one_version_one_wins_the_other_is_refused(
        self, service: Service
    ) -> None:
        """Both send If-Match of the version they read; exactly one command is stored."""
        etag = service.create().headers["etag"]
        service.do("negotiate", "guo", **{"If-Match": etag})
        etag = service.client.get("/projects/P1", headers=service.headers()).headers["etag"]
        barrier = threading.Barrier(2)
        statuses: list[int] = []

        def write(by: str) -> None:
            barrier.wait()
            response = service.do(
                "submit_pre_review", by, args={"materials": []}, **{"If-Match": etag}
            )
            statuses.append(response.status_code)

        threads = [threading.Thread(target=write, args=(by,)) for by in ("guo", "fuyuan")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(statuses) in ([200, 409], [200, 412])
        assert service.history().count("pre_review_round_opened") == 1
        state = service.store.load("P1")
        assert state.stage == "pre_review.reviewing"
        assert [e.version for e in service.store.events("P1")] == list(range(1, state.version + 1))

    def test_many_writers_without_if_match_all_land_in_one_order(self, service: Service) -> None:
        """Concurrent funds reports on one project: every one is kept, none lost."""
        service.create()
        for command, by, args in [
            ("negotiate", "guo", None),
            ("submit_pre_review", "guo", {"materials": []}),
            *[("opinion", f"r_{u}", {"verdict": "pass"}) for u in ("gxj", "fgw", "zrzy", "sthj")],
            ("convene", "chair", {"present": ["chair", "m1", "m2", "m3"]}),
            *[("vote", m, {"vote": "approve"}) for m in ("chair", "m1", "m2")],
            ("close_meeting", "chair", None),
            ("sign", "guo", None),
        ]:
            assert service.do(command, by, args=args).status_code == 200
        results: list[int] = []

        def report() -> None:
            results.append(service.do("report_funds", "guo", args={"amount": "1万"}).status_code)

        threads = [threading.Thread(target=report) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert results == [200] * 8
        assert service.store.load("P1").funds == 8 * 10_000


# -- the other resources -------------------------------------------------------------------------


class TestResources:
    def test_the_task_list_is_the_acting_persons(self, service: Service) -> None:
        service.create()
        service.do("negotiate", "guo")
        service.do("submit_pre_review", "guo", args={"materials": []})
        [item] = service.client.get("/tasks", headers=service.headers("r_gxj")).json()
        assert (item["kind"], item["commands"], item["working_days_left"]) == (
            "review",
            ["opinion"],
            3,
        )
        service.do("opinion", "r_gxj", args={"verdict": "pass"})
        assert service.client.get("/tasks", headers=service.headers("r_gxj")).json() == []
        done = service.client.get("/done", headers=service.headers("r_gxj")).json()
        assert [d["what"] for d in done] == ["opinion_given"]

    def test_the_preview_writes_nothing(self, service: Service) -> None:
        response = service.client.post(
            "/preview", json={"fields": PROJECT_FIELDS}, headers=service.headers("guo")
        )
        assert response.status_code == 200
        assert response.json()["pre_review_due"]["day"] == "2026-03-05"
        assert service.store.project_ids() == []

    def test_reports_answer(self, service: Service) -> None:
        service.create()
        board = service.client.get(
            "/reports/leaderboard", params={"month": "2026-03"}, headers=service.headers()
        ).json()
        assert board == [
            {
                "rank": 1,
                "team": "light_alloy",
                "points": 1,
                "previous_rank": None,
                "previous_points": 0,
            }
        ]
        assert (
            service.client.get("/reports/metrics", headers=service.headers()).json()["signed_count"]
            == 0
        )
        assert service.client.get("/reports/late-items", headers=service.headers()).json() == {}
        bad = service.client.get(
            "/reports/leaderboard", params={"month": "March"}, headers=service.headers()
        )
        assert_problem(bad, 422, "InvalidCommand")

    def test_the_outbox_is_claimed_then_acknowledged(self, service: Service) -> None:
        service.create()
        service.do("negotiate", "guo")
        service.do("submit_pre_review", "guo", args={"materials": []})
        service.do("opinion", "r_gxj", args={"verdict": "supplement", "missing": ["eia_report"]})
        for unit in ("fgw", "zrzy", "sthj"):
            service.do("opinion", f"r_{unit}", args={"verdict": "pass"})
        claimed = service.client.post("/outbox/claim", headers=service.headers()).json()
        assert [c["notice"]["kind"] for c in claimed] == ["pre_review_notice"]
        # Claimed: a second caller gets nothing until the lease ends or it is acknowledged.
        assert service.client.post("/outbox/claim", headers=service.headers()).json() == []
        ack = {"notice_ids": [claimed[0]["notice"]["id"]]}
        assert service.client.post("/outbox/ack", json=ack, headers=service.headers()).json() == {
            "acknowledged": 1
        }
        assert service.store.pending_notices(MONDAY + timedelta(days=30)) == []

    def test_the_audit_chain_on_sqlite(self, service: Service) -> None:
        service.create()
        head = service.client.get("/audit/head", headers=service.headers())
        if isinstance(service.store, MemoryStore):
            assert_problem(head, 422, "InvalidCommand")
            return
        count, digest = head.json()["count"], head.json()["hash"]
        assert count == 2
        report = service.client.get(
            "/audit/verify",
            params={"expect_count": count, "expect_hash": digest},
            headers=service.headers(),
        ).json()
        assert (report["ok"], report["count"]) == (True, 2)


# -- the contract --------------------------------------------------------------------------------


def served_document() -> dict[str, Any]:
    app = create_app(store=open_store(None), actors=county_actors())
    with TestClient(app) as client:
        document: dict[str, Any] = client.get("/openapi.json").json()
    return document


def test_the_served_openapi_document_is_the_committed_one() -> None:
    """A change to the API is a reviewed diff of docs/openapi.json (regenerate it with
    ``python -m approvalflow.server.openapi > docs/openapi.json``)."""
    committed = json.loads((ROOT / "docs" / "openapi.json").read_text(encoding="utf-8"))
    assert served_document() == committed


def test_the_openapi_document_is_valid() -> None:
    from openapi_spec_validator import validate

    validate(served_document())


# -- tokens in every store, and on the command line ----------------------------------------------


def test_tokens_are_kept_and_revoked_in_every_store(every_store: str, tmp_path: Path) -> None:
    import builders

    store = builders.STORE_FACTORY() if builders.STORE_FACTORY else open_store(None)
    token, record = issue_token(store, "oa", actor="guo")
    assert store.token_with_hash(token_hash(token)) == record
    assert store.token_with_hash(token_hash(token + "x")) is None
    later = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
    assert store.revoke_token(record.token_id, later) is True
    assert store.revoke_token(record.token_id, later) is False
    assert store.revoke_token("nope", later) is False
    [listed] = store.tokens()
    assert (listed.token_id, listed.revoked_at, listed.actor) == (record.token_id, later, "guo")
    if not builders.STORE_FACTORY:
        store.close()


@pytest.mark.parametrize("kind", ["memory", "sqlite", "postgres"])
def test_a_token_revoked_elsewhere_is_refused_on_the_next_request(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """The service keeps the token records it verified (D186); a revocation through another
    handle on the store (``approvalflow token revoke`` in another process) ends the token at
    once, for reads and for commands."""
    if kind == "memory":
        served = other = open_store("memory://")
    elif kind == "sqlite":
        url = f"sqlite:///{tmp_path / 'county.db'}"
        served, other = open_store(url, create=True), open_store(url)
    else:
        base = request.getfixturevalue("postgres_url")
        url = f"{base}{'&' if '?' in base else '?'}schema=t_{uuid.uuid4().hex[:16]}"
        served, other = open_store(url, create=True), open_store(url)
    token, record = issue_token(other, "portal", actor="guo")
    app = create_app(store=served, actors=county_actors(), clock=ManualClock(MONDAY))
    headers = {"Authorization": f"Bearer {token}"}
    try:
        with TestClient(app) as client:
            assert client.post(
                "/projects", json={"id": "P1", "fields": PROJECT_FIELDS}, headers=headers
            ).is_success
            for _ in range(2):  # the second answer comes from the kept record
                assert client.get("/tasks", headers=headers).is_success
            assert other.revoke_token(record.token_id, datetime.now(UTC))
            for response in (
                client.get("/tasks", headers=headers),
                client.post("/projects/P1/commands/negotiate", headers=headers),
            ):
                assert "revoked" in assert_problem(response, 401, "Unauthenticated")["detail"]
        assert served.load("P1").version == 2
    finally:
        served.close()
        if other is not served:
            other.close()


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_a_kept_token_is_looked_up_again_once_another_process_revokes_it(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On both SQL stores the service looks a verified token up once and then only asks the
    store's ``token_generation`` (D186, D287); ``approvalflow token revoke`` run as another
    process changes the generation, so the very next request looks the token up again and is
    refused. Issuing another token changes it too."""
    import subprocess
    import sys

    if kind == "sqlite":
        url = f"sqlite:///{tmp_path / 'county.db'}"
    else:
        base = request.getfixturevalue("postgres_url")
        url = f"{base}{'&' if '?' in base else '?'}schema=t_{uuid.uuid4().hex[:16]}"
    served = open_store(url, create=True)
    token, record = issue_token(served, "portal", actor="guo")
    lookups: list[str] = []
    look_up = served.token_with_hash
    monkeypatch.setattr(served, "token_with_hash", lambda h: lookups.append(h) or look_up(h))
    app = create_app(store=served, actors=county_actors(), clock=ManualClock(MONDAY))
    headers = {"Authorization": f"Bearer {token}"}
    try:
        with TestClient(app) as client:
            for _ in range(3):
                assert client.get("/tasks", headers=headers).is_success
            assert len(lookups) == 1
            generation = served.token_generation()
            other = open_store(url)
            issue_token(other, "gis")
            other.close()
            assert served.token_generation() != generation
            assert client.get("/tasks", headers=headers).is_success
            assert len(lookups) == 2
            revoke = "import sys; from approvalflow.cli import main; sys.exit(main())"
            subprocess.run(
                [sys.executable, "-c", revoke, "token", "revoke", "--store", url, record.token_id],
                check=True,
                capture_output=True,
            )
            response = client.post("/projects/P1/commands/negotiate", headers=headers)
            assert "revoked" in assert_problem(response, 401, "Unauthenticated")["detail"]
            assert len(lookups) == 3
    finally:
        if kind == "postgres":
            served.drop()  # type: ignore[attr-defined]
        else:
            served.close()


def test_the_token_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'county.db'}"
    assert main(["token", "issue", "--store", url, "--system", "oa", "--trusted"]) == 0
    token = capsys.readouterr().out.strip()
    assert token.startswith("afw_")
    assert main(["token", "list", "--store", url, "--json"]) == 0
    [row] = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert (row["system"], row["trusted"], row["revoked_at"]) == ("oa", True, None)
    assert token not in json.dumps(row)
    assert main(["token", "revoke", "--store", url, row["token_id"]]) == 0
    assert main(["token", "revoke", "--store", url, row["token_id"]]) == 1
    assert "no active token" in capsys.readouterr().err
    store = open_store(url)
    assert store.token_with_hash(token_hash(token)).revoked_at is not None  # type: ignore[attr-defined]
    store.close()
    assert main(["token", "issue", "--store", url, "--system", " "]) == 2


# -- approval in stages and 好差评 through the API -------------------------------------------------

TWO_STAGES: dict[str, Any] = {
    "approval": {
        "stages": [
            {
                "id": "one",
                "name": "立项",
                "departments": ["fgw", "zrzy"],
                "lead": "fgw",
                "limit_wd": 8,
            },
            {
                "id": "two",
                "name": "施工",
                "departments": ["zrzy", "zj"],
                "lead": "zj",
                "limit_wd": 10,
            },
        ],
        "total_limit_wd": 15,
    }
}


def test_the_task_list_says_which_rated_item_each_rectification_is_about(
    store: Any,
) -> None:
    """Two rectifications of one project waiting on zj are two items, told apart by ``item``
    (the argument ``rectify`` takes), and a rectify sent with one leaves the other (D187)."""
    from builders import TWO_STAGES, County

    county = County(settings=TWO_STAGES, store=store)
    county.to_two_rectifications("P1")
    token, _ = issue_token(store, "oa", trusted=True)
    app = create_app(store=store, actors=county_actors(), settings=TWO_STAGES, clock=county.clock)
    headers = {"Authorization": f"Bearer {token}", "Approvalflow-Actor": "o_zj"}
    with TestClient(app) as client:
        items = client.get("/tasks", headers=headers).json()
        assert sorted((i["kind"], i["item"], i["department"]) for i in items) == [
            ("rectify", "approval.two", "zj"),
            ("rectify", "approval.two.zj", "zj"),
        ]
        answer = client.post(
            "/projects/P1/commands/rectify",
            json={"item": items[0]["item"], "text": "已整改"},
            headers=headers,
        )
        assert answer.status_code == 200, answer.text
        [left] = client.get("/tasks", headers=headers).json()
        assert left["item"] == items[1]["item"]
        # The enterprise confirms that one; its other kinds of item name no rated item.
        mine = client.get("/tasks", headers={**headers, "Approvalflow-Actor": "fuyuan"}).json()
        assert {(i["kind"], i["item"]) for i in mine} == {
            ("confirm_rectification", items[0]["item"]),
            ("next_step", None),
        }


def test_a_project_in_stages_shows_its_stages_branches_and_ratings(store: Any) -> None:
    """The caller sees which stage runs, each stage's lead and deadline, each branch's stage,
    the total limit, and the ratings given, as `show` does."""
    from builders import County

    county = County(settings=TWO_STAGES, store=store)
    county.to_approval()
    county.approve_all(departments=("fgw", "zrzy"))
    county.do("issue_stage_result", "P1", "o_fgw")
    county.do("rate", "P1", "fuyuan", item="approval.one", score=2)
    token, _ = issue_token(store, "oa", trusted=True)
    app = create_app(store=store, actors=county_actors(), settings=TWO_STAGES, clock=county.clock)
    with TestClient(app) as client:
        body = client.get("/projects/P1", headers={"Authorization": f"Bearer {token}"}).json()
        preview = client.post(
            "/preview",
            json={"fields": PROJECT_FIELDS},
            headers={"Authorization": f"Bearer {token}", "Approvalflow-Actor": "guo"},
        ).json()
    state = county.engine.project("P1")
    assert body["current_approval_stage"] == "two"
    assert [(s["id"], s["lead"], s["issued_by"]) for s in body["approval_stages"]] == [
        ("one", "fgw", "o_fgw"),
        ("two", "zj", None),
    ]
    assert body["total_due"] == state.total_due.isoformat().replace("+00:00", "Z")  # type: ignore[union-attr]
    assert {b["department"]: b["stage"] for b in body["branches"]} == {
        "fgw": "one",
        "zrzy": "two",
        "zj": "two",
    }
    assert [
        (r["item"], r["department"], r["score"], r["rectification"]) for r in body["ratings"]
    ] == [("approval.one", "fgw", 2, "open")]
    assert [(s["id"], s["lead"], s["limit_wd"]) for s in preview["stages"]] == [
        ("one", "fgw", 8),
        ("two", "zj", 10),
    ]
    assert preview["total_due"]["key"] == "total"
    assert {b["stage"] for b in preview["branches"]} == {"one", "two"}

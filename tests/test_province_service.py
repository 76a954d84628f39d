"""A province service: each request goes to its credential's county, and no county's token or
person reaches another county's projects, task lists, reports, outbox or audit.

The isolation test is table-driven over the routes of the OpenAPI document: a route added
without a row here fails ``test_every_route_has_a_row``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("litestar", reason="the server extra is not installed")

from builders import MONDAY, PROJECT_FIELDS, County, county_actors
from litestar.testing import TestClient

from approvalflow import ManualClock
from approvalflow.errors import ProvinceError
from approvalflow.province import INTAKE, Province
from approvalflow.server import JWTSettings, create_app, issue_token
from approvalflow.server.app import IF_MATCH_GUARD, published_document
from approvalflow.stores import open_store
from approvalflow.stores.tokens import PROVINCE

JIAOCHENG_NAME = "交城精细化工园"


@pytest.fixture
def urls(tmp_path: Path) -> dict[str, str]:
    # SQLite: the memory store keeps no audit chain, and the audit routes are among those read.
    return {name: f"sqlite:///{tmp_path / name}.db" for name in ("huguan", "jiaocheng", "province")}


class ProvinceService:
    """Two counties with the same actor ids (the worst case for a mix-up): Jiaocheng has JC1
    in approval (tasks, history, notices, points), Huguan has HG1 in pre-review."""

    def __init__(self, urls: dict[str, str]) -> None:
        self.huguan = County(
            store=open_store(urls["huguan"], create=True), plugins=[IF_MATCH_GUARD, INTAKE]
        )
        self.jiaocheng = County(
            store=open_store(urls["jiaocheng"], create=True), plugins=[IF_MATCH_GUARD, INTAKE]
        )
        self.jiaocheng.to_approval("JC1")
        self.jiaocheng.engine.execute(
            "create", "JC2", "guo", {**PROJECT_FIELDS, "name": JIAOCHENG_NAME}
        )
        self.huguan.to_pre_review("HG1")
        self.store = open_store(urls["province"], create=True)
        self.province = Province(
            {"huguan": self.huguan.engine, "jiaocheng": self.jiaocheng.engine},
            names={"huguan": "壶关县", "jiaocheng": "交城县"},
            store=self.store,
            receivers={"huguan": "guo", "jiaocheng": "guo"},
        )
        # Jiaocheng's hall took in a project of Huguan's: Huguan's token must not see it.
        self.province.intake("jiaocheng", "huguan", "HG-IN", PROJECT_FIELDS, by="guo")
        self.tokens = {
            county: issue_token(self.store, "oa", trusted=True, county=county)[0]
            for county in ("huguan", "jiaocheng")
        }
        self.tokens["province"] = issue_token(self.store, "sheng", county=PROVINCE)[0]
        self.tokens["none"] = issue_token(self.store, "old")[0]

    def headers(self, who: str, actor: str | None = "guo") -> dict[str, str]:
        found = {"Authorization": f"Bearer {self.tokens[who]}"}
        if actor is not None and who in ("huguan", "jiaocheng"):
            found["Approvalflow-Actor"] = actor
        return found

    def jiaocheng_now(self) -> tuple[Any, ...]:
        """What a leak would change of Jiaocheng: its projects' versions, its outbox, its head."""
        store = self.jiaocheng.engine.store
        later = self.huguan.clock.now() + timedelta(days=30)
        return (
            [(p, store.load(p).version) for p in store.project_ids()],
            [(e.notice.id, e.attempts, e.last_error) for e in store.pending_notices(later, 1000)],
            store.chain_head() if hasattr(store, "chain_head") else None,
        )

    def close(self) -> None:
        for store in (self.huguan.engine.store, self.jiaocheng.engine.store, self.store):
            store.close()


@pytest.fixture
def setup(urls: dict[str, str]) -> Iterator[ProvinceService]:
    found = ProvinceService(urls)
    yield found
    found.close()


@pytest.fixture
def client(setup: ProvinceService) -> Iterator[TestClient[Any]]:
    with TestClient(create_app(province=setup.province)) as found:
        yield found


Request = Callable[[ProvinceService], dict[str, Any]]


def _notice(setup: ProvinceService) -> str:
    later = setup.huguan.clock.now() + timedelta(days=30)
    return setup.jiaocheng.engine.store.pending_notices(later, 1)[0].notice.id


# Each route, called by Huguan's token about Jiaocheng's things (its project JC1, its
# notices). ``project`` marks the routes that must answer 404 as if JC1 did not exist.
# ``POST /intakes`` is the one route that writes into another county, by design: it has its
# own test (``test_an_intake_writes_one_project_into_the_handling_county``).
ROUTES: dict[tuple[str, str], tuple[Request, bool]] = {
    ("post", "/projects"): (
        lambda s: {"json": {"id": "JC1", "fields": PROJECT_FIELDS}, "expect": 201},
        False,
    ),
    ("get", "/projects/{project_id}"): (lambda s: {"url": "/projects/JC1"}, True),
    ("get", "/projects/{project_id}/history"): (lambda s: {"url": "/projects/JC1/history"}, True),
    ("post", "/projects/{project_id}/commands/{name}"): (
        lambda s: {"url": "/projects/JC1/commands/accept", "actor": "o_fgw"},
        True,
    ),
    ("get", "/tasks"): (lambda s: {"actor": "o_fgw"}, False),
    ("get", "/done"): (lambda s: {"actor": "guo"}, False),
    ("post", "/preview"): (lambda s: {"json": {"fields": PROJECT_FIELDS}}, False),
    ("get", "/reports/leaderboard"): (lambda s: {"params": {"month": "2026-03"}}, False),
    ("get", "/reports/metrics"): (lambda s: {}, False),
    ("get", "/reports/late-items"): (lambda s: {}, False),
    ("get", "/audit/head"): (lambda s: {}, False),
    ("get", "/audit/verify"): (lambda s: {}, False),
    ("post", "/outbox/claim"): (lambda s: {}, False),
    ("post", "/outbox/ack"): (lambda s: {"json": {"notice_ids": [_notice(s)]}}, False),
    ("post", "/outbox/fail"): (
        lambda s: {"json": {"notice_id": _notice(s), "error": "x", "retry_after_seconds": 60}},
        False,
    ),
    ("get", "/intakes/status"): (lambda s: {}, False),
}
INTAKE_ROUTES: dict[tuple[str, str], Request] = {
    ("post", "/intakes"): lambda s: {
        "json": {"county": "jiaocheng", "id": "JC-IN", "fields": PROJECT_FIELDS, "hall": "大厅"}
    },
}
ONLY_IN_A_PROVINCE = {("get", "/intakes/status")}
PROVINCE_ROUTES: dict[tuple[str, str], Request] = {
    ("get", "/province/counties"): lambda s: {"params": {"on": "signed_count"}},
    ("get", "/province/red-black"): lambda s: {"params": {"on": "signed_count", "n": 1}},
    ("get", "/province/departments"): lambda s: {},
}
UNGUARDED = {("get", "/health")}


def call(client: TestClient[Any], setup: ProvinceService, who: str, method: str, path: str) -> Any:
    key = (method, path)
    found = ROUTES.get(key) or (PROVINCE_ROUTES.get(key) or INTAKE_ROUTES[key], False)
    spec = found[0](setup)
    url = spec.get("url", path)
    return client.request(
        method.upper(),
        url,
        json=spec.get("json"),
        params=spec.get("params"),
        headers=setup.headers(who, spec.get("actor", "guo")),
    )


def test_every_route_has_a_row(client: TestClient[Any]) -> None:
    """A new route must say how it keeps counties apart before it can ship."""
    document = published_document(client.app)
    routes = {(m, p) for p, item in document["paths"].items() for m in item}
    assert routes == set(ROUTES) | set(PROVINCE_ROUTES) | set(INTAKE_ROUTES) | UNGUARDED


@pytest.mark.parametrize(("method", "path"), sorted(ROUTES))
def test_a_county_token_never_reaches_another_countys_data(
    client: TestClient[Any], setup: ProvinceService, method: str, path: str
) -> None:
    """Huguan's token asking about Jiaocheng's project, notices or lists: a project is not
    found (404), a list holds nothing of Jiaocheng's, and Jiaocheng's data is unchanged."""
    before = setup.jiaocheng_now()
    response = call(client, setup, "huguan", method, path)
    assert response.status_code < 500, response.text
    if ROUTES[(method, path)][1]:
        assert response.status_code == 404, response.text
        assert response.json()["code"] == "UnknownProject"
    else:
        assert response.status_code in (200, 201), response.text
        # Creating answers Huguan's own new JC1; a failure report echoes the id it was given.
        if (method, path) not in (("post", "/projects"), ("post", "/outbox/fail")):
            assert "JC1" not in response.text
    assert JIAOCHENG_NAME not in response.text
    assert setup.jiaocheng_now() == before
    if (method == "get" or path == "/preview") and (method, path) not in ONLY_IN_A_PROVINCE:
        # A read answers exactly as Huguan's own one-county service does.
        assert response.json() == own_answer(setup, method, path)


def own_answer(setup: ProvinceService, method: str, path: str) -> Any:
    store = setup.huguan.engine.store
    token, _ = issue_token(store, "own", trusted=True)
    app = create_app(store=store, actors=county_actors(), clock=ManualClock(MONDAY))
    spec = ROUTES[(method, path)][0](setup)
    with TestClient(app) as client:
        response = client.request(
            method.upper(),
            spec.get("url", path),
            json=spec.get("json"),
            params=spec.get("params"),
            headers={
                "Authorization": f"Bearer {token}",
                "Approvalflow-Actor": spec.get("actor", "guo"),
            },
        )
    return response.json()


@pytest.mark.parametrize(("method", "path"), sorted(ROUTES | INTAKE_ROUTES))
def test_a_province_token_reads_no_county_route(
    client: TestClient[Any], setup: ProvinceService, method: str, path: str
) -> None:
    before = setup.jiaocheng_now()
    response = call(client, setup, "province", method, path)
    assert response.status_code == 403, response.text
    assert "province" in response.json()["detail"]
    assert setup.jiaocheng_now() == before


@pytest.mark.parametrize(("method", "path"), sorted(ROUTES | INTAKE_ROUTES))
def test_a_token_of_no_county_is_refused(
    client: TestClient[Any], setup: ProvinceService, method: str, path: str
) -> None:
    """A token issued before counties (or for a one-county service) names no county: a
    province service cannot tell whose data it may read, so it reads none."""
    response = call(client, setup, "none", method, path)
    assert response.status_code == 403, response.text
    assert "names no county" in response.json()["detail"]


@pytest.mark.parametrize(("method", "path"), sorted(PROVINCE_ROUTES))
def test_a_county_token_reads_no_province_report(
    client: TestClient[Any], setup: ProvinceService, method: str, path: str
) -> None:
    """The province reports rank every county: a county's token may not read them."""
    for who in ("huguan", "jiaocheng", "none"):
        response = call(client, setup, who, method, path)
        assert response.status_code == 403, response.text
        assert "province credential" in response.json()["detail"]


@pytest.mark.parametrize(("method", "path"), sorted(PROVINCE_ROUTES))
def test_a_province_token_reads_the_province_reports(
    client: TestClient[Any], setup: ProvinceService, method: str, path: str
) -> None:
    before = setup.jiaocheng_now()
    response = call(client, setup, "province", method, path)
    assert response.status_code == 200, response.text
    assert setup.jiaocheng_now() == before


def test_the_province_ranking_over_http(client: TestClient[Any], setup: ProvinceService) -> None:
    """Jiaocheng signed one project (JC1), Huguan none: each figure is the county's own."""
    ranked = client.get(
        "/province/counties", params={"on": "signed_count"}, headers=setup.headers("province")
    ).json()
    assert ranked == [
        {"rank": 1, "county": "jiaocheng", "name": "交城县", "value": 1},
        {"rank": 2, "county": "huguan", "name": "壶关县", "value": 0},
    ]
    rates = client.get(
        "/province/counties", params={"on": "start_rate"}, headers=setup.headers("province")
    ).json()
    assert [(r["county"], r["rank"], r["value"]) for r in rates] == [
        ("jiaocheng", 1, "0.000000"),
        ("huguan", None, None),
    ]
    lists = client.get(
        "/province/red-black",
        params={"on": "points", "month": "2026-03", "n": 1},
        headers=setup.headers("province"),
    ).json()
    own = sum(row.points for row in setup.jiaocheng.engine.leaderboard("2026-03"))
    assert lists["red"] == [{"rank": 1, "county": "jiaocheng", "name": "交城县", "value": own}]
    assert lists["black"][0]["county"] == "huguan"
    refused = client.get(
        "/province/counties", params={"on": "points"}, headers=setup.headers("province")
    )
    assert refused.status_code == 422 and "month" in refused.json()["detail"]


def test_an_intake_writes_one_project_into_the_handling_county(
    client: TestClient[Any], setup: ProvinceService
) -> None:
    """Huguan's hall takes in JC-IN for Jiaocheng: Jiaocheng gains that one project, created by
    its own receiver with Huguan as the intake point, and nothing else of Jiaocheng's changes;
    Huguan then sees its status and nothing more, and Jiaocheng does not see it as an intake."""
    projects, outbox, _ = setup.jiaocheng_now()
    response = call(client, setup, "huguan", "post", "/intakes")
    assert response.status_code == 201, response.text
    after, outbox_after, _ = setup.jiaocheng_now()
    assert [p for p in after if p not in projects] == [("JC-IN", after[-1][1])]
    assert [p for p in after if p[0] != "JC-IN"] == projects
    assert [n for n in outbox_after if not n[0].startswith("JC-IN:")] == outbox
    point = setup.jiaocheng.engine.project("JC-IN").extra["intake"]
    assert (point["county"], point["by"], point["hall"]) == ("huguan", "guo", "大厅")
    seen = client.get("/intakes/status", headers=setup.headers("huguan")).json()
    assert [(i["project"], i["county"], i["stage"]) for i in seen] == [
        ("JC-IN", "jiaocheng", "lead")
    ]
    assert set(seen[0]) == {
        "project",
        "name",
        "county",
        "county_name",
        "stage",
        "stage_name",
        "held_by",
        "due",
        "accepted_at",
        "accepted_by",
    }
    theirs = client.get("/intakes/status", headers=setup.headers("jiaocheng")).json()
    assert [i["project"] for i in theirs] == ["HG-IN"]
    again = client.post(
        "/intakes",
        json={"county": "jiaocheng", "id": "JC-IN", "fields": PROJECT_FIELDS},
        headers=setup.headers("huguan"),
    )
    assert again.status_code == 409  # one project id, once
    unknown = client.post(
        "/intakes",
        json={"county": "gaoqing", "id": "X", "fields": PROJECT_FIELDS},
        headers=setup.headers("huguan"),
    )
    assert unknown.status_code == 422 and "no county 'gaoqing'" in unknown.json()["detail"]


def test_intakes_need_a_province_service() -> None:
    store = open_store(None)
    token, _ = issue_token(store, "oa", trusted=True)
    with TestClient(create_app(store=store, actors=county_actors())) as client:
        response = client.get("/intakes/status", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 403 and "province service" in response.json()["detail"]


def test_each_county_reads_its_own(client: TestClient[Any], setup: ProvinceService) -> None:
    """The routing is by county, not a wall that blocks everyone: Jiaocheng reads JC1 and its
    tasks, Huguan reads HG1, and the same actor id means each county's own person."""
    own = client.get("/projects/JC1", headers=setup.headers("jiaocheng"))
    assert own.status_code == 200 and own.json()["stage"] == "approval"
    assert client.get("/projects/HG1", headers=setup.headers("huguan")).status_code == 200
    assert client.get("/projects/HG1", headers=setup.headers("jiaocheng")).status_code == 404
    tasks = client.get("/tasks", headers=setup.headers("jiaocheng", "o_fgw")).json()
    assert {t["project"] for t in tasks} == {"JC1"}
    assert client.get("/tasks", headers=setup.headers("huguan", "o_fgw")).json() == []
    claimed = client.post("/outbox/claim", headers=setup.headers("jiaocheng")).json()
    assert claimed and all(c["notice"]["project"].startswith("JC") for c in claimed)


def test_a_write_goes_to_the_credentials_county(
    client: TestClient[Any], setup: ProvinceService
) -> None:
    """A command through Jiaocheng's token changes Jiaocheng's project only."""
    hg1 = setup.huguan.engine.project("HG1").version
    response = client.post(
        "/projects/JC1/commands/accept", headers=setup.headers("jiaocheng", "o_fgw")
    )
    assert response.status_code == 200, response.text
    assert setup.jiaocheng.engine.project("JC1").branches["fgw"].state == "accepted"
    assert setup.huguan.engine.project("HG1").version == hg1


def test_a_token_of_a_county_not_served_is_refused(setup: ProvinceService) -> None:
    token, _ = issue_token(setup.store, "oa", trusted=True, county="gaoqing")
    with TestClient(create_app(province=setup.province)) as client:
        response = client.get("/tasks", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 403
    assert "gaoqing's" in response.json()["detail"]


def test_a_jwt_is_routed_by_its_county_claim(setup: ProvinceService) -> None:
    import jwt
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    app = create_app(province=setup.province, jwt=JWTSettings(public_key=public.decode()))

    def bearer(**extra: Any) -> dict[str, str]:
        claims = {"sub": "o_fgw", "azp": "oa", "exp": datetime.now(UTC) + timedelta(minutes=5)}
        token = jwt.encode({**claims, **extra}, private, algorithm="RS256")
        return {"Authorization": f"Bearer {token}"}

    with TestClient(app) as client:
        assert client.get("/projects/JC1", headers=bearer(county="jiaocheng")).status_code == 200
        assert client.get("/projects/JC1", headers=bearer(county="huguan")).status_code == 404
        assert client.get("/projects/JC1", headers=bearer()).status_code == 403
        assert client.get("/projects/JC1", headers=bearer(county=PROVINCE)).status_code == 403


class TestSetup:
    def test_a_province_service_takes_the_province_alone(self, setup: ProvinceService) -> None:
        with pytest.raises(ProvinceError, match="province= alone"):
            create_app(province=setup.province, store=setup.store)

    def test_every_engine_needs_the_if_match_guard(self) -> None:
        province = Province({"huguan": County().engine})
        with pytest.raises(ProvinceError, match="If-Match guard"):
            create_app(province=province)

    def test_a_one_county_service_refuses_another_countys_token(self) -> None:
        """Told its county, a one-county service refuses a credential of another county and
        a province credential, and takes its own county's and the tokens of before."""
        store = open_store(None)
        app = create_app(store=store, actors=[], county="huguan")
        tokens = {
            name: issue_token(store, "oa", county=county)[0]
            for name, county in (
                ("own", "huguan"),
                ("other", "jiaocheng"),
                ("province", PROVINCE),
                ("old", None),
            )
        }
        with TestClient(app) as client:
            status = {
                name: client.get(
                    "/reports/metrics", headers={"Authorization": f"Bearer {token}"}
                ).status_code
                for name, token in tokens.items()
            }
        assert status == {"own": 200, "other": 403, "province": 403, "old": 200}

    def test_a_one_county_workbench_signs_in_its_own_county_only(self) -> None:
        """The workbench's sign-in goes through the same check: another county's personal
        token is refused there, the county's own is taken."""
        import re

        county = County()
        store = county.engine.store
        app = create_app(store=store, actors=county_actors(), county="huguan")
        other, _ = issue_token(store, "workbench", actor="guo", county="jiaocheng")
        own, _ = issue_token(store, "workbench", actor="guo", county="huguan")
        with TestClient(app) as client:

            def sign_in(token: str) -> Any:
                form = client.get("/signin").text
                csrf = re.search(r'name="_csrf" value="([0-9a-f]+)"', form)
                assert csrf
                return client.post(
                    "/signin/token",
                    data={"_csrf": csrf.group(1), "token": token},
                    follow_redirects=False,
                )

            refused = sign_in(other)
            assert refused.status_code == 403 and "jiaocheng" in refused.text
            assert sign_in(own).status_code == 303

    def test_a_province_token_acts_as_nobody(self) -> None:
        store = open_store(None)
        with pytest.raises(ValueError, match="acts as nobody"):
            issue_token(store, "sheng", actor="guo", county=PROVINCE)
        with pytest.raises(ValueError, match="not a county id"):
            issue_token(store, "oa", county="Huguan")
        assert store.tokens() == []


def test_health_reads_every_countys_store(client: TestClient[Any]) -> None:
    assert client.get("/health").json()["status"] == "ok"


# -- the workbench of a province: each person's pages are their own county's -------------------

WORKBENCH_PAGES: dict[str, str] = {
    "wb_tasks": "/",
    "wb_project": "/project/JC1",
    "wb_leaderboard": "/leaderboard?month=2026-03",
    "wb_late": "/late",
    "wb_metrics": "/metrics",
    "wb_calendar": "/calendar",
}
WORKBENCH_OTHER = {
    "wb_signin_form",
    "wb_signin",
    "wb_signout",
    "wb_command",
    "wb_static",
    "wb_static/head",
}


def sign_in(client: TestClient[Any], token: str) -> Any:
    import re

    form = client.get("/signin").text
    csrf = re.search(r'name="_csrf" value="([0-9a-f]+)"', form)
    assert csrf, form
    return client.post(
        "/signin/token", data={"_csrf": csrf.group(1), "token": token}, follow_redirects=False
    )


def personal(setup: ProvinceService, county: str | None, actor: str = "o_fgw") -> str:
    return issue_token(setup.store, "workbench", actor=actor, county=county)[0]


def test_every_workbench_page_has_a_row(client: TestClient[Any]) -> None:
    names = {
        handler.name
        for route in client.app.routes
        for handler in getattr(route, "route_handlers", ())
        if (handler.name or "").startswith("wb_")
    }
    assert names == set(WORKBENCH_PAGES) | WORKBENCH_OTHER


@pytest.mark.parametrize("page", sorted(WORKBENCH_PAGES))
def test_a_countys_person_sees_only_their_countys_pages(
    client: TestClient[Any], setup: ProvinceService, page: str
) -> None:
    """Signed in with Huguan's personal token, no page shows Jiaocheng's projects: its
    project page is 404, as if it did not exist."""
    assert sign_in(client, personal(setup, "huguan")).status_code == 303
    response = client.get(WORKBENCH_PAGES[page])
    if page == "wb_project":
        assert response.status_code == 404, response.text
        assert "UnknownProject" in response.text  # the asked id is named, nothing of it shown
        assert PROJECT_FIELDS["name"] not in response.text
    else:
        assert response.status_code == 200, response.text
        assert "JC1" not in response.text
    assert JIAOCHENG_NAME not in response.text


def test_the_other_countys_person_sees_their_own(
    client: TestClient[Any], setup: ProvinceService
) -> None:
    assert sign_in(client, personal(setup, "jiaocheng")).status_code == 303
    tasks = client.get("/")
    assert tasks.status_code == 200 and "JC1" in tasks.text
    assert client.get("/project/JC1").status_code == 200
    assert client.get("/project/HG1").status_code == 404


def test_a_workbench_command_goes_to_the_persons_county(
    client: TestClient[Any], setup: ProvinceService
) -> None:
    """Huguan's officer posting a command on JC1 changes nothing of Jiaocheng's."""
    import re

    before = setup.jiaocheng_now()
    assert sign_in(client, personal(setup, "huguan")).status_code == 303
    csrf = re.search(r'name="_csrf" value="([0-9a-f]+)"', client.get("/").text)
    assert csrf
    response = client.post(
        "/project/JC1/do/accept", data={"_csrf": csrf.group(1), "back": "project"}
    )
    assert response.status_code == 404
    assert setup.jiaocheng_now() == before


@pytest.mark.parametrize("county", [PROVINCE, None, "gaoqing"])
def test_no_county_no_sign_in(
    client: TestClient[Any], setup: ProvinceService, county: str | None
) -> None:
    """A province token, a token of no county and one of a county not served sign nobody in."""
    refused = sign_in(
        client,
        personal(setup, county, actor="guo")
        if county != PROVINCE
        else issue_token(setup.store, "sheng", county=PROVINCE)[0],
    )
    assert refused.status_code == 403
    assert client.get("/", follow_redirects=False).status_code == 303  # back to sign-in

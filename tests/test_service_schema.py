"""Schemathesis: requests generated from the published OpenAPI document, against the app on
the memory store and on SQLite. Each response must be no server error and match the document
(status, content type, body schema, headers), and a schema-invalid request must be refused.

Left out: "schema-valid data is accepted". A project's fields, a command's arguments and the
acting person are judged by the engine's rules (a known applicant, a material of the
catalogue, the project's stage), which no JSON schema can state; refusing them with the
library's error is the contract, not a fault."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("litestar", reason="the server extra is not installed")
schemathesis = pytest.importorskip("schemathesis", reason="schemathesis is not installed")

from builders import MONDAY, county_actors  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402
from schemathesis.specs.openapi.checks import positive_data_acceptance  # noqa: E402

from approvalflow import ManualClock  # noqa: E402
from approvalflow.server import create_app, issue_token  # noqa: E402
from approvalflow.stores import open_store  # noqa: E402


def _app(url: str) -> tuple[Any, str]:
    store = open_store(url, create=True)
    token, _ = issue_token(store, "oa", trusted=True)
    return create_app(store=store, actors=county_actors(), clock=ManualClock(MONDAY)), token


def _bounded(test: Any) -> Any:
    return settings(
        max_examples=5,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
    )(test)


MEMORY_APP, MEMORY_TOKEN = _app("memory://")
memory_schema = schemathesis.openapi.from_asgi("/openapi.json", MEMORY_APP)


@memory_schema.parametrize()
@_bounded
def test_the_service_on_memory_keeps_its_contract(case: Any) -> None:
    case.call_and_validate(
        headers={"Authorization": f"Bearer {MEMORY_TOKEN}", "Approvalflow-Actor": "guo"},
        excluded_checks=[positive_data_acceptance],
    )


_SQLITE_DIR = Path(__import__("tempfile").mkdtemp(prefix="approvalflow-schema-"))
SQLITE_APP, SQLITE_TOKEN = _app(f"sqlite:///{_SQLITE_DIR / 'county.db'}")
sqlite_schema = schemathesis.openapi.from_asgi("/openapi.json", SQLITE_APP)


@sqlite_schema.parametrize()
@_bounded
def test_the_service_on_sqlite_keeps_its_contract(case: Any) -> None:
    case.call_and_validate(
        headers={"Authorization": f"Bearer {SQLITE_TOKEN}", "Approvalflow-Actor": "guo"},
        excluded_checks=[positive_data_acceptance],
    )

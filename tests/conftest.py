"""Shared test set-up: hypothesis profiles and the actors most tests use."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

# `ci` keeps the suite well inside CI's time on two cores; `dev` is quick; `thorough` is for
# a long local run (HYPOTHESIS_PROFILE=thorough).
settings.register_profile(
    "ci", max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", max_examples=50, deadline=None)
settings.register_profile("thorough", max_examples=2000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


# -- no skips on CI ---------------------------------------------------------------------------
#
# CI installs every extra, the JDK, chromium and PostgreSQL (.ci/run), so a test that skips there
# is one that silently stopped running (as the ratings report did on SQLite and PostgreSQL).
# With CI=true every skip, at collection or in a test, is reported as a failure with its reason.


def _on_ci() -> bool:
    return os.environ.get("CI") == "true"


def _no_skip_on_ci(report: pytest.CollectReport | pytest.TestReport) -> None:
    if _on_ci() and report.skipped and not hasattr(report, "wasxfail"):
        longrepr = report.longrepr
        reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
        report.outcome = "failed"
        report.longrepr = f"CI=true: no test may skip on CI, and this one did: {reason}"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Iterator[None] | pytest.TestReport:
    report: pytest.TestReport = yield
    _no_skip_on_ci(report)
    return report


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(
    collector: pytest.Collector,
) -> Iterator[None] | pytest.CollectReport:
    report: pytest.CollectReport = yield
    _no_skip_on_ci(report)
    return report


@pytest.fixture(autouse=True)
def _structlog_defaults() -> Iterator[None]:
    """Tests that run the CLI configure structlog; put the defaults back after each test."""
    yield
    import structlog

    structlog.reset_defaults()


# -- stores ---------------------------------------------------------------------------------------

POSTGRES_URL = os.environ.get(
    "APPROVALFLOW_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test"
)


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """The server's URL, once it is known to answer; otherwise skip (or fail on CI)."""
    problem = None
    try:
        import psycopg
    except ImportError:
        problem = "psycopg is not installed (pip install 'approvalflow[postgres]')"
    else:
        try:
            with psycopg.connect(POSTGRES_URL, connect_timeout=3):
                pass
        except psycopg.OperationalError as error:
            problem = f"PostgreSQL at {POSTGRES_URL} cannot be reached ({str(error).strip()})"
    if problem is not None:
        how = (
            "; to run these tests start PostgreSQL and set APPROVALFLOW_TEST_POSTGRES="
            "postgresql://user@host:port/database (a database the user may create schemas in)"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(problem + how + " (CI=true: the PostgreSQL tests must run)")
        pytest.skip(problem + how)
    return POSTGRES_URL


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def every_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Run the test once per backend: every ``County()`` it builds uses that store."""
    import builders

    opened: list[Any] = []
    if request.param == "sqlite":
        from approvalflow.stores.sqlite import SQLiteStore

        def factory() -> Any:
            opened.append(SQLiteStore(tmp_path / f"{uuid.uuid4().hex}.db"))
            return opened[-1]

    elif request.param == "postgres":
        from approvalflow.stores.postgres import PostgresStore

        url = request.getfixturevalue("postgres_url")

        def factory() -> Any:
            opened.append(PostgresStore.from_url(url, schema=f"t_{uuid.uuid4().hex[:16]}"))
            return opened[-1]

    else:
        factory = None  # type: ignore[assignment]
    builders.STORE_FACTORY = factory
    try:
        yield request.param
    finally:
        builders.STORE_FACTORY = None
        for store in opened:
            if hasattr(store, "drop"):
                store.drop()
            store.close()


@pytest.fixture(params=["sqlite", "postgres"])
def sql_store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of a fresh, not yet initialised SQL store, for tests that run the CLI (which
    opens its store by URL): a SQLite file, or a PostgreSQL schema of its own (dropped after;
    on CI the PostgreSQL one fails rather than skips, as ``postgres_url`` does)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'cli.db'}"
        return
    from approvalflow.stores.postgres import PostgresStore

    base = request.getfixturevalue("postgres_url")
    schema = f"t_cli_{uuid.uuid4().hex[:12]}"
    try:
        yield f"{base}{'&' if '?' in base else '?'}schema={schema}"
    finally:
        PostgresStore.from_url(base, schema=schema).drop()


@contextmanager
def two_store_objects(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[Any, Any]]:
    """Two store objects (two connections, two caches, two claimers) on one SQLite file
    (``kind`` ``"sqlite"``) or PostgreSQL schema (``"postgres"``)."""
    if kind == "sqlite":
        from approvalflow.stores.sqlite import SQLiteStore

        first: Any = SQLiteStore(tmp_path / "shared.db")
        second: Any = SQLiteStore(tmp_path / "shared.db")
        try:
            yield first, second
        finally:
            first.close()
            second.close()
    else:
        from approvalflow.stores.postgres import PostgresStore

        url = request.getfixturevalue("postgres_url")
        name = f"t_{uuid.uuid4().hex[:16]}"
        first = PostgresStore.from_url(url, schema=name)
        second = PostgresStore.from_url(url, schema=name)
        try:
            yield first, second
        finally:
            second.close()
            first.drop()


@pytest.fixture(params=["sqlite", "postgres"])
def two_sql_stores(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Any, Any]]:
    with two_store_objects(request.param, request, tmp_path) as pair:
        yield pair

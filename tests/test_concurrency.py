"""Several OS processes run Engines on the same store and the same projects at once.

Commands: four processes each drive one department's approval branch of the same projects
(accept, possibly with deficient materials, supply, approve) while all of them report funds and
urge departments on those same projects, and all four send one same command id per project (a
client retrying through several servers), so their commits collide. The engine re-reads and
retries on ``ConcurrencyConflict`` (and a process re-sends the same ``command_id`` if the engine
gives up). Afterwards nothing accepted is lost, nothing is applied twice, each state is the fold
of its history, and replaying the accepted commands one at a time in their commit order on a
``MemoryStore`` gives the very same events and states: the concurrent run was serialisable.

Timers: four worker processes call ``run_due`` at once on a store where hundreds of deficient
branches are past their supply deadline; each deadline revokes its branch exactly once, and no
notice is delivered twice.

Each runs on a SQLite file and on a PostgreSQL schema of its own. Two more tests replay, in one
process and deterministically, interleavings of several workers that once lost a timer: a timer
moved after it was claimed, and a later deadline claimed by one worker while another held the
earlier one.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import time
import traceback
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import structlog.testing
from builders import MEMBER_UNITS, MONDAY, PROJECT_FIELDS, county_actors

from approvalflow import Engine, ManualClock
from approvalflow.errors import ApprovalflowError, ConcurrencyConflict
from approvalflow.logs import capture_logs
from approvalflow.model import Notice
from approvalflow.plugins.hookspecs import hookimpl
from approvalflow.project import ProjectState
from approvalflow.stores import open_store
from approvalflow.stores.audit import verify_chain
from approvalflow.stores.sqlite import SQLiteStore

# Every engine here (set-up, workers, replay) reads the same fixed time, so a command gives the
# same events whichever process runs it.
AT = MONDAY
DEPARTMENTS = ("fgw", "zrzy", "zj", "sthj")  # one worker process each
# A non-key material each department requires; zj and sthj share one, and so do fgw and zrzy,
# so one worker's supply can complete another worker's branch.
DEFICIENT = {
    "fgw": "credit_report",
    "zrzy": "credit_report",
    "zj": "site_photos",
    "sthj": "site_photos",
}
PROJECTS = 6
SHARED_AMOUNT = 777
TIMER_PROJECTS = int(os.environ.get("APPROVALFLOW_TIMER_PROJECTS", "200"))
TIMER_WORKERS = 4
TIMER_BRANCHES = ("zj", "sthj")
TIMEOUT = 300  # seconds a group of processes may take before the test fails (and kills them)

Step = tuple[str, str, str, dict[str, Any]]  # command, project, by, args


# -- processes --------------------------------------------------------------------------------


def _run_processes(target: Callable[..., None], arguments: Sequence[tuple[Any, ...]]) -> None:
    """Run ``target(*args, start)`` in one spawned process per ``args``, with a barrier
    ``start`` shared by all; fail if one fails or they take longer than ``TIMEOUT``. No process
    outlives this call."""
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(len(arguments))
    processes = [context.Process(target=target, args=(*args, start)) for args in arguments]
    try:
        for process in processes:
            process.start()
        deadline = time.monotonic() + TIMEOUT
        for process in processes:
            process.join(max(0.0, deadline - time.monotonic()))
        assert not any(p.is_alive() for p in processes), f"still running after {TIMEOUT} s"
        assert [p.exitcode for p in processes] == [0] * len(processes)
    finally:
        for process in processes:
            if process.pid is None:
                continue  # never started
            if process.is_alive():
                process.kill()
            process.join(30)


def _child(out: Path, work: Callable[[], dict[str, Any]]) -> None:
    """In a child process: run ``work`` and write what it returns, plus how many commits lost a
    race (``conflicts``, from the engine's log), or its traceback, to ``out`` as JSON."""
    try:
        with capture_logs() as logs:
            result = work()
    except BaseException:
        out.write_text(json.dumps({"error": traceback.format_exc()}), encoding="utf-8")
        raise
    result["conflicts"] = sum(1 for e in logs if e["event"] == "approvalflow.command_conflict")
    out.write_text(json.dumps(result, ensure_ascii=False), encoding="utf-8")


def _results(paths: Sequence[Path]) -> list[dict[str, Any]]:
    results = [json.loads(path.read_text(encoding="utf-8")) for path in paths]
    for result in results:
        assert "error" not in result, result["error"]
    return results


# -- stores and set-up ------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgres"])
def store_urls(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """``(url, setup_url)`` of a fresh store: the URL the tested processes use, and one for
    set-up commits that skips syncing to disk (a per-connection setting: only speed changes)."""
    if request.param == "sqlite":
        path = tmp_path / "shared.db"
        yield f"sqlite:///{path}?synchronous=FULL", f"sqlite:///{path}?synchronous=OFF"
        return
    from approvalflow.stores.postgres import PostgresStore

    base = request.getfixturevalue("postgres_url")
    schema = f"t_conc_{uuid.uuid4().hex[:12]}"
    url = f"{base}{'&' if '?' in base else '?'}schema={schema}"
    try:
        yield url, f"{url}&options=-c%20synchronous_commit%3Doff"
    finally:
        PostgresStore.from_url(base, schema=schema).drop()


def _engine(
    store: Any, plugins: Sequence[object] = (), at: datetime = AT, *, catch_up: bool = True
) -> Engine:
    """An engine on ``store`` (a store or a URL) whose clock stands still at ``at``."""
    return Engine(
        actors=county_actors(),
        store=store,
        clock=ManualClock(at),
        plugins=plugins,
        catch_up=catch_up,
    )


def _to_approval(engine: Engine, project: str, departments: Sequence[str]) -> list[Step]:
    """Drive ``project`` from creation to parallel approval in ``departments``; return the
    commands, each run with the command id ``<project>-setup-<n>``."""
    steps: list[Step] = [
        ("create", project, "guo", {**PROJECT_FIELDS, "name": f"并发测试{project}"}),
        ("negotiate", project, "guo", {}),
        ("submit_pre_review", project, "guo", {"materials": ["business_license"]}),
        *[("opinion", project, f"r_{unit}", {"verdict": "pass"}) for unit in MEMBER_UNITS],
        ("convene", project, "chair", {"present": ["chair", "m1", "m2", "m3"]}),
        *[("vote", project, member, {"vote": "approve"}) for member in ("chair", "m1", "m2")],
        ("close_meeting", project, "chair", {}),
        ("sign", project, "guo", {}),
        ("apply", project, "fuyuan", {"departments": list(departments)}),
    ]
    for number, (command, _, by, args) in enumerate(steps):
        engine.execute(command, project, by, args, command_id=f"{project}-setup-{number}")
    return steps


def _check_histories(store: Any) -> dict[str, list[Any]]:
    """What must hold however the store was written: each project's versions run 1, 2, 3... up
    to its recorded version (no gap, no duplicate); every event with a command id belongs to
    that id's record, whose versions are exactly those events; each stored state is the fold of
    its history; the audit chain verifies. Returns the histories."""
    versions = store.project_versions()
    history = {project: store.events(project) for project in store.project_ids()}
    by_command: dict[str, list[Any]] = defaultdict(list)
    for project, events in history.items():
        assert [e.version for e in events] == list(range(1, len(events) + 1)), project
        assert versions[project] == len(events)
        assert store.load(project) == ProjectState.from_events(events)
        for event in events:
            if event.command_id is not None:
                by_command[event.command_id].append(event)
    for command_id, events in by_command.items():
        record = store.command(command_id)
        assert record is not None, f"events of {command_id} but no record of it"
        assert record.project == events[0].project
        assert [e.version for e in events] == list(
            range(record.first_version, record.last_version + 1)
        )
    report = verify_chain(store)
    assert report.ok, report.reason
    assert report.count == sum(len(events) for events in history.values())
    return history


# -- many processes, the same projects --------------------------------------------------------


def _branch_steps(worker: int, project: str, index: int) -> list[tuple[str | None, Step]]:
    """What the worker of one department does to one project, as ``(command_id, step)`` (a
    ``None`` id: the worker makes one up): its own branch, plus funds reports and urges that
    every worker sends to the same project, and one command id that all four send."""
    dept = DEPARTMENTS[worker]
    material = DEFICIENT[dept]
    deficient = (worker + index) % 2 == 0
    officer = f"o_{dept}"

    def funds(k: int) -> tuple[None, Step]:
        amount = 1000 * (worker + 1) + 10 * index + k
        return None, ("report_funds", project, "guo", {"amount": amount})

    steps: list[tuple[str | None, Step]] = [
        (None, ("accept", project, officer, {"deficient": [material]} if deficient else {})),
        funds(1),
        (f"{project}-shared", ("report_funds", project, "guo", {"amount": SHARED_AMOUNT})),
        (None, ("urge", project, "huang", {"department": DEPARTMENTS[(worker + 1) % 4]})),
    ]
    if deficient:
        steps.append((None, ("supply", project, "fuyuan", {"materials": [material]})))
    steps += [
        funds(2),
        (None, ("approve", project, officer, {})),
        # Refused if the other branches were all approved first (no urging after approval).
        (None, ("urge", project, "huang", {"department": dept})),
        funds(3),
    ]
    return steps


def _drive_branches(url: str, worker: int, projects: list[str], out: Path, start: Any) -> None:
    def work() -> dict[str, Any]:
        engine = _engine(url)
        scripts = [_branch_steps(worker, p, i) for i, p in enumerate(projects)]
        # Round-robin over the projects, so every worker is on every project at once.
        steps = [s[k] for k in range(max(map(len, scripts))) for s in scripts if k < len(s)]
        log: list[dict[str, Any]] = []
        given_up = 0
        start.wait(60)
        for number, (shared_id, (command, project, by, args)) in enumerate(steps):
            command_id = shared_id or f"w{worker}-{number}"
            line: dict[str, Any] = {"id": command_id, "command": command, "project": project}
            line.update(by=by, args=args)
            for _ in range(100):
                try:
                    result = engine.execute(command, project, by, args, command_id=command_id)
                except ConcurrencyConflict:
                    given_up += 1  # the engine's own retries lost every race: send it again
                    continue
                except ApprovalflowError as error:
                    line["error"] = error.code
                else:
                    line.update(version=result.version, replayed=result.replayed)
                break
            else:
                raise AssertionError(f"{command_id} lost 100 times in a row")
            log.append(line)
        engine.store.close()
        return {"log": log, "given_up": given_up}

    _child(out, work)


def test_processes_on_the_same_projects_lose_nothing_and_serialise(
    store_urls: tuple[str, str], tmp_path: Path
) -> None:
    """Four processes drive the four branches of the same projects at once and race on shared
    ``report_funds`` and ``urge`` commands, and on one command id per project that all four
    send. Every accepted command is stored once under its id (a refused one not at all); the
    shared command id is applied once and the three others get its first result back; funds
    equal the sum of the accepted reports and each report's running total is right (no update
    lost to a stale read); every branch and every project ends approved; histories are
    contiguous and fold to the stored states; and a serial replay of the accepted commands in
    commit order gives exactly the same events and states."""
    url, setup_url = store_urls
    projects = [f"C{n}" for n in range(PROJECTS)]
    setup_engine = _engine(open_store(setup_url, create=True))
    with structlog.testing.capture_logs():
        setup = {p: _to_approval(setup_engine, p, DEPARTMENTS) for p in projects}
    setup_engine.store.close()

    outs = [tmp_path / f"worker{w}.json" for w in range(len(DEPARTMENTS))]
    _run_processes(_drive_branches, [(url, w, projects, outs[w]) for w in range(len(outs))])
    logs = [line for result in _results(outs) for line in result["log"]]

    store = open_store(url)
    try:
        history = _check_histories(store)
        # The command id all four sent: applied once, the first result given to the others.
        for project in projects:
            sent = [line for line in logs if line["id"] == f"{project}-shared"]
            assert len(sent) == len(DEPARTMENTS)
            assert sorted(line["replayed"] for line in sent) == [False] + [True] * 3
            assert len({line["version"] for line in sent}) == 1
        applied = [line for line in logs if "error" not in line and not line["replayed"]]
        # Every accepted command is stored under its id; a refused one left no trace.
        for line in logs:
            record = store.command(line["id"])
            if "error" in line:
                assert record is None, line
            else:
                assert record is not None and record.last_version == line["version"], line
        # Funds: the sum of the accepted reports, and each report saw every earlier one.
        for project in projects:
            reported = [
                line["args"]["amount"]
                for line in applied
                if line["project"] == project and line["command"] == "report_funds"
            ]
            assert len(reported) == 3 * len(DEPARTMENTS) + 1
            state = store.load(project)
            assert state.funds == sum(reported)
            running = 0
            for event in history[project]:
                if event.type == "funds_reported":
                    running += event.payload["amount"]
                    assert event.payload["total"] == running
            assert state.stage == "approved"
            assert {d: b.state for d, b in state.branches.items()} == dict.fromkeys(
                DEPARTMENTS, "approved"
            )
        # Serial replay, one command at a time in commit order, on a fresh MemoryStore.
        commands = [
            (f"{p}-setup-{n}", command, p, by, args)
            for p, steps in setup.items()
            for n, (command, _, by, args) in enumerate(steps)
        ]
        commands += [
            (line["id"], line["command"], line["project"], line["by"], line["args"])
            for line in applied
        ]
        records = {command_id: store.command(command_id) for command_id, *_ in commands}
        commands.sort(key=lambda c: (projects.index(c[2]), records[c[0]].first_version))
        serial = _engine("memory://")
        with structlog.testing.capture_logs():
            for command_id, command, project, by, args in commands:
                result = serial.execute(command, project, by, args, command_id=command_id)
                assert result.version == records[command_id].last_version, command_id
        for project in projects:
            assert serial.history(project) == history[project]
            assert serial.project(project) == store.load(project)
    finally:
        store.close()


# -- many workers, the same due timers --------------------------------------------------------


class _Channel:
    """A notification channel that keeps every notice it delivers, and may run ``on_first``
    when it is handed the first one (to make something happen at that precise moment)."""

    def __init__(self, on_first: Callable[[], None] | None = None) -> None:
        self.notices: list[Notice] = []
        self._on_first = on_first

    @hookimpl
    def approvalflow_notify(self, notice: Notice) -> None:
        self.notices.append(notice)
        if self._on_first is not None:
            on_first, self._on_first = self._on_first, None
            on_first()


def _fire_due(url: str, now: str, out: Path, start: Any) -> None:
    def work() -> dict[str, Any]:
        channel = _Channel()
        engine = _engine(open_store(url), plugins=[channel])
        start.wait(60)
        # A small limit, so that the workers' claims interleave all along.
        fired = engine.run_due(datetime.fromisoformat(now), limit=5)
        engine.store.close()
        return {
            "fired": [[r.project, r.command, len(r.events)] for r in fired],
            "delivered": [
                [n.id, n.kind, n.project, n.fields.get("department")] for n in channel.notices
            ],
        }

    _child(out, work)


def test_workers_firing_the_same_due_timers_fire_each_once(
    store_urls: tuple[str, str], tmp_path: Path
) -> None:
    """Four worker processes run ``run_due`` at once over ``TIMER_PROJECTS`` projects whose two
    deficient branches (zj, sthj) are all past their time limit, supply reminder and supply
    deadline: each branch's overdue, reminder and revocation happen exactly once each, in time
    order; every timer event was reported by exactly one worker; no notice is delivered
    twice, each delivered one matches one timer event, none is left in the outbox; no timer is
    left; every history is intact."""
    url, setup_url = store_urls
    setup = _engine(open_store(setup_url, create=True))
    with structlog.testing.capture_logs():
        for project in (f"T{n:03d}" for n in range(TIMER_PROJECTS)):
            _to_approval(setup, project, TIMER_BRANCHES)
            for dept in TIMER_BRANCHES:
                setup.execute(
                    "accept",
                    project,
                    f"o_{dept}",
                    {"deficient": ["site_photos"]},
                    command_id=f"{project}-accept-{dept}",
                )
    now = AT + timedelta(days=60)  # past every deadline set at AT (20 working days at most)
    # The setup has no channel: its own notices wait in the outbox for one (D85).
    setup_notices = {
        entry.notice.id
        for entry in setup.store.pending_notices(now + timedelta(days=3650), limit=100_000)
    }
    setup.store.close()
    outs = [tmp_path / f"timer-worker{w}.json" for w in range(TIMER_WORKERS)]
    _run_processes(_fire_due, [(url, now.isoformat(), out) for out in outs])
    results = _results(outs)

    store = open_store(url)
    try:
        history = _check_histories(store)
        assert len(history) == TIMER_PROJECTS
        kinds: dict[str, Counter[tuple[str, str]]] = defaultdict(Counter)
        timer_events = 0
        for project, events in history.items():
            for event in events:
                if event.command_id is None:  # written by a timer
                    timer_events += 1
                    kind = event.type
                    if kind == "branch_changed":
                        assert event.payload["to"] == "revoked"
                        kind = "revoked"
                    kinds[kind][(project, event.payload["department"])] += 1
        every_branch = {(p, d) for p in history for d in TIMER_BRANCHES}
        assert set(kinds["revoked"]) == every_branch
        assert set(kinds["revoked"].values()) == {1}
        assert set(kinds) <= {"revoked", "branch_reminded", "branch_overdue"}
        # A project's deadlines fire in time order whichever worker claimed which, so none is
        # overtaken and lost.
        assert set(kinds["branch_reminded"]) == every_branch
        assert set(kinds["branch_reminded"].values()) == {1}
        assert set(kinds["branch_overdue"]) == every_branch
        assert set(kinds["branch_overdue"].values()) == {1}
        assert sum(n for result in results for _, _, n in result["fired"]) == timer_events
        delivered = [tuple(n) for result in results for n in result["delivered"]]
        assert len({notice_id for notice_id, *_ in delivered}) == len(delivered)
        notice_kinds = {"revoked": "revoked", "branch_reminded": "reminder"}
        notice_kinds["branch_overdue"] = "overdue"
        expected = Counter(
            {
                (notice_kinds[kind], *key): n
                for kind, found in kinds.items()
                for key, n in found.items()
            }
        )
        assert Counter((kind, project, dept) for _, kind, project, dept in delivered) == expected
        left = store.pending_notices(now + timedelta(days=3650), limit=100_000)
        assert {entry.notice.id for entry in left} == setup_notices
        assert all(store.timers(project) == [] for project in history)
    finally:
        store.close()


# -- engine bugs several workers meet, reproduced in one process ------------------------------


def _approval_engine(path: Path, *projects: tuple[str, Sequence[str], dict[str, Any]]) -> Engine:
    """An engine on the SQLite file ``path`` with projects in approval (at AT): for each
    ``(project, departments, deficient)``, every department accepts, with the deficient
    materials ``deficient`` names for it."""
    engine = _engine(SQLiteStore(path))
    with structlog.testing.capture_logs():
        for project, departments, deficient in projects:
            _to_approval(engine, project, departments)
            for dept in departments:
                args = {"deficient": deficient[dept]} if dept in deficient else {}
                engine.execute("accept", project, f"o_{dept}", args, command_id=f"{project}-{dept}")
    return engine


def test_a_timer_moved_after_a_worker_claimed_it_still_fires(tmp_path: Path) -> None:
    """A worker claims a batch of due timers; before it reaches P1's zj time limit, the officer
    returns the branch and the applicant supplies the correction (after the deadline day: the
    branch resumes with 0 working days, due at the end of the day), which moves that timer. The
    worker then finds its claimed timer stale and must leave the moved one alone: the new
    deadline must still fire (the overdue notice at the end of the day)."""
    setup = _approval_engine(tmp_path / "p.db", ("P1", ("fgw", "zj"), {}))
    zj_due = setup.project("P1").branches["zj"].due
    assert setup.project("P1").branches["fgw"].due < zj_due
    setup.store.close()
    now = zj_due + timedelta(hours=9)  # the morning after zj's deadline
    # The user's engine leaves deadlines to workers (catch_up=False), as a host whose commands
    # must not fire timers would: otherwise its return would fire zj's passed limit first.
    user = _engine(SQLiteStore(tmp_path / "p.db"), at=now, catch_up=False)

    def officer_returns_and_applicant_supplies() -> None:
        user.execute("return", "P1", "o_zj", {"corrections": ["site_photos"]})
        user.execute("supply", "P1", "fuyuan", {"materials": ["site_photos"]})

    # The worker's first firing (fgw's overdue notice) is when the officer and applicant act.
    worker = _engine(
        SQLiteStore(tmp_path / "p.db"), [_Channel(officer_returns_and_applicant_supplies)]
    )
    with structlog.testing.capture_logs():
        worker.run_due(now)
        moved = user.deadlines("P1")["P1.approval.zj"].at
        assert moved > now
        assert [(t.kind, t.branch, t.due) for t in user.store.timers("P1")] == [
            ("branch_limit", "zj", moved)
        ]
        later = worker.run_due(moved + timedelta(hours=1))
    assert [e.type for r in later for e in r.events] == ["branch_overdue"]


def test_a_second_worker_does_not_overtake_a_projects_earlier_deadline(tmp_path: Path) -> None:
    """Worker A claims the two earliest due timers (P0's fgw time limit, P1's zj time limit).
    While A delivers P0's overdue notice, worker B runs ``run_due`` and fires P1's later
    timers (supply reminder, supply deadline: revocation). P1's zj branch was past its time
    limit long before it was revoked, so, as with one worker, its history must hold the overdue
    event first, then the reminder, then the revocation, stamped in time order."""
    _approval_engine(
        tmp_path / "p.db",
        ("P0", ("fgw",), {}),
        ("P1", ("zj",), {"zj": ["site_photos"]}),
    ).store.close()
    now = AT + timedelta(days=60)
    worker_b = _engine(SQLiteStore(tmp_path / "p.db"))
    worker_a = _engine(SQLiteStore(tmp_path / "p.db"), [_Channel(lambda: worker_b.run_due(now))])
    with structlog.testing.capture_logs():
        worker_a.run_due(now, limit=2)
    fired = [e for e in worker_a.history("P1") if e.command_id is None]
    assert [e.type for e in fired] == ["branch_overdue", "branch_reminded", "branch_changed"]
    assert [e.at for e in fired] == sorted(e.at for e in fired)


class TestAStaleCachedState:
    """Each command starts from the state its store object last knew, without asking the
    database whether another writer moved it since (D306). Another process's commit in between
    is found by the commit's guard, or by the refusal's own check, and the command is decided
    again on the project as it is: nothing is written, and nothing refused, from a stale state.
    Two engines, each with its own store object (its own cache), share one database."""

    def _engines(self, url: str) -> tuple[Engine, Engine]:
        first = _engine(open_store(url, create=True))
        second = _engine(open_store(url))
        fields = {**PROJECT_FIELDS, "name": "缓存测试"}
        first.execute("create", "P1", "guo", fields)
        first.execute("negotiate", "P1", "guo", {})
        return first, second

    def test_a_command_its_stale_state_would_refuse_runs_on_the_current_one(
        self, store_urls: tuple[str, str]
    ) -> None:
        """The first engine knows P1 before pre-review; the second submits it; an opinion,
        refused in the stage the first engine knew, is taken in the stage P1 is in."""
        first, second = self._engines(store_urls[0])
        known = first.project("P1").stage
        second.execute("submit_pre_review", "P1", "fuyuan", {"materials": ["business_license"]})
        result = first.execute("opinion", "P1", "r_gxj", {"verdict": "pass"})
        assert known != result.state == second.project("P1").stage == "pre_review.reviewing"
        history = first.history("P1")
        assert [e.type for e in history].index("materials_submitted") < len(history) - 1
        assert history[-1].by == "r_gxj" and history[-1].version == result.version
        assert [e.version for e in history] == list(range(1, len(history) + 1))
        assert verify_chain(first.store).ok

    def test_a_command_its_stale_state_would_take_is_refused_as_the_current_one_says(
        self, store_urls: tuple[str, str]
    ) -> None:
        """The first engine knows P1 in pre-review; the second withdraws it; the first's
        opinion, which its stale state would take, is refused because P1 is withdrawn, and
        writes nothing."""
        first, second = self._engines(store_urls[0])
        first.execute("submit_pre_review", "P1", "fuyuan", {"materials": ["business_license"]})
        second.execute("withdraw", "P1", "fuyuan", {"reason": "项目调整"})
        version = second.project("P1").version
        with pytest.raises(ApprovalflowError) as refused:
            first.execute("opinion", "P1", "r_gxj", {"verdict": "pass"})
        assert refused.value.code == "InvalidTransition"
        assert "withdrawn" in refused.value.message
        assert first.project("P1").version == version
        assert first.project("P1").stage == "withdrawn"
        assert first.history("P1")[-1].by == "fuyuan"

    def test_a_command_on_a_project_it_knows_reads_nothing_before_its_commit(
        self, store_urls: tuple[str, str], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The hot path: with P1 as the store object last wrote it, the command's only
        reading of the project is the store's own state (``load`` is not called)."""
        first, _ = self._engines(store_urls[0])
        fresh_loads: list[str] = []
        load = first.store.load

        def counted(project: str) -> ProjectState | None:
            fresh_loads.append(project)
            return load(project)

        monkeypatch.setattr(first.store, "load", counted)
        first.execute("submit_pre_review", "P1", "fuyuan", {"materials": ["business_license"]})
        assert fresh_loads == []
        monkeypatch.undo()
        assert first.project("P1").stage == "pre_review.reviewing"

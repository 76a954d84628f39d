"""A soak run: many commands over many projects, by several processes, with timers firing.

``python benchmarks/soak.py [--quick] [--store sqlite|postgres|both] [--json]``

Writer processes drive projects through their lives (``Engine.execute``, each command with its
own ``command_id``) on a simulated clock that moves forward with the commands, while worker
processes do what ``approvalflow worker`` does: ``run_due`` and ``deliver_notices`` in a loop,
at the simulated time every writer has reached. So deadlines pass during the run: pre-review
rounds with silent units go overdue, deficient (容缺) branches left unsupplied are reminded and
then revoked, slow departments go overdue. Projects are of six kinds (``KINDS``): leads that go
nowhere, stalled pre-reviews, full lives to production, revoked branches, terminated projects
and slow departments; a few commands are refused on purpose (every kind of refusal). Every
command's outcome (accepted, or refused with a given code) is known in advance; a different one
is reported as unexpected.

The parent process samples the resident set size (RSS) of every process at intervals and
reports it at 10%, 50% and 100% of the commands. When the writers are done, the workers fire
everything still due (the clock jumps past every deadline) and deliver the outbox; then the
parent checks, on the store itself:

- every project's events run 1, 2, 3... up to its recorded version and fold to its stored
  state; each project ends in the stage its kind leads to; the audit chain verifies;
- every accepted command is stored under its id, no refused one is, no outcome was unexpected;
- each timer fired once: no timer event twice for one project and branch (round), the ones that
  must fire did, in time order per project, and no timer is left; every timer event's notice
  was delivered and the outbox is empty (delivery is at-least-once: workers claim notices with a
  lease, and the figures say how many notices were still delivered twice, which happens when a
  lease runs out mid-delivery; the simulated clock runs one to two days a second, so the default
  five-minute lease is a few real milliseconds here: ``--url-options lease=86400`` gives the
  workers a lease that outlasts a delivery. A channel drops a repeat by the notice's stable id);
- the RSS growth of each writer and worker over the second half of the run is below
  ``--rss-bound`` (default 10% of its RSS at 50%; see ``RSS_BOUND`` for why).

Sizes: the full run is 10,000 projects and at least 100,000 commands (``--projects``,
``--commands``: the kinds' own commands are about 12 per project; funds reports of the
full-life projects fill up to ``--commands``); ``--quick`` is 1,000 projects (about 12,000
commands). SQLite: one writer and ``--sqlite-workers`` workers on one file (WAL,
``--synchronous``, default FULL). PostgreSQL (``--postgres URL``, default
``$APPROVALFLOW_TEST_POSTGRES``): ``--pg-writers`` writers and ``--pg-workers`` (4) workers in a
fresh schema ``soak_<random>``, dropped afterwards. ``--json`` prints one JSON object (progress
on stderr); the exit status is 0 only if every check held.
"""

from __future__ import annotations

import argparse
import contextlib
import heapq
import json
import logging
import multiprocessing
import os
import shutil
import sys
import tempfile
import time
import traceback
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

from approvalflow.calendar import SHANGHAI
from approvalflow.plugins.hookspecs import hookimpl

DEFAULT_POSTGRES = os.environ.get(
    "APPROVALFLOW_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test"
)

# The RSS bound. Once a soak run is in its steady state its processes hold nothing that grows
# with the work done: the engine keeps no per-command state, SQLite's page cache and psycopg's
# prepared statements are bounded, the calendar's years are built (the simulated clock stays in
# 2026 until the final jump, after the last sample) and the allocator has reached its working
# set. A leak grows with the commands: 1 KiB kept per command adds ~50 MiB over the second half
# of the full run (~60,000 commands) and ~6 MiB in the quick run, against processes of 35-60
# MiB. 10% of the RSS at half-time lets allocator noise pass and fails such a leak.
# The stores' state caches (a few KiB per project state, LRU) are bounded too, but only full
# once a process has touched ``cache_size`` projects (256 by default): until then they grow like
# a leak, so with a cache as large as the run's projects (``--url-options cache_size=10000``)
# the check fails.
RSS_BOUND = 0.10

# How long a run may go without progress (no command finished while writing; no worker round
# finished while firing what is left) before it is given up as hung; and how long a child waits
# for the others to connect. Both wait on the machine's load, never on the run's own speed.
STALL_TIMEOUT = 120.0
START_WAIT = 600.0

SIZES = {
    "full": {"projects": 10_000, "commands": 100_000},
    "quick": {"projects": 1_000, "commands": 10_000},
}

# -- the workload ---------------------------------------------------------------------------


START = datetime(2026, 3, 2, 9, 0, tzinfo=SHANGHAI)
# Project starts are spread evenly over SPREAD; a project's last command is at most 20 days
# after its start, its last deadline 20 working days after its application (day 5). Revocations
# begin about 30 days in, so most of the run (by commands) is in its steady state.
SPREAD = timedelta(days=120)
END = START + SPREAD + timedelta(days=100)  # past every deadline: the final firing happens here
SKEW_US = 3600 * 1_000_000  # how far (simulated) one writer may run ahead of the slowest
MEMBER_UNITS = ("gxj", "fgw", "zrzy", "sthj")
APPROVERS = ("fgw", "zrzy", "zj", "sthj", "yj")

LEAD, STALL, FULL, REVOKED, TERMINATED, SLOW = (
    "lead",
    "stall",
    "full",
    "revoked",
    "terminated",
    "slow",
)
# Project n is of kind KINDS[n % 20]: 9 leads, 4 stalled pre-reviews, 3 full lives, 2 revoked
# branches, 1 terminated, 1 slow department in every 20 projects.
KINDS = (
    LEAD, STALL, FULL, LEAD, REVOKED, LEAD, STALL, FULL, LEAD, TERMINATED,
    LEAD, STALL, FULL, LEAD, REVOKED, LEAD, STALL, SLOW, LEAD, LEAD,
)  # fmt: skip
# The stage each kind's projects end in (FULL: by variant, see _full).
FINAL_STAGE = {
    LEAD: "negotiating",
    STALL: "pre_review.reviewing",
    REVOKED: "approval",
    TERMINATED: "terminated",
    SLOW: "approved",
}


class Step(NamedTuple):
    at: timedelta  # after the project's start
    command: str
    by: str
    args: dict[str, Any]
    expected: str  # "ok" or the error code it must be refused with


def _fields(n: int) -> dict[str, Any]:
    return {
        "name": f"耐久测试项目{n}",
        "investment": f"{1 + n % 9}亿",
        "industry": "light_alloy",
        "applicant": "fuyuan",
        "leader": "huang",
        "department": "gxj",
        "team": f"team_{n % 20:02d}",
    }


def _m(minutes: float) -> timedelta:
    return timedelta(minutes=minutes)


def _d(days: float) -> timedelta:
    return timedelta(days=days)


def _start_of_life(n: int, *, supplement: bool = False) -> list[Step]:
    """create .. submit_pre_review, then the opinions of a round that passes (after a round that
    asks for site photos, with ``supplement``)."""
    steps = [
        Step(_m(0), "create", "guo", _fields(n), "ok"),
        Step(_m(10), "negotiate", "guo", {}, "ok"),
        Step(_d(1), "submit_pre_review", "guo", {"materials": ["business_license"]}, "ok"),
    ]
    at = _d(1) + _m(60)
    if supplement:
        steps.append(
            Step(
                at, "opinion", "r_gxj", {"verdict": "supplement", "missing": ["site_photos"]}, "ok"
            )
        )
        for k, unit in enumerate(MEMBER_UNITS[1:]):
            steps.append(
                Step(at + _m(20 * (k + 1)), "opinion", f"r_{unit}", {"verdict": "pass"}, "ok")
            )
        steps.append(Step(at + _m(300), "supply", "fuyuan", {"materials": ["site_photos"]}, "ok"))
        at += _d(1)
    for k, unit in enumerate(MEMBER_UNITS):
        steps.append(Step(at + _m(20 * k), "opinion", f"r_{unit}", {"verdict": "pass"}, "ok"))
    return steps


def _meeting(at: timedelta, *, twice: bool = False) -> list[Step]:
    steps = [Step(at, "convene", "chair", {"present": ["chair", "m1", "m2", "m3"]}, "ok")]
    for k, member in enumerate(("chair", "m1", "m2")):
        steps.append(Step(at + _m(10 * (k + 1)), "vote", member, {"vote": "approve"}, "ok"))
    if twice:
        steps.append(Step(at + _m(45), "vote", "m1", {"vote": "reject"}, "AlreadyVoted"))
    steps.append(Step(at + _m(60), "close_meeting", "chair", {}, "ok"))
    return steps


def _to_approval(n: int, *, supplement: bool = False) -> list[Step]:
    """From creation to ``apply`` (the project waits in ``approval`` from START + n + 5 days)."""
    return [
        *_start_of_life(n, supplement=supplement),
        *_meeting(_d(3)),
        Step(_d(4), "sign", "guo", {"agreed_investment": f"{1 + n % 9}亿"}, "ok"),
        Step(_d(4) + _m(60), "report_funds", "guo", {"amount": 1_000_000 + n}, "ok"),
        Step(_d(5), "apply", "fuyuan", {}, "ok"),
    ]


def _accepts(deficient: dict[str, list[str]]) -> list[Step]:
    return [
        Step(
            _d(5) + _m(120 + 10 * k),
            "accept",
            f"o_{dept}",
            {"deficient": deficient[dept]} if dept in deficient else {},
            "ok",
        )
        for k, dept in enumerate(APPROVERS)
    ]


def _full(n: int, padding: int) -> list[Step]:
    """A full life: supplement round for some, deficient zj and yj supplied in time for some,
    an urge, funds reports (``padding`` more in construction), production and the target for
    some. Refused on purpose: an approval before acceptance, a report of zero."""
    variant = n // 20
    deficient = {"zj": ["site_photos"], "yj": ["org_chart"]} if variant % 2 == 0 else {}
    steps = _to_approval(n, supplement=variant % 3 == 0)
    if variant % 4 == 1:
        steps.append(Step(_d(5) + _m(60), "approve", "o_fgw", {}, "InvalidTransition"))
    steps += _accepts(deficient)
    steps.append(Step(_d(5) + _m(240), "urge", "huang", {"department": "zj"}, "ok"))
    steps += [
        Step(_d(6) + _m(10 * k), "approve", f"o_{dept}", {}, "ok")
        for k, dept in enumerate(APPROVERS)
    ]
    if deficient:
        steps.append(
            Step(_d(8), "supply", "fuyuan", {"materials": ["site_photos", "org_chart"]}, "ok")
        )
    steps.append(Step(_d(10), "start_construction", "guo", {}, "ok"))
    steps.append(Step(_d(10) + _m(60), "report_funds", "guo", {"amount": "2000万"}, "ok"))
    steps.append(Step(_d(10) + _m(90), "report_funds", "guo", {"amount": 0}, "InvalidCommand"))
    # Padding: funds reports spread over the construction days.
    for k in range(padding):
        at = _d(10) + _m(120) + (_d(7) * (k + 1)) / (padding + 1)
        steps.append(Step(at, "report_funds", "guo", {"amount": 10_000 + k}, "ok"))
    if variant % 3 != 2:
        steps.append(Step(_d(18), "start_production", "fuyuan", {}, "ok"))
        if variant % 3 == 0:
            steps.append(Step(_d(20), "reach_target", "guo", {}, "ok"))
    return steps


def full_stage(n: int) -> str:
    variant = n // 20
    return ("effective", "production", "construction")[variant % 3]


def script(n: int, padding: int = 0) -> list[Step]:
    """Project ``n``'s commands, in time order."""
    kind = KINDS[n % len(KINDS)]
    if kind == LEAD:
        return [
            Step(_m(0), "create", "guo", _fields(n), "ok"),
            Step(_m(10), "negotiate", "guo", {}, "ok"),
            Step(_m(20), "negotiate", "o_fgw", {}, "NotAuthorized"),
        ]
    if kind == STALL:
        # Two member units never answer: the round's deadline (3 wd) fires once, overdue.
        return [
            Step(_m(0), "create", "guo", _fields(n), "ok"),
            Step(_m(10), "negotiate", "guo", {}, "ok"),
            Step(_d(1), "submit_pre_review", "guo", {"materials": []}, "ok"),
            Step(_d(1) + _m(60), "opinion", "r_gxj", {"verdict": "pass"}, "ok"),
            Step(_d(1) + _m(80), "opinion", "r_fgw", {"verdict": "pass"}, "ok"),
            Step(_d(1) + _m(180), "urge", "huang", {"department": "zrzy"}, "ok"),
        ]
    if kind == FULL:
        return _full(n, padding)
    if kind == REVOKED:
        # zj approves with site photos missing (conditional), sthj accepts them missing and
        # never decides; nothing is ever supplied: sthj goes overdue (10 wd), both are reminded
        # (17 wd) and revoked (20 wd), each once.
        steps = _to_approval(n)
        steps.append(
            Step(
                _d(5) + _m(100),
                "accept",
                "o_sthj",
                {"deficient": ["eia_report"]},
                "KeyMaterialMissing",
            )
        )
        steps += _accepts({"zj": ["site_photos"], "sthj": ["site_photos"]})
        steps += [
            Step(_d(6) + _m(10 * k), "approve", f"o_{dept}", {}, "ok")
            for k, dept in enumerate(("fgw", "zrzy", "zj", "yj"))
        ]
        return steps
    if kind == TERMINATED:
        return [
            Step(_m(0), "create", "guo", _fields(n), "ok"),
            Step(_m(1), "create", "guo", _fields(n), "DuplicateProject"),
            *_start_of_life(n)[1:],
            *_meeting(_d(3), twice=True),
            Step(_d(4), "terminate", "huang", {"reason": "投资方退出"}, "ok"),
            Step(_d(4) + _m(60), "report_funds", "guo", {"amount": 1}, "InvalidTransition"),
        ]
    # SLOW: fgw decides 15 days after the application, long after its 5 wd limit. Whether its
    # overdue notice is sent depends on whether a worker fired the limit before the approval
    # arrived (the approval cancels it): both are right; the figures count each.
    steps = _to_approval(n)
    steps += _accepts({})
    steps += [
        Step(_d(6) + _m(10 * k), "approve", f"o_{dept}", {}, "ok")
        for k, dept in enumerate(APPROVERS[1:])
    ]
    steps.append(Step(_d(20), "approve", "o_fgw", {}, "ok"))
    return steps


def project_id(n: int) -> str:
    return f"S{n:06d}"


def command_id(n: int, index: int) -> str:
    return f"{project_id(n)}-{index}"


class Plan(NamedTuple):
    """How many commands, and how the funds-report padding is shared among full lives."""

    projects: int
    natural: int  # the kinds' own commands
    padding_each: int
    padding_extra: int  # the first this many full-life projects get one more
    total: int

    def padding(self, n: int) -> int:
        if KINDS[n % len(KINDS)] != FULL:
            return 0
        rank = _full_rank(n)
        return self.padding_each + (1 if rank < self.padding_extra else 0)


_FULL_SLOTS = [i for i, kind in enumerate(KINDS) if kind == FULL]


def _full_rank(n: int) -> int:
    """Project ``n``'s place among the full-life projects (0, 1, 2...)."""
    return (n // len(KINDS)) * len(_FULL_SLOTS) + _FULL_SLOTS.index(n % len(KINDS))


def plan(projects: int, commands: int) -> Plan:
    natural = sum(len(script(n)) for n in range(projects))
    fulls = sum(1 for n in range(projects) if KINDS[n % len(KINDS)] == FULL)
    missing = max(0, commands - natural)
    if missing and not fulls:
        raise SystemExit(f"--commands {commands}: {projects} projects have no full life to fill")
    each, extra = divmod(missing, fulls) if fulls else (0, 0)
    return Plan(projects, natural, each, extra, natural + missing)


def schedule(p: Plan, writer: int, writers: int) -> Iterator[tuple[datetime, int, int, Step]]:
    """The commands of the projects ``n % writers == writer``, in time order, made lazily (only
    the scripts of projects in flight are held)."""
    step_of_project = SPREAD / max(p.projects, 1)
    heap: list[tuple[datetime, int, int, list[Step]]] = []
    n = writer
    while heap or n < p.projects:
        while n < p.projects and (not heap or START + step_of_project * n <= heap[0][0]):
            steps = script(n, p.padding(n))
            heapq.heappush(heap, (START + step_of_project * n + steps[0].at, n, 0, steps))
            n += writers
        at, project, index, steps = heapq.heappop(heap)
        yield at, project, index, steps[index]
        if index + 1 < len(steps):
            begin = START + step_of_project * project
            heapq.heappush(heap, (begin + steps[index + 1].at, project, index + 1, steps))


# -- processes --------------------------------------------------------------------------------


def _quiet() -> None:
    import structlog

    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )


def actors() -> list[Any]:
    from approvalflow import Actor

    people = [
        Actor("guo", ["recruiter"], name="郭强"),  # serves every team
        Actor("fuyuan", ["applicant"], name="富远铝业"),
        Actor("huang", ["leader"], name="黄副县长"),
        Actor("chair", ["chair", "member"]),
        Actor("m1", ["member"]),
        Actor("m2", ["member"]),
        Actor("m3", ["member"]),
    ]
    people += [Actor(f"r_{unit}", ["reviewer"], department=unit) for unit in MEMBER_UNITS]
    people += [Actor(f"o_{dept}", ["officer"], department=dept) for dept in APPROVERS]
    return people


def _us(moment: datetime) -> int:
    return round(moment.timestamp() * 1_000_000)


def _moment(us: int) -> datetime:
    return datetime.fromtimestamp(us / 1_000_000, tz=SHANGHAI)


def _orphaned(parent: int) -> bool:
    return os.getppid() != parent


class Shared(NamedTuple):
    """What the parent and its children share."""

    clocks: Any  # Array('q'): each writer's simulated time, microseconds since the epoch
    done: Any  # Array('q'): commands each writer has finished
    cycles: Any  # Array('q'): rounds of run_due and deliver_notices each worker has finished
    finished: Any  # Array('b'): 1 once a writer is done
    start: Any  # Barrier: everyone connected, go
    release: Any  # Event: the parent took its last sample, writers may exit
    drain: Any  # Event: workers fire what is left (at END), deliver, exit


def writer_main(
    url: str, p: Plan, writer: int, writers: int, shared: Shared, out: str, parent: int
) -> None:
    """Run this writer's share of the schedule; log each command's outcome to ``out``.log."""
    _quiet()
    from approvalflow import ApprovalflowError, Engine, ManualClock
    from approvalflow.errors import ConcurrencyConflict
    from approvalflow.stores import open_store

    store = None
    result: dict[str, Any] = {"writer": writer}
    try:
        store = open_store(url, create=True)
        clock = ManualClock(START)
        engine = Engine(actors=actors(), store=store, clock=clock, deliver="outbox")
        errors: Counter[str] = Counter()
        unexpected: list[dict[str, Any]] = []
        unexpected_count = 0
        resent = 0
        count = 0
        others = [w for w in range(writers) if w != writer] or [writer]
        shared.start.wait(START_WAIT)
        begin = time.monotonic()
        with open(out + ".log", "w", encoding="utf-8") as log:
            for at, n, index, step in schedule(p, writer, writers):
                clock.set(at)
                now = _us(at)
                shared.clocks[writer] = now  # published before: deadlines set now are later
                # Writers keep within SKEW of each other, as if they shared one real clock: the
                # workers fire at the slowest writer's time.
                while now - min(shared.clocks[w] for w in others) > SKEW_US:
                    time.sleep(0.001)
                    if _orphaned(parent):
                        raise SystemExit("the soak's parent process is gone")
                cid = command_id(n, index)
                outcome = "ok"
                for _ in range(100):
                    try:
                        engine.execute(
                            step.command, project_id(n), step.by, step.args, command_id=cid
                        )
                    except ConcurrencyConflict:
                        resent += 1  # the engine's retries all lost races: send it again
                        continue
                    except ApprovalflowError as error:
                        outcome = error.code
                        errors[error.code] += 1
                    break
                else:
                    outcome = "ConcurrencyConflict"
                    errors[outcome] += 1
                if outcome != step.expected:
                    unexpected_count += 1
                    if len(unexpected) < 20:
                        want = step.expected
                        unexpected.append({"id": cid, "got": outcome, "want": want})
                log.write(f"{cid}\t{outcome}\n")
                count += 1
                shared.done[writer] = count
                if count % 1000 == 0 and _orphaned(parent):
                    raise SystemExit("the soak's parent process is gone")
        result.update(
            commands=count,
            seconds=time.monotonic() - begin,
            errors=dict(errors),
            unexpected=unexpected_count,
            unexpected_first=unexpected,
            resent_after_conflict=resent,
        )
        shared.clocks[writer] = _us(END)
        Path(out).write_text(json.dumps(result), encoding="utf-8")
        shared.finished[writer] = 1
        shared.release.wait(600)  # so the parent can sample this process at 100%
    except BaseException:
        Path(out).write_text(json.dumps({"error": traceback.format_exc()}), encoding="utf-8")
        raise
    finally:
        if store is not None:
            store.close()


class _Channel:
    """A notification channel that writes each delivered notice's id and kind to a file (kept
    out of memory, so the worker's RSS says nothing about how many it delivered)."""

    def __init__(self, path: str) -> None:
        self.file = open(path, "w", encoding="utf-8")  # noqa: SIM115 - closed by the worker
        self.kinds: Counter[str] = Counter()

    @hookimpl
    def approvalflow_notify(self, notice: Any) -> None:
        self.kinds[notice.kind] += 1
        self.file.write(f"{notice.id}\t{notice.kind}\n")


def worker_main(url: str, worker: int, shared: Shared, out: str, parent: int) -> None:
    """``run_due`` and ``deliver_notices`` at the time every writer has reached, until told to
    drain; then everything due by END, and the outbox, until nothing is left."""
    _quiet()
    from approvalflow import Engine, ManualClock
    from approvalflow.stores import open_store

    store = None
    channel = _Channel(out + ".notices")
    try:
        store = open_store(url, create=True)
        engine = Engine(
            actors=actors(),
            store=store,
            clock=ManualClock(START),
            plugins=[channel],
            deliver="outbox",
        )
        fired: Counter[str] = Counter()
        firings = polls = 0

        def once(now: datetime) -> int:
            nonlocal firings
            results = engine.run_due(now, limit=20)
            for result in results:
                if result.events:
                    firings += 1
                    fired[result.command] += 1
            return len(results) + engine.deliver_notices(now, limit=200)

        shared.start.wait(START_WAIT)
        while not shared.drain.is_set():
            now = _moment(min(shared.clocks))
            polls += 1
            if not once(now):
                time.sleep(0.02)
            shared.cycles[worker] += 1
            if _orphaned(parent):
                raise SystemExit("the soak's parent process is gone")
        final = 0
        while once(END):
            final += 1
            shared.cycles[worker] += 1
        result = {
            "worker": worker,
            "firings": firings,
            "fired": dict(fired),
            "delivered": dict(channel.kinds),
            "polls": polls,
            "final_rounds": final,
        }
        Path(out).write_text(json.dumps(result), encoding="utf-8")
    except BaseException:
        Path(out).write_text(json.dumps({"error": traceback.format_exc()}), encoding="utf-8")
        raise
    finally:
        channel.file.close()
        if store is not None:
            store.close()


# -- RSS ------------------------------------------------------------------------------------------


_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def rss_bytes(pid: int) -> int | None:
    """The resident set size of ``pid`` (Linux /proc, else psutil), or ``None``."""
    try:
        with open(f"/proc/{pid}/statm", encoding="ascii") as statm:
            return int(statm.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        pass
    try:
        import psutil

        return int(psutil.Process(pid).memory_info().rss)
    except Exception:
        return None


def rss_report(
    samples: list[tuple[float, dict[str, int]]], names: list[str], bound: float
) -> dict[str, Any]:
    """RSS at 10%, 50% and 100% of the commands (the first sample at or past the mark; 100%:
    the last, taken once every writer was done) per process, in MiB, and the growth over the
    second half as a fraction of the RSS at 50%."""

    def at(mark: float) -> dict[str, int]:
        for progress, values in samples:
            if progress >= mark:
                return values
        return samples[-1][1] if samples else {}

    marks = {"10%": at(0.10), "50%": at(0.50), "100%": samples[-1][1] if samples else {}}
    report: dict[str, Any] = {}
    for name in names:
        row: dict[str, Any] = {
            mark: round(values[name] / 2**20, 1) if name in values else None
            for mark, values in marks.items()
        }
        half, last = marks["50%"].get(name), marks["100%"].get(name)
        row["growth_second_half"] = (last - half) / half if half and last else None
        row["checked"] = not name.startswith("parent")
        row["ok"] = (
            None
            if not row["checked"]
            else (row["growth_second_half"] is not None and row["growth_second_half"] < bound)
        )
        report[name] = row
    return report


# -- one store ----------------------------------------------------------------------------------


def run_store(
    kind: str, url: str, options: argparse.Namespace, p: Plan, say: Any
) -> dict[str, Any]:
    """Spawn the writers and workers on ``url``, sample, wait, check; return the report."""
    writers = 1 if kind == "sqlite" else options.pg_writers
    workers = options.sqlite_workers if kind == "sqlite" else options.pg_workers
    context = multiprocessing.get_context("spawn")
    shared = Shared(
        clocks=context.Array("q", [_us(START)] * writers, lock=False),
        done=context.Array("q", [0] * writers, lock=False),
        cycles=context.Array("q", [0] * workers, lock=False),
        finished=context.Array("b", [0] * writers, lock=False),
        start=context.Barrier(writers + workers + 1),
        release=context.Event(),
        drain=context.Event(),
    )
    work = Path(tempfile.mkdtemp(prefix=f"soak-{kind}-", dir=options.dir))
    parent = os.getpid()
    processes: dict[str, Any] = {}
    outs: dict[str, str] = {}
    for w in range(writers):
        outs[f"writer-{w}"] = str(work / f"writer-{w}.json")
        processes[f"writer-{w}"] = context.Process(
            target=writer_main,
            args=(url, p, w, writers, shared, outs[f"writer-{w}"], parent),
            daemon=True,
        )
    for k in range(workers):
        outs[f"worker-{k}"] = str(work / f"worker-{k}.json")
        processes[f"worker-{k}"] = context.Process(
            target=worker_main, args=(url, k, shared, outs[f"worker-{k}"], parent), daemon=True
        )
    names = [*processes, "parent"]
    samples: list[tuple[float, dict[str, int]]] = []
    report: dict[str, Any] = {
        "store": kind,
        "writers": writers,
        "workers": workers,
        "projects": p.projects,
        "commands_planned": p.total,
    }
    deadline = time.monotonic() + options.timeout
    try:
        for process in processes.values():
            process.start()
        while shared.start.n_waiting < len(processes):  # all connected, or one failed
            dead = [name for name, proc in processes.items() if not proc.is_alive()]
            if dead:
                raise RuntimeError(f"{', '.join(dead)} failed: {_child_error(outs, dead)}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"the processes were not ready after {options.timeout} s")
            time.sleep(0.05)
        shared.start.wait(60)
        begin = time.monotonic()
        next_say = begin + 10
        # A run is given up when it stops moving (``--stall-timeout``), not when it is slow: on
        # a machine shared with other work the same run takes several times as long (D298).
        stall = ProgressWatch(options.stall_timeout)

        def sample() -> None:
            progress = sum(shared.done) / p.total
            values = {name: rss_bytes(proc.pid) for name, proc in processes.items()}
            values["parent"] = rss_bytes(parent)
            samples.append((progress, {k: v for k, v in values.items() if v is not None}))

        while not all(shared.finished):
            sample()
            dead = [
                name
                for name, proc in processes.items()
                if not proc.is_alive()
                and not (name.startswith("writer") and shared.finished[int(name[7:])])
            ]
            if dead:
                raise RuntimeError(f"{', '.join(dead)} stopped early: {_child_error(outs, dead)}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"the writers were not done after {options.timeout} s")
            if stall.still(sum(shared.done)):
                raise TimeoutError(
                    f"no command finished in {options.stall_timeout} s "
                    f"({sum(shared.done):,} of {p.total:,} done)"
                )
            if time.monotonic() > next_say:
                say(f"  {kind}: {sum(shared.done):,} of {p.total:,} commands")
                next_say += 10
            time.sleep(options.sample_interval)
        writing = time.monotonic() - begin
        sample()  # 100%: every writer done, every process still alive
        shared.release.set()
        shared.drain.set()
        stall = ProgressWatch(options.stall_timeout)
        while running := [name for name, proc in processes.items() if proc.is_alive()]:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{', '.join(running)} still running after {options.timeout} s")
            if stall.still(sum(shared.cycles) + len(processes) - len(running)):
                raise TimeoutError(
                    f"{', '.join(running)} made no progress in {options.stall_timeout} s"
                )
            if time.monotonic() > next_say:
                say(f"  {kind}: final firing, {', '.join(running)} still running")
                next_say = time.monotonic() + 10
            time.sleep(0.05)
        drained = time.monotonic() - begin - writing
        failed = [name for name, proc in processes.items() if proc.exitcode != 0]
        if failed:
            raise RuntimeError(f"{', '.join(failed)} failed: {_child_error(outs, failed)}")
        results = {
            name: json.loads(Path(out).read_text(encoding="utf-8")) for name, out in outs.items()
        }
        report["seconds_writing"] = round(writing, 2)
        report["seconds_final_firing"] = round(drained, 2)
        say(f"  {kind}: writers done in {writing:.1f} s; checking")
        checked = time.monotonic()
        report.update(_summarise(results))
        report["commands_per_s"] = round(report["commands"] / writing, 1)
        report["rss_bound"] = options.rss_bound
        report["rss_mib"] = rss_report(samples, names, options.rss_bound)
        report["rss_samples"] = len(samples)
        report["checks"] = check_store(url, p, results, outs, report, say=say)
        report["seconds_checking"] = round(time.monotonic() - checked, 2)
    except Exception as error:  # reported as a failed run, with what happened
        report["error"] = f"{type(error).__name__}: {error}"
        report.setdefault("checks", {})
    finally:
        for process in processes.values():
            if process.pid is not None and process.is_alive():
                process.kill()
            if process.pid is not None:
                process.join(30)
        if not options.keep:
            shutil.rmtree(work, ignore_errors=True)
    checks = report["checks"]
    report["ok"] = "error" not in report and bool(checks) and all(c["ok"] for c in checks.values())
    return report


class ProgressWatch:
    """Whether a count stopped moving: ``still(count)`` is true once it has not changed for
    ``seconds``."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.count: int | None = None
        self.since = time.monotonic()

    def still(self, count: int) -> bool:
        now = time.monotonic()
        if count != self.count:
            self.count, self.since = count, now
        return now - self.since > self.seconds


def _child_error(outs: dict[str, str], names: list[str]) -> str:
    for name in names:
        with contextlib.suppress(OSError, ValueError):
            result = json.loads(Path(outs[name]).read_text(encoding="utf-8"))
            if "error" in result:
                return f"{name}: {result['error'][-2000:]}"
    return "no traceback"


def _summarise(results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    writers = [r for name, r in results.items() if name.startswith("writer")]
    workers = [r for name, r in results.items() if name.startswith("worker")]
    errors: Counter[str] = Counter()
    for r in writers:
        errors.update(r["errors"])
    delivered: Counter[str] = Counter()
    fired: Counter[str] = Counter()
    for r in workers:
        delivered.update(r["delivered"])
        fired.update(r["fired"])
    return {
        "commands": sum(r["commands"] for r in writers),
        "errors_by_code": dict(sorted(errors.items())),
        "unexpected_outcomes": sum(r["unexpected"] for r in writers),
        "unexpected_first": [u for r in writers for u in r["unexpected_first"]][:20],
        "resent_after_conflict": sum(r["resent_after_conflict"] for r in writers),
        "timers_fired": sum(r["firings"] for r in workers),
        "timers_fired_by_kind": dict(sorted(fired.items())),
        "notices_delivered": sum(delivered.values()),
        "notices_delivered_by_kind": dict(sorted(delivered.items())),
        "writer_seconds": [round(r["seconds"], 2) for r in writers],
    }


# -- the checks ---------------------------------------------------------------------------------


def _timer_key(event: Any) -> tuple[str, str] | None:
    """What a timer event is the firing of, within its project: (what, branch or round)."""
    payload = event.payload
    if event.type == "branch_changed":
        if payload.get("to") != "revoked":
            return (f"branch_changed:{payload.get('to')}", payload.get("department", ""))
        return ("revoked", payload["department"])
    if event.type == "pre_review_overdue":
        return ("pre_review_overdue", str(payload.get("round")))
    return (event.type, str(payload.get("department", payload.get("unit", ""))))


# The timer events each kind's projects must end with, exactly once each.
MUST_FIRE = {
    STALL: {("pre_review_overdue", "1")},
    REVOKED: {
        ("branch_overdue", "sthj"),
        ("branch_reminded", "sthj"),
        ("branch_reminded", "zj"),
        ("revoked", "sthj"),
        ("revoked", "zj"),
    },
}
# Timer events a kind's projects may also have (SLOW: fgw's overdue, unless overtaken).
MAY_FIRE = {SLOW: {("branch_overdue", "fgw")}}
NOTICE_OF = {
    "pre_review_overdue": "overdue",
    "branch_overdue": "overdue",
    "branch_reminded": "reminder",
    "revoked": "revoked",
}


def check_store(
    url: str,
    p: Plan,
    results: dict[str, Any],
    outs: dict[str, str],
    report: dict[str, Any],
    say: Any = None,
) -> dict[str, dict[str, Any]]:
    """Every check on the store after the run, as ``{name: {ok, detail}}``; ``say`` hears which
    part is being checked (a sign of life for whoever watches a long check)."""
    say = say or (lambda _text: None)
    from approvalflow.project import ProjectState
    from approvalflow.stores import open_store
    from approvalflow.stores.audit import verify_chain

    checks: dict[str, dict[str, Any]] = {}

    def check(name: str, ok: bool, detail: Any) -> None:
        checks[name] = {"ok": bool(ok), "detail": detail}

    store = open_store(url)
    try:
        say("  checking the histories and timers")
        versions = store.project_versions()
        ids = [project_id(n) for n in range(p.projects)]
        folds_bad: list[str] = []
        stage_bad: list[str] = []
        twice: list[str] = []
        missing: list[str] = []
        unexpected_timer: list[str] = []
        out_of_order: list[str] = []
        timer_events = 0
        overtaken = 0
        must_notice: dict[str, str] = {}
        events_total = 0
        for n, pid in enumerate(ids):
            kind = KINDS[n % len(KINDS)]
            events = store.events(pid)
            events_total += len(events)
            state = store.load(pid)
            if (
                [e.version for e in events] != list(range(1, len(events) + 1))
                or versions.get(pid) != len(events)
                or state is None
                or ProjectState.from_events(events) != state
            ):
                folds_bad.append(pid)
                continue
            want = full_stage(n) if kind == FULL else FINAL_STAGE[kind]
            if state.stage != want:
                stage_bad.append(f"{pid} ({kind}): {state.stage}, not {want}")
            elif kind == REVOKED:
                branches = {d: b.state for d, b in state.branches.items()}
                expected = {
                    **dict.fromkeys(APPROVERS, "approved"),
                    "zj": "revoked",
                    "sthj": "revoked",
                }
                if branches != expected:
                    stage_bad.append(f"{pid} (revoked): branches {branches}")
            fired: Counter[tuple[str, str]] = Counter()
            last_at = None
            for event in events:
                if event.command_id is not None:
                    continue
                timer_events += 1
                key = _timer_key(event)
                assert key is not None
                fired[key] += 1
                if last_at is not None and event.at < last_at:
                    out_of_order.append(f"{pid} v{event.version}")
                last_at = event.at
                if key[0] in NOTICE_OF:
                    notices = 2 if key[0] == "pre_review_overdue" else 1
                    for index in range(1, notices + 1):
                        must_notice[f"{pid}:{event.version}:{index}"] = NOTICE_OF[key[0]]
            twice += [f"{pid} {key}" for key, count in fired.items() if count > 1]
            must = MUST_FIRE.get(kind, set())
            missing += [f"{pid} {key}" for key in must - set(fired)]
            unexpected_timer += [
                f"{pid} {key}" for key in set(fired) - must - MAY_FIRE.get(kind, set())
            ]
            if kind == SLOW and ("branch_overdue", "fgw") not in fired:
                overtaken += 1
        report["events"] = events_total
        report["timer_events"] = timer_events
        report["slow_overdue_overtaken"] = overtaken
        check(
            "histories_fold_to_states",
            not folds_bad and len(versions) == p.projects,
            f"{p.projects - len(folds_bad)} of {p.projects} projects contiguous and folding to "
            f"their stored state ({len(versions)} stored); bad: {folds_bad[:5]}",
        )
        check(
            "projects_end_where_their_kind_leads",
            not stage_bad,
            f"{len(stage_bad)} wrong: {stage_bad[:5]}",
        )
        say("  checking the audit chain")
        chain = verify_chain(store)
        check(
            "audit_chain_verifies",
            chain.ok and chain.count == events_total,
            f"{chain.count} events chained (stored: {events_total}); {chain.reason or 'ok'}",
        )
        # Every accepted command is stored under its id; no refused one is.
        say("  checking the commands and notices")
        logged = lost = stored_refused = 0
        for name, out in outs.items():
            if not name.startswith("writer"):
                continue
            with open(out + ".log", encoding="utf-8") as log:
                for line in log:
                    cid, outcome = line.rstrip("\n").split("\t")
                    logged += 1
                    record = store.command(cid)
                    if outcome == "ok" and (record is None or record.project != cid.split("-")[0]):
                        lost += 1
                    elif outcome != "ok" and record is not None:
                        stored_refused += 1
        check(
            "accepted_commands_stored_refused_not",
            logged == p.total and not lost and not stored_refused,
            f"{logged} commands logged of {p.total}; accepted but not stored: {lost}; "
            f"refused but stored: {stored_refused}",
        )
        check(
            "no_unexpected_outcome",
            report["unexpected_outcomes"] == 0,
            f"{report['unexpected_outcomes']} unexpected: {report['unexpected_first'][:5]}",
        )
        check(
            "each_timer_fired_once",
            not twice and not missing and not unexpected_timer,
            f"{timer_events} timer events; fired twice: {twice[:5]}; due but never fired: "
            f"{missing[:5]}; not expected: {unexpected_timer[:5]}",
        )
        check(
            "timers_fired_in_time_order",
            not out_of_order,
            f"{len(out_of_order)} timer events stamped before the one before: {out_of_order[:5]}",
        )
        left = store.next_due()
        check("no_timer_left", left is None, f"next due: {left}")
        # Notices: every timer event's notice delivered (at least once), the outbox empty.
        delivered: Counter[str] = Counter()
        kinds: dict[str, str] = {}
        for name, out in outs.items():
            if name.startswith("worker"):
                with open(out + ".notices", encoding="utf-8") as notices:
                    for line in notices:
                        notice_id, kind = line.rstrip("\n").split("\t")
                        delivered[notice_id] += 1
                        kinds[notice_id] = kind
        undelivered = [i for i, k in must_notice.items() if kinds.get(i) != k]
        pending = store.pending_notices(END + timedelta(days=3650), limit=10)
        report["notices_distinct"] = len(delivered)
        report["notices_delivered_twice"] = sum(1 for c in delivered.values() if c > 1)
        check(
            "timer_notices_delivered_outbox_empty",
            not undelivered and not pending,
            f"{len(must_notice)} timer notices, not delivered: {undelivered[:5]}; "
            f"left in the outbox: {[e.notice.id for e in pending]}",
        )
        for name, row in report["rss_mib"].items():
            if row["checked"]:
                check(
                    f"rss_second_half_{name}",
                    bool(row["ok"]),
                    f"{row['50%']} -> {row['100%']} MiB "
                    f"({_pct(row['growth_second_half'])}, bound {_pct(report['rss_bound'])})",
                )
    finally:
        store.close()
    return checks


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:+.1f}%"


# -- the whole run ---------------------------------------------------------------------------------


def _postgres(url: str, schema: str | None) -> tuple[str | None, str | None, str | None]:
    """``(url with the schema, schema, None)``, or ``(None, None, why not)``."""
    try:
        import psycopg

        with psycopg.connect(url, connect_timeout=5):
            pass
    except Exception as error:
        return None, None, f"PostgreSQL at {url} unavailable: {str(error).strip()[:200]}"
    from approvalflow.stores.postgres import PostgresStore

    schema = schema or f"soak_{uuid.uuid4().hex[:12]}"
    PostgresStore.from_url(url, schema=schema).close()  # created once, before the processes
    return f"{url}{'&' if '?' in url else '?'}schema={schema}", schema, None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1,000 projects, ~12,000 commands")
    parser.add_argument("--projects", type=int, help="projects (default 10,000; quick 1,000)")
    parser.add_argument("--commands", type=int, help="at least this many commands")
    parser.add_argument("--store", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--postgres", default=DEFAULT_POSTGRES, help="PostgreSQL URL")
    parser.add_argument("--synchronous", default="FULL", help="SQLite synchronous setting")
    parser.add_argument("--sqlite-workers", type=int, default=2, help="timer workers on SQLite")
    parser.add_argument("--pg-workers", type=int, default=4, help="timer workers on PostgreSQL")
    parser.add_argument("--pg-writers", type=int, default=2, help="writers on PostgreSQL")
    parser.add_argument("--rss-bound", type=float, default=RSS_BOUND, help="growth, fraction")
    parser.add_argument("--sample-interval", type=float, help="seconds between RSS samples")
    parser.add_argument(
        "--timeout", type=float, help="seconds per store before giving up, however it goes"
    )
    parser.add_argument(
        "--stall-timeout",
        type=float,
        default=STALL_TIMEOUT,
        help=f"seconds without progress before giving up (default {STALL_TIMEOUT:g})",
    )
    parser.add_argument(
        "--url-options",
        default="",
        help="more store URL options for both stores, as a query string (cache_size=2000)",
    )
    parser.add_argument("--pg-schema", help="PostgreSQL schema to use (default: soak_<random>)")
    parser.add_argument("--dir", help="parent directory of the SQLite file")
    parser.add_argument("--keep", action="store_true", help="keep the SQLite file and logs")
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    options = parser.parse_args(argv)
    mode = "quick" if options.quick else "full"
    projects = options.projects or SIZES[mode]["projects"]
    commands = options.commands or SIZES[mode]["commands"]
    if options.projects or options.commands:
        mode = f"{mode}, custom sizes"
    options.timeout = options.timeout or (600 if options.quick else 3600)
    options.sample_interval = options.sample_interval or (0.25 if options.quick else 1.0)

    def say(text: str) -> None:
        print(text, file=sys.stderr if options.json else sys.stdout, flush=True)

    _quiet()
    p = plan(projects, commands)
    say(
        f"soak ({mode}): {p.projects:,} projects, {p.total:,} commands "
        f"({p.natural:,} of the kinds' own + {p.total - p.natural:,} funds reports)"
    )
    reports: dict[str, Any] = {}
    for kind in ("sqlite", "postgres"):
        if options.store not in (kind, "both"):
            continue
        if kind == "sqlite":
            directory = Path(tempfile.mkdtemp(prefix="soak-db-", dir=options.dir))
            url = f"sqlite:///{directory / 'soak.db'}?synchronous={options.synchronous}"
            url += f"&{options.url_options}" if options.url_options else ""
            say(f"SQLite ({options.synchronous}): 1 writer, {options.sqlite_workers} workers")
            try:
                reports[kind] = run_store(kind, url, options, p, say)
            finally:
                if not options.keep:
                    shutil.rmtree(directory, ignore_errors=True)
            continue
        pg_url, schema, why = _postgres(options.postgres, options.pg_schema)
        if pg_url is None:
            say(why)
            reports[kind] = {"store": kind, "skipped": why, "ok": None}
            continue
        say(f"PostgreSQL: {options.pg_writers} writers, {options.pg_workers} workers, {schema}")
        pg_url += f"&{options.url_options}" if options.url_options else ""
        try:
            reports[kind] = run_store(kind, pg_url, options, p, say)
        finally:
            from approvalflow.stores.postgres import PostgresStore

            PostgresStore.from_url(options.postgres, schema=schema).drop()
    result = {
        "mode": "quick" if options.quick else "full",
        "sizes": {"projects": p.projects, "commands": p.total, "commands_asked": commands},
        "rss_bound": options.rss_bound,
        "url_options": options.url_options,
        "machine": {"cores": os.cpu_count(), "python": sys.version.split()[0]},
        "stores": reports,
        "ok": all(r["ok"] is not False for r in reports.values()),
    }
    if options.json:
        print(json.dumps(result, ensure_ascii=False, indent=1))
    else:
        print(table(result))
    return 0 if result["ok"] else 1


def table(result: dict[str, Any]) -> str:
    lines = []
    for kind, r in result["stores"].items():
        lines.append("")
        if "skipped" in r:
            lines.append(f"{kind}: skipped ({r['skipped']})")
            continue
        lines.append(
            f"{kind}: {r['writers']} writer(s), {r['workers']} worker(s), "
            f"{r['projects']:,} projects -- {'all checks held' if r['ok'] else 'FAILED'}"
        )
        if "error" in r:
            lines.append(f"  error: {r['error']}")
        if "commands" in r:
            rows = [
                ("commands", f"{r['commands']:,}"),
                ("commands/s", f"{r['commands_per_s']:,.0f}"),
                (
                    "writing, final firing, checking (s)",
                    f"{r['seconds_writing']}, "
                    f"{r['seconds_final_firing']}, {r.get('seconds_checking', '-')}",
                ),
                ("events", f"{r.get('events', 0):,}"),
                ("timers fired", f"{r['timers_fired']:,}  {r['timers_fired_by_kind']}"),
                (
                    "notices delivered",
                    f"{r['notices_delivered']:,}  {r['notices_delivered_by_kind']}",
                ),
                ("notices delivered twice", f"{r.get('notices_delivered_twice', '-')}"),
                ("refused, by code", f"{r['errors_by_code']}"),
                ("unexpected outcomes", f"{r['unexpected_outcomes']}"),
                ("re-sent after conflicts", f"{r['resent_after_conflict']}"),
                ("slow fgw overdue overtaken", f"{r.get('slow_overdue_overtaken', '-')}"),
            ]
            lines += [f"  {label:<38}{value}" for label, value in rows]
            lines.append(f"  {'RSS MiB':<14}{'10%':>8}{'50%':>8}{'100%':>8}{'2nd half':>10}")
            for name, row in r.get("rss_mib", {}).items():
                lines.append(
                    f"  {name:<14}{_num(row['10%']):>8}{_num(row['50%']):>8}{_num(row['100%']):>8}"
                    f"{_pct(row['growth_second_half']):>10}"
                )
        for name, c in r.get("checks", {}).items():
            lines.append(f"  {'ok  ' if c['ok'] else 'FAIL'} {name}: {c['detail']}")
    lines.append("")
    lines.append("all checks held" if result["ok"] else "SOME CHECKS FAILED")
    return "\n".join(lines)


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


if __name__ == "__main__":
    sys.exit(main())

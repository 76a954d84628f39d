"""The conformance tests every store backend must pass, as one abstract pytest class.

Subclass ``StoreConformance`` in a test module (its name must start with ``Test`` for pytest to
collect it) and provide a ``store`` fixture that yields a fresh, empty store; the memory, SQLite
and PostgreSQL stores all run this same suite. What it requires of a backend is what the
engine relies on (see ``approvalflow.stores.base.Store``), plus two assumptions a backend may
tune:

- a timer or notice lease (``claim_due``, ``claim_notices``) is shorter than a day;
- ``load`` folds at most ``max_events_folded_by_load`` events after the newest snapshot (a class
  attribute; a backend with a snapshot every N versions sets it to N - 1).

``run_concurrent_writers``, ``run_concurrent_claimers`` and ``run_concurrent_notice_claimers``
are the multi-process checks for a store reachable by URL (``open_store``): several OS processes
add events to one project at once, retrying on ``ConcurrencyConflict``, or claim the same due
timers, or the same outbox notices, at once; the caller asserts nothing was lost, applied twice
or claimed twice.
"""

from __future__ import annotations

import functools
import multiprocessing
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Protocol, TypeVar
from zoneinfo import ZoneInfo

import attrs
import pytest

from approvalflow.errors import ConcurrencyConflict
from approvalflow.model import Event, Notice, Timer, TimerChanges
from approvalflow.project import ProjectState
from approvalflow.rules.metrics import MetricInputs, metric_day, metric_inputs
from approvalflow.rules.points import points_by_team
from approvalflow.stores import UnstorableValue, open_store
from approvalflow.stores.base import CommandRecord, Store
from approvalflow.stores.errors import MAX_KEY_LENGTH
from approvalflow.tasks import ITEM_KINDS, task_rows

__all__ = [
    "COUNTY_A",
    "COUNTY_B",
    "NO_TIMERS",
    "SHANGHAI",
    "T0",
    "ArchiveAuditConformance",
    "ArchiveConformance",
    "ConcurrentRun",
    "CountyConformance",
    "PluginDataConformance",
    "StoreConformance",
    "append",
    "build_events",
    "commit_history",
    "created_event",
    "new_project",
    "notice",
    "run_concurrent_claimers",
    "run_concurrent_notice_claimers",
    "run_concurrent_writers",
    "tamper_pack",
]

_T = TypeVar("_T")

SHANGHAI = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 7, 6, 9, 0, tzinfo=SHANGHAI)
"""A Monday morning in Shanghai: every test's "now" starts here."""

NO_TIMERS = TimerChanges()


def created_event(
    project: str, at: datetime = T0, *, command_id: str | None = None, **fields: Any
) -> Event:
    """The ``created`` event of a project with plausible fields (``fields`` override them)."""
    payload: dict[str, Any] = {
        "name": f"Project {project}",
        "investment": 50_000_000,
        "applicant": "acme",
        "leader": "leader1",
        "department": "investment",
        "team": "east",
        "recruiter": "rec1",
        "settings_fingerprint": "f" * 16,
        **fields,
    }
    return Event(project, 1, "created", at, payload, by="rec1", command_id=command_id)


def build_events(
    state: ProjectState,
    specs: Sequence[tuple[str, Mapping[str, Any]]],
    at: datetime,
    *,
    command_id: str | None = None,
) -> tuple[list[Event], ProjectState]:
    """Events following ``state`` (one per ``(type, payload)``) and the state they lead to,
    carrying ``command_id`` as the engine's events carry the id of the command that wrote them.

    ``state`` itself is not changed.
    """
    after = state.clone()
    events = []
    for offset, (type_, payload) in enumerate(specs, start=1):
        event = Event(
            state.id,
            state.version + offset,
            type_,
            at,
            dict(payload),
            by="officer1",
            command_id=command_id,
        )
        after.apply(event)
        events.append(event)
    return events, after


def new_project(
    store: Store,
    project: str,
    *,
    at: datetime = T0,
    timers: TimerChanges = NO_TIMERS,
    notices: Sequence[Notice] = (),
    command: CommandRecord | None = None,
) -> ProjectState:
    """Commit a project's ``created`` event; return its state."""
    event = created_event(project, at, command_id=command.command_id if command else None)
    state = ProjectState.created(event)
    store.commit(
        project=project,
        expected_version=0,
        events=[event],
        timers=timers,
        notices=notices,
        command=command,
        state=state,
    )
    return state


def append(
    store: Store,
    state: ProjectState,
    specs: Sequence[tuple[str, Mapping[str, Any]]] = (),
    *,
    at: datetime = T0,
    timers: TimerChanges = NO_TIMERS,
    notices: Sequence[Notice] = (),
    command: CommandRecord | None = None,
) -> ProjectState:
    """Commit events (one per ``(type, payload)``) after ``state``; return the new state."""
    events, after = build_events(state, specs, at)
    store.commit(
        project=state.id,
        expected_version=state.version,
        events=events,
        timers=timers,
        notices=notices,
        command=command,
        state=after,
    )
    return after


def commit_history(
    store: Store, history: Sequence[Event], state: ProjectState | None = None
) -> ProjectState:
    """Commit a new project's whole ``history`` at once, with its folded state (or ``state``,
    which must be that fold); return the state."""
    state = ProjectState.from_events(history) if state is None else state
    store.commit(
        project=history[0].project,
        expected_version=0,
        events=history,
        timers=NO_TIMERS,
        notices=(),
        command=None,
        state=state,
    )
    return state


def notice(project: str, index: int, at: datetime = T0, **fields: Any) -> Notice:
    """A notice with a stable id, like the engine's (project, version, index)."""
    return Notice(
        id=f"{project}:1:{index}",
        kind="materials_incomplete",
        project=project,
        recipients=("acme", "agent1"),
        at=at,
        fields={"materials": ["eia", "fire"], "department": "zj", **fields},
    )


def _rich_history(project: str) -> list[Event]:
    """A history that gives a state with every kind of nested value: a pre-review round with
    opinions, a meeting with votes, a branch with deficient materials, milestones, frozensets,
    ``extra`` data, and moments in two time zones."""
    created = created_event(
        project,
        command_id="cmd-create",
        agent="agent1",
        industry="chips",
        emissions=False,
        extra={"park": "east-zone", "jobs": [120, 300], "note": "年产 5 万片"},
    )
    hour = timedelta(hours=1)
    specs: list[tuple[str, dict[str, Any], datetime]] = [
        ("stage_changed", {"to": "pre_review"}, T0 + hour),
        ("materials_submitted", {"materials": ["plan", "licence", "eia"]}, T0 + hour),
        (
            "pre_review_round_opened",
            {"round": 1, "due": (T0 + timedelta(days=3)).isoformat(), "provisional": False},
            T0 + hour,
        ),
        (
            "opinion_given",
            {"unit": "dev", "verdict": "pass", "missing": [], "reviewer": "rv1"},
            T0 + 2 * hour,
        ),
        (
            "opinion_given",
            {
                "unit": "env",
                "verdict": "missing",
                "missing": ["eia-2"],
                "reason": "no noise study",
                "reviewer": "rv2",
            },
            (T0 + 3 * hour).astimezone(UTC),
        ),
        ("pre_review_round_closed", {"missing": ["eia-2"]}, T0 + 4 * hour),
        ("stage_changed", {"to": "decision"}, T0 + 5 * hour),
        ("meeting_convened", {"meeting": 1, "present": ["m1", "m2", "m3"]}, T0 + 6 * hour),
        ("vote_cast", {"member": "m1", "vote": "yes"}, T0 + 6 * hour),
        ("milestone_reached", {"milestone": "decided", "points": 5}, T0 + 7 * hour),
        ("stage_changed", {"to": "approval"}, T0 + 8 * hour),
        (
            "branch_opened",
            {
                "department": "zj",
                "due": (T0 + timedelta(days=10)).isoformat(),
                "provisional": True,
            },
            T0 + 8 * hour,
        ),
        (
            "branch_changed",
            {
                "department": "zj",
                "to": "accepted",
                "deficient": ["fire", "water"],
                "supply_due": (T0 + timedelta(days=20)).isoformat(),
                "reminder_due": (T0 + timedelta(days=15)).isoformat(),
            },
            T0 + 9 * hour,
        ),
        ("funds_reported", {"amount": 1_250_000}, T0 + 10 * hour),
    ]
    events = [created]
    for version, (type_, payload, at) in enumerate(specs, start=2):
        on_behalf_of = "acme" if type_ == "materials_submitted" else None
        by = "agent1" if on_behalf_of else "officer1"
        events.append(Event(project, version, type_, at, payload, by, on_behalf_of, None))
    return events


def _staged_history(project: str) -> list[Event]:
    """A project in approval stages: its stages planned, a first stage whose zj branch is
    approved and issued, and zj again in the running second stage (the first one's branch kept
    with its stage), with a card on the stage's ladder."""
    day = timedelta(days=1)
    step = {"card": "warning", "offset_wd": 2, "recipients": ["officer"]}
    stage = {"id": "one", "name": "立项", "departments": ["zj"], "lead": "zj", "limit_wd": 8}
    specs: list[tuple[str, dict[str, Any], datetime]] = [
        ("stage_changed", {"to": "approval"}, T0 + day),
        (
            "approval_stages_planned",
            {
                "stages": [stage, {**stage, "id": "two", "name": "施工", "limit_wd": 10}],
                "route": ["zj"],
                "total_limit_wd": 15,
                "total_due": (T0 + 20 * day).isoformat(),
                "total_provisional": False,
                "total_ladder": [step],
            },
            T0 + day,
        ),
        (
            "approval_stage_opened",
            {
                "stage": "one",
                "name": "立项",
                "lead": "zj",
                "limit_wd": 8,
                "due": (T0 + 10 * day).isoformat(),
                "provisional": False,
                "ladder": [step],
            },
            T0 + day,
        ),
        (
            "branch_opened",
            {"department": "zj", "due": (T0 + 8 * day).isoformat(), "provisional": False},
            T0 + day,
        ),
        (
            "branch_changed",
            {"department": "zj", "from": "pending", "to": "approved", "trigger": "approve"},
            T0 + 2 * day,
        ),
        ("approval_stage_decided", {"stage": "one"}, T0 + 2 * day),
        (
            "card_issued",
            {
                "stage": "approval_stage",
                "approval_stage": "one",
                "department": "zj",
                "step": 0,
                "card": "warning",
                "offset_wd": 2,
                "due": (T0 + 10 * day).isoformat(),
            },
            T0 + 3 * day,
        ),
        ("approval_stage_result_issued", {"stage": "one", "lead": "zj"}, T0 + 3 * day),
        (
            "approval_stage_opened",
            {
                "stage": "two",
                "name": "施工",
                "lead": "zj",
                "limit_wd": 10,
                "due": (T0 + 17 * day).isoformat(),
                "provisional": True,
            },
            T0 + 3 * day,
        ),
        (
            "branch_opened",
            {"department": "zj", "due": (T0 + 12 * day).isoformat(), "provisional": False},
            T0 + 3 * day,
        ),
        ("approval_total_overdue", {"stage": "two"}, T0 + 21 * day),
    ]
    events = [created_event(project)]
    for version, (type_, payload, at) in enumerate(specs, start=2):
        events.append(Event(project, version, type_, at, payload, "officer1", None, None))
    return events


class PluginDataConformance:
    """A county's data survives an engine without the county's plugin (issue 13's repro).

    A Huguan project has an open issue (event ``huguan.issue_raised``, folded by Huguan alone);
    a second engine on the same store without Huguan (a worker or report job started with other
    plugins) must refuse to write the project rather than write a state without Huguan's data,
    and Huguan's engine then still finds the issue.
    """

    _SHORT: ClassVar[Mapping[str, Any]] = {
        "pre_review": {"members": ["gxj"]},
        "routing": {"departments": ["fgw", "zj"]},
    }

    def _engine(self, store: Store, plugins: Sequence[str]) -> Any:
        from approvalflow import Actor, Engine, ManualClock

        actors = [
            Actor("guo", ["recruiter"]),
            Actor("firm", ["applicant"]),
            Actor("li", ["leader"]),
            Actor("chair", ["chair", "member"]),
            Actor("r_gxj", ["reviewer"], department="gxj"),
            Actor("o_fgw", ["officer"], department="fgw"),
            Actor("o_zj", ["officer"], department="zj"),
        ]
        clock = ManualClock(datetime(2026, 3, 2, 9, 0, tzinfo=SHANGHAI))
        return Engine(
            actors=actors, store=store, plugins=plugins, clock=clock, settings=self._SHORT
        )

    def test_an_engine_without_the_plugin_refuses_to_write_its_project(self, store: Store) -> None:
        from approvalflow.plugin import UnknownEventType

        huguan = self._engine(store, ["huguan"])
        fields = {
            "name": "x",
            "investment": "3亿",
            "applicant": "firm",
            "leader": "li",
            "department": "gxj",
            "team": "new_energy",
        }
        huguan.execute("create", "P1", "guo", fields)
        for command, actor, args in [
            ("negotiate", "guo", {}),
            ("submit_pre_review", "guo", {"materials": []}),
            ("opinion", "r_gxj", {"verdict": "pass"}),
            ("convene", "chair", {"present": ["chair"]}),
            ("vote", "chair", {"vote": "approve"}),
            ("close_meeting", "chair", {}),
            ("sign", "guo", {}),
            ("raise_issue", "guo", {"issue": "I1", "text": "用电"}),
            ("apply", "firm", {}),
        ]:
            huguan.execute(command, "P1", actor, args)
        history = store.events("P1")
        plain = self._engine(store, [])
        with pytest.raises(UnknownEventType, match=r"huguan\.(issue_raised|\*).*'huguan'"):
            plain.execute("accept", "P1", "o_fgw")
        # The branches' deadlines are due, but stay for an engine with Huguan.
        assert plain.run_due(datetime(2026, 12, 31, tzinfo=SHANGHAI)) == []
        assert store.events("P1") == history
        assert plain.project("P1").stage == "approval"  # reading is still allowed
        again = self._engine(store, ["huguan"])
        again.execute("assign_issue", "P1", "li", {"issue": "I1", "department": "zj"})
        issue = again.project("P1").plugin_data["huguan"]["issues"]["I1"]
        assert (issue["status"], issue["department"]) == ("assigned", "zj")


# -- counties as tenants of one store ---------------------------------------------------------

COUNTY_A = "huguan"
COUNTY_B = "jiaocheng"
_FAR = T0 + timedelta(days=400)


def _county_history(project: str, county: str) -> list[Event]:
    """A rich history (milestones, intervals, task rows, an actor's events) whose ``created``
    event says which county wrote it, so two counties' projects of one id differ."""
    events = _rich_history(project)
    first = events[0]
    payload = {
        **first.payload,
        "name": f"{county} {project}",
        "team": f"team_{county}",
        "project_code": f"CODE-{county}-{project}",
    }
    # One command wrote them all (``_fill_county``'s record of it), as the audit checks.
    return [
        attrs.evolve(event, command_id=f"cmd-{project}")
        for event in (attrs.evolve(first, payload=payload), *events[1:])
    ]


def _fill_county(view: Store, county: str, projects: Sequence[str], due: datetime) -> None:
    """Commit ``projects`` to ``view``, each with a timer, a notice (ids the same in every
    county) and a command record (fingerprint of the county), and save a rule set and record a
    plugin of the county."""
    for project in projects:
        events = _county_history(project, county)
        state = ProjectState.from_events(events)
        view.commit(
            project=project,
            expected_version=0,
            events=events,
            timers=TimerChanges(set=(Timer(project, "deadline", due),)),
            notices=[notice(project, 0, county=county)],
            command=CommandRecord(
                f"cmd-{project}", project, "create", f"fp-{county}", 1, len(events)
            ),
            state=state,
        )
    view.save_rule_set(county[0] * 64, "1", f'{{"county": "{county}"}}')
    view.record_plugins([county])


_READS: dict[str, Callable[[Store], Any]] = {
    "load": lambda s: [state_summary(s.load(p)) for p in ("P1", "PB")],
    "load_for_command": lambda s: [state_summary(s.load_for_command(p)) for p in ("P1", "PB")],
    "load_many": lambda s: {p: state_summary(v) for p, v in s.load_many(["P1", "PB"]).items()},
    "snapshot_version": lambda s: [s.snapshot_version(p) for p in ("P1", "PB")],
    "events": lambda s: [s.events("P1"), s.events("PB"), s.events("P1", 3)],
    "command": lambda s: [s.command("cmd-P1"), s.command("cmd-PB")],
    "next_due": lambda s: s.next_due(),
    "timers": lambda s: [s.timers("P1"), s.timers("PB")],
    "project_ids": lambda s: s.project_ids(),
    "milestone_points": lambda s: [
        s.milestone_points(),
        s.milestone_points("2026-07"),
        s.milestone_points(prefix="P"),
        s.milestone_points(projects=["P1", "PB"]),
    ],
    "metric_inputs": lambda s: [s.metric_inputs(), s.metric_inputs(["P1", "PB"])],
    "team_metric_inputs": lambda s: [s.team_metric_inputs(), s.team_metric_inputs(["PB"])],
    "task_rows": lambda s: sorted(
        s.task_rows(
            ["role:officer", "dept:zj", "actor:acme", "actor:agent1", "actor:leader1"]
            + [f"actor:{name}" for name in ("rec1", "officer1", "acme")]
        )
        or ()
    ),
    "actor_events": lambda s: [s.actor_events("officer1"), s.actor_events("acme")],
    "first_events": lambda s: s.first_events(["P1", "PB"]),
    "pending_notices": lambda s: s.pending_notices(_FAR),
    "rule_set": lambda s: [s.rule_set(c[0] * 64) for c in (COUNTY_A, COUNTY_B)],
    "project_with_code": lambda s: [
        s.project_with_code(f"CODE-{c}-{p}") for c in (COUNTY_A, COUNTY_B) for p in ("P1", "PB")
    ],
    "recorded_plugins": lambda s: s.recorded_plugins(),
    "milestone_projects": lambda s: s.milestone_projects("decided", "2026-07"),
    "due_task_rows": lambda s: sorted(s.due_task_rows([k.name for k in ITEM_KINDS], _FAR) or ()),
    "team_month_counts": lambda s: s.team_month_counts(),
    "due_task_groups": lambda s: sorted(
        s.due_task_groups([k.name for k in ITEM_KINDS], _FAR, 8) or ()
    ),
}
"""Each read of the ``Store`` protocol, as a county view answers it: the same for county A
before and after county B writes the same ids (and more), and not the same for B."""


def state_summary(state: ProjectState | None) -> tuple[Any, ...] | None:
    """What identifies a loaded state: its id, version, name and team."""
    if state is None:
        return None
    return (state.id, state.version, state.name, state.team)


def _probe_commit(a: Store, b: Store) -> None:
    # An id, a command id and a project code that B holds are free in A: nothing of B shows.
    before = b.events("PB")
    events = _county_history("PB", "other")
    events[0] = attrs.evolve(
        events[0], payload={**events[0].payload, "project_code": f"CODE-{COUNTY_B}-PB"}
    )
    a.commit(
        project="PB",
        expected_version=0,
        events=events,
        timers=NO_TIMERS,
        notices=[],
        command=CommandRecord("cmd-PB", "PB", "create", "fp-a", 1, len(events)),
        state=ProjectState.from_events(events),
    )
    assert a.events("PB") == events
    assert a.command("cmd-PB") == CommandRecord("cmd-PB", "PB", "create", "fp-a", 1, len(events))
    assert a.project_with_code(f"CODE-{COUNTY_B}-PB") == "PB"
    assert b.events("PB") == before
    assert state_summary(b.load("PB")) == ("PB", len(before), f"{COUNTY_B} PB", f"team_{COUNTY_B}")


def _probe_archive(a: Store, b: Store) -> None:
    # B's archive of its P2 and P3 is B's alone; A cannot archive B's PB, nor see B's archive.
    from approvalflow.errors import NotArchivable, UnknownProject

    withdrawn = [("stage_changed", {"to": "withdrawn"})]
    for project in ("P2", "P3"):
        append(b, new_project(b, project), withdrawn)
    append(a, new_project(a, "P3"), withdrawn)
    b.archive("P2", "b_archive", 2)
    b.archive("P3", "b_archive", 2)
    with pytest.raises(UnknownProject):
        a.archive("PB", "a_archive", 1)
    with pytest.raises(UnknownProject):
        a.archive("P2", "a_archive", 1)
    with pytest.raises(NotArchivable, match="P1 still has"):
        a.archive("P1", "a_archive", len(a.events("P1")))
    assert [a.archive_of(p) for p in ("P1", "P2", "P3")] == [None, None, None]
    assert [b.archive_of(p) for p in ("P1", "P2", "P3")] == [None, "b_archive", "b_archive"]
    assert [e.version for e in a.events("P3")] == [1, 2]
    assert a.project_ids() == ["P1", "P3"]


def _probe_claim_due(a: Store, b: Store) -> None:
    claimed = a.claim_due(_FAR)
    assert [(t.project, t.due) for t in claimed] == [("P1", T0 + timedelta(days=2))]
    # A's lease on its P1 timer does not hide B's timer of the same key.
    assert sorted((t.project, t.due) for t in b.claim_due(_FAR)) == [
        ("P1", T0 + timedelta(days=1)),
        ("PB", T0 + timedelta(days=1)),
    ]
    assert a.claim_due(_FAR) == []


def _probe_release_timer(a: Store, b: Store) -> None:
    held = b.claim_due(_FAR)
    assert held
    for timer in held:
        a.release_timer(timer)  # B's timers: A cannot end B's lease
    assert b.claim_due(_FAR) == []


def _probe_claim_notices(a: Store, b: Store) -> None:
    claimed = a.claim_notices(_FAR)
    assert [(e.notice.id, e.notice.fields["county"]) for e in claimed] == [("P1:1:0", COUNTY_A)]
    assert sorted((e.notice.id, e.notice.fields["county"]) for e in b.claim_notices(_FAR)) == [
        ("P1:1:0", COUNTY_B),
        ("PB:1:0", COUNTY_B),
    ]


def _probe_mark_delivered(a: Store, b: Store) -> None:
    a.mark_delivered(["P1:1:0", "PB:1:0"])
    assert a.pending_notices(_FAR) == []
    assert sorted(e.notice.id for e in b.pending_notices(_FAR)) == ["P1:1:0", "PB:1:0"]


def _probe_mark_failed(a: Store, b: Store) -> None:
    assert b.claim_notices(_FAR)
    a.mark_failed("PB:1:0", "refused", T0)  # not A's notice: nothing happens
    a.mark_failed("P1:1:0", "refused", T0)
    assert [(e.notice.fields["county"], e.attempts) for e in a.pending_notices(_FAR)] == [
        (COUNTY_A, 1)
    ]
    assert [e.attempts for e in b.pending_notices(_FAR)] == [0, 0]
    assert b.claim_notices(_FAR) == []  # B's claims still hold


def _probe_save_rule_set(a: Store, b: Store) -> None:
    b_key = COUNTY_B[0] * 64
    a.save_rule_set(b_key, "1", '{"county": "a"}')
    assert a.rule_set(b_key) == '{"county": "a"}'
    assert b.rule_set(b_key) == f'{{"county": "{COUNTY_B}"}}'


def _probe_record_plugins(a: Store, b: Store) -> None:
    a.record_plugins([COUNTY_B, "console"])
    assert a.recorded_plugins() == (COUNTY_A, COUNTY_B, "console")
    assert b.recorded_plugins() == (COUNTY_B,)


_WRITES: dict[str, Callable[[Store, Store], None]] = {
    "commit": _probe_commit,
    "claim_due": _probe_claim_due,
    "release_timer": _probe_release_timer,
    "claim_notices": _probe_claim_notices,
    "mark_delivered": _probe_mark_delivered,
    "mark_failed": _probe_mark_failed,
    "save_rule_set": _probe_save_rule_set,
    "record_plugins": _probe_record_plugins,
    "archive": _probe_archive,
    "archive_of": _probe_archive,
}
"""Each write (and claim) of the ``Store`` protocol, done on county A's view with B's keys:
what it does stays in A."""

_NOT_PER_COUNTY = frozenset({"close", "county", "for_county", "counties"})


def store_methods() -> set[str]:
    """Every public member of the ``Store`` protocol."""
    return {name for name in vars(Store) if not name.startswith("_")}


class CountyConformance:
    """Counties as tenants of one store (issue 17): two counties hold the same project ids,
    command ids, notice ids and project codes, and each county's view sees and changes its
    own rows alone, method by method (``_READS``, ``_WRITES``: a method of the ``Store``
    protocol without a probe fails ``test_every_store_method_is_probed``)."""

    def _two_counties(self, store: Store) -> tuple[Store, Store]:
        a, b = store.for_county(COUNTY_A), store.for_county(COUNTY_B)
        _fill_county(a, COUNTY_A, ["P1"], T0 + timedelta(days=2))
        return a, b

    def test_every_store_method_is_probed(self) -> None:
        assert store_methods() - _NOT_PER_COUNTY == set(_READS) | set(_WRITES)

    @pytest.mark.parametrize("method", sorted(_READS))
    def test_a_county_reads_nothing_of_another(self, store: Store, method: str) -> None:
        read = _READS[method]
        a, b = self._two_counties(store)
        alone = read(a)
        _fill_county(b, COUNTY_B, ["P1", "PB"], T0 + timedelta(days=1))
        assert read(a) == alone
        assert read(store.for_county(COUNTY_A)) == alone  # a new view of the same county
        assert read(b) != alone

    @pytest.mark.parametrize("method", sorted(_WRITES))
    def test_a_county_writes_and_claims_its_own_rows_alone(self, store: Store, method: str) -> None:
        a, b = self._two_counties(store)
        _fill_county(b, COUNTY_B, ["P1", "PB"], T0 + timedelta(days=1))
        _WRITES[method](a, b)

    def test_views_say_their_county_and_the_store_lists_its_counties(self, store: Store) -> None:
        assert store.county is None
        assert store.counties() == []
        a, b = self._two_counties(store)
        assert (a.county, b.county) == (COUNTY_A, COUNTY_B)
        assert store.counties() == [COUNTY_A]
        _fill_county(b, COUNTY_B, ["PB"], T0)
        assert store.counties() == sorted([COUNTY_A, COUNTY_B])
        assert a.for_county(COUNTY_B).project_ids() == ["PB"]
        # The unscoped store is the default county's, which has nothing yet.
        assert store.project_ids() == []

    def test_the_unscoped_store_is_the_default_county(self, store: Store) -> None:
        from approvalflow.stores.base import DEFAULT_COUNTY

        state = new_project(store, "P1", command=CommandRecord("c1", "P1", "create", "f", 1, 1))
        default = store.for_county(DEFAULT_COUNTY)
        assert default.county == DEFAULT_COUNTY
        assert state_summary(default.load("P1")) == state_summary(state)
        append(default, state, [("stage_changed", {"to": "negotiating"})])
        assert [e.version for e in store.events("P1")] == [1, 2]
        assert store.command("c1") == default.command("c1")
        assert store.counties() == [DEFAULT_COUNTY]
        assert store.for_county(COUNTY_A).load("P1") is None

    @pytest.mark.parametrize(
        "county", ["", "Huguan", "1county", "hu-guan", "hu guan", "a" * 33, "县", None, 7]
    )
    def test_a_bad_county_id_is_refused(self, store: Store, county: Any) -> None:
        from approvalflow.errors import InvalidCounty

        with pytest.raises(InvalidCounty, match="county id"):
            store.for_county(county)
        assert store.counties() == []

    def test_the_same_timers_fall_due_in_each_county_for_its_own_worker(self, store: Store) -> None:
        a, b = self._two_counties(store)
        _fill_county(b, COUNTY_B, ["P1"], T0 + timedelta(days=1))
        assert b.next_due() == T0 + timedelta(days=1)
        assert a.next_due() == T0 + timedelta(days=2)
        assert a.claim_due(T0 + timedelta(days=1)) == []
        assert [t.due for t in b.claim_due(T0 + timedelta(days=1))] == [T0 + timedelta(days=1)]

    def _county_engine(
        self, store: Store, county: str, settings: Mapping[str, Any] | None = None
    ) -> Any:
        from approvalflow import Actor, Engine, ManualClock

        actors = [
            Actor("guo", ["recruiter"]),
            Actor("firm", ["applicant"]),
            Actor("li", ["leader"]),
            Actor("r_gxj", ["reviewer"], department="gxj"),
        ]
        clock = ManualClock(datetime(2026, 3, 2, 9, 0, tzinfo=SHANGHAI))
        return Engine(
            actors=actors,
            store=store,
            plugins=[county],
            clock=clock,
            settings={"pre_review": {"members": ["gxj"]}, **(settings or {})},
            county=county,
        )

    def test_a_county_s_plugins_and_settings_never_reach_another_s_project(
        self, store: Store
    ) -> None:
        """Two engines (Huguan's and Jiaocheng's plugins and settings) over one store, each
        with a project P1: each project runs its own county's rules, timers and worker."""
        huguan = self._county_engine(store, COUNTY_A, {"pre_review": {"deadline_wd": 10}})
        jiaocheng = self._county_engine(store, COUNTY_B)
        assert (huguan.county, jiaocheng.county) == (COUNTY_A, COUNTY_B)
        for engine, name in ((huguan, "湖冠项目"), (jiaocheng, "交城项目")):
            fields = {
                "name": name,
                "investment": "3亿",
                "applicant": "firm",
                "leader": "li",
                "department": "gxj",
                "team": "new_energy",
            }
            engine.execute("create", "P1", "guo", fields, command_id="create-P1")
            engine.execute("negotiate", "P1", "guo")
            engine.execute("submit_pre_review", "P1", "guo", {"materials": []})
        ours, theirs = huguan.project("P1"), jiaocheng.project("P1")
        assert (ours.name, theirs.name) == ("湖冠项目", "交城项目")
        # Huguan's ten working days reach Huguan's project alone; Jiaocheng's keeps three.
        a_due = [t.due for t in store.for_county(COUNTY_A).timers("P1")]
        b_due = [t.due for t in store.for_county(COUNTY_B).timers("P1")]
        assert a_due and b_due and min(b_due) < min(a_due)
        assert ours.settings_fingerprint != theirs.settings_fingerprint
        assert store.for_county(COUNTY_A).recorded_plugins() == (COUNTY_A,)
        assert store.for_county(COUNTY_B).recorded_plugins() == (COUNTY_B,)
        # Jiaocheng's worker fires Jiaocheng's deadline; Huguan's project is not touched.
        history = store.for_county(COUNTY_A).events("P1")
        fired = jiaocheng.run_due(min(b_due) + timedelta(minutes=1))
        assert fired and {result.project for result in fired} == {"P1"}
        assert store.for_county(COUNTY_A).events("P1") == history
        assert len(store.for_county(COUNTY_B).events("P1")) > 3
        assert store.project_ids() == []


_ARCHIVE_SETTINGS: dict[str, Any] = {
    "pre_review": {"members": ["gxj"]},
    "routing": {"departments": ["zj", "fgw"]},
}
_TO_APPROVED: tuple[tuple[str, str, dict[str, Any] | None], ...] = (
    ("negotiate", "guo", None),
    ("submit_pre_review", "guo", {"materials": []}),
    ("opinion", "r_gxj", {"verdict": "pass"}),
    ("convene", "chair", {"present": ["chair", "m1", "m2"]}),
    ("vote", "chair", {"vote": "approve"}),
    ("vote", "m1", {"vote": "approve"}),
    ("close_meeting", "chair", None),
    ("sign", "guo", None),
    ("report_funds", "guo", {"amount": "5000万"}),
    ("delegate", "firm", {"agent": "agent1"}),
    ("apply", "agent1", None),
    ("accept", "o_zj", None),
    ("approve", "o_zj", None),
    ("accept", "o_fgw", None),
    ("approve", "o_fgw", None),
)
_TO_EFFECTIVE = (
    *_TO_APPROVED,
    ("start_construction", "guo", None),
    ("start_production", "firm", None),
    ("reach_target", "guo", None),
)
_ARCHIVE_ACTORS = ("guo", "firm", "agent1", "li", "r_gxj", "chair", "m1", "o_zj", "o_fgw")


class ArchiveConformance:
    """The archive form of finished projects (issue 17, D265-D268): ``Engine.archive`` packs a
    finished project, every read answers as it did, and no later commit changes it."""

    def _archive_engine(self, store: Store) -> Any:
        from approvalflow import Actor, Engine, ManualClock

        actors = [
            Actor("guo", ["recruiter"]),
            Actor("firm", ["applicant"]),
            Actor("agent1", ["agent"]),
            Actor("li", ["leader"]),
            Actor("chair", ["chair", "member"]),
            Actor("m1", ["member"]),
            Actor("m2", ["member"]),
            Actor("r_gxj", ["reviewer"], department="gxj"),
            Actor("o_zj", ["officer"], department="zj"),
            Actor("o_fgw", ["officer"], department="fgw"),
        ]
        clock = ManualClock(datetime(2026, 3, 2, 9, 0, tzinfo=SHANGHAI))
        return Engine(actors=actors, store=store, clock=clock, settings=_ARCHIVE_SETTINGS)

    @staticmethod
    def _fields(project: str, team: str) -> dict[str, Any]:
        return {
            "name": f"项目 {project}",
            "investment": "3亿",
            "applicant": "firm",
            "leader": "li",
            "department": "gxj",
            "team": team,
        }

    def _run(self, engine: Any, project: str, steps: Sequence[Any], team: str) -> None:
        fields = self._fields(project, team)
        engine.execute("create", project, "guo", fields, command_id=f"create-{project}")
        for command, by, args in steps:
            engine.clock.advance(timedelta(hours=7))
            engine.execute(command, project, by, args)

    def _projects(self, store: Store) -> Any:
        engine = self._archive_engine(store)
        self._run(engine, "P1", _TO_EFFECTIVE, "solar")
        self._run(engine, "P2", _TO_EFFECTIVE, "wind")
        self._run(engine, "P3", _TO_APPROVED[:1], "wind")
        engine.execute("withdraw", "P3", "firm", {"reason": "moved"})
        self._run(engine, "P4", _TO_APPROVED[:4], "solar")  # live: the meeting is open
        self._run(engine, "P5", _TO_APPROVED, "wind")  # approved: not finished
        return engine

    @staticmethod
    def _reads(engine: Any) -> dict[str, Any]:
        from approvalflow.stores.serialization import state_to_json

        store = engine.store
        ids = engine.project_ids()
        found: dict[str, Any] = {
            "project_ids": ids,
            "states": [state_to_json(engine.project(p)) for p in ids],
            "many": [state_to_json(s) for s in engine.projects(ids)],
            "history": [engine.history(p) for p in ids],
            "pages": [store.events(p, after) for p in ids for after in (0, 5, 16, 40)],
            "deadlines": [engine.deadlines(p) for p in ids],
            "holdups": [engine.holdups(p) for p in ids],
            "holdups_of": [engine.holdups_of(s) for s in engine.projects(ids)],
            "allowed": [engine.allowed_commands(p) for p in ids],
            "names": engine.project_names(ids),
            "first_events": store.first_events(ids),
            "points": [engine.points(), engine.points(["P1", "P3"], month="2026-03")],
            "by_milestone": engine.points_by_milestone("2026-03"),
            "leaderboard": [engine.leaderboard(m) for m in ("2026-03", "2026-04")],
            "metrics": [engine.metrics(), engine.metrics(["P1", "P2"])],
            "team_metrics": engine.team_metrics(),
            "signed_in": engine.signed_in("2026-03"),
            "late": engine.late_items(datetime(2027, 1, 1, tzinfo=UTC)),
            "tasks": [engine.tasks(a) for a in _ARCHIVE_ACTORS],
            "done": [engine.done(a) for a in _ARCHIVE_ACTORS],
            "done_latest": [engine.done(a, n) for a in _ARCHIVE_ACTORS for n in (0, 1, 3, 8)],
            "actor_events": [store.actor_events(a, n) for a in _ARCHIVE_ACTORS for n in (2, None)],
            "commands": [store.command(f"create-{p}") for p in ids],
            "timers": [store.timers(p) for p in ids],
            "next_due": store.next_due(),
        }
        if hasattr(store, "project_heads"):
            from approvalflow.stores.audit import verify_store

            report = verify_store(store, timers_for=engine.timers_for)
            found["heads"] = store.project_heads()
            found["verify"] = (report.findings, report.projects, report.events, report.head)
        return found

    def test_every_read_answers_the_same_once_finished_projects_are_archived(
        self, store: Store
    ) -> None:
        engine = self._projects(store)
        assert [engine.project(p).stage for p in ("P1", "P3")] == ["effective", "withdrawn"]
        before = self._reads(engine)
        for project in ("P1", "P2", "P3"):
            engine.archive(project, "2026_q1")
        assert [store.archive_of(p) for p in ("P1", "P3", "P4")] == ["2026_q1", "2026_q1", None]
        after = self._reads(engine)
        assert after.keys() == before.keys()
        for read in before:
            assert after[read] == before[read], read
        if "verify" in before:
            assert before["verify"][0] == ()
        # The live projects go on as before.
        engine.execute("vote", "P4", "chair", {"vote": "approve"})
        assert engine.project("P4").version == len(engine.history("P4"))

    def test_a_command_on_an_archived_project_is_refused_and_changes_nothing(
        self, store: Store
    ) -> None:
        from approvalflow.errors import ProjectArchived
        from approvalflow.model import TimerChanges

        engine = self._projects(store)
        engine.archive("P1", "2026_q1")
        history = engine.history("P1")
        # The engine refuses what the stage refuses; the store refuses any commit at all.
        state = engine.project("P1")
        events, after = build_events(state, [("stage_changed", {"to": "production"})], T0)
        with pytest.raises(ProjectArchived, match="P1 is archived"):
            store.commit(
                project="P1",
                expected_version=state.version,
                events=events,
                timers=TimerChanges(),
                notices=[],
                command=None,
                state=after,
            )
        with pytest.raises(ProjectArchived, match="P1 is archived"):
            engine.execute("report_funds", "P1", "guo", {"amount": "1亿"})
        assert engine.history("P1") == history
        assert engine.project("P1").version == state.version
        # A known command id still answers with its first result, and writes nothing.
        again = engine.execute(
            "create", "P1", "guo", self._fields("P1", "solar"), command_id="create-P1"
        )
        assert again.events and list(again.events) == history[: len(again.events)]
        assert engine.history("P1") == history

    def test_only_a_finished_project_is_archived(self, store: Store) -> None:
        from approvalflow.errors import InvalidCommand, NotArchivable, UnknownProject

        engine = self._projects(store)
        with pytest.raises(NotArchivable, match=r"P4 is at decision\.meeting"):
            engine.archive("P4", "2026_q1")
        with pytest.raises(NotArchivable, match="P5 is at approved"):
            engine.archive("P5", "2026_q1")
        with pytest.raises(UnknownProject):
            engine.archive("nope", "2026_q1")
        with pytest.raises(InvalidCommand, match="archive name"):
            engine.archive("P1", "2026-Q1")
        engine.archive("P1", "2026_q1")
        with pytest.raises(NotArchivable, match="archived already"):
            engine.archive("P1", "2026_q2")
        # The store keeps its own rule: a timer row left is refused too.
        state = engine.project("P3")
        store.commit(
            project="P3",
            expected_version=state.version,
            events=[],
            timers=TimerChanges(set=(Timer("P3", "stray", T0),)),
            notices=[],
            command=None,
            state=state,
        )
        with pytest.raises(NotArchivable, match="timer"):
            store.archive("P3", "2026_q1", state.version)
        assert [store.archive_of(p) for p in ("P1", "P3", "P4")] == ["2026_q1", None, None]


class ArchiveAuditConformance(ArchiveConformance):
    """For a store that keeps an audit chain (``project_heads``, as the SQL stores do): an
    archive pack changed behind the store's back is caught by ``audit verify``. A store
    without a chain has nothing to verify, so its tests leave this class out rather than
    skip."""

    def test_a_tampered_pack_is_caught_by_verify(self, store: Store) -> None:
        from approvalflow.stores.audit import verify_store

        assert hasattr(store, "project_heads"), "this class is for stores with an audit chain"
        engine = self._projects(store)
        for project in ("P1", "P2", "P3"):
            engine.archive(project, "2026_q1")
        assert verify_store(store).ok
        tamper_pack(store, "P1", edit=True)
        tamper_pack(store, "P2", edit=False)
        findings = {(f.project, f.what, f.where) for f in verify_store(store).findings}
        assert ("P1", "chain", "its archive pack") in findings
        assert ("P2", "chain", "its archive pack") in findings
        assert {f[0] for f in findings} == {"P1", "P2"}


def tamper_pack(store: Any, project: str, *, edit: bool) -> None:
    """Change ``project``'s pack behind the store's back: ``edit`` rewrites its second event's
    type in a pack that still unpacks; else the pack is cut short."""
    import json
    import zlib

    sql = store._sql
    with store._access:
        (packed,) = store._connection.execute(sql.archived_pack, (project,)).fetchone()[:1]
    if edit:
        document = json.loads(zlib.decompress(bytes(packed)))
        document["events"][1][1] = "stage_changed_by_hand"
        new = zlib.compress(json.dumps(document).encode())
    else:
        new = bytes(packed)[: len(bytes(packed)) // 2]
    p = "?" if sql.dialect == "sqlite" else "%s"
    with store._access:
        store._connection.execute(
            f"UPDATE archives SET pack = {p} WHERE project = {p}", (new, project)
        )
        if sql.dialect == "sqlite":
            store._connection.commit()


class StoreConformance(PluginDataConformance, CountyConformance, ArchiveConformance):
    """What every store backend must do. Subclasses provide the ``store`` fixture."""

    max_events_folded_by_load: ClassVar[int] = 100

    @pytest.fixture
    def store(self) -> Iterator[Store]:
        """A fresh, empty store, closed afterwards. Every backend's test class overrides it."""
        raise NotImplementedError("a StoreConformance subclass provides the store fixture")
        yield  # pragma: no cover

    # -- events and state -------------------------------------------------------------------

    def test_unknown_project_has_no_state_events_or_snapshot(self, store: Store) -> None:
        """A project never committed loads as ``None`` and has no events."""
        assert store.load("nope") is None
        assert store.events("nope") == []
        assert store.snapshot_version("nope") is None
        assert store.project_ids() == []

    def test_committed_history_loads_as_the_same_state(self, store: Store) -> None:
        """A rich history's state (rounds, meetings, branches, frozensets, two time zones)
        comes back equal, and so do its events, field for field and time zone for time zone."""
        history = _rich_history("P1")
        state = ProjectState.from_events(history)
        commit_history(store, history, state)
        loaded = store.load("P1")
        assert loaded == state
        assert loaded is not None and loaded.created_at.tzinfo == SHANGHAI
        stored = store.events("P1")
        assert stored == history
        assert [repr(e.at) for e in stored] == [repr(e.at) for e in history]
        assert [(e.by, e.on_behalf_of, e.command_id) for e in stored] == [
            (e.by, e.on_behalf_of, e.command_id) for e in history
        ]

    def test_a_project_in_approval_stages_loads_as_the_same_state(self, store: Store) -> None:
        """Stages planned and run, a department's branch of an earlier stage kept with it, the
        stage and total ladders: the stored state is the folded one."""
        history = _staged_history("P1")
        state = ProjectState.from_events(history)
        assert state.stage_runs["one"].closed_branches["zj"].state == "approved"
        assert state.branches["zj"].stage == "two" and state.total_overdue_sent
        commit_history(store, history, state)
        assert store.load("P1") == state
        assert store.events("P1") == history

    def test_events_come_back_in_version_order_after_a_version(self, store: Store) -> None:
        """``events(project, after)`` returns exactly the later events, oldest first, and
        only that project's."""
        state = new_project(store, "P1")
        other = new_project(store, "P2")
        for amount in (10, 20, 30):
            state = append(store, state, [("funds_reported", {"amount": amount})])
            other = append(store, other, [("funds_reported", {"amount": -amount})])
        assert [e.version for e in store.events("P1")] == [1, 2, 3, 4]
        assert [e.payload["amount"] for e in store.events("P1", 2)] == [20, 30]
        assert store.events("P1", 4) == []
        assert {e.project for e in store.events("P2")} == {"P2"}
        loaded = store.load("P1")
        assert loaded is not None and loaded.funds == 60 and loaded.version == 4

    def test_load_folds_no_more_after_10000_events_than_after_10(self, store: Store) -> None:
        """``load`` starts from a recent snapshot, so its work does not grow with the history:
        after 10,000 events it folds as few events as after 10 (and still gets them right)."""
        short = new_project(store, "short")
        short = append(store, short, [("funds_reported", {"amount": 1})] * 9)
        long = new_project(store, "long")
        for _ in range(100):
            long = append(store, long, [("funds_reported", {"amount": 1})] * 100)
        for project, version in (("short", 10), ("long", 10_001)):
            loaded = store.load(project)
            assert loaded is not None and loaded.version == version
            assert loaded.funds == version - 1
            snapshot = store.snapshot_version(project)
            assert snapshot is not None
            assert version - snapshot <= self.max_events_folded_by_load

    def test_load_many_answers_as_load_for_each_project(self, store: Store) -> None:
        """Projects with and without events after their snapshot, a long one, one named twice
        and one that does not exist: ``load_many`` gives each existing one as ``load`` does,
        in the order first named, and leaves the unknown one out."""
        commit_history(store, _rich_history("P1"))
        tail = append(store, new_project(store, "P2"), [("funds_reported", {"amount": 1})] * 3)
        long = new_project(store, "P3")
        for _ in range(5):
            long = append(store, long, [("funds_reported", {"amount": 2})] * 7)
        named = ["P3", "nope", "P1", "P2", "P1"]
        found = store.load_many(named)
        assert list(found) == ["P3", "P1", "P2"]
        for project, state in found.items():
            assert state == store.load(project)
        assert found["P2"] == tail and found["P3"] == long
        assert store.load_many([]) == {}

    @pytest.mark.parametrize("projects", [["P1", 7], "P1", None], ids=["id", "text", "none"])
    def test_load_many_refuses_what_is_not_project_ids(self, store: Store, projects: Any) -> None:
        from approvalflow.errors import UnstorableValue

        with pytest.raises(UnstorableValue):
            store.load_many(projects)

    # -- conflicts --------------------------------------------------------------------------

    def _assert_only_first_commit(self, store: Store, state: ProjectState) -> None:
        assert [e.version for e in store.events(state.id)] == list(range(1, state.version + 1))
        assert store.load(state.id) == state
        assert store.timers(state.id) == []
        assert store.pending_notices(T0 + timedelta(days=3650)) == []
        assert store.command("late") is None

    def test_stale_expected_version_conflicts_and_writes_nothing(self, store: Store) -> None:
        """A writer that read version 1 after another moved the project to 2 gets
        ``ConcurrencyConflict``, and none of its events, timers, notices or command id is kept."""
        first = new_project(store, "P1")
        winner = append(store, first, [("funds_reported", {"amount": 5})])
        with pytest.raises(ConcurrencyConflict):
            append(
                store,
                first,
                [("funds_reported", {"amount": 7})],
                timers=TimerChanges(set=(Timer("P1", "late", T0),)),
                notices=[notice("P1", 9)],
                command=CommandRecord("late", "P1", "report", "fp", 2, 2),
            )
        self._assert_only_first_commit(store, winner)

    def test_expected_version_ahead_of_the_project_conflicts(self, store: Store) -> None:
        """An ``expected_version`` the project has not reached is refused too."""
        state = new_project(store, "P1")
        imagined = attrs.evolve(state.clone(), version=5)
        with pytest.raises(ConcurrencyConflict):
            append(store, imagined, [("funds_reported", {"amount": 1})])
        self._assert_only_first_commit(store, state)

    def test_creating_an_existing_project_conflicts(self, store: Store) -> None:
        """Two writers creating the same project: the second gets ``ConcurrencyConflict``."""
        state = new_project(store, "P1")
        with pytest.raises(ConcurrencyConflict):
            new_project(
                store,
                "P1",
                timers=TimerChanges(set=(Timer("P1", "late", T0),)),
                notices=[notice("P1", 9)],
                command=CommandRecord("late", "P1", "create", "fp", 1, 1),
            )
        self._assert_only_first_commit(store, state)
        assert store.project_ids() == ["P1"]

    def test_stale_commit_without_events_conflicts_and_writes_nothing(self, store: Store) -> None:
        """A commit that only changes timers is still checked against the version."""
        first = new_project(store, "P1")
        winner = append(store, first, [("funds_reported", {"amount": 5})])
        with pytest.raises(ConcurrencyConflict):
            append(
                store,
                first,
                timers=TimerChanges(set=(Timer("P1", "late", T0),)),
                notices=[notice("P1", 9)],
            )
        self._assert_only_first_commit(store, winner)

    def test_taken_command_id_conflicts_and_writes_nothing(self, store: Store) -> None:
        """A command id is applied once: reusing it conflicts (even at the right version) and
        writes nothing; the first record stays."""
        record = CommandRecord("cmd-1", "P1", "create", "fp-create", 1, 1)
        state = new_project(store, "P1", command=record)
        with pytest.raises(ConcurrencyConflict):
            append(
                store,
                state,
                [("funds_reported", {"amount": 5})],
                timers=TimerChanges(set=(Timer("P1", "late", T0),)),
                notices=[notice("P1", 9)],
                command=CommandRecord("cmd-1", "P1", "report", "fp-report", 2, 2),
            )
        self._assert_only_first_commit(store, state)
        assert store.command("cmd-1") == record

    def test_command_ids_are_looked_up_by_id(self, store: Store) -> None:
        """``command`` returns the stored record (which events it wrote), or ``None``."""
        state = new_project(store, "P1")
        record = CommandRecord("cmd-2", "P1", "report_funds", "fp", 2, 3)
        append(
            store,
            state,
            [("funds_reported", {"amount": 1}), ("funds_reported", {"amount": 2})],
            command=record,
        )
        assert store.command("cmd-2") == record
        assert store.command("cmd-3") is None

    # -- timers -----------------------------------------------------------------------------

    def test_timers_are_set_replaced_and_cancelled_by_key(self, store: Store) -> None:
        """Setting a timer with a key that exists replaces it; cancelling removes it; each
        project sees only its own timers, earliest first."""
        limit = Timer("P1", "branch_limit", T0 + timedelta(days=5), "zj")
        supply = Timer("P1", "supply_deadline", T0 + timedelta(days=2), "zj")
        state = new_project(store, "P1", timers=TimerChanges(set=(limit, supply)))
        new_project(store, "P2", timers=TimerChanges(set=(Timer("P2", "pre_review", T0),)))
        assert store.timers("P1") == [supply, limit]
        moved = Timer("P1", "branch_limit", T0 + timedelta(days=7), "zj")
        state = append(
            store,
            state,
            [("funds_reported", {"amount": 1})],
            timers=TimerChanges(set=(moved,), cancel=(supply.key,)),
        )
        assert store.timers("P1") == [moved]
        assert [repr(t.due) for t in store.timers("P1")] == [repr(moved.due)]
        append(store, state, timers=TimerChanges(cancel=(moved.key, ("P1", "never", ""))))
        assert store.timers("P1") == []
        assert [t.project for t in store.timers("P2")] == ["P2"]

    def test_claim_due_returns_due_timers_earliest_first(self, store: Store) -> None:
        """Only timers due at or before ``now`` are claimed, earliest first."""
        timers = (
            Timer("P1", "b", T0 + timedelta(hours=2)),
            Timer("P1", "a", T0 + timedelta(hours=1)),
            Timer("P1", "c", T0 + timedelta(hours=3), "zj"),
            Timer("P1", "d", T0 + timedelta(days=1)),
        )
        new_project(store, "P1", timers=TimerChanges(set=timers))
        claimed = store.claim_due(T0 + timedelta(hours=3))
        assert claimed == [timers[1], timers[0], timers[2]]
        assert store.claim_due(T0) == []

    def test_claim_due_respects_the_limit(self, store: Store) -> None:
        """``limit`` caps a claim; the rest stay for the next claim, in order."""
        timers = tuple(Timer("P1", f"k{i}", T0 + timedelta(minutes=i)) for i in range(5))
        new_project(store, "P1", timers=TimerChanges(set=timers))
        now = T0 + timedelta(hours=1)
        assert store.claim_due(now, limit=2) == list(timers[:2])
        assert store.claim_due(now, limit=2) == list(timers[2:4])
        assert store.claim_due(now, limit=2) == [timers[4]]

    def test_claim_due_can_keep_to_a_namespace(self, store: Store) -> None:
        """With ``prefix`` only that namespace's timers are claimed; the others stay due."""
        mine = Timer("run1-P1", "k", T0)
        other = Timer("run2-P1", "k", T0)
        new_project(store, "run1-P1", timers=TimerChanges(set=(mine,)))
        new_project(store, "run2-P1", timers=TimerChanges(set=(other,)))
        assert store.claim_due(T0, prefix="run1-") == [mine]
        assert store.claim_due(T0, prefix="run1-") == []
        assert store.claim_due(T0) == [other]

    def test_a_claimed_timer_is_leased_until_the_lease_ends(self, store: Store) -> None:
        """A claimed timer is not claimed again while its lease runs (another worker is on
        it), and is claimed again once the lease has run out (that worker died)."""
        timer = Timer("P1", "pre_review", T0)
        new_project(store, "P1", timers=TimerChanges(set=(timer,)))
        assert store.claim_due(T0) == [timer]
        assert store.claim_due(T0) == []
        assert store.claim_due(T0 + timedelta(minutes=1)) == []
        assert store.claim_due(T0 + timedelta(days=1)) == [timer]
        assert store.next_due() == T0  # leased timers are still scheduled

    def test_a_released_timer_is_claimable_at_once(self, store: Store) -> None:
        """A claimer that cannot fire a timer (its plugin is not loaded there) releases it, and
        the next claimer gets it without waiting for the lease; releasing a timer that has
        moved since leaves the moved one's lease alone."""
        timer = Timer("P1", "huguan.issue", T0)
        state = new_project(store, "P1", timers=TimerChanges(set=(timer,)))
        assert store.claim_due(T0) == [timer]
        store.release_timer(timer)
        assert store.claim_due(T0) == [timer]
        moved = Timer("P1", "huguan.issue", T0 - timedelta(hours=1))
        append(store, state, [("funds_reported", {"amount": 1})], timers=TimerChanges(set=(moved,)))
        assert store.claim_due(T0) == [moved]
        store.release_timer(timer)
        assert store.claim_due(T0) == []

    def test_setting_a_claimed_timer_again_ends_its_lease(self, store: Store) -> None:
        """A commit that sets a leased timer again makes it claimable at once; one that
        cancels it removes it for good."""
        timer = Timer("P1", "pre_review", T0)
        state = new_project(store, "P1", timers=TimerChanges(set=(timer,)))
        assert store.claim_due(T0) == [timer]
        earlier = Timer("P1", "pre_review", T0 - timedelta(hours=1))
        state = append(
            store, state, [("funds_reported", {"amount": 1})], timers=TimerChanges(set=(earlier,))
        )
        assert store.claim_due(T0) == [earlier]
        append(store, state, timers=TimerChanges(cancel=(earlier.key,)))
        assert store.claim_due(T0 + timedelta(days=2)) == []

    def test_next_due_is_the_earliest_timer(self, store: Store) -> None:
        """``next_due`` is the earliest scheduled due time, ``None`` without timers."""
        assert store.next_due() is None
        later = Timer("P1", "b", T0 + timedelta(days=2))
        sooner = Timer("P2", "a", T0 + timedelta(days=1))
        state = new_project(store, "P1", timers=TimerChanges(set=(later,)))
        new_project(store, "P2", timers=TimerChanges(set=(sooner,)))
        assert store.next_due() == sooner.due
        append(store, state, timers=TimerChanges(cancel=(later.key,)))
        assert store.next_due() == sooner.due

    def test_a_commit_with_no_events_only_cancels_a_timer(self, store: Store) -> None:
        """A commit without events (a fired timer whose rule did nothing) removes the timer
        and leaves the version and the history alone."""
        timer = Timer("P1", "pre_review", T0)
        state = new_project(store, "P1", timers=TimerChanges(set=(timer,)))
        after = append(store, state, timers=TimerChanges(cancel=(timer.key,)))
        assert after.version == 1
        assert store.timers("P1") == []
        assert store.load("P1") == state
        assert [e.version for e in store.events("P1")] == [1]
        # The version did not move, so the next writer still expects 1.
        append(store, state, [("funds_reported", {"amount": 1})])
        assert [e.version for e in store.events("P1")] == [1, 2]

    # -- the outbox -------------------------------------------------------------------------

    def test_notices_wait_in_the_outbox_oldest_first(self, store: Store) -> None:
        """Committed notices are pending, oldest first, exactly as committed."""
        first, second, third = notice("P1", 0), notice("P1", 1), notice("P2", 0, reason="late")
        new_project(store, "P1", notices=[first, second])
        new_project(store, "P2", notices=[third])
        entries = store.pending_notices(T0)
        assert [e.notice for e in entries] == [first, second, third]
        assert all(e.attempts == 0 and e.last_error is None for e in entries)
        assert entries[0].notice.recipients == ("acme", "agent1")
        assert [e.notice.id for e in store.pending_notices(T0, limit=2)] == [first.id, second.id]

    def test_a_failed_notice_waits_for_its_next_attempt(self, store: Store) -> None:
        """``mark_failed`` counts the attempt, keeps the error and hides the notice until
        ``next_attempt``."""
        new_project(store, "P1", notices=[notice("P1", 0), notice("P1", 1)])
        retry_at = T0 + timedelta(minutes=5)
        store.mark_failed("P1:1:0", "smtp refused", retry_at)
        assert [e.notice.id for e in store.pending_notices(T0)] == ["P1:1:1"]
        due = store.pending_notices(retry_at)
        assert [e.notice.id for e in due] == ["P1:1:0", "P1:1:1"]
        assert (due[0].attempts, due[0].last_error, due[0].next_attempt) == (
            1,
            "smtp refused",
            retry_at,
        )
        store.mark_failed("P1:1:0", "smtp refused again", retry_at + timedelta(hours=1))
        assert store.pending_notices(retry_at + timedelta(hours=1))[0].attempts == 2
        store.mark_failed("unknown", "ignored", retry_at)  # nothing to mark: no error

    def test_delivered_notices_leave_the_outbox(self, store: Store) -> None:
        """``mark_delivered`` removes exactly the named notices; unknown ids are ignored."""
        new_project(store, "P1", notices=[notice("P1", 0), notice("P1", 1), notice("P1", 2)])
        store.mark_delivered(["P1:1:0", "P1:1:2", "unknown"])
        assert [e.notice.id for e in store.pending_notices(T0)] == ["P1:1:1"]
        store.mark_delivered([])
        store.mark_delivered(["P1:1:1"])
        assert store.pending_notices(T0 + timedelta(days=1)) == []

    def test_claimed_notices_are_hidden_from_other_claims_while_the_lease_holds(
        self, store: Store
    ) -> None:
        """Two claims never get the same notice while its lease holds: a claim takes the
        oldest due notices, the next claim the ones after them, and then nothing. A claimed
        notice is still listed as pending (it is not delivered yet)."""
        notices = [notice("P1", i) for i in range(5)]
        new_project(store, "P1", notices=notices)
        first = store.claim_notices(T0, limit=2)
        assert [e.notice for e in first] == notices[:2]
        assert all(e.attempts == 0 and e.last_error is None for e in first)
        second = store.claim_notices(T0 + timedelta(seconds=1))
        assert [e.notice for e in second] == notices[2:]
        assert store.claim_notices(T0 + timedelta(minutes=1)) == []
        assert store.claim_notices(T0, limit=0) == []
        assert [e.notice for e in store.pending_notices(T0)] == notices

    def test_an_expired_notice_claim_can_be_claimed_again(self, store: Store) -> None:
        """A claimer that died never marks its notices: once the lease has run out they are
        claimed again, so nothing is lost."""
        new_project(store, "P1", notices=[notice("P1", 0), notice("P1", 1)])
        assert [e.notice.id for e in store.claim_notices(T0, limit=1)] == ["P1:1:0"]
        assert [e.notice.id for e in store.claim_notices(T0)] == ["P1:1:1"]
        later = T0 + timedelta(days=1)
        assert [e.notice.id for e in store.claim_notices(later)] == ["P1:1:0", "P1:1:1"]
        assert store.claim_notices(later) == []

    def test_a_failed_delivery_is_released_and_claimed_again_at_its_next_attempt(
        self, store: Store
    ) -> None:
        """``mark_failed`` ends the claim and counts the attempt: the notice is not claimed
        before ``next_attempt``, and is claimed then (long before the lease would end), with
        its attempts and error."""
        new_project(store, "P1", notices=[notice("P1", 0)])
        assert len(store.claim_notices(T0)) == 1
        retry_at = T0 + timedelta(seconds=30)
        store.mark_failed("P1:1:0", "smtp refused", retry_at)
        assert store.claim_notices(T0 + timedelta(seconds=29)) == []
        again = store.claim_notices(retry_at)
        assert [(e.notice.id, e.attempts, e.last_error) for e in again] == [
            ("P1:1:0", 1, "smtp refused")
        ]
        assert again[0].next_attempt == retry_at
        assert store.claim_notices(retry_at) == []

    def test_claims_deliver_every_notice_and_lose_none(self, store: Store) -> None:
        """Claiming in small batches, failing some notices once, marking the rest delivered:
        every notice is delivered, each once, and the outbox ends empty."""
        notices = [notice(f"P{p}", i) for p in range(3) for i in range(7)]
        for p in range(3):
            new_project(store, f"P{p}", notices=[n for n in notices if n.project == f"P{p}"])
        delivered: list[str] = []
        now = T0
        far = T0 + timedelta(days=1)
        while store.pending_notices(far) and now < far:
            done = []
            for entry in store.claim_notices(now, limit=4):
                if entry.notice.id.endswith(":3") and entry.attempts == 0:
                    store.mark_failed(entry.notice.id, "busy", now + timedelta(seconds=30))
                else:
                    done.append(entry.notice.id)
            store.mark_delivered(done)
            delivered.extend(done)
            now += timedelta(seconds=10)
        assert sorted(delivered) == sorted(n.id for n in notices)
        assert store.pending_notices(T0 + timedelta(days=1)) == []

    def test_notices_committed_claimed_are_not_claimed_by_others(self, store: Store) -> None:
        """A commit with ``claim_notices_at`` writes its notices claimed (its caller delivers
        them at once): no claim takes them before the lease ends; a failure releases them."""
        new_project(store, "P1", notices=[notice("P1", 0), notice("P1", 1)])
        state = new_project(store, "P2")
        events, after = build_events(state, [("funds_reported", {"amount": 1})], T0)
        store.commit(
            project="P2",
            expected_version=1,
            events=events,
            timers=NO_TIMERS,
            notices=[notice("P2", 0), notice("P2", 1)],
            command=None,
            state=after,
            claim_notices_at=T0,
        )
        assert [e.notice.id for e in store.claim_notices(T0)] == ["P1:1:0", "P1:1:1"]
        assert [e.notice.id for e in store.pending_notices(T0)] == [
            "P1:1:0",
            "P1:1:1",
            "P2:1:0",
            "P2:1:1",
        ]
        store.mark_failed("P2:1:1", "smtp refused", T0 + timedelta(seconds=30))
        assert [e.notice.id for e in store.claim_notices(T0 + timedelta(seconds=30))] == ["P2:1:1"]
        later = T0 + timedelta(days=1)
        assert [e.notice.id for e in store.claim_notices(later)] == [
            "P1:1:0",
            "P1:1:1",
            "P2:1:0",
            "P2:1:1",
        ]

    # -- projects ---------------------------------------------------------------------------

    def test_project_ids_come_in_creation_order(self, store: Store) -> None:
        """``project_ids`` lists every project once, in the order they were created."""
        for project in ("P3", "P1", "P2"):
            state = new_project(store, project)
            append(store, state, [("funds_reported", {"amount": 1})])
        assert store.project_ids() == ["P3", "P1", "P2"]

    # -- rule sets --------------------------------------------------------------------------

    def test_a_rule_set_is_kept_under_its_fingerprint(self, store: Store) -> None:
        """``rule_set`` gives back the exact text saved; an unknown fingerprint gives None."""
        text = '{"rules_version": "2026-2", "time_limit_wd": {"zj": 3}, "名": "规则"}'
        store.save_rule_set("a" * 64, "2026-2", text)
        assert store.rule_set("a" * 64) == text
        assert store.rule_set("b" * 64) is None

    def test_a_rule_set_is_never_replaced(self, store: Store) -> None:
        """Saving a fingerprint again (another engine process) keeps the first text."""
        store.save_rule_set("a" * 64, "1", '{"rules_version": "1"}')
        store.save_rule_set("a" * 64, "1", '{"rules_version": "changed"}')
        assert store.rule_set("a" * 64) == '{"rules_version": "1"}'

    # -- project codes ----------------------------------------------------------------------

    def test_a_project_is_found_by_its_code(self, store: Store) -> None:
        """``project_with_code`` names the project created with a code; others are None."""
        event = created_event("P1", project_code="2026-140527-30-03-012345")
        store.commit(
            project="P1",
            expected_version=0,
            events=[event],
            timers=NO_TIMERS,
            notices=(),
            command=None,
            state=ProjectState.created(event),
        )
        new_project(store, "P2")
        assert store.project_with_code("2026-140527-30-03-012345") == "P1"
        assert store.project_with_code("2026-140527-30-03-000000") is None

    def test_a_taken_code_conflicts_and_writes_nothing(self, store: Store) -> None:
        """A second project created with the same code: ``ConcurrencyConflict``, nothing stored."""
        for project in ("P1", "P2"):
            event = created_event(project, project_code="2026-140527-30-03-012345")
            commit = functools.partial(
                store.commit,
                project=project,
                expected_version=0,
                events=[event],
                timers=NO_TIMERS,
                notices=(),
                command=None,
                state=ProjectState.created(event),
            )
            if project == "P1":
                commit()
            else:
                with pytest.raises(ConcurrencyConflict):
                    commit()
        assert store.load("P2") is None and store.events("P2") == []
        assert store.project_with_code("2026-140527-30-03-012345") == "P1"

    # -- reports ----------------------------------------------------------------------------

    def _report_projects(self, store: Store) -> dict[str, ProjectState]:
        """Three projects of two teams, built one commit at a time: milestones in July and
        August (one at 00:00 on 1 August, which scores in July; one reached twice; one with
        negative points), signing, funds, stages left (one entered again, so no longer left)
        and departments decided (one decided and then revoked)."""
        day = timedelta(days=1)
        aug1 = datetime(2026, 8, 1, 0, 0, tzinfo=SHANGHAI)
        aug3 = datetime(2026, 8, 3, 9, 0, tzinfo=SHANGHAI)
        p1 = _created(store, "P1", "east")
        p1_steps: list[tuple[datetime, list[tuple[str, dict[str, Any]]]]] = [
            (T0 + day, [("stage_changed", {"to": "pre_review"})]),
            (T0 + day, [("milestone_reached", {"milestone": "submitted", "points": 1})]),
            (T0 + 3 * day, [("stage_changed", {"to": "decision"})]),
            (T0 + 3 * day, [("milestone_reached", {"milestone": "decided", "points": 2})]),
            (T0 + 4 * day, [("milestone_reached", {"milestone": "decided", "points": 7})]),
            (
                aug1,
                [
                    ("signed", {"agreed_investment": 1_000_000}),
                    ("milestone_reached", {"milestone": "signed", "points": 3}),
                ],
            ),
            (aug3, [("stage_changed", {"to": "approval"})]),
            (
                aug3,
                [
                    ("branch_opened", {"department": d, "due": None, "provisional": False})
                    for d in ("zj", "fgw")
                ],
            ),
            (aug3 + 4 * day, [_branch_to("zj", "approved"), _branch_to("fgw", "approved")]),
            (aug3 + 5 * day, [_branch_to("fgw", "revoked")]),
            (aug3 + 5 * day, [("funds_reported", {"amount": 400_000})]),
            (aug3 + 7 * day, [("milestone_reached", {"milestone": "construction", "points": 5})]),
        ]
        for at, specs in p1_steps:
            p1 = append(store, p1, specs, at=at)
        p2 = _created(store, "P2", "west", at=T0 + day)
        p2_steps: list[tuple[datetime, list[tuple[str, dict[str, Any]]]]] = [
            (T0 + 2 * day, [("stage_changed", {"to": "pre_review"})]),
            (T0 + 6 * day, [("stage_changed", {"to": "lead"})]),  # lead entered again
            (
                aug3,
                [
                    ("signed", {"agreed_investment": 3_000_000}),
                    ("milestone_reached", {"milestone": "signed", "points": 4}),
                    ("funds_reported", {"amount": 100}),
                ],
            ),
        ]
        for at, specs in p2_steps:
            p2 = append(store, p2, specs, at=at)
        q3 = _created(store, "Q3", "east")
        q3 = append(
            store,
            q3,
            [("milestone_reached", {"milestone": "conduct.2", "points": -5})],
            at=T0 + day,
        )
        return {"P1": p1, "P2": p2, "Q3": q3}

    def test_milestone_points_sum_each_milestone_once_by_team_and_month(self, store: Store) -> None:
        """Points per team over all time or one month (00:00 on the 1st is the month before),
        each milestone of a project counted once at its first value, negative points too;
        ``prefix`` and ``projects`` choose the projects (unknown ids are ignored)."""
        states = self._report_projects(store)
        assert store.milestone_points() == {"east": 1 + 2 + 3 + 5 - 5, "west": 4}
        assert store.milestone_points() == points_by_team(states.values())
        assert store.milestone_points("2026-07") == {"east": 1 + 2 + 3 - 5}
        assert store.milestone_points("2026-08") == {"east": 5, "west": 4}
        assert store.milestone_points("2026-09") == {}
        assert store.milestone_points(prefix="P") == {"east": 11, "west": 4}
        assert store.milestone_points("2026-07", prefix="Q") == {"east": -5}
        assert store.milestone_points(projects=["P2", "nope"]) == {"west": 4}
        assert store.milestone_points("2026-08", "P", ["P1", "Q3"]) == {"east": 5}
        assert store.milestone_points(projects=[]) == {}

    def test_metric_inputs_count_signing_funds_and_intervals(self, store: Store) -> None:
        """``metric_inputs`` equals ``rules.metrics.metric_inputs`` over the loaded states:
        signed projects and their amount, the signed ones started, all funds, and how many
        stages left and departments decided ran between each pair of days."""
        states = self._report_projects(store)
        found = store.metric_inputs()
        assert found == metric_inputs(states.values())
        assert (found.signed_count, found.signed_amount, found.started, found.producing) == (
            2,
            4_000_000,
            1,
            0,
        )
        assert found.funds == 400_100
        day = metric_day(T0).toordinal()
        assert found.stage_spans[("lead", day, day + 1)] == 1  # P1's; P2's lead was re-entered
        assert ("pre_review", day + 1, day + 3) in found.stage_spans
        assert ("pre_review", day + 2, day + 6) in found.stage_spans
        aug3 = datetime(2026, 8, 3, tzinfo=SHANGHAI).date().toordinal()
        assert found.department_spans == {("zj", aug3, aug3 + 4): 1}  # fgw was revoked
        assert store.metric_inputs(["P2", "nope"]) == metric_inputs([states["P2"]])
        assert store.metric_inputs([]) == MetricInputs()

    def test_team_metric_inputs_split_the_inputs_by_team(self, store: Store) -> None:
        """One ``MetricInputs`` per team with a project (among ``projects``)."""
        states = self._report_projects(store)
        assert store.team_metric_inputs() == {
            "east": metric_inputs([states["P1"], states["Q3"]]),
            "west": metric_inputs([states["P2"]]),
        }
        assert store.team_metric_inputs(["Q3"]) == {"east": metric_inputs([states["Q3"]])}
        assert store.team_metric_inputs([]) == {}

    def test_reports_see_an_interval_that_is_gone(self, store: Store) -> None:
        """A stage left and then entered again, and a department decided and then revoked, no
        longer count; the same department decided again counts its new interval."""
        state = _created(store, "P1", "east")
        day = timedelta(days=1)
        state = append(store, state, [("stage_changed", {"to": "approval"})], at=T0 + day)
        opened = ("branch_opened", {"department": "zj", "due": None, "provisional": False})
        state = append(store, state, [opened], at=T0 + day)
        state = append(store, state, [_branch_to("zj", "approved")], at=T0 + 2 * day)
        assert set(store.metric_inputs().stage_spans) == {("lead", *_days(T0, T0 + day))}
        assert store.metric_inputs().department_spans == {("zj", *_days(T0 + day, T0 + 2 * day)): 1}
        state = append(store, state, [("stage_changed", {"to": "lead"})], at=T0 + 3 * day)
        state = append(store, state, [_branch_to("zj", "revoked")], at=T0 + 3 * day)
        assert store.metric_inputs() == metric_inputs([state])
        assert store.metric_inputs().department_spans == {}
        assert set(store.metric_inputs().stage_spans) == {
            ("approval", *_days(T0 + day, T0 + 3 * day))
        }
        state = append(store, state, [opened], at=T0 + 4 * day)
        state = append(store, state, [_branch_to("zj", "approved")], at=T0 + 6 * day)
        assert store.metric_inputs().department_spans == {
            ("zj", *_days(T0 + 4 * day, T0 + 6 * day)): 1
        }
        assert store.metric_inputs() == metric_inputs([state])

    def test_amounts_past_64_bits_are_summed_exactly(self, store: Store) -> None:
        """Agreed investments and funds far past a 64-bit column are kept and summed exactly,
        and the reports of every other project go on working."""
        huge = 10**30
        p1 = _created(store, "P1", "east")
        append(
            store,
            p1,
            [
                ("signed", {"agreed_investment": huge}),
                ("milestone_reached", {"milestone": "signed", "points": 3}),
                ("funds_reported", {"amount": 2**63 - 1}),
            ],
        )
        p2 = _created(store, "P2", "east")
        append(store, p2, [("funds_reported", {"amount": 2**63 - 1})])
        p3 = _created(store, "P3", "west")
        p3 = append(store, p3, [("funds_reported", {"amount": 5})])
        found = store.metric_inputs()
        assert (found.signed_count, found.signed_amount) == (1, huge)
        assert found.funds == 2 * (2**63 - 1) + 5
        teams = store.team_metric_inputs()
        assert teams["east"].funds == 2 * (2**63 - 1)
        assert teams["west"] == metric_inputs([p3])
        assert store.metric_inputs(["P3"]) == metric_inputs([p3])

    # -- the task list's read model ----------------------------------------------------------

    def test_task_rows_are_each_project_s_open_items_under_their_parties(
        self, store: Store
    ) -> None:
        """Each project's task rows (``approvalflow.tasks.task_rows``) are kept with its
        commit, selected by party, and replaced by the project's next commit."""
        p1 = new_project(store, "P1")
        q2 = new_project(store, "Q2", at=T0 + timedelta(hours=1))
        rows = task_rows(p1) | task_rows(q2)
        parties = {row.party for row in rows}
        assert rows
        assert set(store.task_rows(parties) or ()) == rows
        some = sorted(parties)[0]
        assert set(store.task_rows([some, "actor:nobody"]) or ()) == {
            row for row in rows if row.party == some
        }
        assert store.task_rows([]) == []
        assert store.task_rows(["actor:nobody"]) == []
        moved = append(store, p1, [("stage_changed", {"to": "negotiating"})])
        assert task_rows(moved) != task_rows(p1)
        after = task_rows(moved) | task_rows(q2)
        wanted = parties | {row.party for row in after}
        assert set(store.task_rows(wanted) or ()) == after
        done = append(store, moved, [("stage_changed", {"to": "terminated"})])
        assert task_rows(done) == frozenset()
        assert set(store.task_rows(wanted) or ()) == task_rows(q2)

    def test_actor_events_are_what_each_actor_sent_by_project_and_version(
        self, store: Store
    ) -> None:
        """The 已办 index: every event sent by an actor or on their behalf, and each project's
        first event (its name)."""
        p1 = new_project(store, "P1")
        new_project(store, "Q2")
        moved = append(store, p1, [("stage_changed", {"to": "negotiating"})] * 2)
        assert [(e.project, e.version) for e in store.actor_events("rec1")] == [
            ("P1", 1),
            ("Q2", 1),
        ]
        assert [(e.project, e.version) for e in store.actor_events("officer1")] == [
            ("P1", 2),
            ("P1", 3),
        ]
        assert store.actor_events("nobody") == []
        behalf = Event(
            "P1", 4, "stage_changed", T0, {"to": "lead"}, by="agent1", on_behalf_of="acme"
        )
        after = moved.clone()
        after.apply(behalf)
        store.commit(
            project="P1",
            expected_version=3,
            events=[behalf],
            timers=NO_TIMERS,
            notices=(),
            command=None,
            state=after,
        )
        assert store.actor_events("acme") == [behalf]
        assert store.actor_events("agent1") == [behalf]
        firsts = store.first_events(["P1", "Q2", "NOPE"])
        assert {p: (e.version, e.payload["name"]) for p, e in firsts.items()} == {
            "P1": (1, "Project P1"),
            "Q2": (1, "Project Q2"),
        }
        assert store.first_events([]) == {}

    # -- values no store keeps ---------------------------------------------------------------

    @pytest.mark.parametrize(
        "command_id",
        ["cmd\x00nul", "c" * 100_000, 12345, "x" * (MAX_KEY_LENGTH + 1), "lone\ud800"],
        ids=["nul", "100kB", "int", "one-too-long", "surrogate"],
    )
    def test_a_command_id_the_store_cannot_keep_is_refused_and_nothing_is_written(
        self, store: Store, command_id: Any
    ) -> None:
        """A command id with a NUL, too long, not text or not encodable is refused with
        ``UnstorableValue`` (an ``ApprovalflowError``), and the commit writes nothing."""
        state = new_project(store, "P1")
        with pytest.raises(UnstorableValue, match="command id"):
            append(
                store,
                state,
                [("funds_reported", {"amount": 5})],
                timers=TimerChanges(set=(Timer("P1", "late", T0),)),
                notices=[notice("P1", 9)],
                command=CommandRecord(command_id, "P1", "report", "fp", 2, 2),
            )
        self._assert_only_first_commit(store, state)
        with pytest.raises(UnstorableValue):
            store.command(command_id)

    def test_a_50_mb_command_id_is_not_stored(self, store: Store) -> None:
        """The store's own bound on ids holds whatever the caller checked before."""
        with pytest.raises(UnstorableValue, match=f"at most {MAX_KEY_LENGTH}"):
            new_project(
                store, "P1", command=CommandRecord("c" * 50_000_000, "P1", "create", "fp", 1, 1)
            )
        assert store.project_ids() == [] and store.load("P1") is None

    @pytest.mark.parametrize("project", ["P\x001", "P" * (MAX_KEY_LENGTH + 1), "P\udfff"])
    def test_a_project_id_the_store_cannot_keep_is_refused(
        self, store: Store, project: str
    ) -> None:
        with pytest.raises(UnstorableValue, match="project id"):
            new_project(store, project)
        assert store.project_ids() == []
        with pytest.raises(UnstorableValue, match="project id"):
            store.load(project)

    # -- the store's record of its plugins ---------------------------------------------------

    def test_a_new_store_has_recorded_no_plugins(self, store: Store) -> None:
        assert store.recorded_plugins() == ()

    def test_plugins_are_recorded_once_in_the_order_first_recorded(self, store: Store) -> None:
        """``record_plugins`` adds names after those recorded already and never twice."""
        store.record_plugins(["huguan", "console"])
        store.record_plugins([])
        store.record_plugins(["console", "gaoqing", "huguan"])
        assert store.recorded_plugins() == ("huguan", "console", "gaoqing")

    def test_a_plugin_name_the_store_cannot_keep_is_refused(self, store: Store) -> None:
        with pytest.raises(UnstorableValue, match="plugin name"):
            store.record_plugins(["good", "bad\x00"])
        assert store.recorded_plugins() == ()


def _created(store: Store, project: str, team: str, at: datetime = T0) -> ProjectState:
    """Commit a project of ``team``'s ``created`` event; return its state."""
    event = created_event(project, at, team=team)
    state = ProjectState.created(event)
    store.commit(
        project=project,
        expected_version=0,
        events=[event],
        timers=NO_TIMERS,
        notices=(),
        command=None,
        state=state,
    )
    return state


def _branch_to(department: str, to: str) -> tuple[str, dict[str, Any]]:
    return ("branch_changed", {"department": department, "to": to, "trigger": to})


def _days(first: datetime, last: datetime) -> tuple[int, int]:
    return metric_day(first).toordinal(), metric_day(last).toordinal()


# -- many processes ---------------------------------------------------------------------------


class _Gate(Protocol):
    """A barrier shared with child processes (a ``Manager().Barrier`` proxy)."""

    def wait(self, timeout: float | None = None) -> int: ...


@attrs.frozen
class ConcurrentRun:
    """What ``run_concurrent_writers`` did: the events as stored, and how often each process
    lost a race and retried."""

    project: str
    events: tuple[Event, ...]
    conflicts: tuple[int, ...]


def _add_events(url: str, project: str, worker: int, count: int, start: _Gate) -> int:
    """In a child process: add ``count`` events to ``project``, retrying each on conflict;
    return how many conflicts it met."""
    store = open_store(url)
    conflicts = 0
    try:
        start.wait(60)
        for number in range(count):
            command_id = f"{project}-w{worker}-{number}"
            while True:
                state = store.load(project)
                assert state is not None
                events, after = build_events(
                    state,
                    [("funds_reported", {"amount": 1, "worker": worker, "number": number})],
                    T0,
                    command_id=command_id,
                )
                try:
                    store.commit(
                        project=project,
                        expected_version=state.version,
                        events=events,
                        timers=NO_TIMERS,
                        notices=(),
                        command=CommandRecord(
                            command_id, project, "report_funds", "fp", after.version, after.version
                        ),
                        state=after,
                    )
                except ConcurrencyConflict:
                    conflicts += 1
                    continue
                break
    finally:
        store.close()
    return conflicts


def run_concurrent_writers(
    url: str, *, project: str = "race", processes: int = 4, events_each: int = 20
) -> ConcurrentRun:
    """Create ``project`` in the store at ``url``, then let ``processes`` OS processes add
    ``events_each`` events each to it at once, every one retrying on ``ConcurrencyConflict``.

    Returns the stored history; the caller asserts nothing was lost or applied twice.
    """
    store = open_store(url, create=True)
    try:
        new_project(store, project)
    finally:
        store.close()
    # spawn, not fork: each child opens its own connection from nothing.
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager, ProcessPoolExecutor(processes, context) as pool:
        # Every process starts writing at the same moment, so their commits really collide.
        start = manager.Barrier(processes)
        futures = [
            pool.submit(_add_events, url, project, worker, events_each, start)
            for worker in range(processes)
        ]
        conflicts = tuple(future.result(timeout=300) for future in futures)
    store = open_store(url)
    try:
        events = tuple(store.events(project))
    finally:
        store.close()
    return ConcurrentRun(project, events, conflicts)


def _claim_until_none_left(
    url: str, now: datetime, limit: int, start: _Gate
) -> list[tuple[str, str, str]]:
    """In a child process: claim due timers ``limit`` at a time until none is left to claim."""
    store = open_store(url)
    claimed: list[tuple[str, str, str]] = []
    try:
        start.wait(60)
        while batch := store.claim_due(now, limit):
            claimed.extend(timer.key for timer in batch)
    finally:
        store.close()
    return claimed


def run_concurrent_claimers(
    url: str, *, project: str = "claims", timers: int = 120, processes: int = 4, limit: int = 5
) -> tuple[list[tuple[str, str, str]], ...]:
    """Create ``project`` with ``timers`` due timers in the store at ``url``, then let
    ``processes`` OS processes claim them at once, ``limit`` at a time, until none is left.

    Returns the keys each process claimed; the caller asserts each timer went to exactly one.
    """
    due = tuple(Timer(project, f"kind{i:04d}", T0 + timedelta(seconds=i)) for i in range(timers))
    store = open_store(url, create=True)
    try:
        new_project(store, project, timers=TimerChanges(set=due))
    finally:
        store.close()
    return _at_once(processes, _claim_until_none_left, url, T0 + timedelta(days=1), limit)


def _at_once(processes: int, target: Callable[..., _T], *args: Any) -> tuple[_T, ...]:
    """``target(*args, start)`` in ``processes`` OS processes that wait at ``start`` (a
    barrier) so they really run at the same moment; their results in order."""
    # spawn, not fork: each child opens its own connection from nothing.
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager, ProcessPoolExecutor(processes, context) as pool:
        start = manager.Barrier(processes)
        futures = [pool.submit(target, *args, start) for _ in range(processes)]
        return tuple(future.result(timeout=300) for future in futures)


def _deliver_until_none_left(url: str, now: datetime, limit: int, start: _Gate) -> list[str]:
    """In a child process: claim notices ``limit`` at a time and "deliver" them until none is
    left; each notice whose index is a multiple of 5 fails on its first attempt, released to
    be claimed again at once (by whichever process comes first). Returns the ids delivered."""
    store = open_store(url)
    delivered: list[str] = []
    try:
        start.wait(60)
        while batch := store.claim_notices(now, limit):
            done = []
            for entry in batch:
                index = int(entry.notice.id.rsplit(":", 1)[1])
                if index % 5 == 0 and entry.attempts == 0:
                    store.mark_failed(entry.notice.id, "channel busy", now)
                else:
                    done.append(entry.notice.id)
            delivered.extend(done)
            store.mark_delivered(done)
    finally:
        store.close()
    return delivered


def run_concurrent_notice_claimers(
    url: str, *, project: str = "outbox", notices: int = 120, processes: int = 4, limit: int = 5
) -> tuple[list[str], ...]:
    """Commit ``project`` with ``notices`` notices in the store at ``url``, then let
    ``processes`` OS processes claim and deliver them at once, ``limit`` at a time, each
    fifth notice failing once, until none is left.

    Returns the notice ids each process delivered; the caller asserts each went exactly once
    and that the outbox is empty.
    """
    store = open_store(url, create=True)
    try:
        new_project(store, project, notices=[notice(project, i) for i in range(notices)])
    finally:
        store.close()
    return _at_once(processes, _deliver_until_none_left, url, T0 + timedelta(minutes=1), limit)

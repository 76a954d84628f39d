"""The in-memory store: the reference backend, and the default for scenarios and tests."""

from __future__ import annotations

import heapq
import threading
from collections.abc import Collection, Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any

from approvalflow.errors import ConcurrencyConflict, NotArchivable, ProjectArchived, UnknownProject
from approvalflow.model import Event, Notice, Timer, TimerChanges
from approvalflow.project import ProjectState
from approvalflow.stores.base import (
    DEFAULT_COUNTY,
    CommandRecord,
    OutboxEntry,
    checked_county,
    created_code,
)
from approvalflow.stores.errors import checked_key, checked_keys
from approvalflow.stores.projections import (
    CountsRow,
    DueGroup,
    ReadModel,
    TaskRow,
    added_counts,
    all_task_rows,
    default_read_model,
    due_groups_of_rows,
    keeps_tasks,
)
from approvalflow.stores.serialization import to_epoch_us
from approvalflow.stores.tokens import MemoryTokens

__all__ = ["MemoryStore"]

_LEASE = timedelta(minutes=5)


class MemoryStore(MemoryTokens):
    """Everything in dictionaries, guarded by one lock. Lost when the process ends.

    The reports are computed from the states kept, by the read model (default
    ``approvalflow.readmodels``'), as the SQL stores compute them from its rows.

    The task list's rows and the index of who did what are kept by party and by actor, and
    brought up to date when they are read: a commit only marks its project, so the command
    path derives nothing, and a read derives the rows of the projects committed since the
    last one (``_refresh``).

    Counties: each county's data is a store object of its own (its own dictionaries and lock),
    made on first use by ``for_county`` and shared by every view of the store, so a view cannot
    reach another county's data by any key. The unscoped store holds ``DEFAULT_COUNTY``'s, and
    ``for_county(DEFAULT_COUNTY)`` is a view sharing those very dictionaries. The tokens are the
    store's (shared by every county), as in the SQL stores' ``api_tokens``.
    """

    def __init__(self, *, read_model: ReadModel | None = None) -> None:
        self._init_data(read_model)
        self._county: str | None = None
        self._token_rows = {}
        # County -> the object holding that county's data; one dictionary for every view.
        self._counties: dict[str, MemoryStore] = {}
        self._counties_lock = threading.Lock()
        self._counties[DEFAULT_COUNTY] = self._view(DEFAULT_COUNTY)

    def _view(self, county: str) -> MemoryStore:
        """A store object sharing this one's data (every container is shared, none is ever
        replaced), under ``county``."""
        view = object.__new__(MemoryStore)
        view.__dict__.update(self.__dict__)
        view._county = county
        return view

    @property
    def county(self) -> str | None:
        return self._county

    def for_county(self, county: str) -> MemoryStore:
        checked_county(county)
        with self._counties_lock:
            found = self._counties.get(county)
            if found is None:
                found = object.__new__(MemoryStore)
                found._init_data(self._read_model)
                found._county = county
                found._token_rows = self._token_rows
                found._counties = self._counties
                found._counties_lock = self._counties_lock
                self._counties[county] = found
            return found

    def counties(self) -> list[str]:
        with self._counties_lock:
            return sorted(county for county, data in self._counties.items() if data._events)

    def _init_data(self, read_model: ReadModel | None) -> None:
        self._read_model = default_read_model() if read_model is None else read_model
        self._plugins: list[str] = []
        self._lock = threading.Lock()
        self._events: dict[str, list[Event]] = {}
        self._states: dict[str, ProjectState] = {}
        self._commands: dict[str, CommandRecord] = {}
        self._timers: dict[tuple[str, str, str], Timer] = {}
        # A heap of (due, key) with lazy deletion: cancelled or moved timers are skipped on pop.
        self._heap: list[tuple[datetime, tuple[str, str, str]]] = []
        self._leases: dict[tuple[str, str, str], datetime] = {}
        self._outbox: dict[str, OutboxEntry] = {}
        self._rule_sets: dict[str, str] = {}
        self._codes: dict[str, str] = {}
        # Notice id -> the end of the claim on it (one claimer here: this store's callers).
        self._notice_claims: dict[str, datetime] = {}
        # The task rows and the 已办 index, as of the last read; projects committed since.
        self._stale: set[str] = set()
        self._tasks: dict[str, frozenset[TaskRow]] = {}
        self._by_party: dict[str, dict[str, list[TaskRow]]] = {}
        self._keeps_tasks = keeps_tasks(self._read_model)
        self._indexed: dict[str, int] = {}
        self._by_actor: dict[str, list[tuple[str, int]]] = {}
        # Project -> the archive it was packed into (the events stay as they are: a memory
        # store has no rows to save; it refuses commits to it as the SQL stores do).
        self._archived: dict[str, str] = {}

    def load(self, project: str) -> ProjectState | None:
        return self._states.get(checked_key("project id", project))

    # Nothing to ask: the states are this object's own, always current.
    load_for_command = load

    def load_many(self, projects: Collection[str]) -> dict[str, ProjectState]:
        found = (self._states.get(project) for project in checked_keys("project id", projects))
        return {state.id: state for state in found if state is not None}

    def snapshot_version(self, project: str) -> int | None:
        # Every commit keeps the state it was given: a load never folds an event.
        state = self._states.get(project)
        return state.version if state is not None else None

    def events(self, project: str, after_version: int = 0) -> list[Event]:
        checked_key("project id", project)
        return list(self._events.get(project, ())[after_version:])

    def commit(
        self,
        *,
        project: str,
        expected_version: int,
        events: Sequence[Event],
        timers: TimerChanges,
        notices: Sequence[Notice],
        command: CommandRecord | None,
        state: ProjectState,
        claim_notices_at: datetime | None = None,
    ) -> None:
        # The keys the SQL stores would refuse, refused here too (before anything changes).
        checked_key("project id", project)
        if command is not None:
            checked_key("command id", command.command_id)
        for notice in notices:
            checked_key("notice id", notice.id)
        with self._lock:
            history = self._events.get(project)
            current = len(history) if history is not None else 0
            if current != expected_version:
                raise ConcurrencyConflict(
                    f"{project} is at version {current}, not {expected_version}"
                )
            if command is not None and command.command_id in self._commands:
                raise ConcurrencyConflict(f"command id {command.command_id!r} is taken")
            archive = self._archived.get(project)
            if archive is not None:
                raise ProjectArchived(
                    f"{project} is archived (archive {archive}): it is read as before, and no "
                    "command or timer changes it again"
                )
            code = created_code(expected_version, events)
            if code is not None and code in self._codes:
                raise ConcurrencyConflict(f"project code {code} is taken")
            if code is not None:
                self._codes[code] = project
            if history is None:
                history = self._events[project] = []
            history.extend(events)
            self._states[project] = state
            self._stale.add(project)
            if command is not None:
                self._commands[command.command_id] = command
            for key in timers.cancel:
                self._timers.pop(key, None)
                self._leases.pop(key, None)
            for timer in timers.set:
                self._timers[timer.key] = timer
                self._leases.pop(timer.key, None)
                heapq.heappush(self._heap, (timer.due, timer.key))
            for notice in notices:
                self._outbox[notice.id] = OutboxEntry(notice)
                if claim_notices_at is not None:
                    self._notice_claims[notice.id] = claim_notices_at + _LEASE
                else:
                    self._notice_claims.pop(notice.id, None)

    def command(self, command_id: str) -> CommandRecord | None:
        return self._commands.get(checked_key("command id", command_id))

    def archive_of(self, project: str) -> str | None:
        return self._archived.get(checked_key("project id", project))

    def archive(self, project: str, archive: str, expected_version: int) -> None:
        from approvalflow.stores.archives import checked_archive_name, unarchivable

        checked_key("project id", project)
        name = checked_archive_name(archive)
        with self._lock:
            state = self._states.get(project)
            if state is None:
                raise UnknownProject(f"no project {project!r}")
            held = self._archived.get(project)
            if held is not None:
                raise NotArchivable(f"{project} is archived already (archive {held})")
            refusal = unarchivable(self._read_model, state, expected_version)
            if refusal is not None:
                raise refusal
            timers = [key for key in self._timers if key[0] == project]
            if timers:
                raise NotArchivable(
                    f"{project} still has {len(timers)} timer(s): a finished project has none"
                )
            self._archived[project] = name

    def save_rule_set(self, fingerprint: str, rules_version: str, data: str) -> None:
        with self._lock:
            self._rule_sets.setdefault(fingerprint, data)

    def rule_set(self, fingerprint: str) -> str | None:
        return self._rule_sets.get(fingerprint)

    def project_with_code(self, code: str) -> str | None:
        return self._codes.get(code)

    def claim_due(self, now: datetime, limit: int = 100, prefix: str = "") -> list[Timer]:
        with self._lock:
            claimed: list[Timer] = []
            skipped: list[tuple[datetime, tuple[str, str, str]]] = []
            while self._heap and self._heap[0][0] <= now and len(claimed) < limit:
                due, key = heapq.heappop(self._heap)
                timer = self._timers.get(key)
                if timer is None or timer.due != due:
                    continue  # cancelled or moved since it was pushed
                lease = self._leases.get(key)
                if (lease is not None and lease > now) or not key[0].startswith(prefix):
                    skipped.append((due, key))
                    continue
                self._leases[key] = now + _LEASE
                claimed.append(timer)
                skipped.append((due, key))  # stays scheduled until a commit removes it
            for item in skipped:
                heapq.heappush(self._heap, item)
            return claimed

    def release_timer(self, timer: Timer) -> None:
        with self._lock:
            stored = self._timers.get(timer.key)
            if stored is not None and stored.due == timer.due:
                self._leases.pop(timer.key, None)

    def next_due(self) -> datetime | None:
        with self._lock:
            while self._heap:
                due, key = self._heap[0]
                timer = self._timers.get(key)
                if timer is not None and timer.due == due:
                    return due
                heapq.heappop(self._heap)
            return None

    def timers(self, project: str) -> list[Timer]:
        return sorted(
            (t for t in self._timers.values() if t.project == project), key=lambda t: t.due
        )

    def project_ids(self) -> list[str]:
        return list(self._events)

    def _chosen(
        self, prefix: str = "", projects: Collection[str] | None = None
    ) -> Iterator[ProjectState]:
        states = self._states
        if projects is None:
            chosen: Iterator[ProjectState] = iter(list(states.values()))
        else:
            found = (states.get(p) for p in dict.fromkeys(projects))
            chosen = iter([s for s in found if s is not None])
        return (s for s in chosen if s.id.startswith(prefix)) if prefix else chosen

    def milestone_points(
        self,
        month: str | None = None,
        prefix: str = "",
        projects: Collection[str] | None = None,
    ) -> dict[str, int]:
        return self._read_model.points_of_states(self._chosen(prefix, projects), month)

    def milestone_points_by_kind(
        self,
        month: str | None = None,
        prefix: str = "",
        projects: Collection[str] | None = None,
    ) -> dict[str, dict[str, int]]:
        return self._read_model.points_by_milestone_of_states(self._chosen(prefix, projects), month)

    def metric_inputs(self, projects: Collection[str] | None = None) -> Any:
        return self._read_model.metric_inputs_of_states(self._chosen(projects=projects))

    def _refresh(self) -> None:
        """Bring the task rows and the 已办 index up to date (call holding the lock): each
        project committed since the last read, once, and only its rows that changed."""
        model = self._read_model
        by_party = self._by_party
        by_actor = self._by_actor
        keeps = self._keeps_tasks
        for project in self._stale:
            if keeps:
                new = frozenset(all_task_rows(model.projection(self._states[project])))
                old = self._tasks.get(project, frozenset())
                if new != old:
                    for party in {row.party for row in old}:
                        by_party[party].pop(project, None)
                    for row in new:
                        by_party.setdefault(row.party, {}).setdefault(project, []).append(row)
                    self._tasks[project] = new
            history = self._events[project]
            start = self._indexed.get(project, 0)
            for index in range(start, len(history)):
                event = history[index]
                if event.by is not None:
                    by_actor.setdefault(event.by, []).append((project, index))
                principal = event.on_behalf_of
                if principal is not None and principal != event.by:
                    by_actor.setdefault(principal, []).append((project, index))
            self._indexed[project] = len(history)
        self._stale.clear()

    def task_rows(self, parties: Collection[str]) -> list[TaskRow] | None:
        with self._lock:
            self._refresh()
            if not self._keeps_tasks:
                return None
            by_party = self._by_party
            return [
                row
                for party in dict.fromkeys(parties)
                for rows in by_party.get(party, {}).values()
                for row in rows
            ]

    def actor_events(self, actor: str, newest: int | None = None) -> list[Event]:
        with self._lock:
            self._refresh()
            events = self._events
            found = [events[p][i] for p, i in sorted(self._by_actor.get(actor, ()))]
        if newest is None:
            return found
        # Time is commit order here (a clock never goes backwards); ties by project, version.
        latest = sorted(found, key=lambda e: (e.at, e.project, e.version))[::-1][: max(newest, 0)]
        return sorted(latest, key=lambda e: (e.project, e.version))

    def due_task_rows(self, kinds: Collection[str], until: datetime) -> list[TaskRow] | None:
        return self._due_rows(kinds, until)

    def _due_rows(self, kinds: Collection[str], until: datetime) -> list[TaskRow] | None:
        with self._lock:
            self._refresh()
            if not self._keeps_tasks:
                return None
            wanted, until_us = set(kinds), to_epoch_us(until)
            return [
                row
                for rows in self._tasks.values()
                for row in rows
                if row.kind in wanted
                and row.deadline_us is not None
                and row.deadline_us <= until_us
            ]

    def due_task_groups(
        self, kinds: Collection[str], until: datetime, limit: int
    ) -> list[DueGroup] | None:
        rows = self._due_rows(kinds, until)
        return None if rows is None else due_groups_of_rows(rows, limit)

    def first_events(self, projects: Collection[str]) -> dict[str, Event]:
        events = self._events
        return {p: events[p][0] for p in projects if events.get(p)}

    def milestone_projects(self, milestone: str, month: str) -> list[str]:
        rows = self._read_model.state_milestone_rows
        return sorted(
            state.id
            for state in self._chosen()
            if milestone in state.milestones
            and any(row[1] == milestone and row[5] == month for row in rows(state))
        )

    def team_metric_inputs(self, projects: Collection[str] | None = None) -> dict[str, Any]:
        by_team: dict[str, list[ProjectState]] = {}
        for state in self._chosen(projects=projects):
            by_team.setdefault(state.team, []).append(state)
        model = self._read_model
        return {
            team: model.metric_inputs_of_states(states) for team, states in sorted(by_team.items())
        }

    def team_month_counts(self) -> dict[tuple[str, str], CountsRow] | None:
        model = self._read_model
        found: dict[tuple[str, str], CountsRow] = {}
        for state in self._chosen():
            row = model.projection(state).counts
            if row is None:
                return None
            key = (row[0], row[1])
            found[key] = added_counts(found.get(key), row)
        return found

    def recorded_plugins(self) -> tuple[str, ...]:
        return tuple(self._plugins)

    def record_plugins(self, names: Sequence[str]) -> None:
        checked = [checked_key("plugin name", name) for name in names]
        with self._lock:
            for name in checked:
                if name not in self._plugins:
                    self._plugins.append(name)

    def pending_notices(self, now: datetime, limit: int = 100) -> list[OutboxEntry]:
        with self._lock:
            due = [
                entry
                for entry in self._outbox.values()
                if entry.next_attempt is None or entry.next_attempt <= now
            ]
            return due[:limit]

    def claim_notices(self, now: datetime, limit: int = 100) -> list[OutboxEntry]:
        with self._lock:
            claimed: list[OutboxEntry] = []
            claims = self._notice_claims
            for notice_id, entry in self._outbox.items():
                if len(claimed) >= limit:
                    break
                if entry.next_attempt is not None and entry.next_attempt > now:
                    continue
                held = claims.get(notice_id)
                if held is not None and held > now:
                    continue
                claims[notice_id] = now + _LEASE
                claimed.append(entry)
            return claimed

    def mark_delivered(self, notice_ids: Sequence[str]) -> None:
        with self._lock:
            for notice_id in notice_ids:
                self._outbox.pop(notice_id, None)
                self._notice_claims.pop(notice_id, None)

    def mark_failed(self, notice_id: str, error: str, next_attempt: datetime) -> None:
        with self._lock:
            entry = self._outbox.get(notice_id)
            if entry is not None:
                self._outbox[notice_id] = OutboxEntry(
                    entry.notice, entry.attempts + 1, error, next_attempt
                )
                self._notice_claims.pop(notice_id, None)

    def close(self) -> None:
        pass

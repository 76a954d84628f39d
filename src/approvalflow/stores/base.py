"""The store interface every backend implements, and the records it keeps.

One atomic ``commit`` writes a command's events, timer changes, notices (the outbox), command id
and snapshot together, or nothing: a stale ``expected_version`` raises ``ConcurrencyConflict``
and the engine retries. Stores know events, snapshots, timers and the outbox, never a rule.
Due timers (``claim_due``) and outbox notices (``claim_notices``) are claimed with a lease, so
several workers share the work and each item goes to one of them at a time.

Reports ask the store (``milestone_points``, ``metric_inputs``, ``team_metric_inputs``) rather
than load every project: the SQL stores answer from projections kept with each commit, which
the read side defines (``approvalflow.readmodels``; the store is given it as its ``ReadModel``,
``approvalflow.stores.projections``), the memory store from its states through the same read
model. Stores import no rule.

Counties are tenants of one store (issue 17): ``for_county(county)`` is a view of the same store
(the same connection, lock and tables) whose every read and write is limited to that county's
rows, and whose new rows are written under it; two counties may hold the same project id, and
nothing one county's view returns or refuses tells anything of another's. The unscoped store (the
object ``open_store`` returns, ``county`` ``None``) is the view of ``DEFAULT_COUNTY``, where the
rows of a store made before counties were moved (D200); ``counties()`` lists every county with
data.

Every failure is an ``ApprovalflowError``: a conflict, or one of ``approvalflow.stores.errors``
(``StoreBusy``, ``StoreUnavailable``, ``UnstorableValue``...), never a driver's exception.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

import attrs

from approvalflow.errors import InvalidCounty
from approvalflow.model import Event, Notice, Timer, TimerChanges
from approvalflow.project import ProjectState

if TYPE_CHECKING:
    from approvalflow.stores.projections import CountsRow, DueGroup, TaskRow

__all__ = [
    "COUNTY_PATTERN",
    "DEFAULT_COUNTY",
    "CommandRecord",
    "OutboxEntry",
    "Store",
    "checked_county",
]

DEFAULT_COUNTY = "default"
"""The county of the unscoped store, and of every row a store made before counties kept (D200)."""

COUNTY_PATTERN = re.compile(r"[a-z][a-z0-9_]{0,31}")
"""A county id, matched whole: a short lower-case key (the seed counties' plugin names)."""


def checked_county(county: object) -> str:
    """``county`` if it is a county id, else ``InvalidCounty`` saying why."""
    if not isinstance(county, str):
        raise InvalidCounty(f"a county id is a string, not {type(county).__name__}")
    if COUNTY_PATTERN.fullmatch(county) is None:
        raise InvalidCounty(
            f"county id {county!r} is not one: a lower-case letter, then up to 31 lower-case "
            "letters, digits or underscores (huguan, jiaocheng)"
        )
    return county


@attrs.frozen
class CommandRecord:
    """A command id's first result: which events it wrote (versions ``first``..``last``)."""

    command_id: str
    project: str
    command: str
    fingerprint: str
    first_version: int
    last_version: int


@attrs.frozen
class OutboxEntry:
    notice: Notice
    attempts: int = 0
    last_error: str | None = None
    next_attempt: datetime | None = None


class Store(Protocol):
    """What the engine needs from storage. Every method is safe to call from one thread."""

    def load(self, project: str) -> ProjectState | None:
        """The project's current state (a snapshot plus later events), or ``None``.

        The caller must not mutate the returned object (the engine clones it first).
        """

    def load_for_command(self, project: str) -> ProjectState | None:
        """``load``, or the state this store object last committed or loaded for ``project``,
        without asking the database whether another writer has moved it since (D306).

        Only for a state a command will commit from: the commit's guard refuses a stale one
        (``ConcurrencyConflict``), the store forgets it, and the engine decides again from a
        ``load``. A store that keeps no states answers as ``load``.
        """

    def load_many(self, projects: Collection[str]) -> dict[str, ProjectState]:
        """``load`` of each of ``projects``, by project id, those that exist only, in the order
        given: for a report over many projects, which a store may read in a few queries rather
        than one a project. (A store written before it is read with ``load``, one by one.)
        """

    def snapshot_version(self, project: str) -> int | None:
        """The version of the project's newest stored snapshot, or ``None`` if it has none.

        ``load`` starts from that snapshot and folds only the later events, so the gap between
        this and the project's version bounds what a ``load`` costs, however long the history.
        """

    def events(self, project: str, after_version: int = 0) -> list[Event]:
        """The project's events with version > ``after_version``, in order."""

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
        """Write everything or nothing. ``expected_version`` 0 means a new project.

        The store may keep ``state`` itself (the memory store does, and the SQL stores' caches
        of the last committed states): the caller must not change it after the commit.

        With ``claim_notices_at``, the notices are written already claimed by this store, as
        ``claim_notices(claim_notices_at)`` would claim them: the caller delivers them itself
        right after the commit, and no worker takes them meanwhile.

        Raises ``ConcurrencyConflict`` when the project's version is not ``expected_version``
        (another writer was first) or the command id is taken already.
        """

    def command(self, command_id: str) -> CommandRecord | None:
        """The record of a command id, or ``None``."""

    def archive(self, project: str, archive: str, expected_version: int) -> None:
        """Pack the finished ``project`` (at ``expected_version``) into the archive named
        ``archive`` (``2026_q1``): its events become one compressed row keeping every event's
        hash, and its snapshot goes (D267, D268); every read answers as before, and every
        later commit to it raises ``ProjectArchived`` (D266).

        The caller (``Engine.archive``) has checked the stage and the timers its rules derive;
        the store refuses (``NotArchivable``) a project archived already, one with a timer row
        or an open task item, or one whose chain does not verify; ``ConcurrencyConflict`` if
        the project moved past ``expected_version``; ``UnknownProject``; ``InvalidCommand`` for
        a bad archive name.
        """

    def archive_of(self, project: str) -> str | None:
        """The archive holding ``project``, or ``None`` (live, or unknown)."""

    def claim_due(self, now: datetime, limit: int = 100, prefix: str = "") -> list[Timer]:
        """Up to ``limit`` timers due at or before ``now``, earliest first.

        With ``prefix``, only timers of projects whose id starts with it (one scenario run's
        namespace in a shared store).

        A claimed timer is hidden from other claimers for a while (a lease); firing it ends with a
        ``commit`` that cancels or replaces it. A worker that dies lets the lease run out.
        """

    def release_timer(self, timer: Timer) -> None:
        """End this claimer's lease on ``timer`` without firing it (a worker that lacks the
        plugin that set it), so another claimer may take it at once. A timer that has moved
        or gone since it was claimed is left as it is."""

    def next_due(self) -> datetime | None:
        """When the earliest timer falls due, or ``None``."""

    def timers(self, project: str) -> list[Timer]:
        """The project's scheduled timers."""

    def project_ids(self) -> list[str]:
        """Every project id, in creation order."""

    def milestone_points(
        self,
        month: str | None = None,
        prefix: str = "",
        projects: Collection[str] | None = None,
    ) -> dict[str, int]:
        """Points per team: the sum over projects of the points of each milestone reached, in
        ``month`` (``YYYY-MM``, the leaderboard's month of the milestone) or over all time.

        Only projects whose id starts with ``prefix`` and, if given, is one of ``projects``
        (unknown ids are ignored). A team with no milestone in the month is not listed.
        """

    def metric_inputs(self, projects: Collection[str] | None = None) -> Any:
        """What the metrics of every project, or of ``projects``, are computed from, as the
        store's read model makes it (the built-in one: ``rules.metrics.MetricInputs``)."""

    def milestone_projects(self, milestone: str, month: str) -> list[str]:
        """The projects whose ``milestone`` row is in ``month`` (the leaderboard's month), in
        id order."""

    def team_metric_inputs(self, projects: Collection[str] | None = None) -> dict[str, Any]:
        """``metric_inputs`` per team, for every team with a project (among ``projects``)."""

    def team_month_counts(self) -> dict[tuple[str, str], CountsRow] | None:
        """Every team's counts by the month its projects were signed in (``""``: not signed),
        as the read model gives them (``Projection.counts``), keyed by (team, month): what
        the commits added up, for every key with a project; ``None`` when the store cannot
        answer exactly (a read model that keeps no counts, a sum past SQLite's 64 bits)."""

    def task_rows(self, parties: Collection[str]) -> list[TaskRow] | None:
        """Every task row kept under one of ``parties`` (each project's open items as its
        read model derived them with its latest commit, ``projections.TaskRow``), in no set
        order; ``None`` when the store's read model keeps no task rows."""

    def due_task_rows(self, kinds: Collection[str], until: datetime) -> list[TaskRow] | None:
        """Every task row of one of ``kinds`` whose deadline is at or before ``until``, every
        party's, in no set order (what the late items are read from); ``None`` when the
        store's read model keeps no task rows."""

    def due_task_groups(
        self, kinds: Collection[str], until: datetime, limit: int
    ) -> list[DueGroup] | None:
        """``due_task_rows`` grouped on ``projections.DUE_GROUP_COLUMNS``: each group's count
        and its first ``max(limit, 1)`` rows by project and party, in no set order of groups
        (the late board counts its items without a row each); ``None`` when the store's read
        model keeps no task rows."""

    def actor_events(self, actor: str, newest: int | None = None) -> list[Event]:
        """Every event ``actor`` sent, or that was sent on their behalf (``by`` or
        ``on_behalf_of``), by project and version: what the 已办 list is read from.

        ``newest``: only the latest that many, in commit order (SQL stores: the database's
        event number; memory: time, then project and version), still returned by project and
        version. No event left out was committed after one returned (D175)."""

    def first_events(self, projects: Collection[str]) -> dict[str, Event]:
        """The first event (version 1, ``created``) of each of ``projects`` that exists."""

    def pending_notices(self, now: datetime, limit: int = 100) -> list[OutboxEntry]:
        """Notices not yet delivered whose next attempt is due, oldest first, whether or not
        a worker holds a claim on them (a listing: to deliver, use ``claim_notices``)."""

    def claim_notices(self, now: datetime, limit: int = 100) -> list[OutboxEntry]:
        """Claim up to ``limit`` notices whose next attempt is due at ``now`` and that no
        unexpired claim holds, oldest first.

        A claimed notice is hidden from other claimers for a while (the store's lease, as for
        timers): its claimer delivers it and then calls ``mark_delivered``, or ``mark_failed``,
        which releases it for a later attempt. A claimer that dies lets the lease run out, and
        the notice is claimed again, so delivery is at least once.
        """

    def mark_delivered(self, notice_ids: Sequence[str]) -> None:
        """Remove the notices from the outbox (unknown ids are ignored)."""

    def mark_failed(self, notice_id: str, error: str, next_attempt: datetime) -> None:
        """Count a failed attempt, keep ``error`` and release the notice's claim, so it is
        claimed again from ``next_attempt``. A claim that another claimer took over (after
        this one's lease ran out) is left to it, and the report ignored."""

    def save_rule_set(self, fingerprint: str, rules_version: str, data: str) -> None:
        """Keep a county rule set (``data``: its canonical JSON text) under ``fingerprint``.

        Saving a fingerprint the store has already is a no-op: rule sets are only ever added.
        """

    def rule_set(self, fingerprint: str) -> str | None:
        """The canonical JSON text saved under ``fingerprint``, or ``None``."""

    def project_with_code(self, code: str) -> str | None:
        """The project created with the national platform's project ``code``, or ``None``.

        A code names one project: a commit creating a second project with a taken code raises
        ``ConcurrencyConflict`` and writes nothing.
        """

    def recorded_plugins(self) -> tuple[str, ...]:
        """The plugins the store's projects were written with (``record_plugins``), in the
        order first recorded; ``()`` for a store that has recorded none.

        A process that opens the store without naming plugins uses these, so it folds every
        event the store holds as the writers did (or is refused if one is not installed).
        """

    def record_plugins(self, names: Sequence[str]) -> None:
        """Add ``names`` (entry-point names) to ``recorded_plugins``, keeping those recorded
        already and their order; a name recorded already is not added again."""

    @property
    def county(self) -> str | None:
        """The county this view is limited to, or ``None`` for the unscoped store (which reads
        and writes ``DEFAULT_COUNTY``'s rows)."""

    def for_county(self, county: str) -> Store:
        """A view of this store (the same connection) limited to ``county``'s rows: every read
        sees only them and every write goes under it. ``InvalidCounty`` for a bad id."""

    def counties(self) -> list[str]:
        """Every county the store holds a project of, sorted."""

    def close(self) -> None: ...


def created_code(expected_version: int, events: Sequence[Event]) -> str | None:
    """The project code a commit creates its project with, if any."""
    if expected_version != 0 or not events or events[0].type != "created":
        return None
    code = events[0].payload.get("project_code")
    return code if isinstance(code, str) else None


def all_events(store: Store) -> Iterator[Event]:
    for project in store.project_ids():
        yield from store.events(project)

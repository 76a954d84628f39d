"""The audit: one hash chain per project, snapshot digests, and the replay that checks a store.

Each project's events form a chain of their own: event ``version`` carries ``prev_hash`` (the
hash of the project's event ``version - 1``, or ``GENESIS`` for its first) and ``hash =
sha256(prev_hash + canonical JSON of the event)``. The JSON names the project and the version,
so an event cannot be moved to another project or place without its hash changing. No chain
spans projects, so writers to different projects never wait for one another (schema version 8;
before it one chain ran through the whole store, whose head the migration records:
``LegacyHead``). The events' ``seq`` is only the database's numbering, in no hash.

A project's snapshot row carries ``snapshot_digest(project, version, head hash, state JSON)``;
``load`` recomputes it and folds the project's events instead of trusting a row whose digest
does not match (an edited snapshot).

``verify_store`` replays every project's events and reports each finding (``Finding``: which
project, what, where): chain links (an edited, removed, inserted or reordered event), the
recorded version against the events (the newest events removed), the snapshot (its digest, and
the replayed state against it), the timers the replayed state derives (a deleted timer row), the
command records (each command id's recorded result against the events it wrote; a deleted
command row), the report projection against the replay, and the pre-migration chain. What no
replay can tell, a chain rewritten consistently (every hash recomputed with the public
function, the newest events removed together with the version), a sealed checkpoint tells: its
heads, signed with a key kept outside the database (``stores.checkpoints``), must still be
prefixes of the projects' chains. Without one the report says the store is unanchored.

This module knows no database and no rule: a store offers the reads of ``ChainSource``, and the
caller passes the rules' ``timers_for`` (the CLI does).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import attrs

from approvalflow.model import Event, Timer
from approvalflow.project import ProjectState
from approvalflow.stores.base import DEFAULT_COUNTY, CommandRecord
from approvalflow.stores.serialization import canonical_event_json, state_to_json

if TYPE_CHECKING:
    from approvalflow.stores.checkpoints import Checkpoint, SealKey

__all__ = [
    "GENESIS",
    "AuditReport",
    "ChainHead",
    "ChainLink",
    "ChainReport",
    "ChainSource",
    "Finding",
    "LegacyHead",
    "ProjectHead",
    "chain_hash",
    "event_hash",
    "snapshot_digest",
    "store_digest",
    "verify_chain",
    "verify_store",
]

GENESIS = "0" * 64
"""The ``prev_hash`` of a project's first event."""


def event_hash(prev_hash: str, event: Event) -> str:
    """``sha256(prev_hash + canonical JSON of the event)`` as 64 hex digits."""
    return chain_hash(prev_hash, canonical_event_json(event))


def chain_hash(prev_hash: str, canonical_json: str) -> str:
    """``event_hash`` for an event already rendered by ``canonical_event_json``."""
    return hashlib.sha256((prev_hash + canonical_json).encode("utf-8")).hexdigest()


def snapshot_digest(project: str, version: int, head_hash: str, state_json: str) -> str:
    """The digest a snapshot row carries: SHA-256 over the project id, the version, the hash
    of the project's event at that version and the state's JSON text as stored, framed so no
    two inputs give one text."""
    header = json.dumps(["approvalflow.snapshot/1", project, version, head_hash])
    return hashlib.sha256(f"{header}\n{state_json}".encode()).hexdigest()


@attrs.frozen
class ProjectHead:
    """A project's chain head: its version and the hash of its event at that version."""

    project: str
    version: int
    hash: str


def store_digest(heads: Iterable[ProjectHead]) -> str:
    """SHA-256 over every project's head, by project id: one text for the whole store."""
    rows = sorted([head.project, head.version, head.hash] for head in heads)
    text = json.dumps(rows, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(f"approvalflow.store/1\n{text}".encode()).hexdigest()


@attrs.frozen
class ChainHead:
    """The store's head: how many events it holds and ``store_digest`` of its projects' heads
    (``GENESIS`` when empty). It matches only the store as it was when taken (any commit moves
    it); a live store is anchored by sealed checkpoints instead (``stores.checkpoints``)."""

    count: int
    hash: str


@attrs.frozen
class ChainLink:
    """One stored event with its chain columns, exactly as the store holds it."""

    seq: int
    event: Event
    hash: str
    prev_hash: str | None = None
    """The stored link to the previous event, for a source that keeps one; the SQL stores keep
    none since schema version 11 (it is the previous version's ``hash``, which the chain check
    has at hand: a removed, inserted or reordered event still breaks the next hash)."""


@attrs.frozen
class LegacyHead:
    """The store-wide chain a store kept before per-project chains, as the migration to them
    found it: ``events`` events up to ``last_seq``, the newest one's stored ``head``, and
    whether the chain verified then (``reason`` says why not)."""

    events: int
    last_seq: int
    head: str
    verified: bool
    reason: str | None
    migrated_at: str


@runtime_checkable
class ChainSource(Protocol):
    """What ``verify_store`` reads of a store (both SQL stores; not the memory store)."""

    def project_ids(self) -> list[str]:
        """Every project id, in creation order."""

    def project_versions(self) -> dict[str, int]:
        """Each project's version as its last commit recorded it, apart from its events."""

    def chained_projects(self) -> set[str]:
        """Every project that has events (with or without a project row)."""

    def project_chain(self, project: str) -> list[ChainLink]:
        """The project's events with their chain columns, by version (an archived project's
        from its pack, D267); ``ValueError`` when they cannot be read (a pack that does not
        unpack), which is a finding."""

    def project_heads(self) -> list[tuple[str, int, str | None]]:
        """Each project's recorded version and the hash of its event at that version
        (``None`` when it has no such event)."""

    def snapshot_record(self, project: str) -> tuple[int, str, str | None] | None:
        """The project's snapshot row: version, state JSON and digest; ``None`` if none."""

    def command_records(self) -> Iterator[CommandRecord]:
        """Every command record."""

    def timers(self, project: str) -> list[Timer]:
        """The project's scheduled timers."""

    def summary_rows(self) -> dict[str, tuple[Any, ...]]:
        """Each project's report summary row (``projections.SummaryRow``) as stored."""

    def expected_summary(self, project: str, state: ProjectState) -> tuple[Any, ...]:
        """The summary row the store's read model makes of ``state``."""

    def legacy_head(self) -> LegacyHead | None:
        """The pre-migration chain's head, if the store was migrated from one."""

    def iter_chain(self) -> Iterator[ChainLink]:
        """Every event with its chain columns, in ``seq`` order."""

    def chain_head(self) -> ChainHead:
        """The store's head now."""


@attrs.frozen
class Finding:
    """One thing ``verify_store`` found wrong: in which project (``None``: the store as a
    whole), what (``chain``, ``version``, ``snapshot``, ``timer``, ``command``,
    ``projection``, ``replay``, ``legacy``, ``checkpoint``, ``expected``), where (``version
    5``, ``timer supply_deadline/zj``, ``command c-1``...) and what is wrong there."""

    project: str | None
    what: str
    where: str
    detail: str
    county: str | None = None
    """The county whose project it is, when the unscoped store's audit went through every
    county's (``None``: the store's own county, the default one or the view's)."""

    def __str__(self) -> str:
        place = self.project if self.project is not None else "the store"
        if self.county is not None:
            place = f"{place} of county {self.county}"
        return f"{place}, {self.where}: {self.detail}"


@attrs.frozen
class AuditReport:
    """What ``verify_store`` found: every finding, the size checked, the store's head, and the
    anchor: a description of the sealed checkpoint whose signature was checked, or ``None``
    (unanchored; ``unanchored`` says why)."""

    findings: tuple[Finding, ...]
    projects: int
    events: int
    head: ChainHead
    anchor: str | None = None
    unanchored: str | None = "no checkpoint was checked"

    @property
    def ok(self) -> bool:
        return not self.findings


def verify_store(
    store: object,
    *,
    timers_for: Callable[[ProjectState], dict[tuple[str, str], datetime]] | None = None,
    checkpoint: Checkpoint | None = None,
    key: SealKey | None = None,
    expected_head: ChainHead | None = None,
) -> AuditReport:
    """Replay every project of ``store`` and report everything that does not fit.

    :param store: a ``ChainSource`` (``SQLiteStore``, ``PostgresStore``); ``TypeError`` for a
        store without chains (``MemoryStore``).
    :param timers_for: the rules' derivation of a state's timers (``RuleBook.timers_for``);
        without it the timers are not checked.
    :param checkpoint: a sealed checkpoint: its heads must be prefixes of the chains.
    :param key: the key to check ``checkpoint``'s signature with; only then is the store
        anchored.
    :param expected_head: a head taken earlier (``chain_head``): the store must still be at
        it, or, for a head of the pre-migration chain, that chain must still reach it.

    Plugin events fold as the caller's fold table says (``definition.folds.folding()``).
    Commits made while this runs may be reported as a version or head that moved.

    Counties (D205): a county's view is verified as that county alone. The unscoped store is the
    default county's, whose report this is (its head, its checkpoint), and every other county
    of the store is verified after it, each finding naming its ``county``: chains, versions,
    snapshots, command records and summaries; not their timers, which need the county's own
    rules (verify the county's view with its ``timers_for``).
    """
    report = _verify_county(
        store,
        timers_for=timers_for,
        checkpoint=checkpoint,
        key=key,
        expected_head=expected_head,
    )
    counties = getattr(store, "counties", None)
    if getattr(store, "county", "") is not None or counties is None:
        return report
    findings, projects, events = list(report.findings), report.projects, report.events
    for county in counties():
        if county == DEFAULT_COUNTY:
            continue
        other = _verify_county(getattr(store, "for_county")(county))  # noqa: B009
        findings += [attrs.evolve(finding, county=county) for finding in other.findings]
        projects += other.projects
        events += other.events
    return attrs.evolve(report, findings=tuple(findings), projects=projects, events=events)


def _verify_county(
    store: object,
    *,
    timers_for: Callable[[ProjectState], dict[tuple[str, str], datetime]] | None = None,
    checkpoint: Checkpoint | None = None,
    key: SealKey | None = None,
    expected_head: ChainHead | None = None,
) -> AuditReport:
    """``verify_store`` of one county (the store's, or its view's)."""
    if not isinstance(store, ChainSource):
        raise TypeError(f"{type(store).__name__} keeps no audit chain")
    findings: list[Finding] = []
    recorded = store.project_versions()
    county = getattr(store, "county", None) or DEFAULT_COUNTY
    other_county = checkpoint is not None and checkpoint.sealed_county != county
    sealed = (
        {p: (v, h) for p, v, h in checkpoint.heads}
        if checkpoint is not None and not other_county
        else {}
    )
    commands: dict[str, list[CommandRecord]] = {}
    for record in store.command_records():
        commands.setdefault(record.project, []).append(record)
    summaries = store.summary_rows()
    events = 0
    projects = store.project_ids()
    for project in projects:
        try:
            links = store.project_chain(project)
        except ValueError as error:
            # An archived project whose pack does not unpack (D267): edited, or cut short.
            findings.append(Finding(project, "chain", "its archive pack", str(error)))
            sealed.pop(project, None)
            commands.pop(project, None)
            continue
        events += len(links)
        findings += _check_project(
            store,
            project,
            links,
            recorded.get(project, 0),
            commands.pop(project, []),
            summaries.get(project),
            timers_for,
            sealed.pop(project, None),
        )
    for project in sorted(store.chained_projects() - set(projects)):
        findings.append(
            Finding(project, "version", "its project row", "it has events but no project row")
        )
    for project, records in sorted(commands.items()):
        for record in records:
            findings.append(
                Finding(
                    project,
                    "command",
                    f"command {record.command_id}",
                    "a command record for a project the store does not have",
                )
            )
    for project, (version, _) in sorted(sealed.items()):
        findings.append(
            Finding(
                project,
                "checkpoint",
                f"version {version}",
                "the checkpoint sealed this project at this version; the store no longer has it",
            )
        )
    head = store.chain_head()
    findings += _check_legacy(store, expected_head)
    if (
        expected_head is not None
        and not _legacy_expected(store, expected_head)
        and expected_head != head
    ):
        findings.append(
            Finding(
                None,
                "expected",
                f"head {expected_head.count}:{expected_head.hash[:12]}...",
                f"the store's head is {head.count}:{head.hash[:12]}...: it changed since "
                "that head was taken (any commit moves it; anchor a live store with "
                "`approvalflow audit seal`)",
            ),
        )
    anchor: str | None = None
    unanchored: str | None = "no checkpoint was checked"
    if checkpoint is not None and other_county:
        # Its heads say nothing of this county's chains: one finding, not one per project.
        where = checkpoint.describe()
        findings.append(
            Finding(
                None,
                "checkpoint",
                where,
                f"it seals county {checkpoint.sealed_county}'s view, and this is county "
                f"{county}'s: verify it against county {checkpoint.sealed_county}'s view",
            )
        )
        unanchored = f"{where} is another county's"
    elif checkpoint is not None:
        anchor, unanchored, found = _check_checkpoint(checkpoint, key)
        findings += found
    return AuditReport(tuple(findings), len(projects), events, head, anchor, unanchored)


def _check_checkpoint(
    checkpoint: Checkpoint, key: SealKey | None
) -> tuple[str | None, str | None, list[Finding]]:
    where = checkpoint.describe()
    findings: list[Finding] = []
    if store_digest(ProjectHead(*row) for row in checkpoint.heads) != checkpoint.digest:
        findings.append(
            Finding(None, "checkpoint", where, "its store digest does not match its heads")
        )
    if key is None:
        return None, f"{where} was not checked: no key to check its signature with", findings
    problem = checkpoint.signature_problem(key)
    if problem is not None:
        findings.append(Finding(None, "checkpoint", where, problem))
        return None, f"{where} does not verify", findings
    return where, None, findings


def _check_project(
    store: ChainSource,
    project: str,
    links: Sequence[ChainLink],
    recorded: int,
    commands: Sequence[CommandRecord],
    summary: tuple[Any, ...] | None,
    timers_for: Callable[[ProjectState], dict[tuple[str, str], datetime]] | None,
    sealed: tuple[int, str] | None,
) -> list[Finding]:
    findings: list[Finding] = []

    def found(what: str, where: str, detail: str) -> None:
        findings.append(Finding(project, what, where, detail))

    # The chain: each link, from GENESIS.
    previous = GENESIS
    intact = True
    for position, link in enumerate(links, start=1):
        event = link.event
        where = f"version {event.version}"
        if event.version != position:
            found(
                "chain",
                where,
                f"version {event.version} follows version {position - 1}: events are missing",
            )
            intact = False
            break
        if link.prev_hash is not None and link.prev_hash != previous:
            found(
                "chain",
                where,
                f"prev_hash {link.prev_hash[:12]}... is not the hash of the event before it "
                f"({previous[:12]}...): an event was removed, inserted or reordered",
            )
            intact = False
            break
        recomputed = event_hash(previous, event)
        if recomputed != link.hash:
            found(
                "chain",
                where,
                "its content does not match its hash: the event was edited, or another was put "
                "in its place (inserted or reordered)",
            )
            intact = False
            break
        previous = recomputed
    count = len(links)
    if recorded != count:
        found(
            "version",
            "its recorded version",
            f"the project is at version {recorded} but has {count} events"
            + (": its newest events were removed" if recorded > count else ""),
        )
    if sealed is not None:
        version, digest = sealed
        if count < version:
            found(
                "checkpoint",
                f"version {version}",
                f"the checkpoint sealed version {version}; the chain ends at version {count}: "
                "its newest events were removed",
            )
        elif links[version - 1].hash != digest:
            found(
                "checkpoint",
                f"version {version}",
                f"the hash at the sealed version is {links[version - 1].hash[:12]}..., not "
                f"the sealed {digest[:12]}...: the chain was rewritten",
            )
    if not intact or not links:
        return findings
    # The replay, and the snapshot on the way.
    snapshot = store.snapshot_record(project)
    state: ProjectState | None = None
    try:
        for link in links:
            if state is None:
                state = ProjectState.created(link.event)
            else:
                state.apply(link.event)
            if snapshot is not None and snapshot[0] == state.version:
                findings += _check_snapshot(project, snapshot, link.hash, state)
    except (ValueError, KeyError, TypeError) as error:
        found("replay", f"version {state.version + 1 if state else 1}", f"does not fold: {error}")
        return findings
    assert state is not None
    if snapshot is not None and snapshot[0] > count:
        found("snapshot", f"version {snapshot[0]}", "the snapshot is newer than the events")
    findings += _check_commands(project, links, commands)
    if summary is None:
        found("projection", "its summary row", "the report summary row is missing")
    else:
        expected = store.expected_summary(project, state)
        if _plain(summary) != _plain(expected):
            found(
                "projection",
                "its summary row",
                f"the report summary {_plain(summary)} differs from the replay's "
                f"{_plain(expected)}",
            )
    if timers_for is not None:
        findings += _check_timers(project, timers_for(state), store.timers(project))
    return findings


def _check_snapshot(
    project: str, snapshot: tuple[int, str, str | None], head: str, state: ProjectState
) -> list[Finding]:
    version, text, digest = snapshot
    where = f"snapshot at version {version}"
    findings = []
    if digest != snapshot_digest(project, version, head, text):
        findings.append(
            Finding(
                project,
                "snapshot",
                where,
                "its digest does not match: the row was edited (loads fold the events instead)",
            )
        )
    replayed = state_to_json(state)
    if replayed != text and not _same_without_plugins(state, replayed, text):
        findings.append(
            Finding(project, "snapshot", where, "the state it holds is not the replay's")
        )
    return findings


def _same_without_plugins(state: ProjectState, replayed: str, stored: str) -> bool:
    """Whether a replay that met plugin events it could not fold (no fold table for them at
    hand) agrees with the stored state on everything else."""
    if not state.unfolded_types:
        return False
    ours, theirs = json.loads(replayed), json.loads(stored)
    for document in (ours, theirs):
        document.pop("plugin_data", None)
    return bool(ours == theirs)


def _check_commands(
    project: str, links: Sequence[ChainLink], records: Sequence[CommandRecord]
) -> list[Finding]:
    findings = []
    by_id = {record.command_id: record for record in records}
    for record in records:
        where = f"command {record.command_id}"
        wrote = [
            link.event.version
            for link in links
            if record.first_version <= link.event.version <= record.last_version
        ]
        expected = list(range(record.first_version, record.last_version + 1))
        carried = {links[v - 1].event.command_id for v in wrote if 0 < v <= len(links)}
        wrote_nothing = record.first_version == record.last_version and (
            carried != {record.command_id}
        )  # a command that wrote no event records the version it found
        if not wrote_nothing and (wrote != expected or carried - {record.command_id}):
            findings.append(
                Finding(
                    project,
                    "command",
                    where,
                    f"the record says {record.command} wrote versions {record.first_version}"
                    f"..{record.last_version}; the events there do not carry its id",
                )
            )
    for link in links:
        command_id = link.event.command_id
        if command_id is None:
            continue
        owner = by_id.get(command_id)
        if owner is None:
            findings.append(
                Finding(
                    project,
                    "command",
                    f"version {link.event.version}",
                    f"the event carries command id {command_id!r}, which has no command "
                    "record: a retry of that command would be applied again",
                )
            )
        elif not owner.first_version <= link.event.version <= owner.last_version:
            findings.append(
                Finding(
                    project,
                    "command",
                    f"version {link.event.version}",
                    f"the event carries command id {command_id!r}, whose record says it wrote "
                    f"versions {owner.first_version}..{owner.last_version}",
                )
            )
    return findings


def _check_timers(
    project: str, derived: dict[tuple[str, str], datetime], stored: Sequence[Timer]
) -> list[Finding]:
    findings = []
    rows = {(timer.kind, timer.branch): timer.due for timer in stored}
    for (kind, branch), due in sorted(derived.items()):
        where = f"timer {kind}/{branch}" if branch else f"timer {kind}"
        row = rows.get((kind, branch))
        if row is None:
            findings.append(
                Finding(
                    project,
                    "timer",
                    where,
                    f"the state waits on it (due {due.isoformat()}) but there is no timer row: "
                    "the deadline would never fire",
                )
            )
        elif row != due:
            findings.append(
                Finding(
                    project,
                    "timer",
                    where,
                    f"the row is due {row.isoformat()}, the state's deadline {due.isoformat()}",
                )
            )
    return findings


def _plain(row: Sequence[Any]) -> tuple[Any, ...]:
    """A summary row with its values as Python's plain types (the drivers' differ)."""
    out: list[Any] = []
    for value in row:
        if isinstance(value, bool) or value is None or isinstance(value, str):
            out.append(value)
        elif isinstance(value, bytes):
            out.append(int(value.decode()))
        else:
            try:
                out.append(int(value))
            except (TypeError, ValueError):
                out.append(value)
    return tuple(out)


def _legacy_expected(store: ChainSource, expected: ChainHead) -> bool:
    legacy = store.legacy_head()
    return legacy is not None and 0 < expected.count <= legacy.events


def _check_legacy(store: ChainSource, expected: ChainHead | None) -> list[Finding]:
    """Recompute the pre-migration chain, if the store had one, up to its recorded head."""
    legacy = store.legacy_head()
    if legacy is None:
        return []
    where = f"the pre-migration chain ({legacy.events} events)"
    if not legacy.verified:
        return [
            Finding(
                None,
                "legacy",
                where,
                f"it did not verify when the store was migrated: {legacy.reason}",
            )
        ]
    findings: list[Finding] = []
    head, count = GENESIS, 0
    for link in store.iter_chain():
        if link.seq > legacy.last_seq:
            break
        head = chain_hash(head, canonical_event_json(link.event))
        count += 1
        if expected is not None and count == expected.count and head != expected.hash:
            findings.append(
                Finding(
                    None,
                    "expected",
                    f"pre-migration event {count}",
                    f"the chain there is {head[:12]}..., not the expected {expected.hash[:12]}...",
                )
            )
    if count != legacy.events or head != legacy.head:
        findings.append(
            Finding(
                None,
                "legacy",
                where,
                f"recomputed from the events it is {count} events ending {head[:12]}..., not "
                f"the recorded {legacy.events} ending {legacy.head[:12]}...: events from before "
                "the migration were edited or removed",
            )
        )
    return findings


@attrs.frozen
class ChainReport:
    """``verify_chain``'s answer: ``ok``, the store's event count and head, and the first
    finding as ``first_bad`` (``(project, version)`` when it is in one event) and ``reason``."""

    ok: bool
    count: int
    head: str
    first_bad: tuple[str, int] | None = None
    reason: str | None = None


def verify_chain(store: object, expected_head: ChainHead | None = None) -> ChainReport:
    """``verify_store`` without timers or checkpoint, answered as its first finding."""
    report = verify_store(store, expected_head=expected_head)
    head = report.head
    if report.ok:
        return ChainReport(True, head.count, head.hash)
    first = report.findings[0]
    bad = None
    if (
        first.project is not None
        and first.where.startswith("version ")
        and first.what
        in (
            "chain",
            "command",
            "replay",
        )
    ):
        bad = (first.project, int(first.where.split()[1]))
    return ChainReport(False, head.count, head.hash, bad, str(first))

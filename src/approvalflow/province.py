"""A province: the counties one host serves, each county's ``Engine`` under its county id.

A ``Province`` is a mapping of county id to engine, built from engines
(``Province({"huguan": engine, ...})``) or from a counties file (``Province.open(path)``)::

    store: sqlite:///province.db     # the province's store: its tokens, and every county's
                                      # projects when the store keeps county views
    counties:
      huguan:    {name: 壶关县, plugins: [huguan], actors: huguan-actors.yaml, settings: {...}}
      jiaocheng: {name: 交城县, plugins: [jiaocheng], store: sqlite:///jiaocheng.db}

A county's ``store`` overrides the file's for that county. Two counties on one store URL need
a store with county views (``Store.for_county``); without them the file is refused
(``ProvinceError``): one county's rows must never be read as another's. ``actors`` files are
read as ``approvalflow serve --actors`` reads them, relative to the counties file.

The province reports (``ranking``, ``department_ranking``) and cross-county intake (``intake``,
``intakes``) are read off each county's own engine, so a figure here is the one the county's
own report gives.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from fractions import Fraction
from pathlib import Path
from typing import Any

import attrs

from approvalflow.clock import Clock
from approvalflow.engine import Engine
from approvalflow.errors import CountiesFileError, ProvinceError, ScenarioFileError, UnknownCounty
from approvalflow.model import Actor, CommandResult
from approvalflow.plugins import hookimpl
from approvalflow.rules.metrics import TeamMonthCounts

__all__ = [
    "COUNTY_ID",
    "COUNTY_MEASURES",
    "INTAKE",
    "CountiesFile",
    "CountyRank",
    "CountySpec",
    "DepartmentRank",
    "IntakeStatus",
    "Province",
    "RedBlackList",
    "check_county_id",
    "load_counties",
]

COUNTY_ID = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
"""What a county id looks like (as the stores' county views take it)."""

_COUNTY_KEYS = ("name", "plugins", "actors", "settings", "store", "intake_receiver")

INTAKE_ROLES = ("recruiter", "agent")
"""The roles, in the accepting county's directory, of an officer who may accept an application
for another county (the recruiting window, or the 帮办代办 agent at the hall)."""


class _IntakeField:
    """The ``intake`` project field: where, by whom and when an application accepted in
    another county's hall was taken in (异地受理), kept in the created event."""

    @hookimpl
    def approvalflow_project_fields(self) -> list[str]:
        return ["intake"]


INTAKE = _IntakeField()
"""The plugin every county engine of a province loads so that a project it is handed from
another county's hall records its intake point (``Province.open`` adds it)."""


@attrs.frozen
class IntakeStatus:
    """What the accepting county sees of a project it took in for another: the project and its
    name, the county handling it, its stage (and the stage's Chinese name), who holds it up
    (ids and names) and the earliest of their deadlines, and when it was taken in."""

    project: str
    name: str
    county: str
    county_name: str
    stage: str
    stage_name: str
    held_by: tuple[tuple[str, str], ...]
    due: datetime | None
    accepted_at: datetime
    accepted_by: str


COUNTY_MEASURES = (
    "signed_count",
    "signed_amount",
    "start_rate",
    "production_rate",
    "funds_in_place",
    "funds_rate",
    "points",
)
"""What counties are ranked on: the built-in metrics of rule 12 (the seeds' signing, start,
production and funds figures) and the month's 赛马榜 points; higher is better for each."""


@attrs.frozen
class CountyRank:
    """A county's place on one measure: ``rank`` (1 is best; ties share a rank, the next rank
    skips, as on the 赛马榜), ``None`` for a county with no value (a rate with nothing signed),
    listed last and left off the red and black lists."""

    rank: int | None
    county: str
    name: str
    value: Any


@attrs.frozen
class RedBlackList:
    """红黑榜: the ``red`` list (the best ``n``, best first) and the ``black`` list (the worst
    ``n``, worst first) of one measure."""

    measure: str
    red: tuple[CountyRank, ...]
    black: tuple[CountyRank, ...]


@attrs.frozen
class DepartmentRank:
    """A department of a county across the province: its ``late`` open items at the time
    asked (fewer is better), then the average working days it took to decide a branch
    (``avg_days``, fewer is better; ``None`` when it decided none) over ``decided`` branches."""

    rank: int
    county: str
    county_name: str
    department: str
    department_name: str
    late: int
    avg_days: Fraction | None
    decided: int


def check_county_id(county: str) -> str:
    """``county`` if it is a county id, else ``ProvinceError`` saying what one looks like."""
    if not isinstance(county, str) or not COUNTY_ID.match(county):
        raise ProvinceError(
            f"{county!r} is not a county id: a lower-case letter, then up to 31 lower-case "
            "letters, digits or _ (such as huguan)"
        )
    return county


@attrs.frozen
class CountySpec:
    """One county of a counties file: its display ``name``, ``plugins``, the ``actors`` file
    (resolved against the counties file), ``settings`` overrides and its own ``store`` URL."""

    id: str
    name: str
    plugins: tuple[str, ...] = ()
    actors: Path | None = None
    settings: Mapping[str, Any] = attrs.field(factory=dict)
    store: str | None = None
    line: int | None = None
    intake_receiver: str | None = None


@attrs.frozen
class CountiesFile:
    """A counties file read: the province's ``store`` URL (if given) and its counties, in the
    file's order."""

    path: str
    store: str | None
    counties: Mapping[str, CountySpec]


def load_counties(path: str | os.PathLike[str]) -> CountiesFile:
    """Read a counties file; every problem is a ``CountiesFileError`` naming its line."""
    from approvalflow.scenario.loader import load_document

    file = os.fspath(path)
    try:
        document, lines = load_document(file)
    except ScenarioFileError as error:
        raise CountiesFileError(error.path, error.line, error.key, error.message) from error

    def fail(where: tuple[str | int, ...], message: str) -> CountiesFileError:
        line = None
        for end in range(len(where), -1, -1):
            line = lines.get(where[:end])
            if line is not None:
                break
        key = "$" + "".join(f"[{p + 1}]" if isinstance(p, int) else f".{p}" for p in where)
        return CountiesFileError(file, line, key, message)

    def text(where: tuple[str | int, ...], value: object, what: str) -> str:
        if not isinstance(value, str) or not value.strip():
            raise fail(where, f"must be {what}, not {value!r}")
        return value

    if not isinstance(document, dict):
        raise fail((), "must be a mapping with counties: (and store:)")
    for key in document:
        if key not in ("store", "counties"):
            raise fail((key,), "unknown key; expected one of store, counties")
    store = None
    if document.get("store") is not None:
        store = text(("store",), document["store"], "a store URL such as sqlite:///province.db")
    entries = document.get("counties")
    if not isinstance(entries, dict) or not entries:
        raise fail(("counties",), "must map each county id to {name: ..., plugins: [...]}")
    base = Path(file).parent
    counties: dict[str, CountySpec] = {}
    for county, spec in entries.items():
        where: tuple[str | int, ...] = ("counties", county)
        if not COUNTY_ID.match(str(county)):
            raise fail(
                where,
                "a county id is a lower-case letter, then up to 31 lower-case letters, "
                "digits or _ (such as huguan)",
            )
        if not isinstance(spec, dict):
            raise fail(where, "must be a mapping such as {name: 壶关县, plugins: [huguan]}")
        for key in spec:
            if key not in _COUNTY_KEYS:
                raise fail((*where, key), f"unknown key; expected one of {', '.join(_COUNTY_KEYS)}")
        name = text((*where, "name"), spec.get("name", county), "the county's name")
        plugins = spec.get("plugins", [])
        if not isinstance(plugins, list):
            raise fail((*where, "plugins"), "must be a list of plugin names such as [huguan]")
        names = tuple(
            text((*where, "plugins", i), plugin, "a plugin name")
            for i, plugin in enumerate(plugins)
        )
        actors = None
        if spec.get("actors") is not None:
            actors = base / text((*where, "actors"), spec["actors"], "an actors file")
        settings = spec.get("settings", {})
        if not isinstance(settings, dict):
            raise fail((*where, "settings"), "must be a mapping of settings overrides")
        own_store = None
        if spec.get("store") is not None:
            own_store = text((*where, "store"), spec["store"], "a store URL")
        receiver = None
        if spec.get("intake_receiver") is not None:
            receiver = text(
                (*where, "intake_receiver"), spec["intake_receiver"], "an actor id of the county"
            )
        counties[county] = CountySpec(
            county, name, names, actors, settings, own_store, lines.get(where), receiver
        )
    return CountiesFile(file, store, counties)


def _county_of(store: Any) -> str | None:
    county = getattr(store, "county", None)
    return county if isinstance(county, str) else None


class Province(Mapping[str, Engine]):
    """The counties one host serves: county id -> that county's ``Engine``.

    :param engines: each county's engine. Two counties may share a store only through the
        store's county views (each engine's ``store.county`` is its own county).
    :param names: display names (default: the county id).
    :param store: the province's own store, where the service's tokens are kept (default:
        the first county's store, or the store the county views are of).
    :param receivers: each county's intake receiver: the actor of its own directory that
        registers a project accepted for it in another county's hall (D221).
    """

    def __init__(
        self,
        engines: Mapping[str, Engine],
        *,
        names: Mapping[str, str] | None = None,
        store: Any = None,
        receivers: Mapping[str, str] | None = None,
    ) -> None:
        if not engines:
            raise ProvinceError("a province serves at least one county")
        seen: dict[int, str] = {}
        for county, engine in engines.items():
            check_county_id(county)
            viewed = _county_of(engine.store)
            if viewed is not None and viewed != county:
                raise ProvinceError(
                    f"the engine given for {county} runs on the store's view of {viewed}"
                )
            other = seen.get(id(engine.store))
            if other is not None and viewed is None:
                raise ProvinceError(
                    f"{other} and {county} are given one store that keeps no county views: "
                    "one county's projects would be read as the other's; give each its own "
                    "store"
                )
            seen[id(engine.store)] = county
        self._engines = dict(engines)
        self._names = {county: (names or {}).get(county, county) for county in self._engines}
        self._receivers = dict(receivers or {})
        first = next(iter(self._engines.values())).store
        self.store: Any = store if store is not None else getattr(first, "base", first)
        self._opened: list[Any] = []

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        *,
        store_url: str | None = None,
        create: bool = False,
        clock: Clock | None = None,
        plugins: Sequence[object] = (),
        deliver: str = "inline",
    ) -> Province:
        """The province of a counties file, each county's engine on its store.

        :param store_url: the province's store, in place of the file's ``store:``.
        :param create: create missing stores (as ``open_store(create=True)``).
        :param plugins: plugin objects every county's engine loads too (the service's guard).
        :param deliver: each engine's delivery (``"outbox"`` for the service and workers).
        :raises CountiesFileError: the file is malformed (with the line).
        :raises ProvinceError: a county has no store, or two share a store without views.
        """
        found = load_counties(path)
        top = store_url or found.store
        urls: dict[str, str] = {}
        for county, spec in found.counties.items():
            url = spec.store or top
            if url is None:
                raise ProvinceError(
                    f"{found.path}: county {county} has no store: give the file a store: "
                    "(or the county its own), or pass the store URL"
                )
            urls[county] = url
        opened: dict[str, Any] = {}
        province: Province | None = None
        try:
            stores: dict[str, Any] = {}
            for county, url in urls.items():
                sharing = [other for other, u in urls.items() if u == url]
                if url not in opened:
                    opened[url] = _open(url, create)
                base = opened[url]
                if len(sharing) > 1:
                    views = getattr(base, "for_county", None)
                    if not callable(views):
                        raise ProvinceError(
                            f"{found.path}: counties {', '.join(sharing)} share the store "
                            f"{_safe(url)}, which keeps no county views: give each county its "
                            "own store: (one county's projects must never be read as another's)"
                        )
                    try:
                        stores[county] = views(county)
                    except NotImplementedError as error:
                        raise ProvinceError(
                            f"{found.path}: counties {', '.join(sharing)} share the store "
                            f"{_safe(url)}, whose county views are not built yet ({error}): "
                            "give each county its own store:"
                        ) from error
                else:
                    stores[county] = base
            if top is not None and top not in opened:
                opened[top] = _open(top, create)
            engines: dict[str, Engine] = {}
            for county, spec in found.counties.items():
                actors = [] if spec.actors is None else _actors(spec.actors)
                if spec.intake_receiver is not None and not any(
                    a.id == spec.intake_receiver for a in actors
                ):
                    raise CountiesFileError(
                        found.path,
                        spec.line,
                        f"$.counties.{county}.intake_receiver",
                        f"{spec.intake_receiver!r} is not in {county}'s actors",
                    )
                engines[county] = Engine(
                    actors=actors,
                    store=stores[county],
                    settings=dict(spec.settings) or None,
                    plugins=[*spec.plugins, *plugins, INTAKE],
                    clock=clock,
                    deliver=deliver,
                )
            province = cls(
                engines,
                names={county: spec.name for county, spec in found.counties.items()},
                store=opened[top] if top is not None else None,
                receivers={
                    county: spec.intake_receiver
                    for county, spec in found.counties.items()
                    if spec.intake_receiver is not None
                },
            )
            province._opened = list(opened.values())
            return province
        finally:
            if province is None:
                for store in opened.values():
                    store.close()

    # -- the mapping ----------------------------------------------------------------------

    def __getitem__(self, county: str) -> Engine:
        return self.engine(county)

    def __contains__(self, county: object) -> bool:
        return county in self._engines

    def __iter__(self) -> Iterator[str]:
        return iter(self._engines)

    def __len__(self) -> int:
        return len(self._engines)

    @property
    def counties(self) -> list[str]:
        """The county ids, in the order given."""
        return list(self._engines)

    def engine(self, county: str) -> Engine:
        """The county's engine; ``UnknownCounty`` for a county this province does not serve."""
        engine = self._engines.get(county)
        if engine is None:
            raise UnknownCounty(
                f"this province serves no county {county!r} (it serves {', '.join(self._engines)})"
            )
        return engine

    def name(self, county: str) -> str:
        """The county's display name (壶关县)."""
        self.engine(county)
        return self._names[county]

    @property
    def names(self) -> dict[str, str]:
        """Every county's display name, by county id."""
        return dict(self._names)

    # -- province reports -------------------------------------------------------------------

    def county_figures(self, month: str | None = None) -> dict[str, dict[str, Any]]:
        """Each county's ``COUNTY_MEASURES``: its own ``Engine.metrics`` (the built-in ones,
        the figures of its own ``report metrics``) and, with ``month``, the 赛马榜 points its
        teams earned in that month (the sum of its own board); ``points`` is ``None`` without
        a month.

        The metrics are added up from the county's counts by team and signing month
        (``Engine.team_month_counts``, which the commits keep), not from its projects' report
        rows: the same values, from a few hundred rows a county instead of every project's
        (D313)."""
        found: dict[str, dict[str, Any]] = {}
        for county, engine in self._engines.items():
            counts = sum(engine.team_month_counts().values(), TeamMonthCounts())
            metrics = counts.figures()
            figures = {name: metrics[name] for name in COUNTY_MEASURES if name in metrics}
            figures["points"] = None if month is None else _month_points(engine, month)
            found[county] = figures
        return found

    def _measure(self, measure: str, month: str | None) -> dict[str, Any]:
        """Each county's value of one measure, reading only what it needs: a month's points
        are one query of the county's milestones, no metrics (D276)."""
        if measure == "points":
            assert month is not None
            return {county: _month_points(e, month) for county, e in self._engines.items()}
        return {county: f[measure] for county, f in self.county_figures().items()}

    def ranking(self, measure: str, *, month: str | None = None) -> list[CountyRank]:
        """The counties ranked on ``measure`` (one of ``COUNTY_MEASURES``; ``points`` needs
        ``month``), best first; a county without a value last, unranked."""
        if measure not in COUNTY_MEASURES:
            raise ValueError(
                f"no county measure {measure!r}: rank on one of {', '.join(COUNTY_MEASURES)}"
            )
        if measure == "points" and month is None:
            raise ValueError("points are a month's: give the month (YYYY-MM)")
        figures = self._measure(measure, month)
        valued = [(county, value) for county, value in figures.items() if value is not None]
        valued.sort(key=lambda item: -item[1])
        rows: list[CountyRank] = []
        for position, (county, value) in enumerate(valued, start=1):
            rank = rows[-1].rank if rows and rows[-1].value == value else position
            rows.append(CountyRank(rank, county, self._names[county], value))
        rows += [
            CountyRank(None, county, self._names[county], None)
            for county, value in figures.items()
            if value is None
        ]
        return rows

    def red_black(self, measure: str, n: int = 3, *, month: str | None = None) -> RedBlackList:
        """红黑榜 on ``measure``: the best ``n`` counties and the worst ``n`` (a county is on
        both only when fewer than ``2 n`` counties have a value)."""
        if n < 1:
            raise ValueError(f"a red or black list names at least one county, not {n}")
        ranked = [row for row in self.ranking(measure, month=month) if row.rank is not None]
        return RedBlackList(measure, tuple(ranked[:n]), tuple(reversed(ranked[-n:])))

    def department_ranking(self, now: datetime | None = None) -> list[DepartmentRank]:
        """Every county's departments ranked across the province: fewest late items at
        ``now`` first (each county's own ``late_items``), then the fewest average working days
        to decide a branch (its own ``metrics``' ``department_days``); D219."""
        from approvalflow.names import Names

        rows: list[tuple[tuple[Any, ...], DepartmentRank]] = []
        for county, engine in self._engines.items():
            # Counted from the late board's groups: the ranking needs how many, not each item
            # as a holdup (600 of them a county cost 45 ms of CPU at 1M projects, D278).
            late = {
                department: sum(group.count for group in groups)
                for department, groups in engine.late_summary(now, 0).items()
            }
            days = engine.metrics(plugins=False)["department_days"]
            names = Names.of(engine.settings)
            departments = sorted(set(late) | set(days))  # those with something to rank
            for department in departments:
                taken = days.get(department)
                avg = None if taken is None else taken["avg"]
                row = DepartmentRank(
                    0,
                    county,
                    self._names[county],
                    department,
                    names.department(department),
                    late.get(department, 0),
                    avg,
                    0 if taken is None else taken["count"],
                )
                key = (row.late, avg is None, avg or 0)
                rows.append((key, row))
        rows.sort(key=lambda item: (item[0], item[1].county, item[1].department))
        ranked: list[DepartmentRank] = []
        previous: tuple[Any, ...] | None = None
        for position, (key, row) in enumerate(rows, start=1):
            rank = ranked[-1].rank if ranked and key == previous else position
            ranked.append(attrs.evolve(row, rank=rank))
            previous = key
        return ranked

    # -- cross-county intake (异地受理, 省内通办) ------------------------------------------------

    def intake(
        self,
        at: str,
        county: str,
        project: str,
        fields: Mapping[str, Any],
        *,
        by: str,
        hall: str | None = None,
        command_id: str | None = None,
    ) -> CommandResult:
        """An application accepted at county ``at``'s hall by its officer ``by`` for a project
        of ``county``: the project is created in ``county``'s engine by that county's intake
        receiver (its own role checks decide), with the intake point (county, hall, officer,
        time) in the created event's ``intake`` field.

        :raises UnknownCounty: either county is not served.
        :raises NotAuthorized: ``by`` is not an officer of ``at`` who may accept applications
            (``INTAKE_ROLES``), or the receiver may not create the project in ``county``.
        :raises ProvinceError: ``county`` names no intake receiver, or its engine lacks
            ``INTAKE``; and every error ``create`` raises, changing nothing.
        """
        from approvalflow.errors import InvalidCommand, NotAuthorized

        taking = self.engine(at)
        handling = self.engine(county)
        if at == county:
            raise InvalidCommand(
                f"{project} is {county}'s own: create it in {county}, not as an intake"
            )
        officer = taking.actors.get(by)
        if officer is None or not any(role in officer.roles for role in INTAKE_ROLES):
            raise NotAuthorized(
                f"{by} may not accept applications at {self._names[at]}: not in its directory "
                f"as {' or '.join(INTAKE_ROLES)}"
            )
        receiver = self._receivers.get(county)
        if receiver is None:
            raise ProvinceError(
                f"{county} names no intake receiver: no project can be handed to it from "
                "another county's hall (intake_receiver: in the counties file)"
            )
        if INTAKE not in handling.plugin_manager.get_plugins():
            raise ProvinceError(
                f"the engine of {county} lacks the intake field: build it with "
                "plugins=[..., INTAKE] (Province.open adds it)"
            )
        if "intake" in fields:
            raise InvalidCommand("the intake point is the province's to record, not a field")
        point = {
            "county": at,
            "county_name": self._names[at],
            "hall": hall,
            "by": by,
            "by_name": officer.name,
            "at": taking.clock.now().isoformat(),
        }
        return handling.execute(
            "create", project, receiver, {**fields, "intake": point}, command_id=command_id
        )

    def intakes(self, at: str) -> list[IntakeStatus]:
        """What county ``at`` took in for other counties, and where each stands now: nothing
        else of theirs is read out (no history, no fields beyond the project's name)."""
        from approvalflow.names import Names

        self.engine(at)
        found: list[IntakeStatus] = []
        for county, engine in self._engines.items():
            if county == at:
                continue
            names = Names.of(engine.settings)
            for state in _taken_in(engine, at):
                point = state.extra.get("intake")
                if not isinstance(point, dict) or point.get("county") != at:
                    continue
                holdups = engine.holdups_of(state)
                held = tuple(
                    dict.fromkeys((h.waiting_on, _party_name(names, h.waiting_on)) for h in holdups)
                )
                dues = [h.due for h in holdups if h.due is not None]
                found.append(
                    IntakeStatus(
                        state.id,
                        state.name,
                        county,
                        self._names[county],
                        state.stage,
                        names.state(state.stage),
                        held,
                        min(dues) if dues else None,
                        datetime.fromisoformat(point["at"]),
                        str(point["by"]),
                    )
                )
        found.sort(key=lambda s: (s.accepted_at, s.county, s.project))
        return found

    def close(self) -> None:
        """Close the stores ``open`` opened (a province built from engines closes nothing)."""
        for store in self._opened:
            store.close()
        self._opened = []


def _month_points(engine: Engine, month: str) -> int:
    """The 赛马榜 points a county's teams earned in ``month``: the sum of its own board."""
    if not isinstance(month, str) or re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", month) is None:
        raise ValueError(f"a month is YYYY-MM (such as 2026-03), not {month!r}")
    return sum(engine.points(month=month).values())


def _taken_in(engine: Engine, at: str) -> list[Any]:
    """The states of ``engine``'s projects whose intake field may name county ``at``: those
    the store's intake index finds (``intake_projects``, D275), or every project on a store
    without it. The caller still checks each state's field."""
    query = getattr(engine.store, "intake_projects", None)
    if query is None:
        return list(engine.projects())
    return engine.projects(query(at))


def _party_name(names: Any, party: str) -> str:
    if party == "applicant":
        return "企业"
    if party == "leader":
        return "包联领导"
    return str(names.department(party))


def _actors(path: Path) -> list[Actor]:
    """A county's actors file, read as ``serve --actors`` reads one (the scenario reader): its
    problems are ``ScenarioFileError`` naming that file's line."""
    from approvalflow.scenario.loader import load_actors

    return [spec.actor() for spec in load_actors(path).values()]


def _open(url: str, create: bool) -> Any:
    from approvalflow.stores import open_store

    return open_store(url, create=create)


def _safe(url: str) -> str:
    """A store URL without its password, for messages."""
    return re.sub(r"(//[^:/@]+):[^@/]*@", r"\1:***@", url)

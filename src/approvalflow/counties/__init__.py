"""The five county plugins and what they share.

Each county is a plugin module (hook functions marked with ``approvalflow.hookimpl``),
installed under the ``approvalflow`` entry-point group by its county's name:

===========  ==============================  =====================================================
name         module                          what is its own (DOMAIN.md section 5)
===========  ==============================  =====================================================
huguan       ``approvalflow.counties.huguan``     recruiter owns the landing, issue loop, monthly
                                                  board by squad, town and department, town targets
jiaocheng    ``approvalflow.counties.jiaocheng``  firm bosses as chain leaders with priority,
                                                  notify-and-commit, xzsp as lead department,
                                                  department targets and year-end score
jiangle      ``approvalflow.counties.jiangle``    3-day pre-review with one notice, group decision,
                                                  23-step points, park one-stop with an agent,
                                                  task force per project, conduct lists
gaoqing      ``approvalflow.counties.gaoqing``    A/B/C unit classes, five chains with five roles,
                                                  weekly HQ visits, the 100-day campaign targets
shangnan     ``approvalflow.counties.shangnan``   five ones with a measure set, monthly squad trips,
                                                  assign-and-rate meetings, the four-rate KPIs
===========  ==============================  =====================================================

Load one by name: ``Engine(plugins=["huguan"])`` or ``plugins: [huguan]`` in a scenario file.

**County settings.** WORKFLOW.md's settings (time limits, points...) come through the
``approvalflow_settings`` hook like any plugin's. A county's *own* numbers (the Huguan issue
deadline, the Gaoqing campaign targets...) live in a small frozen attrs object per module, held
by a :class:`CountyConfig`. A project's hooks read ``config.of(settings)``: the county's
configured numbers with ``settings.plugins[<county>]`` over them, so a scenario's
``settings: {plugins: {huguan: {issue_deadline_wd: 3}}}`` sets them, and a project keeps the
numbers of the rule set it is pinned to (D32) like every built-in number. Reports over many
projects read the engine's current settings. A county may still change its defaults once at
start-up (``huguan.configure(issue_deadline_wd=3)``); tests use ``config.overridden(...)``.

The helpers below are what the modules share: the plugin's slice of ``ProjectState.plugin_data``,
reading dates back from it, exact rates, and the "approval branch passed its deadline" watch that
three counties use to tell their own people (the landing owner, the chain leader, the head).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import date, datetime
from fractions import Fraction
from functools import cache
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import attrs

from approvalflow.calendar import to_local
from approvalflow.errors import InvalidCommand, InvalidTransition, NotAuthorized
from approvalflow.project import ProjectState, register_event_handler
from approvalflow.rules.context import Context
from approvalflow.settings import Settings, SettingsError, merge_nested, strict_converter
from approvalflow.states import BRANCH_OPEN

if TYPE_CHECKING:
    import cattrs

__all__ = [
    "BRANCH_WATCH_FOLDS",
    "COUNTIES",
    "STARTED",
    "CountyConfig",
    "branch_watch_timers",
    "completion",
    "count_landing",
    "county_data",
    "landing_row",
    "late_branch",
    "local_month",
    "milestone_month",
    "rate",
    "record_branch_watch",
    "register_events",
    "require_actor",
    "require_stage",
    "signed_in",
    "stage_index",
    "text_list",
    "when",
]

COUNTIES = ("huguan", "jiaocheng", "jiangle", "gaoqing", "shangnan")

# Milestones that mean construction has started (开工) or gone further.
STARTED = ("construction", "production", "effective")

# The lifecycle in order, by top stage; plugin rules say "from signing on" with it.
_STAGE_ORDER = (
    "lead",
    "negotiating",
    "pre_review",
    "decision",
    "signed",
    "approval",
    "approved",
    "construction",
    "production",
    "effective",
)

SettingsT = TypeVar("SettingsT")


class CountyConfig(Generic[SettingsT]):
    """Holds one county plugin's own settings object (frozen attrs), replaceable at start-up,
    and reads a project's overrides of it from ``settings.plugins[name]``."""

    def __init__(self, name: str, default: SettingsT) -> None:
        self.name = name
        self._default = default
        self._current = default
        self._merged: dict[tuple[int, str], SettingsT] = {}

    def of(self, settings: Settings) -> SettingsT:
        """The county's numbers under ``settings``: the configured ones with
        ``settings.plugins[name]`` over them (nested mappings merge key by key)."""
        overrides = settings.plugin_settings(self.name)
        if not overrides:
            return self._current
        key = (id(self._current), json.dumps(overrides, sort_keys=True, default=str))
        found = self._merged.get(key)
        if found is None:
            found = self._structure(overrides)
            if len(self._merged) > 64:  # a handful of rule sets in practice
                self._merged.clear()
            self._merged[key] = found
        return found

    def problems(self, settings: Settings) -> list[str]:
        """What is wrong with ``settings.plugins[name]`` (for ``approvalflow_check_settings``)."""
        try:
            self.of(settings)
        except SettingsError as error:
            return [str(error)]
        return []

    def _structure(self, overrides: Mapping[str, Any]) -> SettingsT:
        import cattrs

        converter = _county_converter()
        data = merge_nested(converter.unstructure(self._current), overrides)
        try:
            merged: SettingsT = converter.structure(data, type(self._current))
        except Exception as exc:  # cattrs raises ExceptionGroups of many kinds
            path = f"settings.plugins.{self.name}"
            raise SettingsError("; ".join(cattrs.transform_error(exc, path=path))) from None
        return merged

    @property
    def current(self) -> SettingsT:
        """The settings every hook of the plugin reads now."""
        return self._current

    def configure(self, settings: SettingsT | None = None, /, **changes: Any) -> SettingsT:
        """Replace the settings (by an object, or by keywords over the current ones).

        Returns the previous object, so a caller can put it back. Unknown keywords raise
        ``TypeError`` naming them (attrs does).
        """
        previous = self._current
        base = settings if settings is not None else self._current
        self._current = attrs.evolve(base, **changes) if changes else base  # type: ignore[misc]
        return previous

    def reset(self) -> None:
        """Back to the module's defaults."""
        self._current = self._default

    @contextmanager
    def overridden(
        self, settings: SettingsT | None = None, /, **changes: Any
    ) -> Iterator[SettingsT]:
        """Use other settings inside a ``with`` block (tests), then restore the previous ones."""
        previous = self.configure(settings, **changes)
        try:
            yield self._current
        finally:
            self._current = previous


@cache
def _county_converter() -> cattrs.Converter:
    """Structures county settings from JSON-like data, refusing unknown keys and wrong types
    (a ``true`` is not 1 working day); dates are ISO text."""
    from cattrs.gen import make_dict_structure_fn

    converter = strict_converter()
    converter.register_structure_hook(date, lambda value, _: _iso_date(value))
    converter.register_unstructure_hook(date, date.isoformat)
    converter.register_structure_hook_factory(
        attrs.has,
        lambda cls: make_dict_structure_fn(cls, converter, _cattrs_forbid_extra_keys=True),
    )
    return converter


def _iso_date(value: Any) -> date:
    if isinstance(value, date):
        return value
    if not isinstance(value, str):
        raise TypeError(f"expected a date as YYYY-MM-DD, got {value!r}")
    return date.fromisoformat(value)


# -- reports ------------------------------------------------------------------------------------


def landing_row() -> dict[str, int]:
    """An empty row of the counties' chain reports: projects, signed, signed amount, started."""
    return {"projects": 0, "signed": 0, "signed_amount": 0, "started": 0}


def count_landing(row: dict[str, int], state: ProjectState) -> None:
    """Add ``state`` to such a row: brought, signed (with its agreed amount), started (开工)."""
    row["projects"] += 1
    if "signed" in state.milestones:
        row["signed"] += 1
        row["signed_amount"] += state.agreed_investment or 0
    if any(m in state.milestones for m in STARTED):
        row["started"] += 1


# -- plugin data --------------------------------------------------------------------------------


def county_data(state: ProjectState, county: str) -> Mapping[str, Any]:
    """The county's slice of ``state.plugin_data`` (read-only; empty when nothing recorded)."""
    data = state.plugin_data.get(county)
    return data if isinstance(data, dict) else {}


def _writable(state: ProjectState, county: str) -> dict[str, Any]:
    data: dict[str, Any] = state.plugin_data.setdefault(county, {})
    return data


Fold = Callable[[dict[str, Any], Any, datetime], None]


def register_events(county: str, folds: Mapping[str, Fold]) -> None:
    """Register the county's event types (``<county>.<name>``) with the project fold.

    Each fold receives the county's writable slice of ``plugin_data``, the payload and the time,
    so a plugin's events can only ever touch its own data.
    """
    for name, fold in folds.items():

        def handler(state: ProjectState, payload: Any, at: datetime, fold: Fold = fold) -> None:
            fold(_writable(state, county), payload, at)

        register_event_handler(f"{county}.{name}", handler)


def when(value: str | None) -> datetime | None:
    """A time stored in plugin data (ISO text) as an aware datetime."""
    return None if value is None else datetime.fromisoformat(value)


def local_month(moment: datetime) -> str:
    """``YYYY-MM`` of ``moment`` in county time (Asia/Shanghai)."""
    return to_local(moment).strftime("%Y-%m")


def milestone_month(state: ProjectState, milestone: str) -> str | None:
    at = state.milestones.get(milestone)
    return None if at is None else local_month(at)


def signed_in(state: ProjectState, first: date, last: date) -> bool:
    """Whether the project was signed on a local day between ``first`` and ``last`` inclusive."""
    at = state.milestones.get("signed")
    return at is not None and first <= to_local(at).date() <= last


def rate(part: int, whole: int) -> Fraction | None:
    """An exact rate, ``None`` when there is nothing to divide by (WORKFLOW.md rule 12)."""
    return Fraction(part, whole) if whole else None


def completion(actual: int, target: int | None) -> Fraction | None:
    """``min(actual / target, 1)``, the usual target score (G19); ``None`` without a target."""
    share = rate(actual, target or 0)
    return None if share is None else min(share, Fraction(1))


# -- checks inside plugin commands ----------------------------------------------------------------


def stage_index(stage: str) -> int:
    """The position of ``stage``'s top stage in the lifecycle (-1 for an ending)."""
    top = stage.split(".", 1)[0]
    return _STAGE_ORDER.index(top) if top in _STAGE_ORDER else -1


def require_stage(ctx: Context, first: str, last: str, why: str) -> None:
    """``InvalidTransition`` unless the project is between stages ``first`` and ``last``."""
    index = stage_index(ctx.state.stage)
    if not stage_index(first) <= index <= stage_index(last):
        raise InvalidTransition(
            f"{ctx.command} is not allowed while {ctx.state.id} is {ctx.state.stage}: {why}"
        )


def require_actor(ctx: Context, allowed: Iterable[str | None], who: str) -> None:
    """``NotAuthorized`` unless the acting actor is one of ``allowed``."""
    if ctx.by not in {a for a in allowed if a}:
        raise NotAuthorized(f"{ctx.by} may not {ctx.command} on {ctx.state.id}: {who}")


def text_list(args: Mapping[str, Any], name: str, *, required: bool = True) -> tuple[str, ...]:
    """A non-empty list of non-empty texts, or ``InvalidCommand`` naming ``name``."""
    value = args.get(name)
    if value is None and not required:
        return ()
    if isinstance(value, str) or not isinstance(value, list | tuple) or not value:
        raise InvalidCommand(f"argument {name!r} must be a non-empty list of texts")
    items = []
    for item in value:
        if not isinstance(item, str) or not item.strip():
            raise InvalidCommand(f"argument {name!r} must list non-empty texts, found {item!r}")
        items.append(item.strip())
    return tuple(items)


# -- the approval-deadline watch ----------------------------------------------------------------
# The built-in rule tells the leader and the late department when a branch passes its limit.
# Huguan, Jiaocheng and Gaoqing each tell someone more; the engine has no hook to add
# recipients to a built-in notice, so each runs its own timer on the same deadline and sends
# its own notice. What was told is recorded per department *and due*, so a branch re-opened
# after a revocation (with a new deadline) is watched again.


def branch_watch_timers(
    state: ProjectState, county: str, kind: str
) -> dict[tuple[str, str], datetime]:
    """One timer per open approval branch whose current deadline the county has not handled."""
    if state.stage != "approval":
        return {}
    handled = county_data(state, county).get("branch_watch", {})
    return {
        (kind, dept): branch.due
        for dept, branch in state.branches.items()
        if branch.state in BRANCH_OPEN
        and branch.due is not None
        and handled.get(dept) != branch.due.isoformat()
    }


def late_branch(ctx: Context, dept: str) -> bool:
    """Whether ``dept``'s branch is open and past its deadline now (not deemed approved)."""
    branch = ctx.state.branches.get(dept)
    return (
        ctx.state.stage == "approval"
        and branch is not None
        and branch.state in BRANCH_OPEN
        and branch.due is not None
        and branch.due <= ctx.now
        and dept not in ctx.settings.deemed_approval
    )


def record_branch_watch(ctx: Context, county: str, dept: str) -> None:
    """Mark ``dept``'s current deadline as handled (event ``<county>.branch_watched``)."""
    branch = ctx.state.branches[dept]
    assert branch.due is not None
    ctx.emit(f"{county}.branch_watched", department=dept, due=branch.due.isoformat())


def _fold_branch_watched(data: dict[str, Any], p: Any, at: datetime) -> None:
    data.setdefault("branch_watch", {})[p["department"]] = p["due"]


BRANCH_WATCH_FOLDS: Mapping[str, Fold] = {"branch_watched": _fold_branch_watched}

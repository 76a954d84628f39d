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
deadline, the Gaoqing campaign targets...) live in a small frozen attrs object per module (a
``CountySettings``), held by a ``CountyConfig`` (both from ``approvalflow.plugin``). A project's
hooks read ``config.of(settings)``: the county's configured numbers with
``settings.plugins[<county>]`` over them, so a scenario's
``settings: {plugins: {huguan: {issue_deadline_wd: 3}}}`` sets them, and a project keeps the
numbers of the rule set it is pinned to (D32) like every built-in number. Reports over many
projects read the engine's current settings. A county may still change its defaults once at
start-up (``huguan.configure(issue_deadline_wd=3)``); tests use ``config.overridden(...)``.

The helpers below are what the modules share: the plugin's slice of ``ProjectState.plugin_data``,
reading dates back from it, exact rates and the chain reports' rows. Like any county plugin, the
modules import nothing of approvalflow but ``approvalflow`` and ``approvalflow.plugin`` (a test
checks it). Three counties tell their own people when an approval branch passes its limit (the
landing owner, the chain leader, the head) by adding them to the built-in ``overdue`` notice
with ``approvalflow_notice_recipients``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from fractions import Fraction
from typing import Any

from approvalflow.plugin import (
    ProjectState,
    from_iso,
    local_month,
    plugin_data_of,
    to_local,
)

__all__ = [
    "COUNTIES",
    "STARTED",
    "completion",
    "count_landing",
    "county_data",
    "landing_row",
    "local_month",
    "milestone_month",
    "rate",
    "signed_in",
    "when",
]

COUNTIES = ("huguan", "jiaocheng", "jiangle", "gaoqing", "shangnan")

# Milestones that mean construction has started (开工) or gone further.
STARTED = ("construction", "production", "effective")


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
    return plugin_data_of(state, county)


def when(value: str | None) -> datetime | None:
    """A time stored in plugin data (ISO text) as an aware datetime."""
    return from_iso(value)


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

"""``approvalflow show [PROJECT] --store URL``: a project's timeline, branches, open deadlines
in working days left, who is holding it up, and notices not yet delivered. Without a project:
the list of projects."""

from __future__ import annotations

import argparse
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from approvalflow.calendar import Due
    from approvalflow.engine import Engine
    from approvalflow.names import Names
    from approvalflow.project import Branch, ProjectState

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from approvalflow.cli.common import (
        add_actors_argument,
        add_county_arguments,
        add_store_argument,
    )

    parser.add_argument("project", nargs="?", help="project id (omit to list projects)")
    add_store_argument(parser)
    parser.add_argument(
        "--at", default=None, help="count working days left from this local time (default: now)"
    )
    parser.add_argument(
        "--plugin",
        action="append",
        default=[],
        help="county plugin (default: the plugins recorded in the store)",
    )
    add_actors_argument(parser)
    add_county_arguments(parser)
    parser.set_defaults(run=run)


def run(options: argparse.Namespace) -> int:
    from approvalflow.cli.common import CommandFailed, county_engine, parse_time
    from approvalflow.clock import SystemClock
    from approvalflow.errors import UnknownProject
    from approvalflow.names import Names

    now = parse_time("--at", options.at) or SystemClock().now()
    with county_engine(options) as (engine, actors):
        names = Names.of(engine.settings, actors, engine.commands)
        if not options.project:
            return _list(engine)
        try:
            state = engine.project(options.project)
        except UnknownProject as error:
            raise CommandFailed(error.message) from error
        print(render(engine, state, now, names))
        return 0


def _list(engine: Engine) -> int:
    from approvalflow.display import state_label

    ids = engine.project_ids()
    if not ids:
        print("no projects in this store")
    for project in ids:
        state = engine.project(project)
        print(f"{project}  {state.name}  {state_label(state.stage)}")
    return 0


def render(engine: Engine, state: ProjectState, now: datetime, names: Names | None = None) -> str:
    """The text ``show`` prints for one project: people, teams, departments and materials as
    ``name (id)`` from ``names`` (by default the county's settings alone)."""
    from approvalflow.calendar import format_local, to_local
    from approvalflow.display import branch_label, state_label
    from approvalflow.money import format_amount
    from approvalflow.names import Names
    from approvalflow.rules.ratings import LEVELS

    names = names or Names.of(engine.settings, engine.actors, engine.commands)
    who = names.labelled
    lines = [f"{state.id}  {state.name}  {state_label(state.stage)}"]
    lines.append(
        f"  applicant {who('actor', state.applicant)} · leader {who('actor', state.leader)}"
        f" · department {who('department', state.department)}"
        f" · team {who('team', state.team)} · recruiter {who('actor', state.recruiter)}"
        + (f" · agent {who('actor', state.agent)}" if state.agent else "")
        + (f" · 项目代码 {state.project_code}" if state.project_code else "")
    )
    if state.copied:
        lines.append(f"  copied to {names.many('actor', sorted(state.copied))}")
    money = f"  investment {format_amount(state.investment)}"
    if state.agreed_investment is not None:
        money += f" · agreed {format_amount(state.agreed_investment)}"
    money += f" · funds in place {format_amount(state.funds)}"
    lines.append(money)
    if state.rules_version:
        lines.append(f"  rules {state.rules_version} ({state.settings_fingerprint[:12]})")
    if state.branches:
        lines.append("Branches")
        for dept, branch in state.branches.items():
            name = names.department(dept)
            extra = ""
            if branch.outstanding:
                extra = f"  missing: {names.many('material', sorted(branch.outstanding))}"
            if branch.corrections:
                extra += f"  corrections: {names.many('material', sorted(branch.corrections))}"
            extra += _people(branch, now, names)
            if branch.stage is not None:
                extra += f"  stage: {branch.stage}"
            lines.append(f"  {dept:<6}{name:<8}{branch_label(branch.state)}{extra}")
        for request in state.removal_requests:
            asker = who("actor", request.by) if request.by else "the engine"
            lines.append(
                f"  removal of {who('department', request.department)} asked by "
                f"{asker} ({request.reason}): waits for the leader "
                f"{who('actor', state.leader)}'s consent"
            )
    if state.stage_plan:
        lines.extend(_stage_lines(engine, state, names))
    if state.ratings:
        lines.append("Ratings (好差评)")
        for item, rating in state.ratings.items():
            unit = who("department", rating.department)
            text = f"  {item:<16}{unit}  {rating.score} {LEVELS[rating.score]}"
            text += f"  {format_local(rating.at)}"
            if rating.rectification is not None:
                text += f"  rectification {rating.rectification}"
                if rating.due is not None:
                    text += f", due {format_local(rating.due)}"
                if rating.overdue_sent:
                    text += " (late)"
            lines.append(text)
    deadlines = _deadlines_with_overdue(engine, state)
    if deadlines:
        lines.append("Open deadlines")
        today = to_local(now).date()
        width = max(len(key) for key in deadlines) + 2
        for key, (due, sent) in sorted(deadlines.items(), key=lambda item: item[1][0].at):
            left = engine.calendar.working_days_between(today, due.day)
            late = engine.calendar.working_days_between(due.day, today)
            when = f"{left} wd left" if left or not late else f"overdue by {late} wd"
            if sent:
                when = f"overdue by {late} wd (overdue notice sent)"
            mark = " (provisional)" if due.provisional else ""
            lines.append(f"  {key:<{width}}{due.display()}  {when}{mark}")
    holder = holding_up(engine, state, now, names)
    if holder:
        lines.append(f"Holding it up: {holder}")
    allowed = engine.allowed_commands_of(state)
    if allowed:
        # By title (a county command's ``CommandSpec.title``, a built-in's Chinese name), the
        # id beside it: the id is what ``do`` and scenario files take.
        shown = (
            command
            if names.command(command) == command
            else f"{names.command(command)} ({command})"
            for command in allowed
        )
        lines.append(f"The stage takes: {', '.join(shown)}")
    lines.append("Timeline")
    # Up to the version shown: a commit since the state was read does not reach its timeline.
    for event in engine.history(state.id)[: state.version]:
        by = f"by {who('actor', event.by)}" if event.by else "by the engine (timer)"
        if event.on_behalf_of:
            by += f" for {who('actor', event.on_behalf_of)}"
        lines.append(
            f"  {format_local(event.at)}  v{event.version:<4}{event.type:<26}"
            f"{_summary(event.payload):<40} {by}"
        )
    pending = [
        entry
        for entry in engine.store.pending_notices(datetime.max.replace(tzinfo=now.tzinfo), 10_000)
        if entry.notice.project == state.id
    ]
    if pending:
        lines.append("Notices not yet delivered")
        for entry in pending:
            notice = entry.notice
            lines.append(
                f"  {names.labelled('notice', notice.kind)} to "
                f"{names.many('actor', notice.recipients)}"
                f" (attempts {entry.attempts}{'; ' + entry.last_error if entry.last_error else ''})"
            )
    return "\n".join(lines)


def _stage_lines(engine: Engine, state: ProjectState, names: Names) -> list[str]:
    """Approval in stages: each planned stage, its lead, where it stands; the total limit."""
    from approvalflow.calendar import format_local
    from approvalflow.rules import stages

    lines = ["Stages" + (f" (total {state.total_limit_wd} wd)" if state.total_limit_wd else "")]
    running = stages.current_stage(state)
    for spec in state.stage_plan:
        run = state.stage_runs.get(spec.id)
        lead = names.labelled("department", spec.lead)
        if run is None:
            where = f"not opened, {spec.limit_wd} wd"
        elif run.issued_at is not None:
            where = f"result issued {format_local(run.issued_at)}"
            if run.issued_by:
                where += f" by {names.labelled('actor', run.issued_by)}"
        elif run is running and stages.stage_decided(state, run):
            refusal = stages.issue_refusal(state)
            where = "decided, result to issue" if refusal is None else f"decided; {refusal}"
        else:
            waiting = names.many("department", stages.waiting_on(state, run))
            where = f"running, waiting on {waiting}" if waiting else "running"
        if run is not None and run.issued_at is None and run.due is not None:
            where += f", due {format_local(run.due)}" + (" (overdue)" if run.overdue_sent else "")
        departments = ",".join(run.departments if run is not None else spec.departments)
        lines.append(f"  {spec.id:<20}{spec.name:<10}lead {lead}  [{departments}]  {where}")
    if state.total_due is not None:
        late = " (overdue)" if state.total_overdue_sent else ""
        lines.append(f"  total due {format_local(state.total_due)}{late}")
    return lines


def _deadlines_with_overdue(engine: Engine, state: ProjectState) -> dict[str, tuple[Due, bool]]:
    """The open deadlines, and those already passed whose overdue notice a worker has sent:
    a limit stays overdue until the branch (or the pre-review round) is done, whoever fired it.
    The flag tells the second kind."""
    from approvalflow.calendar import Due
    from approvalflow.states import BRANCH_OPEN

    found: dict[str, tuple[Due, bool]] = {
        key: (due, False) for key, due in engine.deadlines_of(state).items()
    }
    round_ = state.round
    if state.stage == "pre_review.reviewing" and round_ is not None and round_.overdue_sent:
        found.setdefault(f"{state.id}.pre_review", (Due(round_.due, round_.provisional), True))
    for item, rating in state.ratings.items():
        if rating.rectification == "open" and rating.overdue_sent and rating.due is not None:
            found.setdefault(f"{state.id}.rectification.{item}", (Due(rating.due, False), True))
    if state.stage == "approval":
        for dept, branch in state.branches.items():
            if branch.state in BRANCH_OPEN and branch.overdue_sent and branch.due is not None:
                found.setdefault(
                    f"{state.id}.approval.{dept}", (Due(branch.due, branch.provisional), True)
                )
        run = state.running_stage
        if run is not None and run.overdue_sent and run.due is not None:
            found.setdefault(f"{state.id}.stage.{run.id}", (Due(run.due, run.provisional), True))
        if state.total_overdue_sent and state.total_due is not None:
            found.setdefault(
                f"{state.id}.total", (Due(state.total_due, state.total_provisional), True)
            )
    return found


def holding_up(
    engine: Engine, state: ProjectState, now: datetime | None = None, names: Names | None = None
) -> str | None:
    """Who the project waits on now, the earliest deadline first (at ``now``: whether an
    entrustment is still in force), people and units as ``name (id)``."""
    from approvalflow.calendar import format_local
    from approvalflow.names import Names
    from approvalflow.rules.holdups import holdups

    names = names or Names.of(engine.settings, engine.actors)
    who = names.labelled

    items = holdups(state, engine.rules_for(state), now)
    if not items:
        return None
    first = items[0]
    if first.what == "pre_review":
        units = [
            who("department", item.waiting_on) + (f" ({_card(item.card)})" if item.card else "")
            for item in items
            if item.what == "pre_review"
        ]
        due = f", due {format_local(first.due)}" if first.due else ""
        return f"pre-review opinions from {', '.join(units)}{due}"
    if first.what == "removal_consent":
        return (
            f"the leader {who('actor', state.leader)}: consent to remove "
            f"{who('department', first.state)}"
        )
    if first.waiting_on == "applicant":
        applicant = who("actor", state.applicant)
        if first.what == "corrections":
            return f"the applicant {applicant}: corrections for {who('department', first.state)}"
        missing = sorted(state.pre_review_missing - state.pre_review_supplied)
        if state.stage == "approval":
            missing = sorted(state.branches[first.state].outstanding)
        return f"the applicant {applicant}: materials {names.many('material', missing)}"
    unit = who("department", first.waiting_on)
    due = f", due {format_local(first.due)}" if first.due else ""
    if first.what == "stage_result":
        card = f", {_card(first.card)}" if first.card else ""
        return f"{unit}, the combined result of stage {first.state}{due}{card}"
    if first.what == "verification":
        return f"{unit}, the verification of its commitment, before the stage's result{due}"
    handled = ""
    if first.handler:
        handled = f", handled by {who('actor', first.handler)}"
        if first.deputy:
            handled += f" (entrusted to {who('actor', first.deputy)})"
    card = f", {_card(first.card)}" if first.card else ""
    return f"{unit}, {first.state}{handled}{due}{card}"


def _people(branch: Branch, now: datetime, names: Names) -> str:
    """The branch's handler, the deputy acting for them, and who it was copied to."""
    from approvalflow.calendar import format_local

    text = ""
    if branch.handler:
        text += f"  handler: {names.labelled('actor', branch.handler)}"
    if branch.deputy:
        until = f" until {format_local(branch.deputy_until)}" if branch.deputy_until else ""
        ended = "" if branch.deputy_at(now) else ", ended"
        text += f"  deputy: {names.labelled('actor', branch.deputy)}{until}{ended}"
    if branch.copied:
        text += f"  copied to: {names.many('actor', sorted(branch.copied))}"
    return text


def _card(card: str) -> str:
    """``yellow card (黄牌)``: the warning ladder's last card on an item."""
    from approvalflow.display import CARD_NAMES

    return f"{card} {'card' if card != 'warning' else ''}".strip() + f" ({CARD_NAMES[card]})"


_SUMMARY_KEYS = (
    "to",
    "card",
    "milestone",
    "points",
    "unit",
    "verdict",
    "department",
    "materials",
    "missing",
    "deficient",
    "corrections",
    "vote",
    "outcome",
    "amount",
    "agreed_investment",
    "agent",
    "handler",
    "deputy",
    "note",
    "reason",
    "due",
)


def _summary(payload: object) -> str:
    """A short line of the payload's telling fields (the whole payload is in the store)."""
    if not isinstance(payload, dict):
        return ""
    parts = []
    if "from" in payload and "to" in payload:
        parts.append(f"{payload['from']} -> {payload['to']}")
    for key in _SUMMARY_KEYS:
        if key not in payload or payload[key] in (None, [], ""):
            continue
        if key == "to" and "from" in payload:  # shown above as the move
            continue
        value = _local_time(payload[key])
        if isinstance(value, list):
            value = ",".join(map(str, value))
        parts.append(f"{key}={value}")
    tally = payload.get("tally")
    if isinstance(tally, dict):
        parts.append(f"{tally.get('outcome')} {tally.get('approve')}/{tally.get('present')}")
    return " ".join(parts)[:60]


def _local_time(value: object) -> object:
    """A stored ISO time as the rest of ``show`` writes times (``2026-03-11 24:00``)."""
    from approvalflow.calendar import format_local

    if isinstance(value, str) and len(value) >= 16 and value[4] == "-" and "T" in value:
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return value
        if moment.tzinfo is not None:
            return format_local(moment)
    return value

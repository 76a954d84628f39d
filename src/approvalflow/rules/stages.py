"""Approval in stages (国办发〔2019〕11号: 一家牵头、并联审批、限时办结).

A county that sets ``approval.stages`` splits parallel approval into ordered stages. ``apply``
fixes the stages for the project (``approval_stages_planned``: a running project keeps its
stages, whatever its rule set says later) and opens the first; each stage opens a branch for
each of its departments the route picked, its lead department's always. Inside a stage every
branch rule runs unchanged. When every branch of the stage is approved, the lead department
issues the combined result (``issue_stage_result``, 统一出件) and the next stage opens; after
the last, the project is ``approved``. Each stage has its limit and all of them a total limit,
watched like a branch limit: ladder cards and one ``overdue`` notice each.

Without stages (the default) nothing here runs: one stage of every routed department, as ever.

This module is the one place that says which stage is running and what its branches are
(``current_stage``, ``stage_branches``): every mechanism asks it, none keeps its own idea.
"""

from __future__ import annotations

from datetime import datetime

from approvalflow.calendar import WorkingCalendar, format_local
from approvalflow.errors import InvalidTransition
from approvalflow.project import Branch, ProjectState, StageRun
from approvalflow.rules import ladder
from approvalflow.rules.context import Context
from approvalflow.settings import ApprovalStageSettings, LadderStep

__all__ = [
    "DONE_STATES",
    "STAGE_LIMIT",
    "STAGE_LIMIT_CARD",
    "TOTAL_LIMIT",
    "TOTAL_LIMIT_CARD",
    "check_issue",
    "current_stage",
    "issue_refusal",
    "issue_stage_result",
    "next_stage_plan",
    "on_branches_decided",
    "on_stage_card",
    "on_stage_limit",
    "on_total_card",
    "on_total_limit",
    "open_branch",
    "open_stage",
    "stage_branches",
    "stage_decided",
    "stage_departments",
    "stage_ready",
    "staged",
    "start",
    "timers",
    "waiting_on",
]

# Branch states that count as decided for a stage's result (conditional waits for materials,
# as it does for the single stage's completion).
# A branch closed as not needed (减签) is settled for its stage but approves nothing (D149).
DONE_STATES: frozenset[str] = frozenset({"approved", "not_needed"})

# Timer kinds, by (kind, stage id). Each card kind sorts after its limit, so at the deadline the
# overdue notice goes before a card due then, as for a branch.
STAGE_LIMIT = "stage_limit"
STAGE_LIMIT_CARD = "stage_limit_card"
TOTAL_LIMIT = "total_limit"
TOTAL_LIMIT_CARD = "total_limit_card"


# -- lookups ------------------------------------------------------------------------------------


def staged(state: ProjectState) -> bool:
    """Whether the project runs approval in stages (fixed at its ``apply``)."""
    return bool(state.stage_plan)


def current_stage(state: ProjectState) -> StageRun | None:
    """The approval stage running now; ``None`` without stages, outside ``approval``, or once
    the last stage issued its result."""
    if state.stage != "approval":
        return None
    return state.running_stage


def stage_branches(state: ProjectState, stage: StageRun | str | None) -> dict[str, Branch]:
    """The branches of ``stage`` by department as they stand (those a later stage replaced, as
    they ended); ``None`` is the single stage of a project without stages: every branch."""
    if stage is None:
        return dict(state.branches)
    stage_id = stage if isinstance(stage, str) else stage.id
    found: dict[str, Branch] = {}
    run = state.stage_runs.get(stage_id)
    if run is not None:
        found.update(run.closed_branches)
    found.update({d: b for d, b in state.branches.items() if b.stage == stage_id})
    return found


def stage_departments(state: ProjectState, spec: ApprovalStageSettings) -> tuple[str, ...]:
    """The departments whose branches ``spec`` opens: those of the stage the route picked, and
    its lead department always (it receives the stage's application, D142)."""
    return tuple(d for d in spec.departments if d in state.stage_route or d == spec.lead)


def next_stage_plan(state: ProjectState) -> ApprovalStageSettings | None:
    """The stage that opens after the running (or last) one, if any."""
    if not state.stage_runs:
        return state.stage_plan[0] if state.stage_plan else None
    last = next(reversed(state.stage_runs))
    ids = [spec.id for spec in state.stage_plan]
    index = ids.index(last) + 1 if last in ids else len(ids)
    return state.stage_plan[index] if index < len(ids) else None


def waiting_on(state: ProjectState, run: StageRun) -> tuple[str, ...]:
    """The departments of ``run`` whose branches are not yet decided."""
    return tuple(d for d, b in stage_branches(state, run).items() if b.state not in DONE_STATES)


def stage_decided(state: ProjectState, run: StageRun | None) -> bool:
    """Whether every branch of ``run`` is decided (one approved at least) and its result not
    yet issued: the moment the lead department is told (``approval_stage_decided``)."""
    return (
        run is not None
        and run.issued_at is None
        and bool(stage_branches(state, run))
        and not waiting_on(state, run)
        and any(b.state == "approved" for b in stage_branches(state, run).values())
    )


def issue_refusal(state: ProjectState) -> str | None:
    """Why the running stage's result cannot be issued now, whoever asks; ``None`` when its
    lead department's officers may issue it. ``check_issue`` refuses with this text, and the
    task list and the holdups offer the result only when it is ``None``: one condition, so
    neither offers what the command refuses."""
    if not staged(state):
        return f"{state.id} has no approval stages: approval ends by itself"
    run = current_stage(state)
    if run is None:
        return f"{state.id} has no approval stage running"
    waiting = waiting_on(state, run)
    if waiting:
        states = ", ".join(f"approval.{d} {state.branches[d].state}" for d in waiting)
        return f"stage {run.id} of {state.id} waits on its branches: {states}"
    if not stage_decided(state, run):
        # Every branch closed as not needed approves nothing (D149; D150 keeps one).
        return f"stage {run.id} of {state.id} has no approved branch to issue a result of"
    pledged = unverified_pledges(state)
    following = next_stage_plan(state)
    if pledged and following is not None:
        # A commitment still to verify stays on its branch: that department's branch of the
        # next stage would replace it (D145).
        return (
            f"the next stage {following.id} opens {', '.join(pledged)} again, whose "
            f"commitment is not verified yet: verify first"
        )
    return None


def unverified_pledges(state: ProjectState) -> list[str]:
    """The departments of the next stage whose branch in this one was approved on a commitment
    not verified yet: the running stage's result waits on their verification, since the next
    stage's branch would replace the one the commitment stays on (D145, D308)."""
    following = next_stage_plan(state)
    if following is None:
        return []
    return [
        d
        for d in stage_departments(state, following)
        if (b := state.branches.get(d)) is not None
        and b.commitment
        and not b.verified
        and b.state == "approved"
    ]


def stage_ready(state: ProjectState, run: StageRun | None) -> bool:
    """Whether ``run`` can issue its result now: it is the running stage and ``issue_refusal``
    finds nothing against it (every branch decided, no commitment of the next stage's
    departments left to verify)."""
    return run is not None and run is current_stage(state) and issue_refusal(state) is None


# -- running ------------------------------------------------------------------------------------


def start(ctx: Context, route: tuple[str, ...]) -> None:
    """At ``apply`` under stages: fix the stages and the total limit, open the first stage."""
    approval = ctx.settings.approval
    total = approval.total_limit_wd
    total_due = ctx.working_days_after(total) if total is not None else None
    steps = _steps(ctx)
    ctx.emit(
        "approval_stages_planned",
        stages=[
            {
                "id": s.id,
                "name": s.name,
                "departments": list(s.departments),
                "lead": s.lead,
                "limit_wd": s.limit_wd,
            }
            for s in approval.stages
        ],
        route=list(route),
        total_limit_wd=total,
        total_due=total_due.at.isoformat() if total_due else None,
        total_provisional=total_due.provisional if total_due else False,
        **({"total_ladder": [s.to_dict() for s in steps]} if steps and total_due else {}),
    )
    open_stage(ctx, ctx.state.stage_plan[0])


def open_stage(ctx: Context, spec: ApprovalStageSettings) -> None:
    """Open ``spec``: its limit from now, then its branches; tell the lead department."""
    state = ctx.state
    due = ctx.working_days_after(spec.limit_wd)
    steps = _steps(ctx)
    ctx.emit(
        "approval_stage_opened",
        stage=spec.id,
        name=spec.name,
        lead=spec.lead,
        limit_wd=spec.limit_wd,
        due=due.at.isoformat(),
        provisional=due.provisional,
        **({"ladder": [s.to_dict() for s in steps]} if steps else {}),
    )
    departments = stage_departments(state, spec)
    for dept in departments:
        open_branch(ctx, dept)
    ctx.notify(
        "stage_opened",
        (*ctx.department_actors(spec.lead, "officer"), state.applicant, state.agent),
        stage=spec.id,
        stage_name=spec.name,
        department=spec.lead,
        departments=list(departments),
        due=format_local(due.at),
    )


def open_branch(ctx: Context, dept: str) -> None:
    """Open (or re-open, if revoked) ``dept``'s branch with its own time limit from now; under
    stages the branch belongs to the running stage."""
    existing = ctx.state.branches.get(dept)
    running = ctx.state.running_stage
    if existing is not None and (running is None or existing.stage == running.id):
        # Only a revoked branch opens again, and the branch machine says where it goes.
        ctx.machines.next_branch_state(existing.state, "reopen", department=dept)
    due = ctx.working_days_after(ctx.time_limit_wd(dept))
    accept_wd = ctx.settings.deemed_acceptance_wd
    accept_due = ctx.working_days_after(accept_wd).at.isoformat() if accept_wd else None
    # The ladder is recorded with the deadline, so a county changing it later leaves open
    # branches as they were; without one the event is as it always was.
    steps = ctx.ladder_for("approval", dept)
    ctx.emit(
        "branch_opened",
        department=dept,
        due=due.at.isoformat(),
        provisional=due.provisional,
        accept_due=accept_due,
        **({"ladder": [step.to_dict() for step in steps]} if steps else {}),
    )


def on_branches_decided(ctx: Context) -> None:
    """After a branch is decided under stages: when the running stage's last branch is, the
    lead department is told to issue the result (once per stage)."""
    run = current_stage(ctx.state)
    if run is None or run.decided_at is not None or not stage_decided(ctx.state, run):
        return
    ctx.emit("approval_stage_decided", stage=run.id)
    ctx.notify(
        "stage_decided",
        ctx.department_actors(run.lead, "officer"),
        stage=run.id,
        stage_name=run.name,
        department=run.lead,
        due=format_local(run.due) if run.due else None,
    )


def check_issue(ctx: Context) -> None:
    """``issue_stage_result``: by an officer of the running stage's lead department, when
    ``issue_refusal`` finds nothing against it."""
    state = ctx.state
    run = current_stage(state) if staged(state) else None
    assert ctx.actor is not None
    if run is not None and ctx.actor.department != run.lead:
        # Authorisation never reads state, and the lead is state: as for an officer whose
        # department has no branch, this is the wrong state for them (D143).
        raise InvalidTransition(
            f"stage {run.id} ({run.name}) of {state.id} is led by {run.lead}: only its "
            f"officers issue the stage's result"
        )
    refusal = issue_refusal(state)
    if refusal is not None:
        raise InvalidTransition(refusal)


def issue_stage_result(ctx: Context) -> None:
    """The lead department issues the stage's combined result; the next stage opens, or the
    project is approved after the last."""
    state = ctx.state
    run = current_stage(state)
    assert run is not None
    ctx.emit("approval_stage_result_issued", stage=run.id, lead=run.lead, issued_by=ctx.by)
    ctx.notify(
        "stage_result_issued",
        (state.applicant, state.agent, state.recruiter, state.leader),
        stage=run.id,
        stage_name=run.name,
        department=run.lead,
    )
    following = next_stage_plan(state)
    if following is not None:
        open_stage(ctx, following)
        return
    ctx.move("approval_complete")
    ctx.milestone("approval_complete")
    ctx.notify("approved", (state.applicant, state.recruiter, state.leader))


# -- limits -------------------------------------------------------------------------------------


def _steps(ctx: Context) -> tuple[LadderStep, ...]:
    # Stage and total limits follow the county's own ladder (D144).
    return ctx.settings.ladder.steps if ctx.settings.ladder.enabled else ()


def timers(state: ProjectState, calendar: WorkingCalendar) -> dict[tuple[str, str], datetime]:
    """The stage and total deadlines ``state`` waits on (only in ``approval``)."""
    found: dict[tuple[str, str], datetime] = {}
    if state.stage != "approval" or not state.stage_plan:
        return found
    run = state.running_stage
    if run is not None and run.due is not None:
        if not run.overdue_sent:
            found[(STAGE_LIMIT, run.id)] = run.due
        card = ladder.next_card_at(calendar, run.due, run.ladder, run.cards_issued, run.opened_at)
        if card is not None:
            found[(STAGE_LIMIT_CARD, run.id)] = card
    if state.total_due is not None:
        if not state.total_overdue_sent:
            found[(TOTAL_LIMIT, "")] = state.total_due
        started = next(iter(state.stage_runs.values())).opened_at if state.stage_runs else None
        if started is not None:
            card = ladder.next_card_at(
                calendar, state.total_due, state.total_ladder, state.total_cards_issued, started
            )
            if card is not None:
                found[(TOTAL_LIMIT_CARD, "")] = card
    return found


def on_stage_limit(ctx: Context, stage_id: str) -> None:
    state = ctx.state
    run = current_stage(state)
    if run is None or run.id != stage_id or run.overdue_sent:
        return
    ctx.emit("approval_stage_overdue", stage=run.id, lead=run.lead)
    ctx.notify(
        "overdue",
        (state.leader, *ctx.department_actors(run.lead, "officer")),
        department=run.lead,
        stage="approval_stage",
        approval_stage=run.id,
        waiting=list(waiting_on(state, run)),
    )


def on_total_limit(ctx: Context, _key: str) -> None:
    state = ctx.state
    if state.stage != "approval" or state.total_due is None or state.total_overdue_sent:
        return
    run = state.running_stage
    ctx.emit("approval_total_overdue", stage=run.id if run else None)
    lead = run.lead if run else None
    ctx.notify(
        "overdue",
        (state.leader, *(ctx.department_actors(lead, "officer") if lead else ())),
        department=lead,
        stage="approval_total",
        approval_stage=run.id if run else None,
    )


def on_stage_card(ctx: Context, stage_id: str) -> None:
    run = current_stage(ctx.state)
    if run is None or run.id != stage_id or run.due is None:
        return
    for index, step in ladder.fallen_due(ctx, run.due, run.ladder, run.cards_issued, run.opened_at):
        _issue(ctx, "approval_stage", run, index, step, run.due)


def on_total_card(ctx: Context, _key: str) -> None:
    state = ctx.state
    if state.stage != "approval" or state.total_due is None or not state.stage_runs:
        return
    due = state.total_due
    started = next(iter(state.stage_runs.values())).opened_at
    for index, step in ladder.fallen_due(
        ctx, due, state.total_ladder, state.total_cards_issued, started
    ):
        _issue(ctx, "approval_total", state.running_stage, index, step, due)


def _issue(
    ctx: Context,
    kind: str,
    run: StageRun | None,
    index: int,
    step: LadderStep,
    due: datetime,
) -> None:
    # A stage's card goes to its lead department, as its overdue notice does.
    lead = run.lead if run is not None else ""
    approval_stage = run.id if run is not None else None
    ladder.issue_card(ctx, kind, lead, index, step, due, approval_stage=approval_stage)

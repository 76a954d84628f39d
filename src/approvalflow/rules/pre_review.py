"""Instant pre-review (即时初审, rule 2) and its one-time notice (一次性告知).

Every member unit answers once per round; when the last one answers, the round closes: any
``fail`` rejects the project, else any ``supplement`` sends ONE notice listing the union of every
unit's missing materials, else the project goes to the leading group. Supplies add up; the one
that completes the list opens a new round.
"""

from __future__ import annotations

from approvalflow.errors import InvalidCommand, InvalidTransition
from approvalflow.rules import arguments
from approvalflow.rules.context import Context
from approvalflow.rules.lifecycle import reject_project

__all__ = ["on_deadline", "on_supply", "opinion", "submit_pre_review"]

VERDICTS = ("pass", "supplement", "fail")


def submit_pre_review(ctx: Context) -> None:
    materials = arguments.materials(ctx.args, "materials", ctx.settings, non_empty=False)
    ctx.emit("materials_submitted", materials=materials)
    ctx.move("submit_pre_review")
    _open_round(ctx)


def _open_round(ctx: Context) -> None:
    due = ctx.working_days_after(ctx.settings.pre_review.deadline_wd)
    ladders = {
        unit: [step.to_dict() for step in steps]
        for unit in ctx.settings.pre_review.members
        if (steps := ctx.ladder_for("pre_review", unit))
    }
    ctx.emit(
        "pre_review_round_opened",
        round=ctx.state.round_count + 1,
        due=due.at.isoformat(),
        provisional=due.provisional,
        members=ctx.settings.pre_review.members,
        **({"ladders": ladders} if ladders else {}),
    )


def check_opinion(ctx: Context) -> None:
    """State checks before arguments: a unit answers once per round."""
    assert ctx.actor is not None and ctx.state.round is not None
    unit = ctx.actor.department
    if unit in ctx.state.round.opinions:
        raise InvalidTransition(
            f"member unit {unit} has already given its opinion in pre-review round "
            f"{ctx.state.round.number} of {ctx.state.id}"
        )


def opinion(ctx: Context) -> None:
    assert ctx.actor is not None and ctx.state.round is not None
    verdict = arguments.choice(ctx.args, "verdict", VERDICTS)
    missing = arguments.materials(ctx.args, "missing", ctx.settings, non_empty=False)
    reason = arguments.text(ctx.args, "reason", required=verdict == "fail")
    if verdict == "supplement" and not missing:
        raise InvalidCommand("a supplement opinion must list the missing materials ('missing')")
    if verdict != "supplement" and missing:
        raise InvalidCommand(f"only a supplement opinion lists missing materials, not {verdict}")
    ctx.emit(
        "opinion_given",
        unit=ctx.actor.department,
        reviewer=ctx.actor.id,
        round=ctx.state.round.number,
        verdict=verdict,
        missing=missing,
        reason=reason,
    )
    _close_if_complete(ctx)


def _close_if_complete(ctx: Context) -> None:
    assert ctx.state.round is not None
    opinions = ctx.state.round.opinions
    if any(unit not in opinions for unit in ctx.settings.pre_review.members):
        return
    verdicts = [opinions[unit]["verdict"] for unit in ctx.settings.pre_review.members]
    state = ctx.state
    if "fail" in verdicts:
        reasons = [
            f"{unit}: {opinions[unit]['reason']}"
            for unit in ctx.settings.pre_review.members
            if opinions[unit]["verdict"] == "fail"
        ]
        ctx.emit(
            "pre_review_round_closed", round=state.round_count, outcome="failed", reasons=reasons
        )
        reject_project(ctx, "round_failed", reasons)
    elif "supplement" in verdicts:
        missing = list(
            dict.fromkeys(
                material
                for unit in ctx.settings.pre_review.members
                for material in opinions[unit]["missing"]
            )
        )
        ctx.emit(
            "pre_review_round_closed",
            round=state.round_count,
            outcome="supplement",
            missing=missing,
        )
        ctx.move("round_supplement")
        ctx.notify(
            "pre_review_notice",
            (state.recruiter, state.applicant),
            materials=missing,
            round=state.round_count,
        )
    else:
        ctx.emit("pre_review_round_closed", round=state.round_count, outcome="passed")
        ctx.move("round_passed")
        ctx.milestone("pre_review_passed")


def on_supply(ctx: Context, supplied: tuple[str, ...]) -> None:
    """A supply in ``awaiting_materials``: the one that completes the list opens a round."""
    state = ctx.state
    if state.pre_review_missing <= state.pre_review_supplied:
        ctx.move("materials_complete")
        _open_round(ctx)


def on_deadline(ctx: Context) -> None:
    """The round's deadline: silent units are late (``overdue``), or deemed to pass."""
    state = ctx.state
    if state.stage != "pre_review.reviewing" or state.round is None or state.round.overdue_sent:
        return
    silent = [u for u in ctx.settings.pre_review.members if u not in state.round.opinions]
    if not silent:
        return
    if ctx.settings.pre_review.silence == "pass":
        for unit in silent:
            ctx.emit(
                "opinion_given",
                unit=unit,
                reviewer=None,
                round=state.round.number,
                verdict="pass",
                missing=[],
                reason="deemed to pass: no opinion in time",
                deemed=True,
            )
        _close_if_complete(ctx)
        return
    ctx.emit("pre_review_overdue", round=state.round.number, units=silent)
    for unit in silent:
        ctx.notify(
            "overdue",
            (state.leader, *ctx.department_actors(unit, "reviewer")),
            department=unit,
            stage="pre_review",
        )

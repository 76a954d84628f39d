"""Collective decision (集体决策, rule 3): the leading group meets, votes and decides."""

from __future__ import annotations

from approvalflow.errors import AlreadyVoted, InvalidCommand
from approvalflow.rules import arguments
from approvalflow.rules.context import Context
from approvalflow.rules.lifecycle import reject_project

__all__ = ["close_meeting", "convene", "group_members", "vote"]

VOTES = ("approve", "reject", "abstain")


def group_members(ctx: Context) -> tuple[str, ...]:
    """The leading group: every actor holding the ``member`` or ``chair`` role."""
    return tuple(a.id for a in ctx.actors if a.has_role("member", "chair"))


def convene(ctx: Context) -> None:
    present = arguments.id_list(ctx.args, "present")
    group = set(group_members(ctx))
    strangers = [actor for actor in present if actor not in group]
    if strangers:
        raise InvalidCommand(
            f"present lists {', '.join(strangers)}, who are not leading-group members"
        )
    ctx.move("convene")
    ctx.emit("meeting_convened", meeting=ctx.state.meeting_count + 1, present=present)


def vote(ctx: Context) -> None:
    assert ctx.actor is not None and ctx.state.meeting is not None
    choice = arguments.choice(ctx.args, "vote", VOTES)
    meeting = ctx.state.meeting
    if ctx.actor.id not in meeting.present:
        raise InvalidCommand(
            f"{ctx.actor.id} is not recorded as present at meeting {meeting.number}"
        )
    if ctx.actor.id in meeting.votes:
        raise AlreadyVoted(
            f"{ctx.actor.id} has already voted ({meeting.votes[ctx.actor.id]}) in meeting "
            f"{meeting.number} on {ctx.state.id}"
        )
    ctx.emit("vote_cast", meeting=meeting.number, member=ctx.actor.id, vote=choice)


def close_meeting(ctx: Context) -> None:
    assert ctx.state.meeting is not None
    meeting = ctx.state.meeting
    group_size = len(group_members(ctx))
    present = len(meeting.present)
    tally = {kind: sum(1 for v in meeting.votes.values() if v == kind) for kind in VOTES}
    decision = ctx.settings.decision
    if group_size == 0 or present <= decision.quorum * group_size:
        outcome = "no_quorum"
    elif tally["approve"] > decision.majority * present:
        outcome = "approved"
    else:
        outcome = "rejected"
    tally_with_outcome = {**tally, "outcome": outcome, "present": present, "group": group_size}
    ctx.emit("meeting_closed", meeting=meeting.number, tally=tally_with_outcome)
    state = ctx.state
    ctx.notify("decision", (state.recruiter, state.leader), tally=tally_with_outcome)
    if outcome == "approved":
        ctx.move("meeting_approved")
        ctx.milestone("decision_approved")
    elif outcome == "rejected":
        reject_project(
            ctx,
            "meeting_rejected",
            [f"leading group meeting {meeting.number}: {tally['approve']} of {present} approved"],
        )
    else:
        ctx.move("meeting_no_quorum")

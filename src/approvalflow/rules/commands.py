"""The built-in commands: who may send each, where it is allowed, its arguments, its rule.

The table mirrors WORKFLOW.md's command table. The engine runs every command the same way:
authorise (``parties``), check the stage (``stage_trigger`` in the stage machine), run
``precheck`` (state checks finer than the stage, such as a branch's state), reject unknown
arguments, then the rule itself.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import attrs

from approvalflow.rules import (
    branches,
    clock_pauses,
    commitment,
    copies,
    correction,
    decision,
    department_changes,
    extensions,
    handling,
    lifecycle,
    parallel_approval,
    pre_review,
    ratings,
    rule_sets,
    stages,
    supply,
    urging,
)
from approvalflow.rules.authorization import Party
from approvalflow.rules.context import Context

__all__ = ["BUILTIN_COMMANDS", "CommandSpec"]

Rule = Callable[[Context], None]
R, A = Party.RECRUITER, Party.APPLICANT


@attrs.frozen
class CommandSpec:
    """A command the engine accepts.

    ``stage_trigger`` names the stage-machine transition that must exist from the project's
    stage (``None``: allowed in any non-terminal stage, for plugin commands that keep their
    own state). ``arguments`` lists every argument the command takes. ``on_branch`` marks a
    command on the acting officer's own approval branch: once the branch has a handler, an
    officer sends it only as the handler, their deputy or the department's head (D29).
    """

    name: str
    parties: tuple[Party, ...]
    rule: Rule
    arguments: tuple[str, ...] = ()
    stage_trigger: str | None = attrs.field(
        default=attrs.Factory(lambda self: self.name, takes_self=True)
    )
    precheck: Rule | None = None
    summary: str = ""
    under_current_rules: bool = False
    """Run under the engine's current rule set, not the one the project is pinned to."""
    on_branch: bool = False
    title: str = ""
    """The command's name as people read it (``登记走访``): the workbench's forms and buttons
    show it, as they show the built-ins' names (``display.COMMAND_NAMES``); empty: the id."""


def _spec(
    name: str, parties: tuple[Party, ...], rule: Rule, *args: str, **kw: object
) -> CommandSpec:
    return CommandSpec(name, parties, rule, tuple(args), **kw)  # type: ignore[arg-type]


_SPECS = (
    _spec(
        "create",
        (R,),
        lifecycle.on_create,
        stage_trigger=None,
        summary="Create a project with its five ones (rule 1).",
    ),
    _spec("negotiate", (R,), lifecycle.negotiate, summary="Start negotiating with the investor."),
    _spec(
        "submit_pre_review",
        (R, A),
        pre_review.submit_pre_review,
        "materials",
        summary="Send the project to the pre-review member units (rule 2).",
    ),
    _spec(
        "opinion",
        (Party.REVIEWER,),
        pre_review.opinion,
        "verdict",
        "missing",
        "reason",
        precheck=pre_review.check_opinion,
        summary="A member unit's pre-review opinion.",
    ),
    _spec(
        "supply",
        (A, R),
        supply.supply,
        "materials",
        summary="Supply missing materials or corrections (rules 2, 5, 6).",
    ),
    _spec(
        "convene",
        (Party.CHAIR,),
        decision.convene,
        "present",
        summary="Open a leading-group meeting (rule 3).",
    ),
    _spec(
        "vote",
        (Party.MEMBER, Party.CHAIR),
        decision.vote,
        "vote",
        summary="Vote approve, reject or abstain.",
    ),
    _spec(
        "close_meeting",
        (Party.CHAIR,),
        decision.close_meeting,
        summary="Tally the votes and decide.",
    ),
    _spec("sign", (R,), lifecycle.sign, "agreed_investment", summary="Sign the agreement."),
    _spec(
        "apply",
        (A,),
        parallel_approval.apply,
        "departments",
        precheck=parallel_approval.check_apply,
        summary="Open parallel approval, or re-open revoked branches (rule 4).",
    ),
    _spec(
        "accept",
        (Party.OFFICER,),
        parallel_approval.accept,
        "deficient",
        precheck=branches.check_branch,
        summary="Accept the application, possibly with deficient materials (rule 5).",
        on_branch=True,
    ),
    _spec(
        "return",
        (Party.OFFICER,),
        correction.return_for_correction,
        "corrections",
        precheck=branches.check_branch,
        summary="Return for correction (rule 6).",
        on_branch=True,
    ),
    _spec(
        "approve",
        (Party.OFFICER,),
        parallel_approval.approve,
        precheck=branches.check_branch,
        summary="Approve the department's branch.",
        on_branch=True,
    ),
    _spec(
        "reject",
        (Party.OFFICER,),
        parallel_approval.reject,
        "reason",
        precheck=branches.check_branch,
        summary="Reject the department's branch.",
        on_branch=True,
    ),
    _spec(
        "pause_clock",
        (Party.OFFICER,),
        clock_pauses.pause_clock,
        "reason",
        "until",
        "note",
        precheck=branches.check_branch,
        summary="Stop the branch's clock for a hearing, expert review, testing or survey.",
        on_branch=True,
    ),
    _spec(
        "extend_limit",
        (Party.OFFICER,),
        extensions.extend_limit,
        "days",
        "authority",
        "reason",
        precheck=extensions.check_extend,
        summary="Extend the branch's limit on a named authority, with a reason.",
        on_branch=True,
    ),
    _spec(
        "resume_clock",
        (Party.OFFICER,),
        clock_pauses.resume_clock,
        precheck=branches.check_branch,
        summary="Restart a paused branch's clock with the working days that were left.",
        on_branch=True,
    ),
    _spec(
        "issue_stage_result",
        (Party.OFFICER,),
        stages.issue_stage_result,
        precheck=stages.check_issue,
        summary="The lead department issues the stage's combined result (统一出件); the next "
        "stage opens.",
    ),
    _spec(
        "accept_commitment",
        (A,),
        commitment.accept_commitment,
        "department",
        precheck=commitment.check_accept_commitment,
        summary="Approve a branch on the applicant's pledge (rule 8).",
    ),
    _spec(
        "verify",
        (Party.OFFICER,),
        commitment.verify,
        "passed",
        precheck=commitment.check_verify,
        summary="Verify a commitment (rule 8).",
        on_branch=True,
    ),
    _spec(
        "urge", (Party.LEADER,), urging.urge, "department", summary="Urge a department (rule 9)."
    ),
    _spec(
        "add_department",
        (Party.OFFICER,),
        department_changes.add_department,
        "department",
        "reason",
        precheck=department_changes.check_department_change,
        on_branch=True,
        summary="Add a department's branch to the running approval stage (加签), with a reason.",
    ),
    _spec(
        "remove_department",
        (Party.OFFICER,),
        department_changes.remove_department,
        "department",
        "reason",
        precheck=department_changes.check_department_change,
        on_branch=True,
        summary="Close an undecided branch as not needed (减签), with a reason; on a priority "
        "project it waits for the leader's consent.",
    ),
    _spec(
        "consent_remove_department",
        (Party.LEADER,),
        department_changes.consent_remove_department,
        "department",
        "consent",
        "reason",
        summary="The leader consents to (or declines) a removal from a priority project.",
    ),
    _spec("report_funds", (R,), lifecycle.report_funds, "amount", summary="Report funds in place."),
    _spec(
        "start_construction", (R, A), lifecycle.start_construction, summary="Construction starts."
    ),
    _spec("start_production", (R, A), lifecycle.start_production, summary="Production starts."),
    _spec("reach_target", (R,), lifecycle.reach_target, summary="Target output reached."),
    _spec(
        "delegate",
        (R, A),
        lifecycle.delegate,
        "agent",
        summary="Delegate to an agent, or end the delegation.",
    ),
    _spec(
        "transfer",
        (Party.HEAD, Party.OFFICER),
        handling.transfer,
        "to",
        "reason",
        precheck=handling.check_handled_branch,
        on_branch=True,
        summary="Hand the department's branch to another of its officers (转办), with a reason.",
    ),
    _spec(
        "entrust",
        (Party.HANDLER,),
        handling.entrust,
        "to",
        "until",
        "reason",
        precheck=handling.check_handled_branch,
        on_branch=True,
        summary="The branch's handler entrusts an officer of the department (委托), or ends it.",
    ),
    _spec(
        "copy",
        (R, Party.LEADER, Party.HEAD, Party.OFFICER),
        copies.copy,
        "to",
        "note",
        "department",
        precheck=copies.check_copy,
        on_branch=True,
        summary="Copy the project or a branch to named actors with a note (抄送).",
    ),
    _spec(
        "rate",
        (A,),
        ratings.rate,
        "item",
        "score",
        "text",
        precheck=ratings.check_rate,
        summary="Rate a decided branch or the completed stage, 1 to 5 (好差评).",
    ),
    _spec(
        "rectify",
        (Party.OFFICER,),
        ratings.rectify,
        "item",
        "text",
        precheck=ratings.check_rectify,
        summary="The department reports what it did about a bad rating (整改).",
    ),
    _spec(
        "confirm_rectification",
        (A, Party.EFFICIENCY_OFFICE),
        ratings.confirm_rectification,
        "item",
        "confirmed",
        "reason",
        precheck=ratings.check_confirm,
        summary="Confirm a rectification, or send it back to the department with a reason.",
    ),
    _spec("withdraw", (A,), lifecycle.withdraw, "reason", summary="The applicant withdraws."),
    _spec(
        "migrate_rules",
        (Party.CHAIR,),
        rule_sets.migrate_rules,
        "reason",
        under_current_rules=True,
        summary="Move a running project to the county's current rule set.",
    ),
    _spec(
        "terminate",
        (Party.LEADER,),
        lifecycle.terminate,
        "reason",
        summary="The leader ends the project.",
    ),
)

BUILTIN_COMMANDS: Mapping[str, CommandSpec] = {spec.name: spec for spec in _SPECS}

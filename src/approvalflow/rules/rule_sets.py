"""Rules pinned per project, and the migration that moves a running project to new rules.

A project keeps the county rule set (``Settings``: time limits, material catalogue, routing,
points...) it was created under, by fingerprint, so a county's new rules apply to new
projects only. ``migrate_rules`` moves one running project to the engine's current rule set
when the county decides; the engine runs it under the rules it moves to (``ctx.settings``).
Deadlines already set keep their dates: they were promised under the old rules.
"""

from __future__ import annotations

from approvalflow.errors import InvalidCommand, InvalidTransition
from approvalflow.rules import arguments
from approvalflow.rules.context import Context

__all__ = ["migrate_rules", "migration_problems"]


def migration_problems(ctx: Context) -> list[str]:
    """What in the project the target rule set (``ctx.settings``) cannot carry on."""
    state, target = ctx.state, ctx.settings
    problems: list[str] = []
    for dept in sorted(state.branches):
        if dept not in target.time_limit_wd:
            problems.append(f"its approval branch {dept} is not an approving department there")
    open_materials = set(state.pre_review_missing)
    for branch in state.branches.values():
        open_materials |= branch.outstanding | branch.corrections
    unknown = sorted(m for m in open_materials if m not in target.materials)
    if unknown:
        problems.append(f"outstanding material(s) {', '.join(unknown)} are not in its catalogue")
    return problems


def migrate_rules(ctx: Context) -> None:
    """Move the project to the current rule set, for a stated reason (D32)."""
    state, target = ctx.state, ctx.settings
    # The state is checked before the arguments (WORKFLOW.md's order of checks).
    # A round or a meeting is judged as a whole under one rule set (its members, its quorum).
    if state.stage == "pre_review.reviewing":
        raise InvalidTransition(
            f"migrate_rules is not allowed while {state.id}'s pre-review round is open: "
            "migrate after its outcome"
        )
    if state.meeting is not None:
        raise InvalidTransition(
            f"migrate_rules is not allowed while the leading group meets on {state.id}: "
            "migrate after its decision"
        )
    reason = arguments.text(ctx.args, "reason", required=True)
    fingerprint = target.fingerprint()
    if fingerprint == state.settings_fingerprint:
        raise InvalidCommand(
            f"{state.id} is under rule set {target.rules_version!r} already: nothing to migrate"
        )
    problems = migration_problems(ctx)
    if problems:
        raise InvalidCommand(
            f"{state.id} cannot move to rule set {target.rules_version!r}: " + "; ".join(problems)
        )
    ctx.emit(
        "rules_migrated",
        from_fingerprint=state.settings_fingerprint,
        from_version=state.rules_version,
        to_fingerprint=fingerprint,
        to_version=target.rules_version,
        reason=reason,
    )

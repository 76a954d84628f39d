"""Fault-tolerant acceptance (容缺受理, rule 5).

A department may accept with non-key materials missing. The branch then carries a supply
deadline, a reminder before it, and revocation at it, for as long as any listed material is
missing, whether the branch is ``deficient``, ``conditional`` (approved, permit withheld) or
``returned``. After a revocation that department may not accept deficiently again.
"""

from __future__ import annotations

from approvalflow.errors import InvalidCommand, KeyMaterialMissing
from approvalflow.project import Branch
from approvalflow.rules.branches import complete_if_all_approved
from approvalflow.rules.context import Context

__all__ = ["accept_deficient", "on_reminder", "on_supply", "on_supply_deadline"]

# Branch states that keep a deficient acceptance's supply deadline running.
SUPPLY_STATES = frozenset({"deficient", "conditional", "returned", "paused"})


def accept_deficient(ctx: Context, branch: Branch, deficient: tuple[str, ...]) -> None:
    dept = branch.department
    required = ctx.settings.requirements.get(dept, ())
    not_required = [m for m in deficient if m not in required]
    if not_required:
        raise InvalidCommand(
            f"deficient lists {', '.join(not_required)}, which {dept} does not require "
            f"({', '.join(required)})"
        )
    key = [m for m in deficient if ctx.settings.is_key_material(m)]
    if key:
        raise KeyMaterialMissing(
            f"{', '.join(key)} {'is a key material' if len(key) == 1 else 'are key materials'}: "
            f"{dept} cannot accept {ctx.state.id} without {'it' if len(key) == 1 else 'them'}"
        )
    if branch.deficient_barred:
        raise InvalidCommand(
            f"{dept} revoked a deficient acceptance of {ctx.state.id} before and may not accept "
            "it with deficient materials again"
        )
    supply = ctx.working_days_after(ctx.settings.supply_deadline_wd)
    reminder = ctx.working_days_after(
        ctx.settings.supply_deadline_wd - ctx.settings.reminder_before_wd
    )
    ctx.move_branch(
        dept,
        "accept_deficient",
        deficient=deficient,
        supply_due=supply.at.isoformat(),
        reminder_due=reminder.at.isoformat(),
    )


def on_supply(ctx: Context) -> None:
    """After a supply: a branch whose deficient materials are all in goes on."""
    for dept, branch in list(ctx.state.branches.items()):
        if (
            branch.deficient
            and not branch.outstanding
            and branch.state
            in (
                "deficient",
                "conditional",
            )
        ):
            ctx.move_branch(dept, "materials_complete")
    complete_if_all_approved(ctx)


def on_reminder(ctx: Context, dept: str) -> None:
    branch = ctx.state.branches.get(dept)
    if branch is None or branch.reminder_sent or not branch.outstanding:
        return
    ctx.emit("branch_reminded", department=dept, materials=sorted(branch.outstanding))
    ctx.notify(
        "reminder",
        (ctx.state.applicant, ctx.state.agent),
        department=dept,
        materials=sorted(branch.outstanding),
        supply_due=branch.supply_due.isoformat() if branch.supply_due else None,
    )


def on_supply_deadline(ctx: Context, dept: str) -> None:
    branch = ctx.state.branches.get(dept)
    if branch is None or not branch.outstanding or branch.state not in SUPPLY_STATES:
        return
    missing = sorted(branch.outstanding)
    ctx.move_branch(dept, "revoke", reason="supply_deadline", materials=missing)
    ctx.notify(
        "revoked",
        (ctx.state.applicant, ctx.state.leader),
        department=dept,
        materials=missing,
        reason="supply_deadline",
    )

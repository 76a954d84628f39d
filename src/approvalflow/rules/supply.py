"""``supply``: materials arrive, for a pre-review round, a deficient acceptance or a return.

Supplies add up; each rule decides whether this one completes what it waits for.
"""

from __future__ import annotations

from approvalflow.rules import arguments, correction, fault_tolerant, pre_review
from approvalflow.rules.context import Context

__all__ = ["supply"]


def supply(ctx: Context) -> None:
    materials = arguments.materials(ctx.args, "materials", ctx.settings, non_empty=True)
    ctx.emit("materials_supplied", materials=materials)
    if ctx.state.stage == "pre_review.awaiting_materials":
        pre_review.on_supply(ctx, materials)
    else:
        correction.on_supply(ctx)
        fault_tolerant.on_supply(ctx)

"""The workflow reference (states, commands, notices, errors, settings) rendered from the code.

``python -m approvalflow.reference`` prints Markdown; ``docs/workflow-reference.md`` is that
output, and a test fails when the two differ, so the page cannot drift from the engine.
"""

from __future__ import annotations

import json

from approvalflow import errors
from approvalflow.display import BRANCH_STATE_NAMES, NOTICE_NAMES, ROLE_NAMES, STATE_NAMES
from approvalflow.model import ESCALATION_KINDS, NOTICE_KINDS, ROLES
from approvalflow.rules.commands import BUILTIN_COMMANDS
from approvalflow.settings import Settings
from approvalflow.states import (
    BRANCH_STATES,
    BRANCH_TABLE,
    STAGE_TABLE,
    STAGES,
    TERMINAL,
    WORKFLOW_NAME,
)

__all__ = ["render"]

# Who holds each role. WORKFLOW.md's table names its roles; `head` and `efficiency_office` are
# the engine's additions (extensions, the warning ladder).
_ROLE_WHO: dict[str, str] = {
    "recruiter": "investment-promotion team member of the project's `team` (none: every team)",
    "applicant": "the enterprise named as the project's `applicant`",
    "agent": "full-process agency staff, for the projects delegated to it",
    "reviewer": "officer of a pre-review member unit (`department`)",
    "member": "leading-group member",
    "chair": "leading-group chair",
    "officer": "officer of an approving department, for that department's branch",
    "leader": "the county leader who holds the project; receives every escalation",
    "head": "a department's head (`department`): the authority for an extension; receives the "
    "warning ladder's cards addressed to `head`",
    "efficiency_office": "the county's efficiency office: receives the warning ladder's cards "
    "addressed to `efficiency_office`; sends no command",
}


def render() -> str:
    """The whole reference page as Markdown."""
    parts = [
        f"# Workflow reference: `{WORKFLOW_NAME}`",
        "",
        "Generated from the code by `python -m approvalflow.reference`; do not edit by hand.",
        "WORKFLOW.md is the contract; this page is what the engine implements.",
        "",
        "## Roles",
        "",
        "| role | 中文 | who |",
        "| --- | --- | --- |",
    ]
    for role in ROLES:
        parts.append(f"| `{role}` | {ROLE_NAMES[role]} | {_ROLE_WHO[role]} |")
    parts += [
        "",
        "## Stages",
        "",
        "| stage | 中文 | terminal | left by |",
        "| --- | --- | --- | --- |",
    ]
    for stage in STAGES:
        leaving = sorted(
            {f"`{t}` → `{d}`" for (t, s), d in STAGE_TABLE.items() if s == stage and d != stage}
        )
        parts.append(
            f"| `{stage}` | {STATE_NAMES.get(stage, '')} | "
            f"{'yes' if stage in TERMINAL else ''} | {', '.join(leaving)} |"
        )
    parts += [
        "",
        "## Approval branch states (`approval.<department>`)",
        "",
        "| state | 中文 | left by |",
        "| --- | --- | --- |",
    ]
    for state in BRANCH_STATES:
        leaving = sorted(
            {f"`{t}` → `{d}`" for (t, s), d in BRANCH_TABLE.items() if s == state and d != state}
        )
        parts.append(f"| `{state}` | {BRANCH_STATE_NAMES.get(state, '')} | {', '.join(leaving)} |")
    parts += [
        "",
        "## Commands",
        "",
        "| command | by | allowed in | arguments | what it does |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, spec in BUILTIN_COMMANDS.items():
        parties = ", ".join(p.value for p in spec.parties)
        if spec.stage_trigger is None:
            where = "(new project)" if name == "create" else "any non-terminal stage"
        else:
            where = ", ".join(f"`{s}`" for s in STAGES if (spec.stage_trigger, s) in STAGE_TABLE)
        args = ", ".join(f"`{a}`" for a in spec.arguments) or "-"
        parts.append(f"| `{name}` | {parties} | {where} | {args} | {spec.summary} |")
    parts += [
        "",
        "`applicant` includes the agent the project is delegated to (events record `by` and",
        "`on_behalf_of`). On a command on the officer's own branch ("
        + ", ".join(f"`{name}`" for name, spec in BUILTIN_COMMANDS.items() if spec.on_branch)
        + "), `officer` means any officer of the department until a `transfer` names the",
        "branch's handler (经办人); then the handler, the deputy they entrusted (events record",
        "`by` the deputy and `on_behalf_of` the handler) or an officer who is the",
        "department's head. `handler` is the branch's handler in person; `head` is a",
        "department's head (负责人), for their own department.",
        "",
        "## Notices",
        "",
        "| kind | 中文 | escalation |",
        "| --- | --- | --- |",
    ]
    for kind in NOTICE_KINDS:
        parts.append(
            f"| `{kind}` | {NOTICE_NAMES.get(kind, '')} | "
            f"{'yes' if kind in ESCALATION_KINDS else ''} |"
        )
    parts += ["", "## Error codes", "", "| code | meaning |", "| --- | --- |"]
    for code in errors.ERROR_CODES:
        doc = (getattr(errors, code).__doc__ or "").strip().splitlines()[0]
        parts.append(f"| `{code}` | {doc} |")
    parts += [
        "",
        "## Settings (built-in values)",
        "",
        "```json",
        json.dumps(Settings.default().to_dict(), ensure_ascii=False, indent=2),
        "```",
        "",
    ]
    return "\n".join(parts)


if __name__ == "__main__":
    print(render(), end="")

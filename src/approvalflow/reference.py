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
from approvalflow.settings import STAGE_TEMPLATES, Settings
from approvalflow.states import TERMINAL, WORKFLOW_NAME, investment_project

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
    "addressed to `efficiency_office` and every rating (好差评); confirms or reopens a "
    "rectification",
}


def render() -> str:
    """The whole reference page as Markdown."""
    machines = investment_project()
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
    for stage in machines.stages.states:
        leaving = sorted({f"`{t}` → `{d}`" for t, d in machines.stages.leaving(stage)})
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
    for state in machines.branch.states:
        leaving = sorted({f"`{t}` → `{d}`" for t, d in machines.branch.leaving(state)})
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
            where = ", ".join(f"`{s}`" for s in machines.stages.sources(spec.stage_trigger))
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
    parts += [
        "",
        "## Approval in stages",
        "",
        "With `approval.stages` set, `apply` fixes the project's stages and opens the first;",
        "each stage opens a branch for each of its departments the route picked (its lead",
        "department's always), the lead's officers `issue_stage_result` once every branch of",
        "the stage is `approved`, and the next stage opens; after the last the project is",
        "`approved`. A stage past its limit, or approval past `approval.total_limit_wd`, sends",
        "`overdue` (`stage`: `approval_stage` or `approval_total`) once, and the ladder's cards",
        "when the ladder is on. See docs/stages.md. Templates:",
        "",
        "| template | stage | 中文 | lead | departments | limit | total |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for template, (template_stages, total) in STAGE_TEMPLATES.items():
        for planned in template_stages:
            parts.append(
                f"| `{template}` | `{planned.id}` | {planned.name} | `{planned.lead}` | "
                f"{', '.join(f'`{d}`' for d in planned.departments)} | {planned.limit_wd} wd | "
                f"{total} wd |"
            )
    parts += [
        "",
        "## Error codes",
        "",
        "Every error is an `ApprovalflowError` with a stable `code`, and also the built-in",
        "exception it resembles. A refused command changes nothing:",
        "",
        *_error_table(errors.ERROR_CODES),
        "",
        "A `SetupError`: the library cannot be set up as asked (raised before, or instead of,",
        "running commands):",
        "",
        *_error_table(errors.SETUP_ERROR_CODES),
        "",
        "A `StoreError`: the storage, not a rule, refused or failed; nothing was written:",
        "",
        *_error_table(errors.STORE_ERROR_CODES),
        "",
        "A `ServiceError`: the HTTP service (`approvalflow serve`) refused the request itself:",
        "",
        *_error_table(errors.SERVICE_ERROR_CODES),
    ]
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


def _error_table(codes: tuple[str, ...]) -> list[str]:
    rows = ["| code | also a | meaning |", "| --- | --- | --- |"]
    by_code = {cls.code: cls for cls in errors.error_classes()}
    for code in codes:
        cls = by_code[code]
        builtins = [base.__name__ for base in cls.__mro__[1:] if base.__module__ == "builtins"]
        resembles = builtins[0] if builtins[0] != "Exception" else "-"
        summary = " ".join((cls.__doc__ or "").strip().split("\n\n")[0].split())
        rows.append(f"| `{code}` | `{resembles}` | {summary} |".replace("`-`", "-"))
    return rows


if __name__ == "__main__":
    print(render(), end="")

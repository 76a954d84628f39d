"""A project's life outside the special mechanisms: five-ones creation (rule 1), negotiation,
signing, construction, production, target output, funds, delegation, withdrawal, termination."""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from typing import Any

from approvalflow.errors import InvalidCommand
from approvalflow.inputs import MAX_ID, validate_project_id
from approvalflow.model import Actor, ActorDirectory
from approvalflow.money import MAX_YUAN, parse_amount
from approvalflow.rules import arguments
from approvalflow.rules.context import Context
from approvalflow.settings import Settings

__all__ = ["PROJECT_FIELDS", "created_payload", "validate_project_id"]

PROJECT_FIELDS = (
    "name",
    "investment",
    "applicant",
    "leader",
    "department",
    "team",
    "agent",
    "industry",
    "emissions",
    "project_code",
    "priority",
)
_REQUIRED = ("name", "investment", "applicant", "leader", "department", "team")
_MAX_NAME = 200

# 全国投资项目在线审批监管平台 project code: year, 6-digit administrative division, 2-digit
# industry, 2-digit project type, 6-digit serial, e.g. 2026-140527-30-03-012345.
_PROJECT_CODE = re.compile(r"([0-9]{4})-([0-9]{6})-([0-9]{2})-([0-9]{2})-([0-9]{6})")
_PROVINCES = frozenset(
    {11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37, 41, 42, 43, 44, 45, 46}
    | {50, 51, 52, 53, 54, 61, 62, 63, 64, 65}
)


def validate_project_code(code: object) -> str | None:
    """The national platform's project code (项目代码), checked for shape, or ``None``.

    The engine cannot ask the platform whether a code exists; it checks the shape a code must
    have, so a mistyped one is refused before it is joined to the platform's records.
    """
    if code is None or code == "":
        return None
    if not isinstance(code, str):
        raise InvalidCommand(
            f"project_code must be text like 2026-140527-30-03-012345, not {code!r}"
        )
    match = _PROJECT_CODE.fullmatch(code)
    if match is None:
        raise InvalidCommand(
            f"project_code {code!r} is not a project code (YYYY-division-industry-type-serial, "
            "e.g. 2026-140527-30-03-012345)"
        )
    year, division = int(match.group(1)), match.group(2)
    if not 2014 <= year <= 2099:
        raise InvalidCommand(f"project_code {code!r}: {year} is not a year the platform issued")
    if int(division[:2]) not in _PROVINCES:
        raise InvalidCommand(
            f"project_code {code!r}: {division} is not a mainland administrative division"
        )
    return code


def created_payload(
    fields: Mapping[str, Any],
    *,
    recruiter: Actor,
    actors: ActorDirectory,
    settings: Settings,
    extra_fields: Collection[str] = (),
    settings_fingerprint: str | None = None,
) -> dict[str, Any]:
    """Check a new project's fields (the five ones) and return its ``created`` payload."""
    if not isinstance(fields, Mapping):
        raise InvalidCommand("create needs the project's fields as a mapping")
    unknown = sorted(set(fields) - set(PROJECT_FIELDS) - set(extra_fields))
    if unknown:
        raise InvalidCommand(
            f"create got unknown project field(s) {', '.join(map(str, unknown))} "
            f"(fields: {', '.join(PROJECT_FIELDS + tuple(extra_fields))})"
        )
    missing = [name for name in _REQUIRED if fields.get(name) in (None, "")]
    if missing:
        raise InvalidCommand(
            f"create needs {', '.join(missing)} (five ones: a leader, a responsible "
            "department and a team for every project)"
        )
    name = arguments.text(fields, "name", required=True, max_length=_MAX_NAME)
    team = arguments.text(fields, "team", required=True, max_length=MAX_ID)
    industry = arguments.text(fields, "industry", required=False, max_length=MAX_ID)
    project_code = validate_project_code(fields.get("project_code"))
    investment = parse_amount(fields["investment"], argument="investment")
    if investment <= 0:
        raise InvalidCommand("investment must be more than zero")
    department = fields["department"]
    if department not in settings.departments:
        raise InvalidCommand(
            f"department {department!r} is not a known department "
            f"({', '.join(settings.departments)})"
        )
    applicant = _party(fields, "applicant", actors, role="applicant")
    leader = _party(fields, "leader", actors, role="leader")
    agent = _party(fields, "agent", actors, role="agent") if fields.get("agent") else None
    extra = {key: fields[key] for key in extra_fields if key in fields}
    for key, value in extra.items():
        if not _plain_data(value):
            raise InvalidCommand(
                f"project field {key!r} must be text, a number, true/false, or lists and "
                f"mappings of those, not {type(value).__name__}"
            )
    emissions = fields.get("emissions", True)
    if not isinstance(emissions, bool):
        raise InvalidCommand(f"emissions must be true or false, not {emissions!r}")
    priority = fields.get("priority", False)
    if not isinstance(priority, bool):
        raise InvalidCommand(f"priority must be true or false, not {priority!r}")
    return {
        "name": name,
        "investment": investment,
        "applicant": applicant,
        "leader": leader,
        "department": department,
        "team": team,
        "agent": agent,
        "industry": industry,
        "emissions": emissions,
        "project_code": project_code,
        **({"priority": True} if priority else {}),
        "recruiter": recruiter.id,
        "settings_fingerprint": settings_fingerprint or settings.fingerprint(),
        "rules_version": settings.rules_version,
        "extra": extra,
    }


def _plain_data(value: object, depth: int = 0) -> bool:
    """JSON-like data, at most 10 levels deep: what a history can store and hash exactly."""
    if value is None or isinstance(value, str | bool | int | float):
        return True
    if depth >= 10:
        return False
    if isinstance(value, list):
        return all(_plain_data(item, depth + 1) for item in value)
    if isinstance(value, dict):
        return all(
            isinstance(key, str) and _plain_data(item, depth + 1) for key, item in value.items()
        )
    return False


def _party(
    fields: Mapping[str, Any], name: str, actors: ActorDirectory, *, role: str | None
) -> str:
    actor_id = fields.get(name)
    if not isinstance(actor_id, str):
        raise InvalidCommand(f"{name} must be an actor id, not {actor_id!r}")
    actor = actors.get(actor_id)
    if actor is None:
        raise InvalidCommand(f"{name} {actor_id!r} is not in the actor directory")
    if role and role not in actor.roles:
        raise InvalidCommand(f"{name} {actor_id!r} does not hold the {role} role")
    return actor_id


def on_create(ctx: Context) -> None:
    ctx.milestone("lead")


def negotiate(ctx: Context) -> None:
    ctx.move("negotiate")
    ctx.milestone("negotiating")


def sign(ctx: Context) -> None:
    agreed = arguments.amount(ctx.args, "agreed_investment", default=ctx.state.investment)
    if agreed <= 0:
        raise InvalidCommand("agreed_investment must be more than zero")
    ctx.emit("signed", agreed_investment=agreed)
    ctx.move("sign")
    ctx.milestone("signed")


def start_construction(ctx: Context) -> None:
    ctx.move("start_construction")
    ctx.milestone("construction")


def start_production(ctx: Context) -> None:
    ctx.move("start_production")
    ctx.milestone("production")


def reach_target(ctx: Context) -> None:
    ctx.move("reach_target")
    ctx.milestone("effective")


def report_funds(ctx: Context) -> None:
    amount = arguments.amount(ctx.args, "amount")
    if amount <= 0:
        raise InvalidCommand("amount must be more than zero")
    if ctx.state.funds + amount > MAX_YUAN:
        raise InvalidCommand(
            f"amount would bring {ctx.state.id}'s funds in place over 10^15 yuan (1000万亿), "
            "more than any project holds"
        )
    ctx.emit("funds_reported", amount=amount, total=ctx.state.funds + amount)


def delegate(ctx: Context) -> None:
    if "agent" not in ctx.args:
        raise InvalidCommand("argument 'agent' is required (an agent's actor id, or null)")
    agent_id = ctx.args["agent"]
    if agent_id is not None:
        if not isinstance(agent_id, str):
            raise InvalidCommand(f"argument 'agent' must be an actor id or null, not {agent_id!r}")
        agent = ctx.actors.get(agent_id)
        if agent is None:
            raise InvalidCommand(f"agent {agent_id!r} is not in the actor directory")
        if "agent" not in agent.roles:
            raise InvalidCommand(f"{agent_id!r} does not hold the agent role")
    ctx.emit("delegated", agent=agent_id, previous=ctx.state.agent)


def withdraw(ctx: Context) -> None:
    reason = arguments.text(ctx.args, "reason", required=False)
    ctx.emit("withdrawn", reason=reason, stage=ctx.state.stage)
    ctx.move("withdraw")


def terminate(ctx: Context) -> None:
    reason = arguments.text(ctx.args, "reason", required=True)
    ctx.emit("terminated", reason=reason, stage=ctx.state.stage)
    ctx.move("terminate")


def reject_project(ctx: Context, trigger: str, reasons: list[str]) -> None:
    """End the project ``rejected`` and tell its applicant, recruiter and leader why."""
    ctx.move(trigger)
    state = ctx.state
    ctx.notify("rejected", (state.applicant, state.recruiter, state.leader), reasons=reasons)

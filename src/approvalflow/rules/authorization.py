"""Who may send which command (WORKFLOW.md "Roles").

Authorisation looks at roles, department, teams, delegation and the project's named parties,
never at state, so that a wrong actor always gets ``NotAuthorized`` whatever the project's stage.
A branch's handler (经办人) and the deputy they entrusted (委托) are named parties of that branch,
as the agent is of the project: who they are is read, never the branch's state (D29).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from datetime import datetime

import attrs

from approvalflow.calendar import format_local
from approvalflow.errors import NotAuthorized
from approvalflow.model import Actor
from approvalflow.settings import Settings

__all__ = ["BranchParties", "Party", "authorize"]


class Party(enum.Enum):
    """A kind of party a command may come from."""

    RECRUITER = "recruiter"
    APPLICANT = "applicant"  # the named enterprise, or the agent it delegated to
    REVIEWER = "reviewer"
    MEMBER = "member"
    CHAIR = "chair"
    OFFICER = "officer"  # on a branch command: its handler, their deputy, or the head (D29)
    LEADER = "leader"
    HEAD = "head"  # a department's head (负责人), for their own department
    HANDLER = "handler"  # the branch's handler in person (who alone may entrust)
    EFFICIENCY_OFFICE = "efficiency_office"  # the county's 效能办 (confirms rectifications)


@attrs.frozen
class BranchParties:
    """The named parties of the acting officer's branch: its handler and their deputy.

    ``deputy_until`` is the end of the entrustment (``None``: until it is ended or the branch
    changes hands).
    """

    department: str
    handler: str | None = None
    deputy: str | None = None
    deputy_until: datetime | None = None

    def deputy_at(self, moment: datetime | None) -> str | None:
        if self.deputy is None:
            return None
        if moment is not None and self.deputy_until is not None and moment >= self.deputy_until:
            return None
        return self.deputy

    def describe(self, project_id: str) -> str:
        text = f"approval.{self.department} of {project_id} is handled by {self.handler}"
        if self.deputy is not None:
            until = f" until {format_local(self.deputy_until)}" if self.deputy_until else ""
            text += f" (entrusted to {self.deputy}{until})"
        return text


def authorize(
    parties: Iterable[Party],
    actor: Actor,
    *,
    command: str,
    project_id: str,
    team: str,
    applicant: str,
    agent: str | None,
    leader: str,
    settings: Settings,
    branch: BranchParties | None = None,
    now: datetime | None = None,
) -> str | None:
    """Return ``on_behalf_of`` or raise ``NotAuthorized``.

    ``on_behalf_of`` is the applicant when its agent acts, the branch's handler when their
    deputy acts, else ``None``. ``branch`` holds the named parties of the acting officer's
    branch for commands on a branch (``None``: no such branch, or not a branch command);
    ``now`` judges whether an entrustment is still in force. The first party the actor
    qualifies as wins; the message lists why none fitted.
    """
    reasons: list[str] = []
    for party in parties:
        if party is Party.RECRUITER:
            if not actor.has_role("recruiter"):
                reasons.append("is not a recruiter")
            elif not actor.serves_team(team):
                reasons.append(f"is a recruiter, but not of team {team!r}")
            else:
                return None
        elif party is Party.APPLICANT:
            if actor.id == applicant:
                return None
            if actor.has_role("agent") and agent == actor.id:
                return applicant
            if actor.has_role("agent"):
                reasons.append(f"is an agent, but {project_id} is not delegated to it")
            else:
                reasons.append(f"is not the applicant {applicant!r}")
        elif conflict := _conflict(party, actor, project_id, applicant, agent, settings):
            reasons.append(conflict)
        elif party is Party.REVIEWER:
            if not actor.has_role("reviewer"):
                reasons.append("is not a reviewer")
            elif actor.department not in settings.pre_review.members:
                reasons.append(
                    f"is a reviewer of {actor.department!r}, which is not a pre-review member unit"
                )
            else:
                return None
        elif party in (Party.MEMBER, Party.CHAIR):
            role = party.value
            if not actor.has_role(role):
                reasons.append(f"is not a {role}")
            elif command == "vote" and project_id in actor.recuse:
                reasons.append(f"has recused themself from {project_id}")
            else:
                return None
        elif party is Party.OFFICER:
            if not actor.has_role("officer"):
                reasons.append("is not an officer")
            elif not actor.department:
                reasons.append("is an officer of no department")
            elif branch is None or branch.handler is None or actor.id == branch.handler:
                return None
            elif actor.has_role("head"):
                return None  # the department's head answers for every branch of it
            elif branch.deputy_at(now) == actor.id:
                return branch.handler
            else:
                reasons.append(
                    f"is an officer of {actor.department}, but {branch.describe(project_id)}"
                )
        elif party is Party.HANDLER:
            if not actor.has_role("officer"):
                reasons.append("is not an officer")
            elif not actor.department:
                reasons.append("is an officer of no department")
            elif branch is None or actor.id == branch.handler:
                return None  # no branch of theirs: the stage or branch check says so next
            elif branch.handler is None:
                reasons.append(
                    f"approval.{branch.department} of {project_id} has no handler to act for "
                    "(a transfer names one)"
                )
            elif branch.deputy_at(now) == actor.id:
                reasons.append(
                    f"acts for {branch.handler} on approval.{branch.department} and may not "
                    "entrust it further"
                )
            else:
                reasons.append(
                    f"is not the handler of approval.{branch.department} ({branch.handler})"
                )
        elif party is Party.HEAD:
            if not actor.has_role("head"):
                reasons.append("is not a department head")
            elif not actor.department:
                reasons.append("is a head of no department")
            else:
                return None
        elif party is Party.LEADER:
            if actor.id == leader:
                return None
            reasons.append(f"is not {project_id}'s leader {leader!r}")
        elif party is Party.EFFICIENCY_OFFICE:
            if actor.has_role("efficiency_office"):
                return None
            reasons.append("is not of the efficiency office")
    why = "; ".join(dict.fromkeys(reasons)) or "holds no role that may"
    raise NotAuthorized(f"{actor.id} may not {command} on {project_id}: {why}")


# The deciding parties, by the role that decides (settings.conflicts.allow names roles).
_DECIDING = {
    Party.REVIEWER: "reviewer",
    Party.MEMBER: "member",
    Party.CHAIR: "chair",
    Party.OFFICER: "officer",
    Party.HANDLER: "officer",
    Party.HEAD: "head",
    Party.LEADER: "leader",
}


def _conflict(
    party: Party,
    actor: Actor,
    project_id: str,
    applicant: str,
    agent: str | None,
    settings: Settings,
) -> str | None:
    """Why ``actor`` may not decide on the project as ``party``: it applied for the project,
    or acts for the applicant (D74). ``None`` when there is no conflict, or the county allows
    the role (``settings.conflicts.allow``)."""
    role = _DECIDING.get(party)
    if role is None or not actor.has_role(role) or role in settings.conflicts.allow:
        return None
    if actor.id == applicant:
        return f"is the applicant of {project_id} and may not decide on it as {role}"
    if agent is not None and actor.id == agent:
        return f"is the agent of {project_id}'s applicant and may not decide on it as {role}"
    return None

"""Who may send which command (WORKFLOW.md "Roles").

Authorisation looks at roles, department, teams, delegation and the project's named parties,
never at state, so that a wrong actor always gets ``NotAuthorized`` whatever the project's stage.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable

from approvalflow.errors import NotAuthorized
from approvalflow.model import Actor
from approvalflow.settings import Settings

__all__ = ["Party", "authorize"]


class Party(enum.Enum):
    """A kind of party a command may come from."""

    RECRUITER = "recruiter"
    APPLICANT = "applicant"  # the named enterprise, or the agent it delegated to
    REVIEWER = "reviewer"
    MEMBER = "member"
    CHAIR = "chair"
    OFFICER = "officer"
    LEADER = "leader"


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
) -> str | None:
    """Return ``on_behalf_of`` (the applicant when an agent acts) or raise ``NotAuthorized``.

    The first party the actor qualifies as wins; the message lists why none fitted.
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
            else:
                return None
        elif party is Party.LEADER:
            if actor.id == leader:
                return None
            reasons.append(f"is not {project_id}'s leader {leader!r}")
    why = "; ".join(dict.fromkeys(reasons)) or "holds no role that may"
    raise NotAuthorized(f"{actor.id} may not {command} on {project_id}: {why}")

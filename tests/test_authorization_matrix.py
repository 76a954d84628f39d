"""Authorisation matrix: every command x every kind of actor, against WORKFLOW.md's role table.

Authorisation is checked before state, so one project in any stage shows who may send what:
the answer is either NotAuthorized or some other outcome (success or a later check's error).
"""

from __future__ import annotations

import itertools

import pytest
from builders import PROJECT_FIELDS, County

from approvalflow import ApprovalflowError, NotAuthorized
from approvalflow.rules.commands import BUILTIN_COMMANDS

RECRUITER = {
    "create", "negotiate", "submit_pre_review", "sign", "report_funds", "start_construction",
    "start_production", "reach_target", "supply", "delegate",
}  # fmt: skip
APPLICANT = {
    "submit_pre_review", "apply", "supply", "accept_commitment", "withdraw",
    "start_construction", "start_production", "delegate",
}  # fmt: skip
OFFICER = {
    "accept",
    "return",
    "approve",
    "reject",
    "verify",
    "pause_clock",
    "resume_clock",
    "extend_limit",
}

# actor id -> (what the actor is to project P1, the commands WORKFLOW.md lets it send)
MATRIX: dict[str, tuple[str, set[str]]] = {
    "guo": ("recruiter of P1's team", RECRUITER),
    "any_recruiter": ("recruiter serving every team", RECRUITER),
    "team_other": ("recruiter of another team", set()),
    "fuyuan": ("P1's applicant", APPLICANT),
    "other_firm": ("another applicant", set()),
    "daiban": ("agent P1 is delegated to", APPLICANT),
    "daiban2": ("agent of no delegation", set()),
    "r_gxj": ("reviewer of a member unit", {"opinion"}),
    "r_zj": ("reviewer outside the member units", set()),
    "m1": ("leading-group member", {"vote"}),
    "m4": ("member recused from P1", set()),
    "chair": (
        "chair (also a member)",
        {"convene", "close_meeting", "vote", "migrate_rules"},
    ),
    "o_fgw": ("officer of an approving department", OFFICER),
    "huang": ("P1's leader", {"urge", "terminate"}),
    "li": ("another project's leader", set()),
    "stranger": ("not in the directory", set()),
}


@pytest.fixture(scope="module")
def county() -> County:
    from builders import county_actors

    from approvalflow import Actor

    county = County(actors=[*county_actors(), Actor("team_other", ["recruiter"], teams=["x"])])
    county.create()
    county.do("delegate", "P1", "fuyuan", agent="daiban")
    return county


@pytest.mark.parametrize(
    ("command", "actor"), list(itertools.product(sorted(BUILTIN_COMMANDS), sorted(MATRIX)))
)
def test_who_may_send_what(county: County, command: str, actor: str) -> None:
    """NotAuthorized exactly when the role table does not give the actor the command."""
    allowed = command in MATRIX[actor][1]
    project = "P1"
    args: dict[str, object] = {}
    if command == "create":
        project = f"NEW-{actor}"
        args = dict(PROJECT_FIELDS)
    before = county.engine.project("P1").version
    try:
        county.engine.execute(command, project, actor, args)
        refused = None
    except NotAuthorized as error:
        refused = error
    except ApprovalflowError:
        refused = None
    if allowed:
        assert refused is None, f"{MATRIX[actor][0]} was refused {command}: {refused}"
    else:
        assert refused is not None, f"{MATRIX[actor][0]} was allowed {command}"
        assert county.engine.project("P1").version == before

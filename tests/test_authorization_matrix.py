"""Authorisation matrix: every command x every kind of actor, against WORKFLOW.md's role table.

Authorisation is checked before state, so one project in any stage shows who may send what:
the answer is either NotAuthorized or some other outcome (success or a later check's error).
A second matrix runs every command against a project in approval whose zj branch has a handler
and an entrusted deputy, and whose yj branch's entrustment has ended (D29, D30): there the
department's other officers are refused its branch commands.
"""

from __future__ import annotations

import itertools

import pytest
from builders import PROJECT_FIELDS, County

from approvalflow import ApprovalflowError, NotAuthorized
from approvalflow.rules.commands import BUILTIN_COMMANDS

RECRUITER = {
    "create", "negotiate", "submit_pre_review", "sign", "report_funds", "start_construction",
    "start_production", "reach_target", "supply", "delegate", "copy",
}  # fmt: skip
APPLICANT = {
    "submit_pre_review", "apply", "supply", "accept_commitment", "withdraw",
    "start_construction", "start_production", "delegate",
    # 好差评: the applicant or its agent rates and confirms a rectification (D154).
    "rate", "confirm_rectification",
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
    "transfer",
    "copy",
    # 加签/减签: an officer of a routed department, as on its own branch (D148).
    "add_department",
    "remove_department",
}
# Commands on the officer's own branch, where a handler restricts who may act (D29).
BRANCH = OFFICER | {"entrust"}
# Any officer may send these; whether their department leads the running stage (D143) or owes
# a rectification (D157) is state.
STAGE_LEAD = {"issue_stage_result", "rectify"}
HEAD = {"transfer", "copy"}

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
    "o_fgw": ("officer of an approving department", BRANCH | STAGE_LEAD),
    "h_zj": ("head of a department, not an officer", HEAD),
    "hz": ("head of a department who is an officer too", BRANCH | STAGE_LEAD),
    "huang": ("P1's leader", {"urge", "terminate", "copy", "consent_remove_department"}),
    "li": ("another project's leader", set()),
    "stranger": ("not in the directory", set()),
}


# Project P2, in approval: zj handled by o_zj2, who entrusted o_zj3; yj handled by o_yj, whose
# entrustment to o_yj2 ended yesterday; fgw has no handler.
BRANCH_MATRIX: dict[str, tuple[str, set[str]]] = {
    "o_zj2": ("zj's handler", BRANCH),
    "o_zj3": ("the deputy zj's handler entrusted", OFFICER),
    "o_zj": ("an officer of zj who is not its handler", set()),
    "hz": ("zj's head, an officer too", OFFICER),
    "h_zj": ("zj's head, not an officer", HEAD),
    "o_fgw": ("an officer of another department (fgw has no handler)", OFFICER),
    "o_yj": ("yj's handler", BRANCH),
    "o_yj2": ("yj's handler's deputy after the entrustment ended", set()),
    "huang": ("P2's leader", {"urge", "terminate", "copy", "consent_remove_department"}),
}
for _actor in ("o_zj2", "o_zj3", "o_zj", "hz", "o_fgw", "o_yj", "o_yj2"):
    _what, _commands = BRANCH_MATRIX[_actor]
    BRANCH_MATRIX[_actor] = (_what, _commands | STAGE_LEAD)


@pytest.fixture(scope="module")
def county() -> County:
    from datetime import timedelta

    from builders import county_actors

    from approvalflow import Actor

    county = County(
        actors=[
            *county_actors(),
            Actor("team_other", ["recruiter"], teams=["x"]),
            Actor("h_zj", ["head"], department="zj"),
            Actor("hz", ["head", "officer"], department="zj"),
            Actor("o_zj3", ["officer"], department="zj"),
            Actor("o_yj2", ["officer"], department="yj"),
        ]
    )
    county.create()
    county.do("delegate", "P1", "fuyuan", agent="daiban")
    county.to_approval("P2")
    county.do("transfer", "P2", "o_zj", to="o_zj2", reason="专人负责")
    county.do("entrust", "P2", "o_zj2", to="o_zj3", until="2026-12-31")
    county.do("transfer", "P2", "o_yj", to="o_yj", reason="专人负责")
    county.do("entrust", "P2", "o_yj", to="o_yj2", until="2026-03-02")
    county.advance(timedelta(days=1))
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


@pytest.mark.parametrize(
    ("command", "actor"),
    list(itertools.product(sorted(BUILTIN_COMMANDS), sorted(BRANCH_MATRIX))),
)
def test_who_may_act_on_a_handled_branch(county: County, command: str, actor: str) -> None:
    """NotAuthorized exactly when the handler, an entrustment in force or the head's role does
    not give the actor the command; named parties never change here (no `to` is given)."""
    allowed = command in BRANCH_MATRIX[actor][1]
    project = "P2"
    args: dict[str, object] = {}
    if command == "create":
        project = f"NEW-{actor}"
        args = dict(PROJECT_FIELDS)
    before = county.engine.project("P2").version
    try:
        county.engine.execute(command, project, actor, args)
        refused = None
    except NotAuthorized as error:
        refused = error
    except ApprovalflowError:
        refused = None
    if allowed:
        assert refused is None, f"{BRANCH_MATRIX[actor][0]} was refused {command}: {refused}"
    else:
        assert refused is not None, f"{BRANCH_MATRIX[actor][0]} was allowed {command}"
        assert county.engine.project("P2").version == before
    branches = county.engine.project("P2").branches
    assert (branches["zj"].handler, branches["zj"].deputy) == ("o_zj2", "o_zj3")
    assert (branches["yj"].handler, branches["yj"].deputy) == ("o_yj", "o_yj2")

"""A county in a box for tests: actors, a manual clock, and a project driven to any stage."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from approvalflow import Actor, CommandResult, Engine, ManualClock, Notice
from approvalflow.calendar import SHANGHAI

# Set by the `every_store` fixture: builds the store each County uses (None: in memory).
STORE_FACTORY: Callable[[], Any] | None = None

MONDAY = datetime(2026, 3, 2, 9, 0, tzinfo=SHANGHAI)
MEMBER_UNITS = ("gxj", "fgw", "zrzy", "sthj")
APPROVERS = ("fgw", "zrzy", "zj", "sthj", "yj")


def county_actors() -> list[Actor]:
    actors = [
        Actor("guo", ["recruiter"], name="郭强", teams=["light_alloy"]),
        Actor("any_recruiter", ["recruiter"]),
        Actor("fuyuan", ["applicant"], name="富远铝业"),
        Actor("other_firm", ["applicant"]),
        Actor("daiban", ["agent"], name="代办员"),
        Actor("daiban2", ["agent"]),
        Actor("huang", ["leader"], name="黄副县长"),
        Actor("li", ["leader"]),
        Actor("chair", ["chair", "member"]),
        Actor("m1", ["member"]),
        Actor("m2", ["member"]),
        Actor("m3", ["member"]),
        Actor("m4", ["member"], recuse=["P1"]),
    ]
    actors += [Actor(f"r_{unit}", ["reviewer"], department=unit) for unit in MEMBER_UNITS]
    actors.append(Actor("r_zj", ["reviewer"], department="zj"))
    actors += [Actor(f"o_{dept}", ["officer"], department=dept) for dept in APPROVERS]
    actors.append(Actor("o_zj2", ["officer"], department="zj"))
    return actors


# Approval in two stages, zj leading the second: its branch and the stage's result can both be
# rated badly, so zj owes two rectifications of one project at once (``to_two_rectifications``).
TWO_STAGES: dict[str, Any] = {
    "pre_review": {"members": ["gxj", "fgw"]},
    "routing": {"departments": ["fgw", "zj"]},
    "approval": {
        "stages": [
            {
                "id": "one",
                "name": "立项",
                "departments": ["fgw", "zj"],
                "lead": "fgw",
                "limit_wd": 8,
            },
            {"id": "two", "name": "施工", "departments": ["zj"], "lead": "zj", "limit_wd": 10},
        ],
        "total_limit_wd": 20,
    },
}

PROJECT_FIELDS: dict[str, Any] = {
    "name": "富远新型铝材产业园",
    "investment": "15亿",
    "industry": "light_alloy",
    "applicant": "fuyuan",
    "leader": "huang",
    "department": "gxj",
    "team": "light_alloy",
}


class County:
    """An engine on a manual clock with the standard actors, plus shortcuts to drive projects."""

    def __init__(
        self,
        *,
        settings: Mapping[str, Any] | None = None,
        plugins: Iterable[object] = (),
        start: datetime = MONDAY,
        store: Any = None,
        actors: list[Actor] | None = None,
        **engine_options: Any,
    ) -> None:
        self.clock = ManualClock(start)
        self.engine = Engine(
            actors=actors or county_actors(),
            clock=self.clock,
            settings=settings,
            plugins=plugins,
            store=store if store is not None else (STORE_FACTORY() if STORE_FACTORY else None),
            **engine_options,
        )
        self.notices: list[Notice] = []

    def do(
        self, command: str, project: str, by: str, command_id: str | None = None, **args: Any
    ) -> CommandResult:
        result = self.engine.execute(command, project, by, args, command_id=command_id)
        self.notices.extend(result.notices)
        return result

    def create(self, project: str = "P1", by: str = "guo", **fields: Any) -> CommandResult:
        return self.do("create", project, by, **{**PROJECT_FIELDS, **fields})

    def advance(self, delta: timedelta) -> None:
        target = self.clock.now() + delta
        for result in self.engine.run_due(target):
            self.notices.extend(result.notices)
        self.clock.set(target)

    def advance_to(self, moment: datetime) -> None:
        self.advance(moment - self.clock.now())

    def stage(self, project: str = "P1") -> str:
        return self.engine.project(project).stage

    def branch(self, dept: str, project: str = "P1") -> str:
        return self.engine.project(project).branches[dept].state

    def deadline(self, key: str) -> str:
        return self.engine.deadlines(key.split(".")[0])[key].display()

    def take_notices(self) -> list[dict[str, Any]]:
        """Notices since the last call, one per recipient (as scenario files see them)."""
        flat = [item for notice in self.notices for item in notice.per_recipient()]
        self.notices = []
        return flat

    # -- drive a project to a stage ----------------------------------------------------------

    def to_pre_review(self, project: str = "P1", materials: Iterable[str] = ()) -> None:
        self.create(project)
        self.do("negotiate", project, "guo")
        self.do("submit_pre_review", project, "guo", materials=list(materials))

    def pass_pre_review(self, project: str = "P1") -> None:
        for unit in MEMBER_UNITS:
            self.do("opinion", project, f"r_{unit}", verdict="pass")

    def to_decision(self, project: str = "P1") -> None:
        self.to_pre_review(project)
        self.pass_pre_review(project)

    def approve_in_meeting(self, project: str = "P1") -> None:
        self.do("convene", project, "chair", present=["chair", "m1", "m2", "m3"])
        for member in ("chair", "m1", "m2"):
            self.do("vote", project, member, vote="approve")
        self.do("close_meeting", project, "chair")

    def to_signed(self, project: str = "P1") -> None:
        self.to_decision(project)
        self.approve_in_meeting(project)
        self.do("sign", project, "guo")

    def to_approval(self, project: str = "P1", **apply_args: Any) -> None:
        self.to_signed(project)
        self.do("apply", project, "fuyuan", **apply_args)

    def to_two_rectifications(self, project: str = "P1") -> None:
        """Under ``TWO_STAGES``: both stages approved, then the enterprise rates the second
        stage's zj branch (``approval.two.zj``) and the stage's result (``approval.two``)
        badly: zj owes two rectifications of ``project``."""
        self.create(project)
        self.do("negotiate", project, "guo")
        self.do("submit_pre_review", project, "guo", materials=[])
        for unit in ("gxj", "fgw"):
            self.do("opinion", project, f"r_{unit}", verdict="pass")
        self.approve_in_meeting(project)
        self.do("sign", project, "guo")
        self.do("apply", project, "fuyuan")
        self.approve_all(project, ("fgw", "zj"))
        self.do("issue_stage_result", project, "o_fgw")
        self.approve_all(project, ("zj",))
        self.do("issue_stage_result", project, "o_zj")
        self.do("rate", project, "fuyuan", item="approval.two.zj", score=2)
        self.do("rate", project, "fuyuan", item="approval.two", score=1)

    def approve_all(self, project: str = "P1", departments: Iterable[str] = APPROVERS) -> None:
        for dept in departments:
            self.do("accept", project, f"o_{dept}")
            self.do("approve", project, f"o_{dept}")


def kinds(notices: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return sorted((n["kind"], n["to"]) for n in notices)

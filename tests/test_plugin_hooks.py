"""The engine's plugin points, exercised by small plugins defined in the tests."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from builders import County

from approvalflow.plugin import (
    SHANGHAI,
    CommandSpec,
    Context,
    Fold,
    Party,
    PluginError,
    UnknownEventType,
    event_folds,
    hookimpl,
    read_text,
)


def _issue_raised(data: dict[str, Any], payload: Any, at: datetime) -> None:
    data.setdefault("issues", {})[payload["issue"]] = {"due": payload["due"], "resolved": False}


def _issue_overdue(data: dict[str, Any], payload: Any, at: datetime) -> None:
    data["issues"][payload["issue"]]["resolved"] = True


DEMO_FOLDS = event_folds("demo", {"issue_raised": _issue_raised, "issue_overdue": _issue_overdue})


def raise_issue(ctx: Context) -> None:
    text = read_text(ctx.args, "text", required=True)
    due = ctx.working_days_after(2)
    ctx.emit("demo.issue_raised", issue=text, due=due.at.isoformat())


# Every test runs on the memory, SQLite and PostgreSQL stores.
pytestmark = pytest.mark.usefixtures("every_store")


class IssueLoop:
    """A plugin with its own command, event, timer and notice, like Huguan's issue loop."""

    @hookimpl
    def approvalflow_event_folds(self) -> dict[str, Fold]:
        return DEMO_FOLDS

    @hookimpl
    def approvalflow_commands(self) -> list[CommandSpec]:
        return [
            CommandSpec(
                "raise_issue", (Party.RECRUITER,), raise_issue, ("text",), stage_trigger=None
            )
        ]

    @hookimpl
    def approvalflow_timers(self, project: Any) -> dict[tuple[str, str], datetime]:
        issues = project.plugin_data.get("demo", {}).get("issues", {})
        return {
            ("demo.issue", name): datetime.fromisoformat(issue["due"])
            for name, issue in issues.items()
            if not issue["resolved"]
        }

    @hookimpl
    def approvalflow_fire_timer(self, context: Context, kind: str, branch: str) -> bool | None:
        if kind != "demo.issue":
            return None
        context.emit("demo.issue_overdue", issue=branch)
        context.notify("issue_overdue", [context.state.leader], issue=branch)
        return True


class TestPluginCommandsAndTimers:
    def test_a_plugin_command_event_timer_and_notice_work_together(self) -> None:
        """raise_issue schedules a 2 wd timer; at its end the leader hears of it, once."""
        county = County(plugins=[IssueLoop()])
        county.create()
        county.do("raise_issue", "P1", "guo", text="供电线路迁改")
        assert county.engine.deadlines("P1")["P1.demo.issue.供电线路迁改"].display() == (
            "2026-03-04 24:00"
        )
        county.advance_to(datetime(2026, 3, 5, 0, 0, tzinfo=SHANGHAI))
        assert [(n["kind"], n["to"]) for n in county.take_notices()] == [("issue_overdue", "huang")]
        county.advance(timedelta(days=30))
        assert county.take_notices() == []
        assert county.engine.store.timers("P1") == []

    def test_a_plugin_command_checks_its_party_and_arguments(self) -> None:
        """The applicant may not raise issues; a missing text is an InvalidCommand."""
        from approvalflow import InvalidCommand, NotAuthorized

        county = County(plugins=[IssueLoop()])
        county.create()
        with pytest.raises(NotAuthorized):
            county.do("raise_issue", "P1", "fuyuan", text="x")
        with pytest.raises(InvalidCommand, match="text"):
            county.do("raise_issue", "P1", "guo")


class TestSettingsAndObservers:
    def test_a_settings_hook_changes_a_time_limit(self) -> None:
        """zj in 5 wd instead of 7."""

        class FastZj:
            @hookimpl
            def approvalflow_settings(self, settings: Any) -> dict[str, Any]:
                return {"time_limit_wd": {"zj": 5}}

        county = County(plugins=[FastZj()])
        county.to_approval()
        assert county.deadline("P1.approval.zj") == "2026-03-09 24:00"

    def test_escalations_are_observed_and_a_raising_observer_is_survived(self) -> None:
        """The rejected notice reaches the escalation hook; a hook that raises breaks nothing."""
        seen: list[str] = []

        class Ledger:
            @hookimpl
            def approvalflow_escalation(self, notice: Any) -> None:
                seen.append(notice.kind)

        class Broken:
            @hookimpl
            def approvalflow_event(self, event: Any, project: Any) -> None:
                raise RuntimeError("observer bug")

        county = County(plugins=[Ledger(), Broken()])
        county.create()
        county.do("negotiate", "P1", "guo")
        county.do("submit_pre_review", "P1", "guo", materials=[])
        county.do("opinion", "P1", "r_gxj", verdict="fail", reason="产能过剩")
        for unit in ("fgw", "zrzy", "sthj"):
            county.do("opinion", "P1", f"r_{unit}", verdict="pass")
        assert county.stage() == "rejected"
        assert seen == ["rejected"]

    def test_a_misspelled_hook_fails_loudly(self) -> None:
        """An implementation that matches no spec is an error naming it."""

        class Typo:
            @hookimpl
            def approvalflow_setings(self) -> None:
                return None

        with pytest.raises(PluginError, match="approvalflow_setings"):
            County(plugins=[Typo()])

    def test_an_unknown_plugin_name_is_an_error(self) -> None:
        """Plugins named by entry point must be installed."""
        with pytest.raises(PluginError, match="no approvalflow plugin named 'atlantis'"):
            County(plugins=["atlantis"])


class TestSettingsHooks:
    def test_hook_approvalflow_check_settings(self) -> None:
        """A plugin's problem with its settings refuses the engine; a good value builds it."""
        from approvalflow import SettingsError
        from approvalflow.settings import Settings

        class Visits:
            @hookimpl
            def approvalflow_check_settings(self, settings: Settings) -> list[str]:
                days = settings.plugin_settings("visits").get("interval_days", 7)
                if isinstance(days, bool) or not isinstance(days, int):
                    return [f"settings.plugins.visits.interval_days: not {days!r}"]
                return []

        with pytest.raises(SettingsError, match="interval_days: not '7'"):
            County(plugins=[Visits()], settings={"plugins": {"visits": {"interval_days": "7"}}})
        county = County(plugins=[Visits()], settings={"plugins": {"visits": {"interval_days": 3}}})
        assert county.engine.settings.plugin_settings("visits") == {"interval_days": 3}


class TestCommandHooks:
    def test_hook_approvalflow_check_command(self) -> None:
        """A check refuses sign by anyone but the creating recruiter, and create without a
        town; the refusal stores nothing."""
        from approvalflow import InvalidCommand, NotAuthorized

        class LandingOwner:
            @hookimpl
            def approvalflow_check_command(self, context: Context, command: str) -> None:
                if command == "sign" and context.actor.id != context.state.recruiter:
                    raise NotAuthorized("only the landing owner signs")
                if command == "create" and "emissions" not in context.args:
                    raise InvalidCommand("say whether the project has emissions")

        county = County(plugins=[LandingOwner()])
        with pytest.raises(InvalidCommand, match="emissions"):
            county.create()
        assert county.engine.project_ids() == []
        county.create(emissions=True)
        county.do("negotiate", "P1", "guo")
        county.do("submit_pre_review", "P1", "guo", materials=[])
        county.pass_pre_review()
        county.approve_in_meeting()
        with pytest.raises(NotAuthorized, match="landing owner"):
            county.do("sign", "P1", "any_recruiter")
        assert county.stage() == "decision.approved"
        county.do("sign", "P1", "guo")

    def test_hook_approvalflow_after_command(self) -> None:
        """An addition's event and notice are stored in the command's own commit."""

        class Copy:
            @hookimpl
            def approvalflow_event_folds(self) -> dict[str, Fold]:
                return {"demo.copied": lambda data, payload, at: None}

            @hookimpl
            def approvalflow_after_command(self, context: Context, command: str) -> None:
                if command == "negotiate":
                    context.emit("demo.copied", to=context.state.recruiter)
                    context.notify("demo.copy", [context.state.leader])

        county = County(plugins=[Copy()])
        county.create()
        result = county.do("negotiate", "P1", "guo")
        assert [e.type for e in result.events][-1] == "demo.copied"
        assert [n.kind for n in result.notices] == ["demo.copy"]
        assert county.engine.history("P1")[-1].type == "demo.copied"

    def test_an_event_type_no_plugin_folds_is_refused_and_nothing_is_stored(self) -> None:
        """Strict folds: an event the engine could not rebuild the project from is never
        written; the error names the event type."""

        class Unfolded:
            @hookimpl
            def approvalflow_after_command(self, context: Context, command: str) -> None:
                if command == "negotiate":
                    context.emit("demo.copied", to=context.state.recruiter)

        county = County(plugins=[Unfolded()])
        county.create()
        before = county.engine.history("P1")
        with pytest.raises(UnknownEventType, match=r"demo\.copied"):
            county.do("negotiate", "P1", "guo")
        assert county.engine.history("P1") == before
        assert county.stage() == "lead"

    def test_a_notice_without_an_event_is_refused_and_nothing_is_stored(self) -> None:
        """A plugin command that only notifies would reuse the last commit's notice id: the
        engine refuses it whole, so no earlier notice is overwritten."""
        from approvalflow import CommandSpec, Party

        def ping(context: Context) -> None:
            context.notify("demo.ping", [context.state.leader])

        class Ping:
            @hookimpl
            def approvalflow_commands(self) -> list[CommandSpec]:
                return [CommandSpec("ping", (Party.RECRUITER,), ping, stage_trigger=None)]

        county = County(plugins=[Ping()])
        county.create()
        before = county.engine.history("P1")
        with pytest.raises(ValueError, match="records no event"):
            county.do("ping", "P1", "guo")
        assert county.engine.history("P1") == before

    def test_hook_approvalflow_time_limit(self) -> None:
        """A priority lane gives zj 3 wd instead of 7 on large projects; the rest keep theirs."""

        class PriorityLane:
            @hookimpl
            def approvalflow_time_limit(
                self, project: Any, department: str, settings: Any
            ) -> int | None:
                return 3 if department == "zj" and project.investment >= 10**9 else None

        county = County(plugins=[PriorityLane()])
        county.to_approval()
        assert county.deadline("P1.approval.zj") == "2026-03-05 24:00"
        assert county.deadline("P1.approval.yj") == "2026-03-11 24:00"


class TestLadderHook:
    """``approvalflow_ladder``: a county's own warning ladder per project and department."""

    @staticmethod
    def county(*plugins: object, settings: dict[str, Any] | None = None) -> County:
        from builders import county_actors

        from approvalflow import Actor

        actors = [*county_actors(), Actor("xnb", ["efficiency_office"])]
        return County(plugins=plugins, actors=actors, settings=settings)

    def test_hook_approvalflow_ladder(self) -> None:
        """Big projects' zj branch gets a two-step ladder although the built-in one is off;
        other departments and the pre-review get none (the hook's ``None``: settings)."""
        from approvalflow import LadderStep

        asked: list[tuple[str, str]] = []

        class KeyProjects:
            @hookimpl
            def approvalflow_ladder(
                self, project: Any, stage: str, department: str, settings: Any
            ) -> list[LadderStep] | None:
                asked.append((stage, department))
                if stage == "approval" and department == "zj" and project.investment >= 10**9:
                    return [
                        LadderStep("warning", 1, ["officer"]),
                        LadderStep("red", -1, ["leader", "efficiency_office"]),
                    ]
                return None

        county = self.county(KeyProjects())
        county.to_approval()
        assert ("pre_review", "gxj") in asked and ("approval", "fgw") in asked
        county.advance(timedelta(days=20))
        sent = [
            (n.kind, n.fields["department"], n.at.isoformat(), n.recipients)
            for n in county.notices
            if n.kind in ("early_warning", "yellow_card", "red_card")
        ]
        # zj due Wed 03-11: warned at the end of 03-10, red at the end of 03-12.
        assert sent == [
            ("early_warning", "zj", "2026-03-11T00:00:00+08:00", ("o_zj", "o_zj2")),
            ("red_card", "zj", "2026-03-13T00:00:00+08:00", ("huang", "xnb")),
        ]

    def test_an_empty_answer_switches_the_ladder_off_for_that_item(self) -> None:
        """With the built-in ladder on, ``[]`` for fgw leaves fgw without cards."""

        class NotFgw:
            @hookimpl
            def approvalflow_ladder(self, department: str) -> list[Any] | None:
                return [] if department == "fgw" else None

        county = self.county(NotFgw(), settings={"ladder": {"enabled": True}})
        county.to_approval()
        branches = county.engine.project("P1").branches
        assert branches["fgw"].ladder == ()
        assert len(branches["zj"].ladder) == 3

    def test_a_ladder_may_be_given_as_mappings(self) -> None:
        """Plain data works as well as ``LadderStep``s (a county reading its ladder from YAML)."""

        class FromData:
            @hookimpl
            def approvalflow_ladder(self, stage: str) -> list[dict[str, Any]] | None:
                if stage != "approval":
                    return None
                return [{"card": "yellow", "offset_wd": 0, "recipients": ["officer"]}]

        county = self.county(FromData())
        county.to_approval()
        assert county.deadline("P1.approval.zj.card") == "2026-03-11 24:00"

    @pytest.mark.parametrize(
        ("answer", "why"),
        [
            ([{"card": "orange", "offset_wd": 0, "recipients": ["officer"]}], "card: must be"),
            (
                [
                    {"card": "red", "offset_wd": 0, "recipients": ["officer"]},
                    {"card": "yellow", "offset_wd": -1, "recipients": ["officer"]},
                ],
                "only escalates",
            ),
            ([{"card": "red", "offset_wd": 0, "recipients": ["mayor"]}], "unknown recipient"),
            ("red", "must be a list of LadderStep"),
            (
                [{"card": "red", "offset_wd": 0, "recipients": "leader"}],
                "expected a list of recipients",
            ),
        ],
    )
    def test_a_bad_ladder_refuses_the_command_and_changes_nothing(
        self, answer: Any, why: str
    ) -> None:
        """The command that opens the item fails with InvalidCommand naming the problem."""
        from approvalflow import InvalidCommand

        class Broken:
            @hookimpl
            def approvalflow_ladder(self, stage: str) -> Any:
                return answer if stage == "approval" else None

        county = self.county(Broken())
        county.to_signed()
        version = county.engine.project("P1").version
        with pytest.raises(InvalidCommand, match=why):
            county.do("apply", "P1", "fuyuan")
        assert county.engine.project("P1").version == version
        assert county.stage() == "signed"

    def test_the_ladder_is_fixed_when_the_branch_opens(self) -> None:
        """A county that changes its ladder later does not move an open branch's cards."""
        from approvalflow import LadderStep

        class Changing:
            def __init__(self) -> None:
                self.steps = [LadderStep("yellow", 0, ["officer"])]

            @hookimpl
            def approvalflow_ladder(self, stage: str) -> list[LadderStep] | None:
                return self.steps if stage == "approval" else None

        plugin = Changing()
        county = self.county(plugin)
        county.to_approval()
        plugin.steps = [LadderStep("red", -5, ["leader"])]
        county.do("urge", "P1", "huang", department="zj")
        assert county.deadline("P1.approval.zj.card") == "2026-03-11 24:00"

"""The engine's plugin points, exercised by small plugins defined in the tests."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from builders import County

from approvalflow import CommandSpec, Context, Party, PluginError, hookimpl
from approvalflow.calendar import SHANGHAI
from approvalflow.project import register_event_handler
from approvalflow.rules import arguments


def _issue_raised(state: Any, payload: Any, at: datetime) -> None:
    issues = state.plugin_data.setdefault("demo", {"issues": {}})["issues"]
    issues[payload["issue"]] = {"due": payload["due"], "resolved": False}


def _issue_overdue(state: Any, payload: Any, at: datetime) -> None:
    state.plugin_data["demo"]["issues"][payload["issue"]]["resolved"] = True


register_event_handler("demo.issue_raised", _issue_raised)
register_event_handler("demo.issue_overdue", _issue_overdue)


def raise_issue(ctx: Context) -> None:
    text = arguments.text(ctx.args, "text", required=True)
    due = ctx.working_days_after(2)
    ctx.emit("demo.issue_raised", issue=text, due=due.at.isoformat())


# Every test runs on the memory, SQLite and PostgreSQL stores.
pytestmark = pytest.mark.usefixtures("every_store")


class IssueLoop:
    """A plugin with its own command, event, timer and notice, like Huguan's issue loop."""

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

"""The engine's promises: authorisation, error order, idempotency, nothing changed on error,
replay equals state, notices survive a failing channel, lifecycle, points and metrics."""

from __future__ import annotations

from datetime import datetime, timedelta
from fractions import Fraction
from typing import Any

import pytest
from builders import PROJECT_FIELDS, County

from approvalflow import (
    ConcurrencyConflict,
    DuplicateProject,
    InvalidCommand,
    InvalidTransition,
    NotAuthorized,
    ProjectState,
    UnknownProject,
    hookimpl,
)
from approvalflow.calendar import SHANGHAI

# Every test runs on the memory, SQLite and PostgreSQL stores.
pytestmark = pytest.mark.usefixtures("every_store")


class TestCreate:
    def test_create_needs_the_five_ones(self) -> None:
        """A project without a leader is refused, naming the field."""
        county = County()
        fields = {k: v for k, v in PROJECT_FIELDS.items() if k != "leader"}
        with pytest.raises(InvalidCommand, match="leader"):
            county.do("create", "P1", "guo", **fields)
        with pytest.raises(UnknownProject):
            county.engine.project("P1")

    def test_create_records_the_settings_and_earns_the_lead_point(self) -> None:
        """The created event carries the settings fingerprint; the team has 1 point."""
        county = County()
        result = county.create()
        created = result.events[0]
        assert created.type == "created"
        assert created.payload["settings_fingerprint"] == county.engine.settings.fingerprint()
        assert created.payload["investment"] == 1_500_000_000
        assert county.engine.points() == {"light_alloy": 1}

    def test_a_second_create_is_a_duplicate(self) -> None:
        """DuplicateProject comes before any other check."""
        county = County()
        county.create()
        with pytest.raises(DuplicateProject):
            county.do("create", "P1", "fuyuan", **PROJECT_FIELDS)

    def test_a_recruiter_of_another_team_may_not_create(self) -> None:
        """guo serves light_alloy only."""
        county = County()
        with pytest.raises(NotAuthorized, match="not of team"):
            county.create(team="energy")
        county.create(by="any_recruiter", team="energy")

    @pytest.mark.parametrize(
        ("field", "value", "match"),
        [
            ("investment", "-3亿", "negative"),
            ("investment", "lots", "not an amount"),
            ("applicant", "nobody", "not in the actor directory"),
            ("leader", "fuyuan", "leader role"),
            ("department", "moon", "not a known department"),
            ("emissions", "no", "true or false"),
        ],
    )
    def test_bad_fields_are_refused(self, field: str, value: object, match: str) -> None:
        """Each bad field is named in the error."""
        with pytest.raises(InvalidCommand, match=match):
            County().create(**{field: value})


class TestErrorsChangeNothing:
    def test_unknown_project_comes_first(self) -> None:
        """An unknown project is reported even to an unknown actor."""
        with pytest.raises(UnknownProject):
            County().do("negotiate", "NOPE", "stranger")

    def test_an_unknown_actor_is_not_authorised(self) -> None:
        """Actors outside the directory can do nothing."""
        county = County()
        county.create()
        with pytest.raises(NotAuthorized, match="not in the actor directory"):
            county.do("negotiate", "P1", "stranger")

    def test_authorisation_is_checked_before_state(self) -> None:
        """The applicant signing in the wrong state hears NotAuthorized, not InvalidTransition."""
        county = County()
        county.create()
        with pytest.raises(NotAuthorized):
            county.do("sign", "P1", "fuyuan")
        with pytest.raises(InvalidTransition):
            county.do("sign", "P1", "guo")

    def test_state_is_checked_before_arguments(self) -> None:
        """sign with a bad amount in the wrong state: InvalidTransition."""
        county = County()
        county.create()
        with pytest.raises(InvalidTransition):
            county.do("sign", "P1", "guo", agreed_investment="lots")

    def test_a_refused_command_writes_no_event_timer_or_notice(self) -> None:
        """After any error the history, timers and outbox are exactly as before."""
        county = County()
        county.to_pre_review()
        store = county.engine.store
        before = (len(county.engine.history("P1")), store.timers("P1"))
        for command, by, args in [
            ("opinion", "r_gxj", {"verdict": "nope"}),
            ("opinion", "fuyuan", {"verdict": "pass"}),
            ("sign", "guo", {}),
            ("withdraw", "daiban", {}),
        ]:
            with pytest.raises(Exception):  # noqa: B017 - each raises its own code
                county.do(command, "P1", by, **args)
        assert (len(county.engine.history("P1")), store.timers("P1")) == before


class TestIdempotency:
    def test_the_same_command_id_gives_the_first_result_and_no_second_event(self) -> None:
        """A retried request is applied once."""
        county = County()
        county.create()
        first = county.do("negotiate", "P1", "guo", command_id="req-1")
        again = county.do("negotiate", "P1", "guo", command_id="req-1")
        assert again.replayed and again.events == first.events
        assert county.engine.project("P1").version == first.version

    def test_the_same_id_with_other_arguments_is_invalid(self) -> None:
        """Reusing an id for something else is a client bug."""
        county = County()
        county.to_signed()
        county.do("report_funds", "P1", "guo", command_id="f-1", amount="1亿")
        with pytest.raises(InvalidCommand, match="other arguments"):
            county.do("report_funds", "P1", "guo", command_id="f-1", amount="2亿")
        assert county.engine.project("P1").funds == 100_000_000

    def test_a_failed_command_records_nothing_so_its_id_can_be_retried(self) -> None:
        """First attempt in the wrong state fails; the same id later succeeds."""
        county = County()
        county.create()
        with pytest.raises(InvalidTransition):
            county.do("submit_pre_review", "P1", "guo", command_id="s-1", materials=[])
        county.do("negotiate", "P1", "guo")
        county.do("submit_pre_review", "P1", "guo", command_id="s-1", materials=[])
        assert county.stage() == "pre_review.reviewing"


class TestReplay:
    def test_folding_the_history_gives_the_current_state(self) -> None:
        """A project rebuilt from its events equals the stored one, through every rule."""
        county = County(settings={"commitment": {"departments": ["yj"]}})
        county.to_approval()
        county.do("accept", "P1", "o_sthj", deficient=["site_photos"])
        county.do("return", "P1", "o_zj", corrections=["site_photos"])
        county.do("accept_commitment", "P1", "fuyuan", department="yj")
        county.advance(timedelta(days=10))
        county.do("supply", "P1", "fuyuan", materials=["site_photos"])
        rebuilt = ProjectState.from_events(county.engine.history("P1"))
        assert rebuilt == county.engine.project("P1")


class TestNotices:
    def test_a_failing_channel_neither_loses_the_notice_nor_fails_the_command(self) -> None:
        """The command succeeds; the notice stays in the outbox and is delivered on retry."""
        delivered: list[str] = []

        class FlakyChannel:
            failing = True

            @hookimpl
            def approvalflow_notify(self, notice):  # type: ignore[no-untyped-def]
                if self.failing:
                    raise ConnectionError("SMS gateway down")
                delivered.append(notice.id)

        channel = FlakyChannel()
        county = County(plugins=[channel])
        county.to_decision()
        result = county.do("convene", "P1", "chair", present=["chair", "m1", "m2"])
        assert result.state == "decision.meeting"
        county.do("close_meeting", "P1", "chair")
        outbox = county.engine.store.pending_notices(county.clock.now() + timedelta(days=1))
        assert sorted(entry.notice.kind for entry in outbox) == ["decision", "rejected"]
        assert {entry.attempts for entry in outbox} == {1}
        channel.failing = False
        assert county.engine.deliver_notices(county.clock.now() + timedelta(hours=1)) == 2
        assert sorted(delivered) == sorted(entry.notice.id for entry in outbox)
        assert county.engine.store.pending_notices(county.clock.now() + timedelta(days=1)) == []


class TestLifecycle:
    def test_withdraw_by_the_agent_records_on_whose_behalf(self) -> None:
        """The agent acts for the applicant once delegated, and only then."""
        county = County()
        county.create()
        with pytest.raises(NotAuthorized, match="not delegated"):
            county.do("withdraw", "P1", "daiban")
        county.do("delegate", "P1", "fuyuan", agent="daiban")
        county.do("withdraw", "P1", "daiban", reason="融资未到位")
        assert county.stage() == "withdrawn"
        last = county.engine.history("P1")[-1]
        assert (last.by, last.on_behalf_of) == ("daiban", "fuyuan")

    def test_ending_a_delegation_removes_the_agents_power(self) -> None:
        """delegate with agent null."""
        county = County()
        county.create()
        county.do("delegate", "P1", "guo", agent="daiban")
        county.do("delegate", "P1", "fuyuan", agent=None)
        with pytest.raises(NotAuthorized):
            county.do("withdraw", "P1", "daiban")

    def test_the_leader_terminates_with_a_reason_and_timers_stop(self) -> None:
        """Terminated in approval: no deadline is left."""
        county = County()
        county.to_approval()
        with pytest.raises(InvalidCommand, match="reason"):
            county.do("terminate", "P1", "huang")
        county.do("terminate", "P1", "huang", reason="企业失联")
        assert county.stage() == "terminated"
        assert county.engine.deadlines("P1") == {}
        assert county.engine.store.timers("P1") == []

    def test_terminal_projects_accept_no_command(self) -> None:
        """After withdrawal even the leader cannot terminate."""
        county = County()
        county.create()
        county.do("withdraw", "P1", "fuyuan")
        with pytest.raises(InvalidTransition):
            county.do("terminate", "P1", "huang", reason="x")


class TestPointsAndMetrics:
    def test_a_project_carried_to_target_earns_45_points(self) -> None:
        """The built-in table adds up to 45 over the nine milestones."""
        county = County()
        county.to_approval()
        county.approve_all()
        county.do("start_construction", "P1", "fuyuan")
        county.do("start_production", "P1", "guo")
        county.do("reach_target", "P1", "guo")
        assert county.engine.points() == {"light_alloy": 45}
        assert county.engine.points(month="2026-03") == {"light_alloy": 45}
        assert county.engine.points(month="2026-04") == {}

    def test_rates_are_exact_fractions_over_signed_projects(self) -> None:
        """Two signed, one started: start rate 1/2; funds 5亿 of 30亿."""
        county = County()
        county.to_approval("P1")
        county.to_signed("P2")
        county.approve_all("P1")
        county.do("start_construction", "P1", "fuyuan")
        county.do("report_funds", "P1", "guo", amount="5亿")
        metrics = county.engine.metrics()
        assert metrics["signed_count"] == 2
        assert metrics["signed_amount"] == 3_000_000_000
        assert metrics["start_rate"] == Fraction(1, 2)
        assert metrics["production_rate"] == Fraction(0)
        assert metrics["funds_rate"] == Fraction(1, 6)

    def test_nothing_signed_gives_null_rates(self) -> None:
        """Rates over an empty cohort are null, not zero."""
        county = County()
        county.create()
        metrics = county.engine.metrics()
        assert metrics["start_rate"] is None and metrics["funds_rate"] is None

    def test_department_days_count_working_days_to_the_decision(self) -> None:
        """fgw approved on the fifth working day after apply."""
        county = County()
        county.to_approval()
        county.advance(timedelta(days=7))  # Monday 03-09
        county.do("accept", "P1", "o_fgw")
        county.do("approve", "P1", "o_fgw")
        days = county.engine.metrics()["department_days"]
        assert days["fgw"]["max"] == 5

    def test_the_leaderboard_ranks_teams_by_points_in_the_month(self) -> None:
        """energy 2 points, light_alloy 4 in March; ties share a rank."""
        county = County()
        county.to_decision("P1")
        county.create("P2", by="any_recruiter", team="energy")
        county.do("negotiate", "P2", "any_recruiter")
        board = county.engine.leaderboard("2026-03")
        assert [(r.rank, r.team, r.points) for r in board] == [
            (1, "light_alloy", 4),
            (2, "energy", 2),
        ]


class TestProjectCode:
    def test_a_well_formed_project_code_is_kept(self) -> None:
        """The national platform's code joins the project to its records."""
        county = County()
        county.create(project_code="2026-140527-30-03-012345")
        assert county.engine.project("P1").project_code == "2026-140527-30-03-012345"

    def test_a_code_names_one_project(self) -> None:
        """A second project with the same code is refused and nothing is created; the store
        finds the project by its code."""
        county = County()
        county.create("P1", project_code="2026-140527-30-03-012345")
        with pytest.raises(DuplicateProject, match="belongs to P1 already"):
            county.create("P2", project_code="2026-140527-30-03-012345")
        assert county.engine.project_ids() == ["P1"]
        assert county.engine.store.project_with_code("2026-140527-30-03-012345") == "P1"
        assert county.engine.store.project_with_code("2026-140527-30-03-000001") is None
        county.create("P2", project_code="2026-140527-30-03-000001")

    def test_a_taken_code_is_a_conflict_in_the_store_too(self) -> None:
        """Two writers racing with one code: the store's key refuses the second commit."""
        from approvalflow import Event
        from approvalflow.model import TimerChanges

        county = County()
        county.create("P1", project_code="2026-140527-30-03-012345")
        created = county.engine.history("P1")[0]
        twin = Event("P2", 1, "created", created.at, created.payload, by="guo")
        with pytest.raises(ConcurrencyConflict, match="code"):
            county.engine.store.commit(
                project="P2",
                expected_version=0,
                events=[twin],
                timers=TimerChanges(),
                notices=(),
                command=None,
                state=ProjectState.created(twin),
            )
        assert county.engine.store.load("P2") is None

    @pytest.mark.parametrize(
        ("code", "match"),
        [
            ("2026-140527-30-03-01234", "not a project code"),
            ("1999-140527-30-03-012345", "not a year"),
            ("2026-990527-30-03-012345", "administrative division"),
            (20261405, "must be text"),
        ],
    )
    def test_a_malformed_code_is_refused(self, code: object, match: str) -> None:
        """Shape, year and province are checked; nothing is created."""
        county = County()
        with pytest.raises(InvalidCommand, match=match):
            county.create(project_code=code)
        assert county.engine.project_ids() == []


class TestOneNowPerAttempt:
    """An attempt at a command reads the clock once: the deadlines it catches up on and the
    command itself are judged at the same instant, so the outcome is the one a replay of the
    same history on a stopped clock gives, however long the engine took in between."""

    DEADLINE = datetime(2026, 3, 31, 0, 0, tzinfo=SHANGHAI)  # zj's supply deadline, 03-30 24:00

    def _deficient_zj(self) -> County:
        county = County()
        county.to_approval(departments=["zj"])
        county.do("accept", "P1", "o_zj", deficient=["site_photos"])
        # The earlier deadlines (the limit, the reminder) are fired by a worker: only the supply
        # deadline is left to meet.
        county.advance_to(self.DEADLINE - timedelta(seconds=1))
        return county

    @staticmethod
    def _clock_reads(county: County, *moments: datetime) -> None:
        """The clock answers ``moments`` in turn (time passing while the engine works), then
        the last one."""
        queue = list(moments)
        county.clock.now = lambda: queue.pop(0) if len(queue) > 1 else queue[0]  # type: ignore[method-assign]

    def test_the_command_is_stamped_at_the_instant_its_catch_up_used(self) -> None:
        """The clock passes the deadline while the command runs: the supply is judged, and
        stamped, at the instant before the deadline that the catch-up saw, not 1 ms after the
        deadline on a branch that no deadline revoked."""
        county = self._deficient_zj()
        before, after = (self.DEADLINE + timedelta(milliseconds=ms) for ms in (-1, 1))
        self._clock_reads(county, before, after)
        result = county.do("supply", "P1", "fuyuan", materials=["site_photos"])
        assert {event.at for event in result.events} == {before}
        assert county.branch("zj") == "accepted"

    def test_a_retry_after_a_conflict_catches_up_at_its_own_instant(self) -> None:
        """The first attempt (before the deadline) loses to a concurrent writer; the retry, 1 ms
        after the deadline, first meets the revocation, as a replay at that instant does: the
        branch is revoked at 24:00 and the supply finds it revoked."""
        county = self._deficient_zj()
        store = county.engine.store
        commit = store.commit
        conflicts = []

        def losing_once(**kwargs: Any) -> None:
            if not conflicts:
                conflicts.append([event.type for event in kwargs["events"]])
                raise ConcurrencyConflict("a concurrent writer was first")
            commit(**kwargs)

        store.commit = losing_once  # type: ignore[method-assign]
        late = self.DEADLINE + timedelta(milliseconds=1)
        self._clock_reads(county, self.DEADLINE - timedelta(milliseconds=1), late)
        county.do("supply", "P1", "fuyuan", materials=["site_photos"])
        assert conflicts == [["materials_supplied", "branch_changed"]]
        assert county.branch("zj") == "revoked"

        replay = self._deficient_zj()
        replay.clock.set(late)
        replay.do("supply", "P1", "fuyuan", materials=["site_photos"])
        history = [(e.type, e.at, e.payload) for e in county.engine.history("P1")]
        assert history == [(e.type, e.at, e.payload) for e in replay.engine.history("P1")]
        assert ("branch_changed", self.DEADLINE) in [(kind, at) for kind, at, _ in history]


class TestOneReadPerCommand:
    """A command reads its project once and derives the timers of the state it starts from at
    most once (the commit that wrote that state derived them already): the catch-up, the
    command and the timer diff share them."""

    def test_a_command_loads_once_and_derives_the_timers_of_its_new_state_only(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from approvalflow.rules import timers

        county = County()
        county.to_approval()
        loads: list[str] = []
        derived: list[int] = []
        store = county.engine.store
        load, load_for_command = store.load, store.load_for_command
        derive = timers.timers_for

        def counting_load(project: str) -> ProjectState | None:
            loads.append(project)
            return load(project)

        def counting_load_for_command(project: str) -> ProjectState | None:
            loads.append(project)
            return load_for_command(project)

        def counting_derive(state: ProjectState, calendar: Any) -> dict[tuple[str, str], Any]:
            derived.append(state.version)
            return derive(state, calendar)

        store.load = counting_load  # type: ignore[method-assign]
        store.load_for_command = counting_load_for_command  # type: ignore[method-assign]
        monkeypatch.setattr(timers, "timers_for", counting_derive)
        before = county.engine.project("P1").version
        loads.clear()
        derived.clear()
        result = county.do("accept", "P1", "o_fgw")
        assert loads == ["P1"]
        assert derived == [result.version]
        assert before < result.version
        assert county.deadline("P1.approval.fgw") == "2026-03-09 24:00"


class TestNewDefinition:
    """A county that publishes new rules gives its engine a new ``WorkflowDefinition``: the
    store, actors and clock stay, running projects keep the rule set they are pinned to."""

    def test_a_running_project_keeps_its_rules_and_a_new_one_gets_the_new_ones(self) -> None:
        from approvalflow.engine import WorkflowDefinition

        county = County(settings={"rules_version": "2026-1"})
        county.to_approval("P1")
        store = county.engine.store
        county.engine.definition = WorkflowDefinition(
            settings={"rules_version": "2026-2", "time_limit_wd": {"zj": 3}}
        )
        assert county.engine.store is store
        assert county.engine.settings.rules_version == "2026-2"
        county.to_approval("P2")
        assert county.engine.project("P1").rules_version == "2026-1"
        assert county.engine.project("P2").rules_version == "2026-2"
        assert county.deadline("P1.approval.zj") == "2026-03-11 24:00"
        assert county.deadline("P2.approval.zj") == "2026-03-05 24:00"

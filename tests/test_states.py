"""The workflow's machines: built by ``transitions`` from the definition, refused when wrong,
and what the engine allows."""

from __future__ import annotations

import pytest
from builders import MONDAY, County

from approvalflow.errors import InvalidTransition, WorkflowDefinitionError
from approvalflow.rules.context import Context
from approvalflow.states import (
    BRANCH_STATES,
    STAGES,
    TERMINAL,
    TransitionSpec,
    build_machine,
    build_machines,
    investment_project,
)

RATING_COMMANDS = ("rate", "rectify", "confirm_rectification")
STATES = ("draft", "review", "done")
GOOD: tuple[TransitionSpec, ...] = (
    {"trigger": "submit", "source": "draft", "dest": "review"},
    {"trigger": "comment", "source": ["draft", "review"], "dest": None},
    {"trigger": "approve", "source": "review", "dest": "done"},
)


class TestABadDefinitionIsRefused:
    def test_a_destination_that_is_no_state(self) -> None:
        """A transition to a state the machine does not list names the trigger and the state."""
        bad = (*GOOD, {"trigger": "archive", "source": "done", "dest": "archived"})
        with pytest.raises(WorkflowDefinitionError, match=r"'archive' leads to 'archived', which"):
            build_machine("memo", STATES, bad, "draft")

    def test_a_source_that_is_no_state(self) -> None:
        """A transition from an unlisted state is refused (transitions itself accepts it)."""
        bad = (*GOOD, {"trigger": "approve", "source": ["review", "reveiw"], "dest": "done"})
        with pytest.raises(WorkflowDefinitionError, match=r"'approve' leaves 'reveiw'"):
            build_machine("memo", STATES, bad, "draft")

    def test_an_unknown_initial_state(self) -> None:
        """transitions would add an unlisted initial state silently; the definition may not."""
        with pytest.raises(WorkflowDefinitionError, match="initial state 'start'"):
            build_machine("memo", STATES, GOOD, "start")

    def test_a_state_nothing_reaches(self) -> None:
        """A listed state with no way in from the initial state is named."""
        with pytest.raises(
            WorkflowDefinitionError, match=r"memo: no transition leads from 'draft' to limbo$"
        ):
            build_machine("memo", (*STATES, "limbo"), GOOD, "draft")

    def test_an_ambiguous_trigger(self) -> None:
        """Two transitions of one trigger from one state: which fires would be list order."""
        bad = (*GOOD, {"trigger": "approve", "source": "review", "dest": "draft"})
        with pytest.raises(
            WorkflowDefinitionError,
            match=r"'approve' from 'review' is ambiguous: it leads to 'done', 'draft'",
        ):
            build_machine("memo", STATES, bad, "draft")

    def test_an_internal_transition_beside_a_move_is_ambiguous_too(self) -> None:
        """``dest: None`` (stay) and a move for the same trigger and state are two answers."""
        bad = (*GOOD, {"trigger": "submit", "source": "draft", "dest": None})
        with pytest.raises(WorkflowDefinitionError, match="'submit' from 'draft' is ambiguous"):
            build_machine("memo", STATES, bad, "draft")

    def test_the_error_says_which_machine_of_the_workflow(self) -> None:
        """``build_machines`` names the stage or the branch machine in the message."""
        bad = (*GOOD, {"trigger": "archive", "source": "done", "dest": "archived"})
        with pytest.raises(WorkflowDefinitionError, match=r"^WorkflowDefinitionError: memo br"):
            build_machines(
                "memo",
                stages=STATES,
                stage_transitions=GOOD,
                initial_stage="draft",
                branch_states=STATES,
                branch_transitions=bad,
                initial_branch_state="draft",
            )

    def test_it_is_a_setup_error_and_a_value_error(self) -> None:
        """Callers catching ``ValueError`` (or every library error) keep catching it."""
        error = WorkflowDefinitionError("x")
        assert isinstance(error, ValueError)
        assert error.code == "WorkflowDefinitionError"


class TestTheBuiltInWorkflow:
    def test_it_is_built_once_and_shared(self) -> None:
        """One pair of machines for every engine and project, never one per project."""
        assert investment_project() is investment_project()
        assert County().engine is not County().engine
        assert investment_project().stages.machine.models == []

    def test_every_state_of_the_contract_exists(self) -> None:
        """WORKFLOW.md's states and branch states, exactly, as the transitions machines."""
        machines = investment_project()
        assert list(machines.stages.machine.states) == list(STAGES)
        assert list(machines.branch.machine.states) == list(BRANCH_STATES)

    def test_moves_are_what_the_machine_was_given(self) -> None:
        """A sample of the table: a move, an internal transition, a refusal."""
        stages = investment_project().stages
        assert stages.next("signed", "apply") == "approval"
        assert stages.next("approval", "apply") == "approval"
        assert stages.next("lead", "apply") is None
        assert investment_project().branch.next("deficient", "approve") == "conditional"

    def test_allowed_commands_are_what_the_stage_machine_accepts(self) -> None:
        """``Engine.allowed_commands`` follows the machine's triggers, and ends with the project."""
        county = County()
        county.to_approval()
        allowed = county.engine.allowed_commands("P1")
        assert {"accept", "approve", "apply", "urge", "withdraw", "copy"} <= set(allowed)
        assert not {"negotiate", "sign", "convene", "start_construction"} & set(allowed)
        county.do("withdraw", "P1", "fuyuan", reason="moved elsewhere")
        # Only the 好差评 commands outlive the project (D154).
        assert county.engine.allowed_commands("P1") == sorted(RATING_COMMANDS)

    def test_no_command_is_allowed_once_the_project_ended(self) -> None:
        """A terminal stage accepts no trigger but the 好差评 ones, which keep the stage."""
        stages = investment_project().stages
        for stage in TERMINAL:
            assert sorted(stages.triggers(stage)) == sorted(RATING_COMMANDS)
            assert all(stages.next(stage, trigger) == stage for trigger in RATING_COMMANDS)


class TestTheContextMovesByItsMachines:
    def test_a_context_follows_the_definition_it_is_given(self) -> None:
        """Rules move a project through ``ctx.machines``: another definition, other moves."""
        machines = build_machines(
            "memo",
            stages=("lead", "negotiating", "done"),
            stage_transitions=(
                {"trigger": "negotiate", "source": "lead", "dest": "done"},
                {"trigger": "back", "source": "done", "dest": "negotiating"},
            ),
            initial_stage="lead",
            branch_states=BRANCH_STATES[:1],
            branch_transitions=(),
            initial_branch_state="pending",
        )
        county = County()
        county.create()
        engine = county.engine
        ctx = Context(
            state=engine.project("P1").clone(),
            settings=engine.settings,
            calendar=engine.calendar,
            actors=engine.actors,
            now=MONDAY,
            command="negotiate",
            machines=machines,
        )
        assert ctx.move("negotiate") == "done"
        with pytest.raises(InvalidTransition, match="submit is not allowed while the project"):
            ctx.move("submit")

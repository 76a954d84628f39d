"""Workflow diagrams come from the engine's own machine definitions."""

from __future__ import annotations

import pytest

from approvalflow.cli import main
from approvalflow.diagram import draw
from approvalflow.rules.commands import BUILTIN_COMMANDS
from approvalflow.states import BRANCH_STATES, STAGES


class TestMermaid:
    def test_every_state_and_command_of_the_workflow_is_drawn(self) -> None:
        """Each stage is a node with its real name; each stage-level command labels an edge."""
        text = draw("stages", "mermaid")
        for stage in STAGES:
            assert f'state "{stage}" as {stage.replace(".", "__")}' in text
        branch_commands = {"accept", "return", "approve", "reject", "verify"}
        for command in set(BUILTIN_COMMANDS) - {"create"}:
            assert command in text, command
        branch = draw("branch", "mermaid")
        for state in BRANCH_STATES:
            assert f'state "{state}"' in branch
        for command in branch_commands - {"verify"}:
            assert f": {command}" in branch or f"| {command}" in branch

    def test_a_plugin_command_appears_in_every_non_terminal_stage(self) -> None:
        """Commands a county adds are drawn as transitions that keep the stage."""
        text = draw("stages", "mermaid", extra_commands=["raise_issue"])
        assert "lead --> lead: " in text and "raise_issue" in text
        ended = [line for line in text.splitlines() if line.strip().startswith("effective -->")]
        # Once the project ended only the 好差评 commands remain (D154), never a county's.
        assert ended and not any("raise_issue" in line for line in ended)

    def test_the_cli_prints_it(self, capsys: pytest.CaptureFixture[str]) -> None:
        """`approvalflow diagram` prints Mermaid by default."""
        assert main(["diagram"]) == 0
        assert "stateDiagram-v2" in capsys.readouterr().out
        assert main(["diagram", "nope"]) == 2


class TestDot:
    def test_dot_output_keeps_dotted_names_as_labels(self) -> None:
        """DOT source (graphviz package) labels nodes with the real state names."""
        pytest.importorskip("graphviz")
        text = draw("stages", "dot")
        assert text.startswith("digraph")
        assert 'label="pre_review.reviewing' in text

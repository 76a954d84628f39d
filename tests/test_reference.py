"""The generated workflow reference page matches the code."""

from __future__ import annotations

from pathlib import Path

from approvalflow.reference import render

PAGE = Path(__file__).resolve().parents[1] / "docs" / "workflow-reference.md"


def test_the_committed_reference_page_is_what_the_code_generates() -> None:
    """Regenerate with `python -m approvalflow.reference > docs/workflow-reference.md`."""
    assert PAGE.read_text(encoding="utf-8") == render()


def test_every_command_state_and_error_code_is_on_the_page() -> None:
    """The page names each public identifier of the contract."""
    from approvalflow.errors import ERROR_CODES
    from approvalflow.rules.commands import BUILTIN_COMMANDS
    from approvalflow.states import STAGES

    page = render()
    for name in (*BUILTIN_COMMANDS, *STAGES, *ERROR_CODES):
        assert f"`{name}`" in page, name

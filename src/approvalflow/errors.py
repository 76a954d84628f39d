"""The engine's errors: one root, each with the stable code of WORKFLOW.md.

A caller may rely on ``error.code`` (a stable string) and on the error having
changed nothing. The message names the offending actor, state, argument or
material.
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "AlreadyVoted",
    "ApprovalflowError",
    "CalendarOutOfRange",
    "CalendarUnknown",
    "ConcurrencyConflict",
    "DuplicateProject",
    "InvalidCommand",
    "InvalidTransition",
    "KeyMaterialMissing",
    "NotAuthorized",
    "UnknownMaterial",
    "UnknownProject",
]


class ApprovalflowError(Exception):
    """Root of every error the engine raises on purpose."""

    code: ClassVar[str] = "ApprovalflowError"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


class NotAuthorized(ApprovalflowError, PermissionError):
    """The actor is acting outside their role, team, department or delegation."""

    code = "NotAuthorized"


class InvalidTransition(ApprovalflowError):
    """The command is not allowed in the project's (or the branch's) current state."""

    code = "InvalidTransition"


class UnknownProject(ApprovalflowError, LookupError):
    """No project has this id."""

    code = "UnknownProject"


class DuplicateProject(ApprovalflowError):
    """A project with this id exists already."""

    code = "DuplicateProject"


class InvalidCommand(ApprovalflowError, ValueError):
    """Bad or missing arguments; the message says which."""

    code = "InvalidCommand"


class KeyMaterialMissing(ApprovalflowError):
    """A key material was listed as missing where only non-key ones may be."""

    code = "KeyMaterialMissing"


class UnknownMaterial(ApprovalflowError, LookupError):
    """A material id that is not in the catalogue."""

    code = "UnknownMaterial"


class AlreadyVoted(ApprovalflowError):
    """The member voted already in this meeting."""

    code = "AlreadyVoted"


class ConcurrencyConflict(ApprovalflowError):
    """Another writer changed the project first (stale expected version)."""

    code = "ConcurrencyConflict"


class CalendarUnknown(ApprovalflowError):
    """A deadline falls in a year with no official holiday data and the calendar is strict."""

    code = "CalendarUnknown"


class CalendarOutOfRange(ApprovalflowError, ValueError):
    """A day or deadline lies outside the years any calendar can count (1990..2199)."""

    code = "CalendarOutOfRange"


ERROR_CODES: tuple[str, ...] = (
    NotAuthorized.code,
    InvalidTransition.code,
    UnknownProject.code,
    DuplicateProject.code,
    InvalidCommand.code,
    KeyMaterialMissing.code,
    UnknownMaterial.code,
    AlreadyVoted.code,
    ConcurrencyConflict.code,
    CalendarUnknown.code,
    CalendarOutOfRange.code,
)

"""Every error the service answers is one shape: RFC 9457 problem details with the library's
error code; the HTTP status follows the code."""

from __future__ import annotations

from approvalflow.errors import (
    AlreadyVoted,
    ApprovalflowError,
    CalendarUnknown,
    ConcurrencyConflict,
    DuplicateProject,
    InvalidCommand,
    InvalidTransition,
    KeyMaterialMissing,
    NotAuthorized,
    UnknownMaterial,
    UnknownProject,
)

__all__ = [
    "PROBLEM_TYPE",
    "PreconditionFailed",
    "Unauthenticated",
    "status_for",
]

PROBLEM_TYPE = "urn:approvalflow:error:"
"""A problem's ``type`` is this prefix and its code (``urn:approvalflow:error:NotAuthorized``)."""


# The service's own refusals. Each is a kind of a library error, so a caller catching the
# library's classes catches them too; neither is ever raised by the library itself.
class Unauthenticated(NotAuthorized):
    """No credential, or one the service does not accept (unknown, revoked, expired)."""

    code = "Unauthenticated"


class PreconditionFailed(InvalidTransition):
    """``If-Match`` names a version the project has left: the write was refused. Not a
    ``ConcurrencyConflict``, which the engine retries from a fresh read: this one must not be."""

    code = "PreconditionFailed"


_STATUS: tuple[tuple[type[ApprovalflowError], int], ...] = (
    (Unauthenticated, 401),
    (NotAuthorized, 403),
    (UnknownProject, 404),
    (PreconditionFailed, 412),
    (DuplicateProject, 409),
    (InvalidTransition, 409),
    (ConcurrencyConflict, 409),
    (AlreadyVoted, 409),
    (InvalidCommand, 422),
    (KeyMaterialMissing, 422),
    (UnknownMaterial, 422),
    (CalendarUnknown, 422),
)


def status_for(error: ApprovalflowError) -> int:
    """The HTTP status of ``error``: its class's or its nearest base's, else 422 (a refusal
    of what was asked, the commonest kind)."""
    for cls in type(error).__mro__:
        for known, status in _STATUS:
            if cls is known:
                return status
    return 422

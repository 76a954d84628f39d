"""Every error the service answers is one shape: RFC 9457 problem details with the library's
error code; the HTTP status follows the code."""

from __future__ import annotations

from approvalflow.errors import (
    AlreadyRated,
    AlreadyVoted,
    ApprovalflowError,
    CalendarUnknown,
    ConcurrencyConflict,
    DuplicateProject,
    InvalidCommand,
    InvalidTransition,
    KeyMaterialMissing,
    NotAuthorized,
    PreconditionFailed,
    SetupError,
    StoreBusy,
    StoreError,
    StoreUnavailable,
    Unauthenticated,
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


_STATUS: tuple[tuple[type[ApprovalflowError], int], ...] = (
    (Unauthenticated, 401),
    (NotAuthorized, 403),
    (UnknownProject, 404),
    (PreconditionFailed, 412),
    (DuplicateProject, 409),
    (InvalidTransition, 409),
    (ConcurrencyConflict, 409),
    (AlreadyVoted, 409),
    (AlreadyRated, 409),
    (InvalidCommand, 422),
    (KeyMaterialMissing, 422),
    (UnknownMaterial, 422),
    (CalendarUnknown, 422),
    (StoreBusy, 503),
    (StoreUnavailable, 503),
    (StoreError, 500),
    (SetupError, 500),
)


def status_for(error: ApprovalflowError) -> int:
    """The HTTP status of ``error``: its class's or its nearest base's, else 422 (a refusal
    of what was asked, the commonest kind)."""
    for cls in type(error).__mro__:
        for known, status in _STATUS:
            if cls is known:
                return status
    return 422

"""Every error approvalflow raises: one root, each class with a stable ``code``.

A caller may rely on ``error.code`` (a stable string) and on the error having changed nothing.
The message names the offending actor, state, argument, material, setting or file. Each class
also derives from the built-in exception it resembles (``UnknownProject`` is a ``LookupError``,
``SettingsError`` a ``ValueError``), so code written against the built-ins keeps working.

Three families: a command refused (WORKFLOW.md's stable codes, ``ERROR_CODES``; what a scenario
step's ``error:`` names), and ``SetupError``: the library cannot be set up as asked (settings,
plugins, a scenario file, a store's schema, a workflow definition), ``SETUP_ERROR_CODES``; and
``StoreError``: the storage refused or failed (busy, unreachable, not found, a value it cannot
keep), ``STORE_ERROR_CODES``. The lists are read off the classes below, so a new class is listed
by being defined.
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "ERROR_CODES",
    "SERVICE_ERROR_CODES",
    "SETUP_ERROR_CODES",
    "STORE_ERROR_CODES",
    "AlreadyRated",
    "AlreadyRouted",
    "AlreadyVoted",
    "ApprovalflowError",
    "CalendarOutOfRange",
    "CalendarUnknown",
    "CheckpointError",
    "ConcurrencyConflict",
    "CountiesFileError",
    "DiagramError",
    "DuplicateProject",
    "InvalidCommand",
    "InvalidCounty",
    "InvalidTransition",
    "KeyMaterialMissing",
    "NotArchivable",
    "NotAuthorized",
    "PluginError",
    "PreconditionFailed",
    "ProjectArchived",
    "ProvinceError",
    "ScenarioFileError",
    "SchemaVersionError",
    "ServiceError",
    "SettingsError",
    "SetupError",
    "StoreBusy",
    "StoreError",
    "StoreNotFound",
    "StoreUnavailable",
    "Unauthenticated",
    "UnknownCounty",
    "UnknownEventType",
    "UnknownMaterial",
    "UnknownProject",
    "UnknownRole",
    "UnstorableValue",
    "WorkflowDefinitionError",
    "error_classes",
]


class ApprovalflowError(Exception):
    """Root of every error the library raises on purpose."""

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


class AlreadyRouted(InvalidTransition):
    """The department to add (加签) has a branch in the running approval stage already."""

    code = "AlreadyRouted"


class ProjectArchived(InvalidTransition):
    """The project is archived (packed as a finished project): it is read as before, and no
    command or timer changes it again (D266)."""

    code = "ProjectArchived"


class NotArchivable(InvalidTransition):
    """The project cannot be archived: it is not finished (a terminal stage with no timer and
    no open task item, D265), or it is archived already; the message says which."""

    code = "NotArchivable"


class CalendarOutOfRange(ApprovalflowError, ValueError):
    """A day or deadline lies outside the years any calendar can count (1990..2199)."""

    code = "CalendarOutOfRange"


class AlreadyRated(ApprovalflowError):
    """The applicant rated this item already (好差评: one rating per item, D155)."""

    code = "AlreadyRated"


class SetupError(ApprovalflowError):
    """The library cannot be set up as asked; raised before (or instead of) running commands."""


class SettingsError(SetupError, ValueError):
    """Settings that cannot be used; the message names every bad key by its dotted path."""

    code = "SettingsError"


class PluginError(SetupError, RuntimeError):
    """A plugin that cannot be used: unknown name, broken import, or a misspelled hook."""

    code = "PluginError"


class ScenarioFileError(SetupError, ValueError):
    """A scenario file is not valid; the message names the file, the line and the key.

    ``path`` is the file as given to the loader, ``line`` the 1-based line of the offending
    key or step (``None`` when the problem concerns the whole file, such as its size or
    encoding), ``key`` a path into the document such as ``$.steps[3].by`` (``$`` is the
    whole file; list positions count from 1, like the runner's step numbers), and
    ``message`` says what is wrong. ``str()`` is ``"{path}:{line}: {key}: {message}"``,
    without ``:{line}`` when the line is unknown.
    """

    code = "ScenarioFileError"

    def __init__(self, path: str, line: int | None, key: str, message: str) -> None:
        super().__init__(message)
        # Every field in ``args`` keeps the error picklable (pytest-xdist, logging).
        self.args = (path, line, key, message)
        self.path = path
        self.line = line
        self.key = key

    def __str__(self) -> str:
        where = self.path if self.line is None else f"{self.path}:{self.line}"
        return f"{where}: {self.key}: {self.message}"


class CountiesFileError(ScenarioFileError):
    """A province's counties file is not valid: the file, the line and the key, as a scenario
    file's error gives them (``province.load_counties``)."""

    code = "CountiesFileError"


class ProvinceError(SetupError, ValueError):
    """A province cannot be set up as given: a bad county id, two counties on one store that
    keeps no county views, a county without a store."""

    code = "ProvinceError"


class UnknownCounty(SetupError, LookupError):
    """A province was asked for a county it does not serve; the message lists those it does."""

    code = "UnknownCounty"


class SchemaVersionError(SetupError, ValueError):
    """The database's schema is newer than this code, older and not to be migrated, or no
    migration leads from it."""

    code = "SchemaVersionError"

    def __init__(self, message: str, *, found: int | None = None) -> None:
        super().__init__(message)
        self.found = found
        """The older version found, when migrating would open the database."""


class WorkflowDefinitionError(SetupError, ValueError):
    """A workflow's state machine is wrong: a transition from or to no state, a state nothing
    reaches, or a trigger with two destinations from one state."""

    code = "WorkflowDefinitionError"


class DiagramError(SetupError, ValueError):
    """A diagram that cannot be drawn: an unknown machine or format, or DOT without graphviz."""

    code = "DiagramError"


class UnknownRole(SetupError, ValueError):
    """An actor holds a role that is neither WORKFLOW.md's nor declared by a loaded plugin."""

    code = "UnknownRole"


class UnknownEventType(SetupError):
    """The project has events of a type this engine has no fold for (its plugin is not loaded):
    writing it would lose that plugin's data, so the engine refuses."""

    code = "UnknownEventType"


class InvalidCounty(SetupError, ValueError):
    """A county id that is not one: a county is named by a short key (``^[a-z][a-z0-9_]{0,31}$``,
    the seed counties by their plugin names, ``huguan``), the key its rows are kept under."""

    code = "InvalidCounty"


class StoreError(ApprovalflowError):
    """The store failed to do what was asked (the database refused it, or broke); nothing was
    written. No driver exception reaches a caller: the SQL stores translate them in one place."""

    code = "StoreError"


class StoreNotFound(StoreError, LookupError):
    """The store named by a URL does not exist, and opening it was not asked to create it."""

    code = "StoreNotFound"


class StoreBusy(StoreError, TimeoutError):
    """A bounded wait ran out: another writer held a lock, or a statement ran too long. The
    message says what waited and for how long; nothing was written."""

    code = "StoreBusy"


class StoreUnavailable(StoreError, ConnectionError):
    """The database cannot be reached, or the connection to it broke."""

    code = "StoreUnavailable"


class CheckpointError(StoreError):
    """A sealed checkpoint cannot be made or read: a key file that is missing or not a key
    (an HMAC secret of at least 32 bytes, or an Ed25519 PEM key), a public key given to seal,
    a checkpoint document that is not one, or a store whose heads cannot be sealed."""

    code = "CheckpointError"


class UnstorableValue(StoreError, ValueError):
    """A value the store cannot keep as given (a key of the wrong type or too long, text with a
    NUL or a lone surrogate, a number past the column); nothing was written."""

    code = "UnstorableValue"


class ServiceError(ApprovalflowError):
    """The HTTP service refused a request before the engine saw it (``approvalflow serve``)."""


class Unauthenticated(ServiceError, PermissionError):
    """No credential, or one the service does not accept (unknown, revoked, expired)."""

    code = "Unauthenticated"


class PreconditionFailed(ServiceError):
    """``If-Match`` names a version the project has left: the write was refused."""

    code = "PreconditionFailed"


def error_classes() -> tuple[type[ApprovalflowError], ...]:
    """The library's concrete error classes (each defines its own ``code``), root first out."""
    found: list[type[ApprovalflowError]] = []
    pending: list[type[ApprovalflowError]] = [ApprovalflowError]
    while pending:
        cls = pending.pop(0)
        subclasses = [sub for sub in cls.__subclasses__() if sub.__module__ == __name__]
        pending.extend(subclasses)
        found.extend(sub for sub in subclasses if "code" in sub.__dict__)
    return tuple(found)


ERROR_CODES: tuple[str, ...] = tuple(
    cls.code
    for cls in error_classes()
    if not issubclass(cls, SetupError | StoreError | ServiceError)
)
"""The codes a command is refused with (WORKFLOW.md's list), in the order defined here."""
SETUP_ERROR_CODES: tuple[str, ...] = tuple(
    cls.code for cls in error_classes() if issubclass(cls, SetupError)
)
"""The codes of ``SetupError``: the library could not be set up as asked."""
STORE_ERROR_CODES: tuple[str, ...] = tuple(
    cls.code for cls in error_classes() if issubclass(cls, StoreError)
)
"""The codes of ``StoreError``: the storage, not a rule, refused or failed."""
SERVICE_ERROR_CODES: tuple[str, ...] = tuple(
    cls.code for cls in error_classes() if issubclass(cls, ServiceError)
)
"""The codes of ``ServiceError``: the HTTP service refused the request itself."""

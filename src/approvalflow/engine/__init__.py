"""The engine: the one place that orchestrates. Load, decide (rules), append (store), notify.

A command either raises a specific ``ApprovalflowError`` and changes nothing, or is stored whole
(events, timers, notices, command id) in one commit; notices are delivered only after that
commit, so a failing channel can never undo or break the command. A stale write
(``ConcurrencyConflict``) is retried from a fresh read a bounded number of times.

``Engine`` is the facade hosts use. It is assembled from the services of this package: the
workflow definition and its rule book (``definition``), the command runner (``commands``), the
unit of work (``unit_of_work``), the timer executor (``timers``), the notice dispatcher
(``notices``) and the read side (``reading``).
"""

from __future__ import annotations

from approvalflow.engine.commands import CommandRunner
from approvalflow.engine.definition import RuleBook, WorkflowDefinition
from approvalflow.engine.facade import Engine
from approvalflow.engine.notices import NoticeDispatcher
from approvalflow.engine.reading import ReadSide
from approvalflow.engine.timers import TimerExecutor
from approvalflow.engine.unit_of_work import UnitOfWork

__all__ = [
    "CommandRunner",
    "Engine",
    "NoticeDispatcher",
    "ReadSide",
    "RuleBook",
    "TimerExecutor",
    "UnitOfWork",
    "WorkflowDefinition",
]

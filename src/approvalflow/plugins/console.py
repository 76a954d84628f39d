"""A notification channel that writes each notice to the log: for the CLI, development and tests.

Load it like any plugin: ``Engine(plugins=["console"])``, or ``plugins: [console]`` in a
scenario file (entry point ``console``). Each delivered notice becomes one structlog event
``approvalflow.notice`` at info level on the ``approvalflow`` logger, with ``notice_id``,
``kind``, ``project``, ``recipients`` (a list of actor ids), ``at`` (ISO time) and the notice's
own fields (materials, department, tally...) under ``fields``. It never raises, so it never
holds a notice back in the outbox.

The library does not configure logging; where the lines go is the host's choice. The CLI prints
warnings only, unless run with ``-v``: ``approvalflow -v scenario run`` shows every notice.
"""

from __future__ import annotations

from approvalflow.logs import library_logger
from approvalflow.model import Notice
from approvalflow.plugins.hookspecs import hookimpl

__all__ = ["approvalflow_notify"]


@hookimpl
def approvalflow_notify(notice: Notice) -> None:
    """Log ``notice`` as ``approvalflow.notice`` (kind, project, recipients, fields)."""
    library_logger().info(
        "approvalflow.notice",
        notice_id=notice.id,
        kind=notice.kind,
        project=notice.project,
        recipients=list(notice.recipients),
        at=notice.at.isoformat(),
        fields=dict(notice.fields),
    )

"""The ``approvalflow`` command line: one module per command, parsed here."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

__all__ = ["main"]


def _configure_logging(verbose: bool) -> None:
    # The CLI is an application, so it (and only it) decides where the library's logs go.
    import structlog

    from approvalflow.logs import mask_personal_data

    level = logging.DEBUG if verbose else logging.WARNING
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso"),
            mask_personal_data,
            structlog.dev.ConsoleRenderer(colors=False),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        # Looked up per logger, not captured once: whatever sys.stderr is when a line is logged.
        logger_factory=lambda *args: structlog.PrintLogger(sys.stderr),
    )


def _parser() -> argparse.ArgumentParser:
    from approvalflow.cli import audit, diagram, report, scenario_run, show, worker

    parser = argparse.ArgumentParser(
        prog="approvalflow",
        description="Workflow and approval engine for county investment projects.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log every command")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    scenario = commands.add_parser("scenario", help="run scenario files")
    scenario_commands = scenario.add_subparsers(dest="action", metavar="ACTION", required=True)
    scenario_run.add_arguments(
        scenario_commands.add_parser("run", help="run every scenario file under the paths")
    )
    show.add_arguments(commands.add_parser("show", help="a project's timeline and deadlines"))
    audit_parser = commands.add_parser("audit", help="check the audit chain")
    audit_commands = audit_parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    audit.add_arguments(
        audit_commands.add_parser("verify", help="recompute every event's hash and report")
    )
    report.add_arguments(commands.add_parser("report", help="the leaderboard and the metrics"))
    diagram.add_arguments(commands.add_parser("diagram", help="draw the workflow (Mermaid or DOT)"))
    worker.add_arguments(
        commands.add_parser("worker", help="fire due timers and deliver notices until stopped")
    )
    from approvalflow.cli import serve, token

    serve.add_arguments(commands.add_parser("serve", help="the HTTP service (server extra)"))
    token.add_arguments(commands.add_parser("token", help="the service's bearer tokens"))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status."""
    parser = _parser()
    options = parser.parse_args(argv)
    _configure_logging(options.verbose)
    if not getattr(options, "run", None):
        parser.print_help()
        return 2
    status: int = options.run(options)
    return status

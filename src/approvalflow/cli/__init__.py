"""The ``approvalflow`` command line: one module per command, parsed here.

Every command runs under one handler: an operator's mistake prints one line on stderr and exits
2, a failure exits 1, and neither prints a traceback (``-v`` adds it for unexpected errors).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from collections.abc import Iterator, Sequence

__all__ = ["main"]


@contextlib.contextmanager
def _cli_logging(verbose: bool) -> Iterator[None]:
    """While a command runs, the library's logs go to stderr (warnings only unless ``-v``).

    The CLI is an application, so it (and only it) decides where the library's logs go; the
    logger is put back as it was afterwards, for hosts and tests that call ``main()``.
    """
    logger = logging.getLogger("approvalflow")
    saved = (logger.level, logger.propagate)
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s [%(levelname)s] %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if verbose else logging.WARNING)
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(saved[0])
        logger.propagate = saved[1]


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is when a line is logged (tests swap it)."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("approvalflow")
    except PackageNotFoundError:
        return "unknown"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        from approvalflow.cli.common import CommandLineError

        raise CommandLineError(f"{self.prog}: {message}")


def _parser() -> argparse.ArgumentParser:
    from approvalflow.cli import audit, diagram, report, scenario_run, show, store, worker

    parser = _Parser(
        prog="approvalflow",
        description="Workflow and approval engine for county investment projects.",
        epilog="Exit status: 0 success, 1 a failure, 2 a usage error. "
        "APPROVALFLOW_STORE is the store URL when --store is not given.",
    )
    parser.add_argument("--version", action="version", version=f"approvalflow {_version()}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every command")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    scenario = commands.add_parser("scenario", help="run scenario files")
    scenario_commands = scenario.add_subparsers(dest="action", metavar="ACTION", required=True)
    scenario_run.add_arguments(
        scenario_commands.add_parser("run", help="run every scenario file under the paths")
    )
    show.add_arguments(commands.add_parser("show", help="a project's timeline and deadlines"))
    audit_parser = commands.add_parser("audit", help="check and seal the audit chains")
    audit_commands = audit_parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    audit.add_arguments(
        audit_commands.add_parser("verify", help="replay every project and report each finding")
    )
    audit.add_seal_arguments(
        audit_commands.add_parser("seal", help="sign every project's chain head (a checkpoint)")
    )
    audit.add_archive_arguments(
        audit_commands.add_parser(
            "verify-archive", help="verify an archive table (a detached partition) on its own"
        )
    )
    report.add_arguments(commands.add_parser("report", help="the leaderboard and the metrics"))
    diagram.add_arguments(
        commands.add_parser("diagram", help="draw the workflow (Mermaid, DOT or SVG)")
    )
    worker.add_arguments(
        commands.add_parser("worker", help="fire due timers and deliver notices until stopped")
    )
    store.add_arguments(
        commands.add_parser("store", help="create, migrate or archive a store's projects")
    )
    from approvalflow.cli import serve, token

    serve.add_arguments(commands.add_parser("serve", help="the HTTP service (server extra)"))
    token.add_arguments(commands.add_parser("token", help="the service's bearer tokens"))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status (0 success, 1 failure, 2 usage error)."""
    from approvalflow.cli.common import CommandFailed, CommandLineError
    from approvalflow.errors import ApprovalflowError

    verbose = False
    try:
        try:
            parser = _parser()
            options = parser.parse_args(argv)
            verbose = options.verbose
            if not getattr(options, "run", None):
                parser.print_help(sys.stderr)
                return 2
            with _cli_logging(verbose):
                status: int = options.run(options)
                sys.stdout.flush()
            return status
        except SystemExit as done:  # --help and --version
            return done.code if isinstance(done.code, int) else 0
        except (CommandLineError, CommandFailed) as error:
            _say(str(error))
            return error.status
        except ApprovalflowError as error:
            _say(str(error))
            return 1
        except KeyboardInterrupt:
            _say("interrupted")
            return 130
        except BrokenPipeError:
            raise
        except Exception as error:  # the last line of defence: a message, not a traceback
            _say(_describe_failure(error))
            if verbose:
                import traceback

                traceback.print_exc(file=sys.stderr)
            return 1
    except BrokenPipeError:
        # The reader went away (`show | head`): nothing more can be written to it. Point
        # stdout at nothing so the interpreter's last flush does not complain either.
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        finally:
            os.close(devnull)
        return 1


def _describe_failure(error: Exception) -> str:
    module = type(error).__module__
    if module.startswith("psycopg") or module == "sqlite3":
        # Unreachable server, refused login, locked or unreadable file: the store, not the input.
        text = str(error).strip().splitlines()
        return f"the store failed: {text[0] if text else type(error).__name__}"
    if isinstance(error, OSError):
        return f"{error.filename or ''}: {error.strerror or error}".lstrip(": ")
    return f"unexpected error ({type(error).__name__}): {error}; run with -v for the traceback"


def _say(message: str) -> None:
    prefix = "" if message.startswith("approvalflow") else "approvalflow: "
    with contextlib.suppress(BrokenPipeError, ValueError):
        print(prefix + message, file=sys.stderr)

"""The ``approvalflow`` command line."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence

__all__ = ["main"]


def _configure_logging(verbose: bool) -> None:
    # The CLI is an application, so it (and only it) decides where the library's logs go.
    import structlog

    level = logging.DEBUG if verbose else logging.WARNING
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="approvalflow",
        description="Workflow and approval engine for county investment projects.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log every command")
    commands = parser.add_subparsers(dest="area", metavar="COMMAND")
    scenario = commands.add_parser("scenario", help="run scenario files")
    scenario_commands = scenario.add_subparsers(dest="action", metavar="ACTION")
    run = scenario_commands.add_parser("run", help="run every scenario file under the given paths")
    run.add_argument("paths", nargs="+", metavar="PATH", help="scenario files or folders")
    run.add_argument("--store", default=None, help="store URL (default: in memory)")
    run.add_argument("--json", action="store_true", help="print one JSON object")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    options = parser.parse_args(argv)
    _configure_logging(options.verbose)
    if options.area == "scenario" and options.action == "run":
        return _scenario_run(options.paths, store=options.store, as_json=options.json)
    parser.print_help()
    return 2


def _scenario_run(paths: Sequence[str], *, store: str | None, as_json: bool) -> int:
    from approvalflow.scenario.loader import find_scenario_files
    from approvalflow.scenario.runner import run_file
    from approvalflow.stores import open_store

    missing = [path for path in paths if not __import__("os").path.exists(path)]
    if missing:
        print(f"approvalflow: no such file or folder: {', '.join(missing)}", file=sys.stderr)
        return 2
    files = find_scenario_files(paths)
    shared = open_store(store) if store else None
    results = []
    progress = sys.stderr.isatty() and not as_json and len(files) > 5
    try:
        for number, path in enumerate(files, start=1):
            if progress:
                print(f"\r[{number}/{len(files)}] {path.name:<60.60}", end="", file=sys.stderr)
            result = run_file(path, store=shared)
            results.append(result)
            if progress:
                print("\r" + " " * 80 + "\r", end="", file=sys.stderr)
            if not as_json:
                print(result.render(), flush=True)
    finally:
        if shared is not None:
            shared.close()
    passed = sum(1 for r in results if r.passed)
    failed = len(results) - passed
    if as_json:
        print(
            json.dumps(
                {"passed": passed, "failed": failed, "scenarios": [r.to_json() for r in results]},
                ensure_ascii=False,
                indent=2,
            )
        )
    else:
        print(f"{passed} passed, {failed} failed")
    if any(r.file_error for r in results):
        return 2
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())

"""``approvalflow scenario run PATH...``: run scenario files, one line each, then the count.

Running nothing is a failure: a folder without scenario files, or a named file that is not
one, says why. A file named on the command line is always read as a scenario, so a misspelt
top key (``senario:``) is reported with its line instead of being skipped.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from approvalflow.cli.common import CommandFailed, CommandLineError, open_url

__all__ = ["add_arguments", "run"]

_SUFFIXES = (".yaml", ".yml")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", metavar="PATH", help="scenario files or folders")
    parser.add_argument(
        "--store",
        default=None,
        help="store URL, e.g. sqlite:///approvalflow.db, created if missing (default: a fresh"
        " in-memory store; $APPROVALFLOW_STORE is not read here, so scenarios never run"
        " against a county's store by accident)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(run=run)


def run(options: argparse.Namespace) -> int:
    from approvalflow.scenario.runner import ScenarioResult, run_file

    missing = [path for path in options.paths if not os.path.exists(path)]
    if missing:
        raise CommandLineError(f"no such file or folder: {', '.join(missing)}")
    files, refused = _files(options.paths)
    if not files and not refused:
        raise CommandFailed(_nothing_found(options.paths))
    # Creating the store is explicit, and running scenarios is one way to ask for it.
    shared = open_url(options.store, create=True) if options.store else None
    results = [
        ScenarioResult(name=path.name, path=str(path), file_error=why) for path, why in refused
    ]
    if not options.json:
        for result in results:
            print(result.render(), flush=True)
    progress = sys.stderr.isatty() and not options.json and len(files) > 5
    try:
        for number, path in enumerate(files, start=1):
            if progress:
                print(f"\r[{number}/{len(files)}] {path.name:<60.60}", end="", file=sys.stderr)
            result = run_file(path, store=shared)
            results.append(result)
            if progress:
                print("\r" + " " * 80 + "\r", end="", file=sys.stderr)
            if not options.json:
                print(result.render(), flush=True)
    finally:
        if shared is not None:
            shared.close()
    passed = sum(1 for r in results if r.passed)
    failed = len(results) - passed
    if options.json:
        report = {
            "passed": passed,
            "failed": failed,
            "scenarios": [r.to_json() for r in results],
        }
        print(json.dumps(report, ensure_ascii=False, indent=2))
    else:
        print(f"{passed} passed, {failed} failed")
    if any(r.file_error for r in results):
        return 2
    return 1 if failed else 0


def _files(paths: list[str]) -> tuple[list[Path], list[tuple[Path, str]]]:
    """The scenario files to run, and the named files refused (with the reason)."""
    from approvalflow.scenario.loader import find_scenario_files

    found: set[Path] = set()
    refused: list[tuple[Path, str]] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found.update(find_scenario_files([path]))
        elif path.suffix.lower() in _SUFFIXES:
            found.add(path)  # named: read as a scenario even if it does not look like one
        else:
            refused.append(
                (path, f"{path}: not a scenario file: scenario files end in .yaml or .yml")
            )
    return sorted(found), refused


def _nothing_found(paths: list[str]) -> str:
    """Why nothing ran: no scenario file under the folders, and any near miss seen there."""
    import difflib

    from approvalflow.scenario.loader import top_level_keys

    hints = []
    for raw in paths:
        for directory, subdirectories, names in os.walk(raw):
            subdirectories[:] = [name for name in subdirectories if not name.startswith(".")]
            for name in names:
                if Path(name).suffix.lower() not in _SUFFIXES or name.startswith("."):
                    continue
                candidate = Path(directory, name)
                close = difflib.get_close_matches("scenario", top_level_keys(candidate), n=1)
                if close:
                    hints.append(f"{candidate}: top key {close[0]!r} (did you mean 'scenario'?)")
    message = (
        f"no scenario files under {', '.join(paths)}: a scenario file is a .yaml or .yml file"
        " whose top level has a scenario: key"
    )
    return "; ".join([message, *hints[:5]])

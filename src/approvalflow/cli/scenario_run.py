"""``approvalflow scenario run PATH...``: run scenario files, one line each, then the count."""

from __future__ import annotations

import argparse
import json
import os
import sys

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", metavar="PATH", help="scenario files or folders")
    parser.add_argument(
        "--store",
        default=None,
        help="store URL, e.g. sqlite:///approvalflow.db (default: a fresh in-memory store)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(run=run)


def run(options: argparse.Namespace) -> int:
    from approvalflow.scenario.loader import find_scenario_files
    from approvalflow.scenario.runner import run_file
    from approvalflow.stores import open_store

    missing = [path for path in options.paths if not os.path.exists(path)]
    if missing:
        print(f"approvalflow: no such file or folder: {', '.join(missing)}", file=sys.stderr)
        return 2
    files = find_scenario_files(options.paths)
    shared = open_store(options.store, create=True) if options.store else None
    results = []
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

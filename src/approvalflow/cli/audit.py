"""``approvalflow audit verify --store URL``: recompute the audit chain and name the first fault."""

from __future__ import annotations

import argparse
import json

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from approvalflow.cli.common import add_store_argument

    add_store_argument(parser)
    parser.add_argument(
        "--expect",
        metavar="COUNT:HASH",
        help="a head recorded earlier (as printed by a previous run); catches removed events",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(run=run)


def run(options: argparse.Namespace) -> int:
    from approvalflow.cli.common import CommandLineError, open_existing_store
    from approvalflow.stores.audit import ChainHead, verify_chain

    expected = None
    if options.expect:
        count, _, digest = options.expect.partition(":")
        if not count.isdigit() or not digest:
            raise CommandLineError("--expect takes COUNT:HASH, as `audit verify` prints it")
        expected = ChainHead(int(count), digest)
    store = open_existing_store(options)
    try:
        try:
            report = verify_chain(store, expected)
        except TypeError as error:
            raise CommandLineError(str(error)) from error
    finally:
        store.close()
    if options.json:
        print(
            json.dumps(
                {
                    "ok": report.ok,
                    "count": report.count,
                    "head": report.head,
                    "first_bad": list(report.first_bad) if report.first_bad else None,
                    "reason": report.reason,
                },
                ensure_ascii=False,
            )
        )
    elif report.ok:
        print(f"OK: {report.count} events, chain intact")
        print(f"head: {report.count}:{report.head}")
    else:
        where = (
            f"{report.first_bad[0]} version {report.first_bad[1]}" if report.first_bad else "end"
        )
        print(f"FAIL: first bad event: {where}: {report.reason}")
        print(f"checked: {report.count} events up to it")
    return 0 if report.ok else 1

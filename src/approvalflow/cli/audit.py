"""``approvalflow audit verify`` and ``approvalflow audit seal``: replay every project and report
each finding, and seal every project's chain head with a key kept outside the database.

Both work on ``--store`` (the unscoped store: the default county's view, and for ``verify``
every other county's chains after it) or on one county's view (``--counties FILE --county
ID``); a checkpoint names the county it seals, and is refused on another's view (D299)."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
from collections.abc import Iterator
from typing import Any

__all__ = ["add_arguments", "add_seal_arguments", "run", "seal"]


def _plugin_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--plugin",
        action="append",
        default=[],
        help="county plugin (default: the plugins recorded in the store)",
    )


@contextlib.contextmanager
def _audited(options: argparse.Namespace) -> Iterator[tuple[Any, Any]]:
    """The store to audit and its workflow definition: ``--county``'s view of ``--counties``
    (its plugins from the file), or ``--store`` with ``--plugin``. Closed on leaving."""
    from approvalflow.cli.common import (
        CommandLineError,
        chosen_county,
        open_definition,
        open_existing_store,
        open_province,
    )

    if getattr(options, "counties", None) is None:
        if getattr(options, "county", None) is not None:
            raise CommandLineError("--county needs --counties FILE (the province's counties)")
        store = open_existing_store(options)
        try:
            plugins = getattr(options, "plugin", [])
            yield store, (open_definition(store, plugins) if hasattr(options, "plugin") else None)
        finally:
            store.close()
        return
    if getattr(options, "plugin", None):
        raise CommandLineError(
            "--plugin does not go with --counties: each county's comes from the file"
        )
    province = open_province(options)
    try:
        engine = province.engine(chosen_county(options, province))
        yield engine.store, engine.definition
    finally:
        province.close()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from approvalflow.cli.common import add_county_arguments, add_store_argument

    add_store_argument(parser)
    add_county_arguments(parser)
    parser.add_argument(
        "--checkpoint",
        metavar="FILE",
        help="a sealed checkpoint to check (default: the newest in the store)",
    )
    parser.add_argument(
        "--key-file",
        metavar="F",
        help="the key to check the checkpoint's signature with (the sealing key, or for "
        "Ed25519 its public key)",
    )
    parser.add_argument(
        "--require-anchor",
        action="store_true",
        help="fail (exit 1) unless a checkpoint's signature was checked",
    )
    parser.add_argument(
        "--expect",
        metavar="COUNT:HASH",
        help="a head printed by an earlier run: the store must still be at it (or, for a head "
        "from before per-project chains, the old chain must still reach it)",
    )
    _plugin_argument(parser)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(run=run)


def add_seal_arguments(parser: argparse.ArgumentParser) -> None:
    from approvalflow.cli.common import add_county_arguments, add_store_argument

    add_store_argument(parser)
    add_county_arguments(parser)
    parser.add_argument(
        "--key-file",
        metavar="F",
        required=True,
        help="an HMAC secret (32 bytes or more) or an Ed25519 private key in PEM",
    )
    parser.add_argument("--out", metavar="FILE", help="also write the checkpoint here (a new file)")
    parser.set_defaults(run=seal)


def _key(path: str) -> Any:
    from approvalflow.cli.common import CommandLineError
    from approvalflow.errors import CheckpointError
    from approvalflow.stores.checkpoints import load_key

    try:
        return load_key(path)
    except CheckpointError as error:
        raise CommandLineError(f"--key-file: {error.message}") from error


def run(options: argparse.Namespace) -> int:
    from approvalflow.cli.common import CommandLineError
    from approvalflow.engine.definition import RuleBook
    from approvalflow.errors import CheckpointError
    from approvalflow.stores.audit import ChainHead, verify_store
    from approvalflow.stores.checkpoints import Checkpoint, newest_checkpoint

    expected = None
    if options.expect:
        count, _, digest = options.expect.partition(":")
        if not count.isdigit() or not digest:
            raise CommandLineError("--expect takes COUNT:HASH, as `audit verify` prints it")
        expected = ChainHead(int(count), digest)
    key = _key(options.key_file) if options.key_file else None
    checkpoint = None
    if options.checkpoint:
        try:
            with open(options.checkpoint, encoding="utf-8") as file:
                checkpoint = Checkpoint.from_json(file.read())
        except OSError as error:
            raise CommandLineError(
                f"--checkpoint: cannot read {options.checkpoint}: {error}"
            ) from None
        except CheckpointError as error:
            raise CommandLineError(f"--checkpoint {options.checkpoint}: {error.message}") from None
    with _audited(options) as (store, definition):
        if not hasattr(store, "project_chain"):
            raise CommandLineError(f"{type(store).__name__} keeps no audit chain")
        if checkpoint is None:
            try:
                checkpoint = newest_checkpoint(store)
            except CheckpointError as error:
                raise CommandLineError(f"the store's newest checkpoint: {error.message}") from None
        with definition.folds.folding():
            report = verify_store(
                store,
                timers_for=RuleBook(definition, store).timers_for,
                checkpoint=checkpoint,
                key=key,
                expected_head=expected,
            )
    failed = not report.ok or (options.require_anchor and report.anchor is None)
    if options.json:
        print(
            json.dumps(
                {
                    "ok": report.ok,
                    "projects": report.projects,
                    "events": report.events,
                    "head": f"{report.head.count}:{report.head.hash}",
                    "anchor": report.anchor,
                    "unanchored": report.unanchored,
                    "findings": [
                        {
                            "project": f.project,
                            "what": f.what,
                            "where": f.where,
                            "detail": f.detail,
                        }
                        for f in report.findings
                    ],
                },
                ensure_ascii=False,
            )
        )
        return 1 if failed else 0
    if report.ok:
        print(
            f"OK: {report.projects} projects, {report.events} events: every chain, version, "
            "snapshot, timer, command record and summary fits the replay"
        )
    else:
        print(f"FAIL: {len(report.findings)} findings in {report.projects} projects")
        for finding in report.findings:
            print(f"  {finding}")
    print(f"head: {report.head.count}:{report.head.hash}")
    if report.anchor is not None:
        print(f"anchored: {report.anchor}, its signature checked")
    elif checkpoint is None:
        print(
            f"unanchored: {report.unanchored}: the store has no checkpoint (seal one with "
            "`approvalflow audit seal`)"
        )
    else:
        print(f"unanchored: {report.unanchored}")
    return 1 if failed else 0


def seal(options: argparse.Namespace) -> int:
    from approvalflow.cli.common import CommandLineError
    from approvalflow.errors import CheckpointError
    from approvalflow.stores.checkpoints import seal as seal_store

    key = _key(options.key_file)
    if not key.can_sign:
        raise CommandLineError(
            "--key-file: an Ed25519 public key cannot seal; give the private key"
        )
    out = None
    if options.out:
        try:
            # A new file: a county keeps every checkpoint, so none is written over.
            out = open(options.out, "x", encoding="utf-8")  # noqa: SIM115
        except OSError as error:
            raise CommandLineError(f"--out: cannot create {options.out}: {error}") from None
    try:
        with _audited(options) as (store, _definition):
            try:
                checkpoint = seal_store(store, key)
            except CheckpointError as error:
                raise CommandLineError(error.message) from None
        if out is not None:
            out.write(checkpoint.to_json())
            out.flush()
            os.fsync(out.fileno())
    except BaseException:
        if out is not None:
            out.close()
            os.unlink(options.out)
        raise
    if out is not None:
        out.close()
    print(
        f"sealed: county {checkpoint.sealed_county}, {len(checkpoint.heads)} projects, "
        f"digest {checkpoint.digest}, "
        f"{checkpoint.algorithm} key {checkpoint.key_id}"
        + (f", written to {options.out}" if options.out else "")
    )
    return 0

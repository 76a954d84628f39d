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

__all__ = [
    "add_archive_arguments",
    "add_arguments",
    "add_seal_arguments",
    "run",
    "run_archive",
    "seal",
]


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


def add_archive_arguments(parser: argparse.ArgumentParser) -> None:
    from approvalflow.cli.common import add_store_argument

    add_store_argument(parser)
    parser.add_argument(
        "--table",
        required=True,
        metavar="TABLE",
        help="the archive table: archives, or a (detached) partition such as archives_2026_q1",
    )
    parser.add_argument(
        "--checkpoint", metavar="FILE", help="a sealed checkpoint whose heads the packs must hold"
    )
    parser.add_argument(
        "--key-file", metavar="F", help="the key to check the checkpoint's signature with"
    )
    parser.set_defaults(run=run_archive)


def run_archive(options: argparse.Namespace) -> int:
    """Verify an archive table on its own (D272): every pack unpacks and hashes to its stored
    head, its version is its event count, and a checkpoint's heads are on its chains."""
    from approvalflow.cli.common import CommandLineError, open_existing_store
    from approvalflow.stores.archives import verify_packs
    from approvalflow.stores.audit import Finding

    checkpoint = _checkpoint_file(options.checkpoint) if options.checkpoint else None
    key = _key(options.key_file) if options.key_file else None
    store = open_existing_store(options)
    try:
        read = getattr(store, "archive_table_rows", None)
        if read is None:
            raise CommandLineError(f"{type(store).__name__} keeps no archive tables")
        try:
            rows = read(options.table)
        except ValueError as error:
            raise CommandLineError(f"--table: {error}") from None
    finally:
        store.close()
    sealed = {p: (v, h) for p, v, h in checkpoint.heads} if checkpoint is not None else None
    projects, events, findings = verify_packs(rows, sealed)
    anchor = None
    if checkpoint is not None and key is not None:
        problem = checkpoint.signature_problem(key)
        if problem is None:
            anchor = checkpoint.describe()
        else:
            findings.append(Finding(None, "checkpoint", checkpoint.describe(), problem))
    if findings:
        print(f"FAIL: {len(findings)} findings in {projects} archived projects")
        for finding in findings:
            print(f"  {finding}")
    else:
        print(
            f"OK: {projects} archived projects, {events} events in {options.table}: every pack "
            "unpacks, hashes to its head and holds its version"
            + (", and every sealed head" if checkpoint is not None else "")
        )
    if anchor is not None:
        print(f"anchored: {anchor}, its signature checked")
    else:
        print("unanchored: no checkpoint's signature was checked")
    return 1 if findings else 0


def _checkpoint_file(path: str) -> Any:
    from approvalflow.cli.common import CommandLineError
    from approvalflow.errors import CheckpointError
    from approvalflow.stores.checkpoints import Checkpoint

    try:
        with open(path, encoding="utf-8") as file:
            return Checkpoint.from_json(file.read())
    except OSError as error:
        raise CommandLineError(f"--checkpoint: cannot read {path}: {error}") from None
    except CheckpointError as error:
        raise CommandLineError(f"--checkpoint {path}: {error.message}") from None


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
    from approvalflow.stores.checkpoints import newest_checkpoint

    expected = None
    if options.expect:
        count, _, digest = options.expect.partition(":")
        if not count.isdigit() or not digest:
            raise CommandLineError("--expect takes COUNT:HASH, as `audit verify` prints it")
        expected = ChainHead(int(count), digest)
    key = _key(options.key_file) if options.key_file else None
    checkpoint = _checkpoint_file(options.checkpoint) if options.checkpoint else None
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

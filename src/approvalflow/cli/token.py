"""``approvalflow token issue|list|revoke --store URL``: the bearer tokens of the service.

``issue`` prints the token once; only its SHA-256 is stored, so a lost token is revoked and
issued again, never recovered.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime

__all__ = ["add_arguments"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    issue = actions.add_parser("issue", help="issue a token to a calling system (printed once)")
    issue.add_argument("--store", required=True, help="store URL")
    issue.add_argument("--system", required=True, help="the calling system's name")
    who = issue.add_mutually_exclusive_group()
    who.add_argument("--actor", help="every request with this token acts as this person")
    who.add_argument(
        "--trusted",
        action="store_true",
        help="the system may name the acting person per request (Approvalflow-Actor header)",
    )
    issue.set_defaults(run=_issue)
    listing = actions.add_parser("list", help="every token: id, system, actor, state")
    listing.add_argument("--store", required=True, help="store URL")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    listing.set_defaults(run=_list)
    revoke = actions.add_parser("revoke", help="revoke a token by its id")
    revoke.add_argument("--store", required=True, help="store URL")
    revoke.add_argument("token_id", help="the id `token list` shows")
    revoke.set_defaults(run=_revoke)


def _issue(options: argparse.Namespace) -> int:
    from approvalflow.server.auth import issue_token
    from approvalflow.stores import open_store

    # Issuing the first token is how a county sets up its service: the store may be new.
    store = open_store(options.store, create=True)
    try:
        token, record = issue_token(
            store, options.system, actor=options.actor, trusted=options.trusted
        )
    except ValueError as error:
        print(f"approvalflow: {error}", file=sys.stderr)
        return 2
    finally:
        store.close()
    print(token)
    print(
        f"token {record.token_id} for system {record.system!r} "
        f"({_acts_as(record.actor, record.trusted)}); it is shown only this once",
        file=sys.stderr,
    )
    return 0


def _acts_as(actor: str | None, trusted: bool) -> str:
    if actor is not None:
        return f"acts as {actor}"
    return "names the acting person per request" if trusted else "reads only"


def _list(options: argparse.Namespace) -> int:
    from approvalflow.stores import open_store

    store = open_store(options.store)
    try:
        records = store.tokens()  # type: ignore[attr-defined]
    finally:
        store.close()
    for r in records:
        state = f"revoked {r.revoked_at.isoformat()}" if r.revoked_at else "active"
        if options.json:
            row = {
                "token_id": r.token_id,
                "system": r.system,
                "actor": r.actor,
                "trusted": r.trusted,
                "created_at": r.created_at.isoformat(),
                "revoked_at": r.revoked_at.isoformat() if r.revoked_at else None,
            }
            print(json.dumps(row, ensure_ascii=False))
        else:
            print(f"{r.token_id}  {r.system}  {_acts_as(r.actor, r.trusted)}  {state}")
    return 0


def _revoke(options: argparse.Namespace) -> int:
    from approvalflow.stores import open_store

    store = open_store(options.store)
    try:
        revoked = store.revoke_token(options.token_id, datetime.now(UTC))  # type: ignore[attr-defined]
    finally:
        store.close()
    if not revoked:
        print(f"approvalflow: no active token {options.token_id}", file=sys.stderr)
        return 1
    print(f"token {options.token_id} revoked")
    return 0

"""``approvalflow token issue|list|revoke --store URL``: the bearer tokens of the service.

``issue`` prints the token once; only its SHA-256 is stored, so a lost token is revoked and
issued again, never recovered. A province's tokens are kept in the province's store (the
counties file's ``store:``, or ``--store``), each with its county (``--county``) or marked as a
province token (``--province``: the province reports only).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from typing import Any

__all__ = ["add_arguments"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    issue = actions.add_parser("issue", help="issue a token to a calling system (printed once)")
    _add_store(issue)
    issue.add_argument("--system", required=True, help="the calling system's name")
    who = issue.add_mutually_exclusive_group()
    who.add_argument("--actor", help="every request with this token acts as this person")
    who.add_argument(
        "--trusted",
        action="store_true",
        help="the system may name the acting person per request (Approvalflow-Actor header)",
    )
    where = issue.add_mutually_exclusive_group()
    where.add_argument("--county", help="the county whose data the token reaches (its id)")
    where.add_argument(
        "--province",
        action="store_true",
        help="a province token: it reads the province reports (/province/...) only",
    )
    issue.set_defaults(run=_issue)
    listing = actions.add_parser("list", help="every token: id, system, county, actor, state")
    _add_store(listing)
    listing.add_argument("--county", help="only this county's tokens")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    listing.set_defaults(run=_list)
    revoke = actions.add_parser("revoke", help="revoke a token by its id")
    _add_store(revoke)
    revoke.add_argument("token_id", help="the id `token list` shows")
    revoke.set_defaults(run=_revoke)


def _add_store(parser: argparse.ArgumentParser) -> None:
    from approvalflow.cli.common import add_county_arguments

    parser.add_argument("--store", help="store URL (with --counties: the province's store)")
    add_county_arguments(parser, county=False)


def _token_store(options: argparse.Namespace, *, create: bool = False) -> Any:
    """The store the tokens are kept in: ``--store``, or the province's of ``--counties``
    (whose counties ``--county`` must name one of)."""
    from approvalflow.cli.common import CommandLineError, open_province
    from approvalflow.stores import open_store

    if options.counties is None:
        if not options.store:
            raise CommandLineError("no store: pass --store URL (or --counties FILE)")
        return open_store(options.store, create=create)
    province = open_province(options, create=create)
    county = getattr(options, "county", None)
    try:
        if county is not None and county not in province:
            raise CommandLineError(
                f"--county: the counties file has no county {county!r} "
                f"(it has {', '.join(province.counties)})"
            )
        if getattr(options, "action", None) == "issue" and county is None and not options.province:
            raise CommandLineError(
                "--counties: a token of a province service names its --county (or --province)"
            )
    except BaseException:
        province.close()
        raise
    return _ProvinceStore(province)


class _ProvinceStore:
    """The province's store, closing the whole province (every store it opened) when done."""

    def __init__(self, province: Any) -> None:
        self._province = province

    def __getattr__(self, name: str) -> Any:
        return getattr(self._province.store, name)

    def close(self) -> None:
        self._province.close()


def _issue(options: argparse.Namespace) -> int:
    from approvalflow.server.auth import issue_token
    from approvalflow.stores.tokens import PROVINCE

    # Issuing the first token is how a county sets up its service: the store may be new.
    store = _token_store(options, create=True)
    try:
        token, record = issue_token(
            store,
            options.system,
            actor=options.actor,
            trusted=options.trusted,
            county=PROVINCE if options.province else options.county,
        )
    except ValueError as error:
        print(f"approvalflow: {error}", file=sys.stderr)
        return 2
    finally:
        store.close()
    print(token)
    print(
        f"token {record.token_id} for system {record.system!r}{_of(record.county)} "
        f"({_acts_as(record.actor, record.trusted)}); it is shown only this once",
        file=sys.stderr,
    )
    return 0


def _of(county: str | None) -> str:
    from approvalflow.stores.tokens import PROVINCE

    if county is None:
        return ""
    return " of the province" if county == PROVINCE else f" of {county}"


def _acts_as(actor: str | None, trusted: bool) -> str:
    if actor is not None:
        return f"acts as {actor}"
    return "names the acting person per request" if trusted else "reads only"


def _list(options: argparse.Namespace) -> int:
    store = _token_store(options)
    try:
        records = store.tokens()
    finally:
        store.close()
    for r in records:
        if options.county is not None and r.county != options.county:
            continue
        state = f"revoked {r.revoked_at.isoformat()}" if r.revoked_at else "active"
        if options.json:
            row = {
                "token_id": r.token_id,
                "system": r.system,
                "actor": r.actor,
                "trusted": r.trusted,
                "county": r.county,
                "created_at": r.created_at.isoformat(),
                "revoked_at": r.revoked_at.isoformat() if r.revoked_at else None,
            }
            print(json.dumps(row, ensure_ascii=False))
        else:
            county = "province" if r.county == "*" else (r.county or "-")
            print(f"{r.token_id}  {r.system}  {county}  {_acts_as(r.actor, r.trusted)}  {state}")
    return 0


def _revoke(options: argparse.Namespace) -> int:
    store = _token_store(options)
    try:
        revoked = store.revoke_token(options.token_id, datetime.now(UTC))
    finally:
        store.close()
    if not revoked:
        print(f"approvalflow: no active token {options.token_id}", file=sys.stderr)
        return 1
    print(f"token {options.token_id} revoked")
    return 0

"""``approvalflow store init|migrate --store URL``: create a store, or bring one up to date.

Every other command opens the store it is given without creating it, so a typo in a URL is
refused instead of answered from a new, empty store.
"""

from __future__ import annotations

import argparse

from approvalflow.cli.common import CommandLineError, add_store_argument, store_url

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    init = actions.add_parser("init", help="create the store (nothing changes if it exists)")
    migrate = actions.add_parser("migrate", help="upgrade an existing store's schema")
    for sub in (init, migrate):
        add_store_argument(sub)
        sub.set_defaults(run=run)


def run(options: argparse.Namespace) -> int:
    from approvalflow.stores import StoreNotFound, init_store, migrate_store

    url = store_url(options)
    try:
        store = init_store(url) if options.action == "init" else migrate_store(url)
    except StoreNotFound as error:
        raise CommandLineError(error.message) from error
    except ValueError as error:
        raise CommandLineError(f"store URL: {error}") from error
    store.close()
    print(f"store {'ready' if options.action == 'init' else 'up to date'}: {_shown(url)}")
    return 0


def _shown(url: str) -> str:
    # Never echo a password given in the URL.
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":***@", 1)
    return url

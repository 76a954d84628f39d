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
        sub.add_argument(
            "url", nargs="?", metavar="URL", help="store URL (the same as --store URL)"
        )
        add_store_argument(sub)
        sub.set_defaults(run=run)


def run(options: argparse.Namespace) -> int:
    from approvalflow.errors import SchemaVersionError
    from approvalflow.stores import StoreNotFound, init_store, migrate_store

    if options.url and options.store and options.url != options.store:
        raise CommandLineError(f"two store URLs: {options.url!r} and --store {options.store!r}")
    url = options.url or store_url(options)
    try:
        if options.action == "init":
            created = init_store(url)
            print(f"store {'created' if created else 'exists already'}: {_shown(url)}")
        else:
            before, after = migrate_store(url)
            change = f"from version {before} to {after}" if before != after else "up to date"
            print(f"store {change}: {_shown(url)}")
    except StoreNotFound as error:
        raise CommandLineError(error.message) from error
    except SchemaVersionError as error:
        raise CommandLineError(error.message) from error
    except ValueError as error:
        raise CommandLineError(f"store URL: {error}") from error
    return 0


def _shown(url: str) -> str:
    # Never echo a password given in the URL.
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":***@", 1)
    return url

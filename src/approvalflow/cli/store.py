"""``approvalflow store init|migrate|archive``: create a store, bring one up to date, or pack
its finished projects into an archive.

Every other command opens the store it is given without creating it, so a typo in a URL is
refused instead of answered from a new, empty store.
"""

from __future__ import annotations

import argparse

from approvalflow.cli.common import (
    CommandLineError,
    add_county_arguments,
    add_store_argument,
    store_url,
)

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
    archive = actions.add_parser(
        "archive",
        help="pack finished projects into an archive (read as before, changed never again)",
    )
    archive.add_argument("projects", nargs="*", metavar="PROJECT", help="the projects to pack")
    archive.add_argument(
        "--name", required=True, metavar="NAME", help="the archive's name, e.g. 2026_q1"
    )
    archive.add_argument(
        "--finished",
        action="store_true",
        help="every finished project not archived yet (the others are left, and counted)",
    )
    add_store_argument(archive)
    archive.add_argument(
        "--plugin",
        action="append",
        default=[],
        help="county plugin (default: the plugins recorded in the store)",
    )
    add_county_arguments(archive)
    archive.set_defaults(run=run_archive, actors=None)


def run_archive(options: argparse.Namespace) -> int:
    """Archive the projects named (each must be finished: exit 1 at the first that is not,
    saying why, with those before it archived), or with ``--finished`` every finished one:
    of the store of ``--store``, or of the ``--county`` of ``--counties`` alone."""
    from approvalflow.cli.common import CommandFailed, county_engine
    from approvalflow.errors import InvalidCommand, NotArchivable, UnknownProject
    from approvalflow.stores.archives import checked_archive_name

    if bool(options.projects) == options.finished:
        raise CommandLineError("name the projects to archive, or give --finished (not both)")
    try:
        checked_archive_name(options.name)
    except InvalidCommand as error:
        raise CommandLineError(f"--name: {error.message}") from None
    with county_engine(options) as (engine, _):
        store = engine.store
        if options.finished:
            packed = left = 0
            for project in store.project_ids():
                if store.archive_of(project) is not None:
                    continue
                try:
                    engine.archive(project, options.name)
                except NotArchivable:
                    left += 1
                    continue
                packed += 1
            print(f"archived {packed} project(s) into {options.name}; {left} not finished")
            return 0
        for project in options.projects:
            try:
                engine.archive(project, options.name)
            except (NotArchivable, UnknownProject) as error:
                raise CommandFailed(error.message) from None
            print(f"archived {project} into {options.name}")
        return 0


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

"""What every command shares: the store option, opening a store, reading times, the plugins.

A command raises :class:`CommandLineError` for what the operator typed wrong (exit 2) or
:class:`CommandFailed` for what went wrong while doing it (exit 1); the top-level handler in
``approvalflow.cli`` prints the message on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import os
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from approvalflow.engine import Engine, WorkflowDefinition
    from approvalflow.model import Actor
    from approvalflow.province import Province
    from approvalflow.stores import Store

__all__ = [
    "STORE_VARIABLE",
    "CommandFailed",
    "CommandLineError",
    "add_actors_argument",
    "add_county_arguments",
    "add_store_argument",
    "county_engine",
    "open_definition",
    "open_engine",
    "open_existing_store",
    "open_province",
    "parse_time",
    "read_actors_option",
    "store_plugins",
]

#: The environment variable read when ``--store`` is not given.
STORE_VARIABLE = "APPROVALFLOW_STORE"


class CommandLineError(Exception):
    """The command line cannot be used as given: a usage error, exit status 2."""

    status = 2


class CommandFailed(Exception):
    """The command ran and failed (or a store could not be reached): exit status 1."""

    status = 1


def add_store_argument(parser: argparse.ArgumentParser) -> None:
    """``--store URL``, defaulting to ``$APPROVALFLOW_STORE``."""
    parser.add_argument(
        "--store",
        default=None,
        help=f"store URL, e.g. sqlite:///approvalflow.db (default: ${STORE_VARIABLE})",
    )


def add_actors_argument(parser: argparse.ArgumentParser) -> None:
    """``--actors FILE``: the actor directory ``serve`` and ``worker`` take, read here for
    the people's names."""
    from pathlib import Path

    parser.add_argument(
        "--actors",
        type=Path,
        default=None,
        help="YAML file: actor id -> {name, roles, department, teams, recuse} "
        "(people are shown by name)",
    )


def add_county_arguments(parser: argparse.ArgumentParser, *, county: bool = True) -> None:
    """``--counties FILE`` (a province's counties file) and, with ``county``, ``--county ID``
    (which of its counties)."""
    from pathlib import Path

    parser.add_argument(
        "--counties",
        type=Path,
        default=None,
        help="a province's counties file (docs/province.md): each county's plugins, actors, "
        "settings and store; --store, if given, is the province's store",
    )
    if county:
        parser.add_argument(
            "--county", default=None, help="the county of --counties to work on (its id)"
        )


def open_province(
    options: argparse.Namespace,
    *,
    create: bool = False,
    plugins: Sequence[object] = (),
    deliver: str = "inline",
) -> Province:
    """The province of ``--counties`` (with ``--store`` as its store, if given); a malformed
    file, a county without a store or a store that is not there is a :class:`CommandLineError`
    with the reason."""
    from approvalflow.errors import ProvinceError, ScenarioFileError, SchemaVersionError
    from approvalflow.province import Province
    from approvalflow.stores import StoreNotFound

    given = getattr(options, "store", None) or os.environ.get(STORE_VARIABLE) or None
    try:
        return Province.open(
            options.counties, store_url=given, create=create, plugins=plugins, deliver=deliver
        )
    except (ScenarioFileError, ProvinceError) as error:
        raise CommandLineError(f"--counties: {error}") from error
    except StoreNotFound as error:
        raise CommandLineError(error.message) from error
    except SchemaVersionError as error:
        raise CommandLineError(
            f"{error.message} (`approvalflow store migrate` upgrades a store)"
        ) from error
    except ValueError as error:
        raise CommandLineError(f"store URL: {error}") from error


def chosen_county(options: argparse.Namespace, province: Province) -> str:
    """The county ``--county`` names (or the file's only one); a usage error otherwise."""
    county: str | None = getattr(options, "county", None)
    if county is None:
        if len(province) == 1:
            return province.counties[0]
        raise CommandLineError(f"--county: which county? ({', '.join(province.counties)})")
    if county not in province:
        raise CommandLineError(
            f"--county: the counties file has no county {county!r} "
            f"(it has {', '.join(province.counties)})"
        )
    return county


@contextlib.contextmanager
def county_engine(options: argparse.Namespace) -> Iterator[tuple[Engine, list[Actor]]]:
    """The engine a reading command works on and the actors it names people from: the
    ``--county`` of ``--counties`` (its actors file), or the store of ``--store`` with
    ``--plugin`` and ``--actors``. The stores are closed on leaving."""
    if getattr(options, "counties", None) is None:
        if getattr(options, "county", None) is not None:
            raise CommandLineError("--county needs --counties FILE (the province's counties)")
        actors = read_actors_option(options)
        store = open_existing_store(options)
        try:
            yield open_engine(store, options.plugin), actors
        finally:
            store.close()
        return
    for option, given in (("--plugin", options.plugin), ("--actors", options.actors)):
        if given:
            raise CommandLineError(
                f"{option} does not go with --counties: each county's comes from the file"
            )
    province = open_province(options)
    try:
        engine = province.engine(chosen_county(options, province))
        yield engine, list(engine.actors)
    finally:
        province.close()


def read_actors_option(options: argparse.Namespace) -> list[Actor]:
    """The actors of ``--actors`` (none without it), read by the worker's and the service's
    reader: a missing or malformed file is a :class:`CommandLineError` naming the line."""
    if getattr(options, "actors", None) is None:
        return []
    from approvalflow.cli.worker import load_actors

    return load_actors(options.actors)


def store_url(options: argparse.Namespace) -> str:
    url: str | None = options.store or os.environ.get(STORE_VARIABLE) or None
    if not url:
        raise CommandLineError(f"no store: pass --store URL or set {STORE_VARIABLE}")
    return url


def open_existing_store(options: argparse.Namespace) -> Store:
    """The store of ``--store`` (or the environment), opened without creating anything."""
    return open_url(store_url(options), create=False)


def open_url(url: str, *, create: bool) -> Store:
    from approvalflow.errors import SchemaVersionError
    from approvalflow.stores import StoreNotFound, open_store

    try:
        return open_store(url, create=create)
    except StoreNotFound as error:
        raise CommandLineError(error.message) from error
    except SchemaVersionError as error:
        raise CommandLineError(
            f"{error.message} (`approvalflow store migrate` upgrades a store)"
        ) from error
    except ValueError as error:
        # Unknown schemes and malformed URLs or options: what was typed is wrong.
        raise CommandLineError(f"store URL: {error}") from error


def parse_time(option: str, text: str | None) -> datetime | None:
    """A local time given on the command line, or ``None`` when the option was not given."""
    from approvalflow.calendar import parse_local

    if text is None:
        return None
    try:
        return parse_local(text)
    except ValueError as error:
        raise CommandLineError(f"{option}: {error}") from error


def store_plugins(store: Store, given: Sequence[str]) -> list[str]:
    """The plugins to run with: those named with ``--plugin``, else the store's record of the
    plugins its projects were written with (refused, with the reason, when one is missing)."""
    if given:
        return list(given)
    recorded = getattr(store, "recorded_plugins", None)
    if not callable(recorded):
        return []
    names: Any = recorded()
    return [str(name) for name in names or ()]


def open_definition(store: Store, given: Sequence[str]) -> WorkflowDefinition:
    """The workflow definition with the plugins of :func:`store_plugins`."""
    from approvalflow.engine import WorkflowDefinition

    plugins = store_plugins(store, given)
    with _plugins_refused(given, plugins):
        return WorkflowDefinition(plugins=plugins)


@contextlib.contextmanager
def _plugins_refused(given: Sequence[str], plugins: Sequence[str]) -> Iterator[None]:
    from approvalflow.plugins.manager import PluginError
    from approvalflow.settings import SettingsError

    try:
        yield
    except (PluginError, SettingsError) as error:
        where = "given with --plugin" if given else "recorded in the store"
        raise CommandLineError(
            f"cannot load the plugins {where} ({', '.join(plugins) or 'none'}): {error}"
        ) from error


def open_engine(
    store: Store, given: Sequence[str], actors: Sequence[Any] = (), **options: Any
) -> Engine:
    """An engine on ``store`` with the plugins of :func:`store_plugins`."""
    from approvalflow.engine import Engine

    plugins = store_plugins(store, given)
    with _plugins_refused(given, plugins):
        return Engine(actors=list(actors), store=store, plugins=plugins, **options)

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
    from approvalflow.stores import Store

__all__ = [
    "STORE_VARIABLE",
    "CommandFailed",
    "CommandLineError",
    "add_actors_argument",
    "add_store_argument",
    "open_definition",
    "open_engine",
    "open_existing_store",
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

"""``approvalflow worker --store URL``: fire due timers and deliver the notice outbox until
stopped. Run as many as you like against one store: timers and notices are claimed, so each
timer fires once and each notice goes out once (again only if a worker's lease runs out).
SIGTERM or SIGINT stops it after the work in hand.

Nothing is dropped without a word: notices wait in the outbox until a channel plugin delivers
them, and a due timer that the loaded rules and plugins cannot fire is named in a warning with
the reason (most often: the county's plugin is not loaded).
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from approvalflow.cli.common import (
    CommandLineError,
    add_county_arguments,
    add_store_argument,
    chosen_county,
    open_definition,
    open_existing_store,
    open_province,
)

if TYPE_CHECKING:
    from approvalflow.engine import NoticeDispatcher, RuleBook, TimerExecutor
    from approvalflow.model import Actor, Timer
    from approvalflow.stores import Store

__all__ = ["add_arguments", "load_actors", "run", "unfirable_timers"]

_log = logging.getLogger("approvalflow.worker")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_store_argument(parser)
    parser.add_argument(
        "--actors",
        type=Path,
        help="YAML file: actor id -> {name, roles, department, teams, recuse} (notice recipients)",
    )
    parser.add_argument(
        "--plugin",
        action="append",
        default=[],
        help="plugin entry-point name (repeatable; default: the plugins recorded in the store)",
    )
    parser.add_argument("--poll", type=float, default=1.0, help="seconds between polls")
    parser.add_argument("--once", action="store_true", help="do what is due now, then exit")
    add_county_arguments(parser)
    parser.set_defaults(run=run)


def load_actors(path: Path) -> list[Actor]:
    """Actors from a YAML mapping shaped like a scenario's ``actors:``, read by the scenario
    loader (so an id ``no`` stays ``"no"`` and ``0600`` stays ``"0600"``); a missing or
    malformed file is a :class:`CommandLineError` naming the line."""
    from approvalflow.scenario.loader import load_actors as read_actors
    from approvalflow.scenario.model import ScenarioFileError

    try:
        specs = read_actors(path)
    except ScenarioFileError as error:
        raise CommandLineError(f"--actors: {error}") from error
    return [spec.actor() for spec in specs.values()]


class _Duty:
    """What a worker does for one store (one county): its timers and its outbox."""

    def __init__(
        self, county: str | None, store: Store, timers: TimerExecutor, dispatcher: NoticeDispatcher
    ) -> None:
        self.county = county
        self.store = store
        self.timers = timers
        self.dispatcher = dispatcher
        self.warned: set[tuple[str, str, str, datetime]] = set()
        self.scanned: datetime | None = None  # the earliest due time when last checked


def _duties(options: argparse.Namespace, clock: Any) -> tuple[list[_Duty], Any]:
    """The worker's duties (one per county) and what to close when it stops."""
    from approvalflow.engine import NoticeDispatcher, TimerExecutor
    from approvalflow.model import InMemoryActorDirectory

    if options.counties is None:
        if options.county is not None:
            raise CommandLineError("--county needs --counties FILE (the province's counties)")
        actors = load_actors(options.actors) if options.actors else []
        store = open_existing_store(options)
        try:
            definition = open_definition(store, options.plugin)
        except BaseException:
            store.close()
            raise
        # Only the services a worker uses: the timer executor and the notice dispatcher. It is
        # the outbox's deliverer: the notices of the timers it fires go through the outbox too,
        # so each is counted once, whoever sends it.
        dispatcher = NoticeDispatcher(definition, store, clock, deliver="outbox")
        timers = TimerExecutor.standalone(
            definition, store, clock, InMemoryActorDirectory(actors), dispatcher
        )
        return [_Duty(None, store, timers, dispatcher)], store
    for option, given in (("--plugin", options.plugin), ("--actors", options.actors)):
        if given:
            raise CommandLineError(
                f"{option} does not go with --counties: each county's comes from the file"
            )
    province = open_province(options)
    try:
        chosen = (
            [chosen_county(options, province)] if options.county is not None else province.counties
        )
        duties = []
        for county in chosen:
            engine = province.engine(county)
            dispatcher = NoticeDispatcher(engine.definition, engine.store, clock, deliver="outbox")
            timers = TimerExecutor.standalone(
                engine.definition, engine.store, clock, engine.actors, dispatcher
            )
            duties.append(_Duty(county, engine.store, timers, dispatcher))
    except BaseException:
        province.close()
        raise
    return duties, province


def run(options: argparse.Namespace) -> int:
    from approvalflow.clock import SystemClock

    if options.poll <= 0:
        raise CommandLineError(f"--poll takes a positive number of seconds, not {options.poll}")
    clock = SystemClock()
    duties, opened = _duties(options, clock)
    for duty in duties:
        if not duty.dispatcher.has_channels:
            where = f" of {duty.county}" if duty.county else ""
            _log.warning(
                "no channel plugin is loaded%s: notices stay in the outbox until a worker with "
                "one runs",
                where,
            )
    stopping = False

    def stop(signum: int, frame: Any) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    fired = delivered = 0
    try:
        while not stopping:
            now = clock.now()
            earliest: datetime | None = None
            for duty in duties:
                fired += len(duty.timers.run_due(now))
                if duty.dispatcher.has_channels:
                    delivered += duty.dispatcher.deliver_notices(now)
                next_due = duty.store.next_due()
                if next_due is not None and next_due <= now and next_due != duty.scanned:
                    duty.scanned = next_due
                    fresh = [
                        (timer, reason)
                        for timer, reason in unfirable_timers(duty.store, duty.timers.rules, now)
                        if (*timer.key, timer.due) not in duty.warned
                    ]
                    duty.warned.update((*timer.key, timer.due) for timer, _ in fresh)
                    _warn_unfirable(fresh)
                if next_due is not None and (earliest is None or next_due < earliest):
                    earliest = next_due
            if options.once:
                break
            time.sleep(_pause(earliest, now, options.poll))
    finally:
        opened.close()
    print(f"worker stopped: {fired} timers fired, {delivered} notices delivered", file=sys.stderr)
    return 0


def unfirable_timers(store: Store, rules: RuleBook, now: datetime) -> list[tuple[Timer, str]]:
    """The stored timers due by ``now`` that the loaded rules and plugins (``rules``) do not
    derive for their project (so firing them does nothing), each with the reason."""
    from approvalflow.rules.timers import TIMER_KINDS

    found: list[tuple[Timer, str]] = []
    for project in store.project_ids():
        timers = [timer for timer in store.timers(project) if timer.due <= now]
        if not timers:
            continue
        # Folded with the loaded plugins' folds, as the executor reads it.
        state = rules.load(project)
        if state is None:
            continue
        derived = rules.timers_for(state)
        for timer in timers:
            if derived.get((timer.kind, timer.branch)) == timer.due:
                continue  # claimed by another worker, or firing next round
            if timer.kind not in TIMER_KINDS:
                reason = (
                    f"no loaded plugin sets timers of kind {timer.kind!r}; load the county's "
                    "plugin (--plugin NAME, or the store's record)"
                )
            elif (timer.kind, timer.branch) in derived:
                reason = (
                    f"the loaded rules put it at {_local(derived[(timer.kind, timer.branch)])}; "
                    "the county's plugin that set it is probably not loaded"
                )
            else:
                reason = "the loaded rules set no such deadline (is the county's plugin loaded?)"
            found.append((timer, reason))
    return found


def _warn_unfirable(found: list[tuple[Timer, str]]) -> None:
    """One warning per kind of timer and reason (a county's plugin missing leaves many), and
    each timer at debug level (``-v``)."""
    groups: dict[tuple[str, str], list[Timer]] = {}
    for timer, reason in found:
        groups.setdefault((timer.kind, reason), []).append(timer)
        _log.debug(
            "cannot fire timer %s of %s%s due %s: %s",
            timer.kind,
            timer.project,
            f" ({timer.branch})" if timer.branch else "",
            _local(timer.due),
            reason,
        )
    for (kind, reason), timers in groups.items():
        shown = ", ".join(f"{t.project} due {_local(t.due)}" for t in timers[:3])
        more = f" and {len(timers) - 3} more" if len(timers) > 3 else ""
        _log.warning(
            "cannot fire %d timer%s %s (%s%s): %s",
            len(timers),
            "" if len(timers) == 1 else "s",
            kind,
            shown,
            more,
            reason,
        )


def _local(moment: datetime) -> str:
    from approvalflow.calendar import format_local

    return format_local(moment)


def _pause(next_due: datetime | None, now: datetime, poll: float) -> float:
    if next_due is None or next_due <= now:
        # Nothing scheduled, or only what cannot fire now (claimed elsewhere, or unfirable).
        return poll
    return max(0.0, min(poll, (next_due - now) / timedelta(seconds=1)))

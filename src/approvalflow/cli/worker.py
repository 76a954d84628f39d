"""``approvalflow worker --store URL``: fire due timers and deliver the notice outbox until
stopped. Run as many as you like against one store: timers and notices are claimed, so each
timer fires once and each notice goes out once (again only if a worker's lease runs out).
SIGTERM or SIGINT stops it after the work in hand."""

from __future__ import annotations

import argparse
import signal
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

__all__ = ["add_arguments", "load_actors", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--store", required=True, help="store URL")
    parser.add_argument(
        "--actors",
        type=Path,
        help="YAML file: actor id -> {name, roles, department, teams, recuse} (notice recipients)",
    )
    parser.add_argument(
        "--plugin", action="append", default=[], help="plugin entry-point name (repeatable)"
    )
    parser.add_argument("--poll", type=float, default=1.0, help="seconds between polls")
    parser.add_argument("--once", action="store_true", help="do what is due now, then exit")
    parser.set_defaults(run=run)


def load_actors(path: Path) -> list[Any]:
    """Actors from a YAML mapping shaped like a scenario's ``actors:``."""
    import yaml

    from approvalflow.model import Actor

    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of actor id -> fields")
    actors = []
    for actor_id, fields in data.items():
        fields = fields or {}
        actors.append(
            Actor(
                str(actor_id),
                fields.get("roles", []),
                name=fields.get("name"),
                department=fields.get("department"),
                teams=fields.get("teams"),
                recuse=fields.get("recuse", []),
            )
        )
    return actors


def run(options: argparse.Namespace) -> int:
    from approvalflow.clock import SystemClock
    from approvalflow.engine import NoticeDispatcher, TimerExecutor, WorkflowDefinition
    from approvalflow.model import InMemoryActorDirectory
    from approvalflow.stores import open_store

    actors = load_actors(options.actors) if options.actors else []
    store = open_store(options.store)
    # Only the services a worker uses: the timer executor and the notice dispatcher.
    clock = SystemClock()
    definition = WorkflowDefinition(plugins=options.plugin)
    dispatcher = NoticeDispatcher(definition, store, clock)
    timers = TimerExecutor.standalone(
        definition, store, clock, InMemoryActorDirectory(actors), dispatcher
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
            fired += len(timers.run_due(now))
            delivered += dispatcher.deliver_notices(now)
            if options.once:
                break
            time.sleep(_pause(store.next_due(), now, options.poll))
    finally:
        store.close()
    print(f"worker stopped: {fired} timers fired, {delivered} notices delivered", file=sys.stderr)
    return 0


def _pause(next_due: datetime | None, now: datetime, poll: float) -> float:
    if next_due is None:
        return poll
    return max(0.0, min(poll, (next_due - now) / timedelta(seconds=1)))

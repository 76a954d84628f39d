"""The writer of the crash test (``tests/test_crash.py``): run as a script, killed at random.

``python tests/crash_writer.py --store URL --log PATH --commands N`` runs the first ``N``
commands of ``build_commands(N)`` on an Engine over the store at ``URL``, each with its own
``command_id``. After a command returns it appends one JSON line to the log and syncs it
(flush + fsync): only such acknowledged commands count. Started again after a kill, it reads the
log (dropping a line the kill cut short), re-sends the last few acknowledged commands (their
results are logged as ``replay`` lines: the same command id must give the first result and write
nothing), then carries on from the first command not acknowledged (which the store may hold
already, if the kill came between its commit and its acknowledgement). A last line ``done``
says it finished.

The command list is deterministic (a seeded interleaving of many projects' lives), and so is the
clock (command ``i`` runs at ``MONDAY + i minutes``), so a serial run of the same list on a
``MemoryStore`` (``run_serially``) gives the states the crashed runs must end in.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

# As a script the tests directory is sys.path[0]; under pytest it is on sys.path too.
from builders import APPROVERS, MEMBER_UNITS, MONDAY, PROJECT_FIELDS, county_actors

from approvalflow import Engine, ManualClock
from approvalflow.errors import ApprovalflowError
from approvalflow.model import CommandResult

__all__ = [
    "Command",
    "build_commands",
    "moment",
    "outcome",
    "read_log",
    "run",
    "run_serially",
]

SEED = 20260302
REPLAY_BACK = 3  # acknowledged commands re-sent after each restart
ACTIVE_PROJECTS = 6  # projects in flight at once in the interleaving

Step = tuple[str, str, dict[str, Any]]


class Command(NamedTuple):
    index: int
    command_id: str
    command: str
    project: str
    by: str
    args: dict[str, Any]


def moment(index: int) -> datetime:
    """When command ``index`` runs: one minute after the one before."""
    return MONDAY + timedelta(minutes=index)


def _project_steps(number: int) -> list[Step]:
    """One project's life, varied by its number: a supplement round in pre-review, deficient
    acceptances supplied later, urges, funds, refused commands, a terminated project."""
    fields = {
        **PROJECT_FIELDS,
        "name": f"崩溃测试项目{number}",
        "investment": f"{1 + number % 9}亿",
    }
    steps: list[Step] = [
        ("create", "guo", fields),
        ("negotiate", "guo", {}),
        ("submit_pre_review", "guo", {"materials": ["business_license"]}),
    ]
    if number % 4 == 1:  # a round that asks for materials, then a second round
        steps.append(("opinion", "r_gxj", {"verdict": "supplement", "missing": ["site_photos"]}))
        steps += [("opinion", f"r_{u}", {"verdict": "pass"}) for u in MEMBER_UNITS[1:]]
        steps.append(("supply", "fuyuan", {"materials": ["site_photos"]}))
    steps.append(("urge", "huang", {"department": "fgw"}))
    steps += [("opinion", f"r_{u}", {"verdict": "pass"}) for u in MEMBER_UNITS]
    steps.append(("convene", "chair", {"present": ["chair", "m1", "m2", "m3"]}))
    steps += [("vote", member, {"vote": "approve"}) for member in ("chair", "m1", "m2")]
    steps.append(("close_meeting", "chair", {}))
    if number % 10 == 7:
        steps.append(("terminate", "huang", {"reason": "投资方退出"}))
        steps.append(("report_funds", "guo", {"amount": 1}))  # refused: the project has ended
        return steps
    steps.append(("sign", "guo", {"agreed_investment": f"{1 + number % 9}亿"}))
    steps.append(("report_funds", "guo", {"amount": 1_000_000 + number}))
    steps.append(("apply", "fuyuan", {}))
    if number % 6 == 2:
        steps.append(("approve", "o_fgw", {}))  # refused: not accepted yet
        steps.append(("report_funds", "guo", {"amount": 0}))  # refused: not more than zero
    deficient = {"zj": ["site_photos"], "yj": ["org_chart"]} if number % 2 == 0 else {}
    for dept in APPROVERS:
        args: dict[str, Any] = {"deficient": deficient[dept]} if dept in deficient else {}
        steps.append(("accept", f"o_{dept}", args))
    steps.append(("urge", "huang", {"department": "zj"}))
    steps.append(("report_funds", "guo", {"amount": "50万"}))
    steps += [("approve", f"o_{dept}", {}) for dept in APPROVERS]
    if deficient:
        steps.append(("supply", "fuyuan", {"materials": ["site_photos", "org_chart"]}))
    steps.append(("start_construction", "guo", {}))
    steps.append(("report_funds", "guo", {"amount": "2000万"}))
    if number % 3 == 0:
        steps += [("start_production", "fuyuan", {}), ("reach_target", "guo", {})]
    return steps


def build_commands(total: int, seed: int = SEED) -> list[Command]:
    """``total`` commands: projects' lives interleaved at random (seeded), each project's own
    commands in order, ``ACTIVE_PROJECTS`` projects in flight at once."""
    rng = random.Random(seed)
    commands: list[Command] = []
    active: list[tuple[str, Iterator[Step]]] = []
    number = 0
    while len(commands) < total:
        while len(active) < ACTIVE_PROJECTS:
            active.append((f"C{number:05d}", iter(_project_steps(number))))
            number += 1
        slot = rng.randrange(len(active))
        project, steps = active[slot]
        step = next(steps, None)
        if step is None:
            del active[slot]
            continue
        command, by, args = step
        index = len(commands)
        commands.append(Command(index, f"crash-{index:06d}", command, project, by, args))
    return commands


def outcome(command: Command, result: CommandResult | None, error: Exception | None) -> dict:
    """The log line of one command: the result it gave, or the error code it was refused with."""
    line: dict[str, Any] = {"i": command.index, "id": command.command_id}
    if error is not None:
        assert isinstance(error, ApprovalflowError)
        line["error"] = error.code
    else:
        assert result is not None
        line["v"] = result.version
        line["n"] = len(result.events)
        line["first"] = result.events[0].version if result.events else None
        line["replayed"] = result.replayed
    return line


def _execute(engine: Engine, clock: ManualClock, command: Command) -> dict:
    clock.set(max(clock.now(), moment(command.index)))
    try:
        result = engine.execute(
            command.command,
            command.project,
            command.by,
            command.args,
            command_id=command.command_id,
        )
    except ApprovalflowError as error:
        return outcome(command, None, error)
    return outcome(command, result, None)


def run_serially(commands: list[Command], engine: Engine, clock: ManualClock) -> list[dict]:
    """Run ``commands`` one after the other on ``engine``; return each one's log line."""
    return [_execute(engine, clock, command) for command in commands]


def read_log(path: Path, *, repair: bool = False) -> list[dict]:
    """Every complete line of the log. With ``repair``, a last line cut short by a kill is cut
    off the file, so the next line starts on a line of its own."""
    if not path.exists():
        return []
    data = path.read_bytes()
    complete = data[: data.rfind(b"\n") + 1]
    if repair and len(complete) != len(data):
        with path.open("r+b") as log:
            log.truncate(len(complete))
            os.fsync(log.fileno())
    return [json.loads(line) for line in complete.decode("utf-8").splitlines()]


def _append(log: Any, line: dict) -> None:
    log.write(json.dumps(line, ensure_ascii=False) + "\n")
    log.flush()
    os.fsync(log.fileno())


def run(url: str, log_path: Path, total: int) -> None:
    from approvalflow.stores import open_store

    commands = build_commands(total)
    acknowledged = [line for line in read_log(log_path, repair=True) if "i" in line]
    start = acknowledged[-1]["i"] + 1 if acknowledged else 0
    store = open_store(url, create=True)
    clock = ManualClock(moment(max(start - REPLAY_BACK, 0)))
    engine = Engine(actors=county_actors(), store=store, clock=clock)
    try:
        with log_path.open("a", encoding="utf-8") as log:
            for command in commands[max(start - REPLAY_BACK, 0) : start]:
                line = _execute(engine, clock, command)
                _append(log, {"replay": line})
            for command in commands[start:]:
                _append(log, _execute(engine, clock, command))
            _append(log, {"done": total})
    finally:
        store.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", required=True, help="store URL")
    parser.add_argument("--log", required=True, type=Path, help="the acknowledgement log")
    parser.add_argument("--commands", required=True, type=int, help="how many commands")
    options = parser.parse_args(argv)
    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    run(options.store, options.log, options.commands)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""approvalflow's own workloads for ``benchmarks/run.py``.

Each function runs one workload once and returns plain data (rates, seconds, counts and the
checks that prove the work was really done); ``run.py`` repeats them, takes medians and prints.
Only the public API drives the engine (``Engine``, ``Actor``, ``ManualClock``, the store
classes). Bulk loads for the large-store figures write rows straight into the stores' tables
(``approvalflow.stores.schema``), with project snapshots made by the engine itself and encoded
by ``approvalflow.stores.serialization``: the part that is timed always runs through the engine.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import resource
import sqlite3
import statistics
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

# -- set-up ------------------------------------------------------------------------------------


def quiet_logs() -> None:
    """structlog at WARNING, as the CLI does without --verbose (the engine logs per command)."""
    import structlog

    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )


quiet_logs()

from approvalflow import Actor, Engine, ManualClock  # noqa: E402
from approvalflow.calendar import SHANGHAI  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bulkload import (  # noqa: E402
    EVENT_INSERT_COLUMNS,
    SNAPSHOT_INSERT_COLUMNS,
    SUMMARY_INSERT_COLUMNS,
    batches,
    chained_copy,
    copied_snapshot,
    copy_rows,
)

MONDAY = datetime(2026, 3, 2, 9, 0, tzinfo=SHANGHAI)
MEMBER_UNITS = ("gxj", "fgw", "zrzy", "sthj")  # the built-in pre-review members
APPROVERS = ("fgw", "zrzy", "zj", "sthj", "yj")  # the built-in routing: five departments
TEAMS = tuple(f"team_{n:02d}" for n in range(20))


def county_actors() -> list[Actor]:
    actors = [
        Actor("guo", ["recruiter"], name="郭强"),  # serves every team
        Actor("fuyuan", ["applicant"], name="富远铝业"),
        Actor("huang", ["leader"], name="黄副县长"),
        Actor("chair", ["chair", "member"]),
        Actor("m1", ["member"]),
        Actor("m2", ["member"]),
        Actor("m3", ["member"]),
        Actor("m4", ["member"]),
    ]
    actors += [Actor(f"r_{unit}", ["reviewer"], department=unit) for unit in MEMBER_UNITS]
    actors += [Actor(f"o_{dept}", ["officer"], department=dept) for dept in APPROVERS]
    return actors


FIELDS: dict[str, Any] = {
    "name": "富远新型铝材产业园",
    "investment": "15亿",
    "industry": "light_alloy",
    "applicant": "fuyuan",
    "leader": "huang",
    "department": "gxj",
    "team": "light_alloy",
}

Step = tuple[str, str, dict[str, Any] | None]

# PA-5: the built-in workflow from create to approved with five departments.
PA5_STEPS: tuple[Step, ...] = (
    ("create", "guo", FIELDS),
    ("negotiate", "guo", None),
    ("submit_pre_review", "guo", {"materials": []}),
    *(("opinion", f"r_{unit}", {"verdict": "pass"}) for unit in MEMBER_UNITS),
    ("convene", "chair", {"present": ["chair", "m1", "m2", "m3"]}),
    *(("vote", member, {"vote": "approve"}) for member in ("chair", "m1", "m2")),
    ("close_meeting", "chair", None),
    ("sign", "guo", None),
    ("apply", "fuyuan", None),
    *(
        step
        for dept in APPROVERS
        for step in (("accept", f"o_{dept}", None), ("approve", f"o_{dept}", None))
    ),
)
PA5_COMMANDS = len(PA5_STEPS)  # 24
_TO_APPROVAL = PA5_STEPS[:14]  # create .. apply: the project waits in `approval`
_TO_PRE_REVIEW = PA5_STEPS[:3]  # create, negotiate, submit_pre_review


def new_engine(store: Any = None, *, start: datetime = MONDAY) -> tuple[Engine, ManualClock]:
    clock = ManualClock(start)
    return Engine(actors=county_actors(), store=store, clock=clock), clock


def run_steps(engine: Engine, project: str, steps: Iterable[Step]) -> str:
    state = ""
    for command, by, args in steps:
        state = engine.execute(command, project, by, args).state
    return state


def run_pa5(engine: Engine, project: str) -> bool:
    """One PA-5 instance; True when its last command left it ``approved``."""
    state = ""
    execute = engine.execute
    for command, by, args in PA5_STEPS:
        state = execute(command, project, by, args).state
    return state == "approved"


def _stages(engine: Engine, ids: Iterable[str]) -> list[str]:
    return [engine.project(pid).stage for pid in ids]


def pa5_shape() -> dict[str, int]:
    """What one PA-5 instance does: commands, events, commands with notices (each of which
    costs the durable stores a second, small transaction to mark the notices delivered)."""
    engine, _ = new_engine()
    with_notices = events = 0
    for command, by, args in PA5_STEPS:
        result = engine.execute(command, "SHAPE", by, args)
        events += len(result.events)
        with_notices += bool(result.notices)
    return {"commands": PA5_COMMANDS, "events": events, "commands_with_notices": with_notices}


# -- PA-5 in one process -----------------------------------------------------------------------


def pa5_batch(engine: Engine, prefix: str, n: int) -> dict[str, Any]:
    """Run ``n`` PA-5 instances (plus one untimed warm-up) and check each ended ``approved``."""
    run_pa5(engine, f"{prefix}-warm")
    ids = [f"{prefix}-{i}" for i in range(n)]
    finished = 0
    start = time.perf_counter()
    for pid in ids:
        finished += run_pa5(engine, pid)
    elapsed = time.perf_counter() - start
    stored = sum(stage == "approved" for stage in _stages(engine, ids))
    return {
        "instances": n,
        "finished": min(finished, stored),
        "seconds": elapsed,
        "inst_per_s": n / elapsed,
        "cmd_per_s": n * PA5_COMMANDS / elapsed,
    }


def pa5_memory(n: int, tag: str) -> dict[str, Any]:
    engine, _ = new_engine()
    return pa5_batch(engine, f"M{tag}", n)


def pa5_sqlite(directory: str, synchronous: str, n: int, tag: str) -> dict[str, Any]:
    from approvalflow.stores.sqlite import SQLiteStore

    path = os.path.join(directory, f"pa5_{synchronous.lower()}_{tag}.db")
    store = SQLiteStore(path, synchronous=synchronous)  # type: ignore[arg-type]
    try:
        engine, _ = new_engine(store)
        return pa5_batch(engine, f"S{tag}", n)
    finally:
        store.close()
        _remove_db(path)


_RAW_PAYLOAD = '{"department":"fgw","from":"pending","to":"accepted","trigger":"accept"}' * 2


def raw_sqlite(directory: str, synchronous: str, n: int, tag: str) -> dict[str, Any]:
    """The floor: a plain table in WAL, one ``BEGIN IMMEDIATE; INSERT; COMMIT`` per row."""
    path = os.path.join(directory, f"raw_{synchronous.lower()}_{tag}.db")
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        connection.execute("PRAGMA journal_mode = WAL")
        connection.execute(f"PRAGMA synchronous = {synchronous}")
        connection.execute("CREATE TABLE rows (id INTEGER PRIMARY KEY, payload TEXT NOT NULL)")
        execute = connection.execute
        for _ in range(10):  # warm-up
            execute("BEGIN IMMEDIATE")
            execute("INSERT INTO rows (payload) VALUES (?)", (_RAW_PAYLOAD,))
            execute("COMMIT")
        start = time.perf_counter()
        for _ in range(n):
            execute("BEGIN IMMEDIATE")
            execute("INSERT INTO rows (payload) VALUES (?)", (_RAW_PAYLOAD,))
            execute("COMMIT")
        elapsed = time.perf_counter() - start
        count = connection.execute("SELECT count(*) FROM rows").fetchone()[0]
    finally:
        connection.close()
        _remove_db(path)
    assert count == n + 10, count
    return {"commits": n, "seconds": elapsed, "commit_per_s": n / elapsed}


def _remove_db(path: str) -> None:
    for suffix in ("", "-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.remove(path + suffix)


# -- PA-5 and raw commits on PostgreSQL, in N processes ----------------------------------------


def with_application_name(url: str, name: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}application_name={name}"


def pg_worker(url: str, inbox: Any, outbox: Any) -> None:
    """A long-lived process for the PostgreSQL measurements (spawned once, reused).

    For each task ``(kind, schema, name, n)`` it connects (``kind`` "pa5": a PostgresStore and
    an engine; "raw": a bare psycopg connection), warms up, says ``ready``, waits for ``go``,
    does the work timed with its own clock and CPU, sends the result, waits for ``release``
    (so the parent can read its backend's CPU first), and disconnects. ``None`` ends it.
    """
    quiet_logs()
    while True:
        task = inbox.get()
        if task is None:
            return
        kind, schema, name, n = task
        store = connection = None
        try:
            conninfo = with_application_name(url, name)
            if kind == "pa5":
                from approvalflow.stores.postgres import PostgresStore

                store = PostgresStore.from_url(conninfo, schema=schema)
                engine, _ = new_engine(store)
                run_pa5(engine, f"{name}-warm")
            else:
                import psycopg

                connection = psycopg.connect(conninfo)
                connection.execute("SELECT set_config('search_path', %s, false)", (schema,))
                connection.commit()
                for _ in range(10):
                    connection.execute(_RAW_INSERT, (_RAW_PAYLOAD,))
                    connection.commit()
            outbox.put(("ready", name, None))
            assert inbox.get() == "go"
            usage = resource.getrusage(resource.RUSAGE_SELF)
            start = time.monotonic()
            if kind == "pa5":
                done = sum(run_pa5(engine, f"{name}-{i}") for i in range(n))
            else:
                assert connection is not None
                for _ in range(n):
                    connection.execute(_RAW_INSERT, (_RAW_PAYLOAD,))
                    connection.commit()
                done = n
            end = time.monotonic()
            after = resource.getrusage(resource.RUSAGE_SELF)
            finished = done
            if kind == "pa5":
                ids = (f"{name}-{i}" for i in range(n))
                finished = min(done, sum(stage == "approved" for stage in _stages(engine, ids)))
            cpu = (after.ru_utime - usage.ru_utime) + (after.ru_stime - usage.ru_stime)
            result = {
                "name": name,
                "start": start,
                "end": end,
                "cpu_s": cpu,
                "units": n,
                "finished": finished,
            }
            outbox.put(("result", name, result))
            assert inbox.get() == "release"
        except BaseException:
            outbox.put(("error", name, traceback.format_exc()))
            return
        finally:
            if store is not None:
                store.close()
            if connection is not None:
                connection.close()


_RAW_INSERT = "INSERT INTO raw_commits (payload) VALUES (%s)"


class PgWorkers:
    """``size`` spawned ``pg_worker`` processes, each with its own inbox."""

    def __init__(self, url: str, size: int) -> None:
        import multiprocessing

        ctx = multiprocessing.get_context("spawn")
        self.url = url
        self.outbox = ctx.Queue()
        self.inboxes = [ctx.Queue() for _ in range(size)]
        self.processes = [
            ctx.Process(target=pg_worker, args=(url, inbox, self.outbox), daemon=True)
            for inbox in self.inboxes
        ]
        for process in self.processes:
            process.start()

    def _collect(self, expected: str, count: int) -> list[Any]:
        found = []
        for _ in range(count):
            what, name, payload = self.outbox.get(timeout=600)
            if what == "error":
                raise RuntimeError(f"PostgreSQL worker {name} failed:\n{payload}")
            assert what == expected, (what, expected)
            found.append(payload)
        return found

    def run(self, kind: str, schema: str, processes: int, n: int, tag: str) -> dict[str, Any]:
        """``processes`` of the workers do ``n`` units each, started together; the rate is
        their total work over the wall time from the first start to the last end. CPU: the
        workers' own (getrusage), their PostgreSQL backends' (psutil or /proc) and the whole
        machine's (/proc/stat), in percent of one core (the machine has ``os.cpu_count()``)."""
        import psycopg

        inboxes = self.inboxes[:processes]
        names = [f"bench_{kind}_{tag}_{i}" for i in range(processes)]
        for inbox, name in zip(inboxes, names, strict=True):
            inbox.put((kind, schema, name, n))
        self._collect("ready", processes)
        with psycopg.connect(self.url, autocommit=True) as monitor:
            pids = [
                row[0]
                for row in monitor.execute(
                    "SELECT pid FROM pg_stat_activity WHERE application_name = ANY(%s)", (names,)
                ).fetchall()
            ]
        server_before = [_proc_cpu_seconds(pid) for pid in pids]
        machine_before = _machine_cpu()
        wall_start = time.monotonic()
        for inbox in inboxes:
            inbox.put("go")
        reports = self._collect("result", processes)
        wall = time.monotonic() - wall_start
        server_after = [_proc_cpu_seconds(pid) for pid in pids]
        machine_after = _machine_cpu()
        for inbox in inboxes:
            inbox.put("release")
        elapsed = max(r["end"] for r in reports) - min(r["start"] for r in reports)
        units = sum(r["units"] for r in reports)
        server = None
        if pids and None not in server_before and None not in server_after:
            server = sum(
                a - b  # type: ignore[operator]
                for a, b in zip(server_after, server_before, strict=True)
            )
        machine_pct = None
        if machine_before and machine_after:
            busy = machine_after[0] - machine_before[0]
            total = machine_after[1] - machine_before[1]
            machine_pct = 100.0 * busy / total * (os.cpu_count() or 1) if total else None
        per_unit = PA5_COMMANDS if kind == "pa5" else 1
        return {
            "processes": processes,
            "units": units,
            "finished": sum(r["finished"] for r in reports),
            "seconds": elapsed,
            "rate": units * per_unit / elapsed,
            "clients_cpu_pct": 100.0 * sum(r["cpu_s"] for r in reports) / elapsed,
            "server_cpu_pct": 100.0 * server / wall if server is not None else None,
            "machine_cpu_pct": machine_pct,
            "backends_found": len(pids),
        }

    def close(self) -> None:
        for inbox in self.inboxes:
            inbox.put(None)
        for process in self.processes:
            process.join(30)
            if process.is_alive():
                process.kill()


def _proc_cpu_seconds(pid: int) -> float | None:
    try:
        import psutil

        times = psutil.Process(pid).cpu_times()
        return float(times.user + times.system)
    except ImportError:
        pass
    except Exception:
        return None
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def _machine_cpu() -> tuple[float, float] | None:
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    try:
        with open("/proc/stat") as handle:
            values = [int(v) for v in handle.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    return float(sum(values) - idle), float(sum(values))


def pg_setup(url: str, schema: str) -> Any:
    from approvalflow.stores.postgres import PostgresStore

    store = PostgresStore.from_url(url, schema=schema)
    import psycopg

    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute("SELECT set_config('search_path', %s, false)", (schema,))
        connection.execute(
            "CREATE TABLE IF NOT EXISTS raw_commits "
            "(id BIGSERIAL PRIMARY KEY, payload TEXT NOT NULL)"
        )
    return store


def pg_server_settings(url: str) -> dict[str, str]:
    import psycopg

    with psycopg.connect(url, autocommit=True) as connection:
        found = {"version": connection.execute("SHOW server_version").fetchone()[0]}
        for name in ("synchronous_commit", "fsync", "wal_sync_method", "shared_buffers"):
            found[name] = connection.execute(f"SHOW {name}").fetchone()[0]
    return found


# -- memory per live project -------------------------------------------------------------------


def live_project_memory(n: int, method: str) -> dict[str, Any]:
    """Memory held by ``n`` projects waiting in ``approval`` in a MemoryStore, per project.

    ``method`` "tracemalloc": traced bytes after minus before; "rss": the resident set's
    growth (run without tracemalloc). Run each in a fresh process. (Per-line attribution from
    tracemalloc is misleading here: blocks reused from CPython's dict free lists keep the site
    that first allocated them, e.g. structlog's per-command ``bind``.)
    """
    import tracemalloc

    engine, _ = new_engine()
    run_steps(engine, "WARM", _TO_APPROVAL)  # first-use caches (calendar years...) go first
    gc.collect()
    if method == "tracemalloc":
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
    else:
        before = _rss_bytes()
    ids = [f"L{i}" for i in range(n)]
    for pid in ids:
        run_steps(engine, pid, _TO_APPROVAL)
    gc.collect()
    after = tracemalloc.get_traced_memory()[0] if method == "tracemalloc" else _rss_bytes()
    if method == "tracemalloc":
        tracemalloc.stop()
    waiting = sum(stage == "approval" for stage in _stages(engine, ids))
    events = sum(len(engine.history(pid)) for pid in ids[:10]) / min(n, 10)
    return {
        "method": method,
        "projects": n,
        "finished": waiting,
        "events_per_project": events,
        "kib_per_project": (after - before) / n / 1024,
    }


def _rss_bytes() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _short(filename: str) -> str:
    marker = os.sep + "site-packages" + os.sep
    if marker in filename:
        return filename.split(marker, 1)[1]
    for root in ("src" + os.sep, "lib" + os.sep + "python"):
        if root in filename:
            return filename.split(root, 1)[1]
    return os.path.basename(filename)


def run_in_subprocess(function: Callable[..., Any], *args: Any) -> Any:
    """Run a workload in a fresh spawned process (clean heap) and return its result."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(1) as pool:
        return pool.apply(function, args)


def start_in_subprocess(function: Callable[..., Any], *args: Any) -> Any:
    """Like ``run_in_subprocess`` but returns an AsyncResult (``.get()``) and the pool."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    pool = ctx.Pool(1)
    result = pool.apply_async(function, args)
    pool.close()
    return pool, result


# -- the cost of history -----------------------------------------------------------------------

URGE: Step = ("urge", "huang", {"department": "gxj"})


def _grow(engine: Engine, project: str, events: int) -> None:
    """Drive ``project`` to pre-review, then urge until it has exactly ``events`` events."""
    run_steps(engine, project, _TO_PRE_REVIEW)
    version = engine.project(project).version
    command, by, args = URGE
    while version < events:
        version = engine.execute(command, project, by, args).version
    assert version == events, version


def history_cost(
    store_kind: str, directory: str, big: int, small: int, batch: int, rounds: int
) -> dict[str, Any]:
    """The time of one ``urge`` on a project with ``big`` events over the time on projects
    with ``small`` events (medians of single commands). Every small project takes one timed
    urge at exactly ``small`` events (``batch`` fresh projects per round); the big one takes
    one after each of them (so it grows by ``batch * rounds``)."""
    from approvalflow.stores.sqlite import SQLiteStore

    path = os.path.join(directory, "history.db")

    def open_store(synchronous: str) -> Any:
        if store_kind == "memory":
            return None
        return SQLiteStore(path, synchronous=synchronous)  # type: ignore[arg-type]

    # Build (untimed; SQLite with synchronous=OFF to save minutes of fsyncs), then measure
    # with the store's default durability (FULL).
    builder_store = open_store("OFF")
    engine, _ = new_engine(builder_store)
    build_start = time.perf_counter()
    _grow(engine, "BIG", big)
    small_ids = [[f"SMALL-{r}-{i}" for i in range(batch)] for r in range(rounds)]
    for ids in small_ids:
        for pid in ids:
            _grow(engine, pid, small)
    build = time.perf_counter() - build_start
    if store_kind == "sqlite":
        builder_store.close()
        engine, _ = new_engine(open_store("FULL"))
    command, by, args = URGE
    execute = engine.execute
    for pid in ("BIG", *(pid for ids in small_ids for pid in ids)):
        engine.project(pid)  # warm the page cache for every project alike (a read, no event)
    for _ in range(5):  # warm-up on the big project
        execute(command, "BIG", by, args)
    small_us: list[float] = []
    big_us: list[float] = []
    clock = time.perf_counter
    # Interleaved one by one (small, big, big, small, ...), each command timed alone, so both
    # sides see the same cache and disk state and a GC pause or a slow fsync is one outlier
    # on one side, which the median ignores.
    for round_, ids in enumerate(small_ids):
        for i, pid in enumerate(ids):
            order = (pid, "BIG") if (round_ + i) % 2 == 0 else ("BIG", pid)
            for target in order:
                start = clock()
                execute(command, target, by, args)
                elapsed = (clock() - start) * 1e6
                (big_us if target == "BIG" else small_us).append(elapsed)
    big_version = engine.project("BIG").version
    small_versions = {engine.project(pid).version for ids in small_ids for pid in ids}
    if store_kind == "sqlite":
        engine.store.close()
        _remove_db(path)
    assert small_versions == {small + 1}, small_versions
    return {
        "store": store_kind,
        "big_events": big,
        "big_events_at_end": big_version,
        "small_events": small,
        "small_us": statistics.median(small_us),
        "big_us": statistics.median(big_us),
        "ratio": statistics.median(big_us) / statistics.median(small_us),
        "small_mean_us": statistics.fmean(small_us),
        "big_mean_us": statistics.fmean(big_us),
        "ratio_of_means": statistics.fmean(big_us) / statistics.fmean(small_us),
        "samples": len(small_us),
        "build_s": build,
        "finished": big_version == big + 5 + batch * rounds,
    }


# -- firing due timers among many --------------------------------------------------------------


def supply_deadline_template() -> tuple[Any, datetime, dict[tuple[str, str], datetime], Any]:
    """A project in ``approval`` whose sthj branch is ``conditional`` (approved with
    site_photos missing) and already reminded: its one timer is the supply deadline, whose
    firing revokes the branch. The other four branches are approved. Also its events."""
    engine, clock = new_engine()
    pid = "TPLPROJECT"
    run_steps(engine, pid, _TO_APPROVAL)
    engine.execute("accept", pid, "o_sthj", {"deficient": ["site_photos"]})
    engine.execute("approve", pid, "o_sthj")
    for dept in APPROVERS:
        if dept != "sthj":
            engine.execute("accept", pid, f"o_{dept}")
            engine.execute("approve", pid, f"o_{dept}")
    branch = engine.project(pid).branches["sthj"]
    assert branch.state == "conditional" and branch.reminder_due and branch.supply_due
    fired = engine.run_due(branch.reminder_due)
    assert [r.command for r in fired] == ["timer:supply_reminder"], fired
    clock.set(branch.reminder_due)
    state = engine.project(pid)
    timers = engine.timers_for(state)
    assert list(timers) == [("supply_deadline", "sthj")], timers
    return state, branch.supply_due, timers, engine.store.events(pid)


def waiting_template(start: datetime) -> tuple[Any, dict[tuple[str, str], datetime], Any]:
    """A project created at ``start`` that waits in ``approval`` on its five departments:
    its state, the timers it derives (their time limits) and its events."""
    engine, _ = new_engine(start=start)
    pid = "TPLPROJECT"
    run_steps(engine, pid, _TO_APPROVAL)
    state = engine.project(pid)
    return state, engine.timers_for(state), engine.store.events(pid)


class RunDueStore:
    """The rows of the run_due store, built copy by copy: ``due`` copies of the supply-deadline
    template (one due timer each) and copies of a project waiting on its five departments,
    created a month later (their time limits all in the future), about ``total`` timers in all.
    Every copy has its events, chained, its snapshot with its digest and its summary row, so the
    store verifies (``audit verify``) as one the engine wrote."""

    def __init__(self, total: int, due: int) -> None:
        from approvalflow.readmodels import REPORTS
        from approvalflow.stores.projections import summary_row
        from approvalflow.stores.serialization import format_datetime, state_to_json, to_epoch_us

        state, supply_due, timers, events = supply_deadline_template()
        self.supply_due = supply_due
        filler, filler_timers, filler_events = waiting_template(supply_due + timedelta(days=30))
        self.kinds: list[tuple[Any, ...]] = []
        for template, template_timers, template_events, prefix in (
            (state, timers, events, "D"),
            (filler, filler_timers, filler_events, "F"),
        ):
            text = state_to_json(template)
            assert text.count('"TPLPROJECT"') == 1, text.count('"TPLPROJECT"')
            assert all("TPLPROJECT" not in str(e.payload) for e in template_events)
            timer_rows = [
                (kind, branch, to_epoch_us(at), format_datetime(at))
                for (kind, branch), at in template_timers.items()
            ]
            summary = summary_row("TPLPROJECT", REPORTS.projection(template).summary)
            self.kinds.append(
                (prefix, template.version, text, template_events, timer_rows, summary)
            )
        fillers = max(total - due * len(timers), 0)
        per_filler = len(filler_timers)
        self.counts = {"D": due, "F": (fillers + per_filler - 1) // per_filler}
        self.scheduled = due * len(timers) + self.counts["F"] * per_filler
        self.version = state.version

    def copies(
        self,
    ) -> Iterable[tuple[str, list[Any], tuple[Any, ...], list[Any], tuple[Any, ...]]]:
        """Each copy's (project, event rows, snapshot row, timer rows, summary row)."""
        for prefix, version, text, events, timer_rows, summary in self.kinds:
            for i in range(self.counts[prefix]):
                pid = f"{prefix}{i:07d}"
                rows, head = chained_copy(events, pid)
                snapshot = copied_snapshot(
                    pid, version, text.replace('"TPLPROJECT"', f'"{pid}"'), head
                )
                yield (
                    pid,
                    rows,
                    snapshot,
                    [(pid, *timer) for timer in timer_rows],
                    (pid, *summary[1:]),
                )


def load_run_due_sqlite(path: str, total: int, due: int) -> RunDueStore:
    """Bulk-load the run_due store into the SQLite file ``path`` (its schema made already)."""
    from approvalflow.stores.projections import ProjectionSQL

    rows = RunDueStore(total, due)
    summaries = ProjectionSQL("sqlite")
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        connection.execute("PRAGMA synchronous = OFF")
        connection.execute("BEGIN")
        for pid, events, snapshot, timers, summary in rows.copies():
            connection.execute(
                "INSERT INTO projects (project, version) VALUES (?, ?)", (pid, len(events))
            )
            connection.executemany(
                f"INSERT INTO {EVENT_INSERT_COLUMNS} VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", events
            )
            connection.execute(
                f"INSERT INTO {SNAPSHOT_INSERT_COLUMNS} VALUES (?, ?, ?, ?)", snapshot
            )
            connection.executemany(
                "INSERT INTO timers (project, kind, branch, due_us, due_at) VALUES (?, ?, ?, ?, ?)",
                timers,
            )
            connection.execute(summaries.upsert_summary, summaries.summary_params(summary))
        connection.execute("COMMIT")
        connection.execute("ANALYZE")
    finally:
        connection.close()
    return rows


def _check_fired(results: Sequence[Any], due: int) -> int:
    revoked = 0
    for result in results:
        revoked += any(
            e.type == "branch_changed" and e.payload.get("to") == "revoked" for e in result.events
        )
    return revoked if len(results) == due else min(revoked, len(results))


def run_due_sqlite(directory: str, total: int, due: int) -> dict[str, Any]:
    from approvalflow.stores.sqlite import SQLiteStore

    path = os.path.join(directory, "run_due.db")
    SQLiteStore(path).close()  # the schema
    load_start = time.perf_counter()
    loaded = load_run_due_sqlite(path, total, due)
    load = time.perf_counter() - load_start
    now = loaded.supply_due + timedelta(minutes=1)
    # The disk's commit rate right now, for reading the figure (each firing is two commits:
    # the firing's and the one marking its notice delivered; fsync latency here varies a lot).
    raw = raw_sqlite(directory, "FULL", 300, "due")
    store = SQLiteStore(path)  # synchronous=FULL, the default
    try:
        engine, _ = new_engine(store, start=now)
        gc.collect()
        start = time.perf_counter()
        results = engine.run_due(now)
        elapsed = time.perf_counter() - start
        revoked = _check_fired(results, due)
    finally:
        store.close()
    connection = sqlite3.connect(path)
    try:
        remaining = connection.execute("SELECT count(*) FROM timers").fetchone()[0]
    finally:
        connection.close()
        _remove_db(path)
    return {
        "store": "sqlite FULL",
        "scheduled": loaded.scheduled,
        "due": due,
        "fired": len(results),
        "finished": revoked,
        "remaining_timers": remaining,
        "load_s": load,
        "seconds": elapsed,
        "raw_full_commit_per_s_before": raw["commit_per_s"],
    }


def run_due_postgres(url: str, schema: str, total: int, due: int) -> dict[str, Any]:
    import psycopg

    from approvalflow.stores.postgres import PostgresStore

    store = PostgresStore.from_url(url, schema=schema)
    try:
        load_start = time.perf_counter()
        loaded = RunDueStore(total, due)
        with psycopg.connect(url) as connection:
            connection.execute("SELECT set_config('search_path', %s, false)", (schema,))
            with connection.cursor() as cursor:
                for copies in batches(loaded.copies(), 5000):
                    copy_rows(
                        cursor, "projects (project, version)", [(c[0], len(c[1])) for c in copies]
                    )
                    copy_rows(cursor, EVENT_INSERT_COLUMNS, [row for c in copies for row in c[1]])
                    copy_rows(cursor, SNAPSHOT_INSERT_COLUMNS, [c[2] for c in copies])
                    copy_rows(
                        cursor,
                        "timers (project, kind, branch, due_us, due_at)",
                        [row for c in copies for row in c[3]],
                    )
                    copy_rows(cursor, SUMMARY_INSERT_COLUMNS, [c[4] for c in copies])
            connection.commit()
            connection.autocommit = True
            connection.execute("ANALYZE")
        load = time.perf_counter() - load_start
        now = loaded.supply_due + timedelta(minutes=1)
        engine, _ = new_engine(store, start=now)
        gc.collect()
        start = time.perf_counter()
        results = engine.run_due(now)
        elapsed = time.perf_counter() - start
        revoked = _check_fired(results, due)
        with psycopg.connect(url) as connection:
            connection.execute("SELECT set_config('search_path', %s, false)", (schema,))
            remaining = connection.execute("SELECT count(*) FROM timers").fetchone()[0]
    finally:
        store.drop()
    return {
        "store": "postgresql",
        "scheduled": loaded.scheduled,
        "due": due,
        "fired": len(results),
        "finished": revoked,
        "remaining_timers": remaining,
        "load_s": load,
        "seconds": elapsed,
    }


# -- reports over many projects ----------------------------------------------------------------


def report_templates() -> list[tuple[Any, Any, dict[tuple[str, str], datetime]]]:
    """Project states at several stages, started in different months, with time passing
    between phases so stage and department durations are not all zero; each with its
    events and its timers."""
    templates = []
    day = timedelta(days=1)
    for month in range(1, 7):
        start = datetime(2026, month, 5, 9, 0, tzinfo=SHANGHAI)
        for variant in ("production", "approved", "signed", "pre_review"):
            engine, clock = new_engine(start=start)
            pid = "TPLPROJECT"
            run_steps(engine, pid, PA5_STEPS[:3])
            if variant != "pre_review":
                clock.advance(2 * day)
                run_steps(engine, pid, PA5_STEPS[3:7])
                clock.advance(5 * day)
                run_steps(engine, pid, PA5_STEPS[7:13])
                engine.execute("report_funds", pid, "guo", {"amount": "2亿"})
            if variant in ("production", "approved"):
                clock.advance(3 * day)
                run_steps(engine, pid, PA5_STEPS[13:14])
                clock.advance(4 * day)
                run_steps(engine, pid, PA5_STEPS[14:])
            if variant == "production":
                clock.advance(10 * day)
                engine.execute("start_construction", pid, "guo")
                clock.advance(30 * day)
                engine.execute("start_production", pid, "guo")
            state = engine.project(pid)
            templates.append((state, engine.store.events(pid), engine.timers_for(state)))
    return templates


def load_report_sqlite(path: str, projects: int) -> dict[str, Any]:
    """Bulk-load ``projects`` copies of the report templates into the SQLite file ``path`` (its
    schema made already): each copy's events chained and its snapshot with its digest
    (``approvalflow.stores.audit``), and the report tables' rows of each template (what the
    store's commits would have written), with the project id and team of each copy. The store
    verifies (``audit verify``) as one the engine wrote."""
    from approvalflow.readmodels import REPORTS
    from approvalflow.stores.projections import (
        CountsRow,
        ProjectionSQL,
        added_counts,
        interval_rows,
        summary_row,
    )
    from approvalflow.stores.serialization import format_datetime, state_to_json, to_epoch_us

    templates = report_templates()
    texts = []
    projected = []
    timer_rows = []
    for state, events, timers in templates:
        timer_rows.append(
            [
                (kind, branch, to_epoch_us(at), format_datetime(at))
                for (kind, branch), at in timers.items()
            ]
        )
        text = state_to_json(state)
        assert text.count('"TPLPROJECT"') == 1 and text.count('"team":"light_alloy"') == 1
        assert all("TPLPROJECT" not in str(e.payload) for e in events)
        texts.append((state.version, text, events))
        projection = REPORTS.projection(state)
        projected.append(
            (
                summary_row(state.id, projection.summary),
                interval_rows(REPORTS, state.id, projection),
                REPORTS.state_milestone_rows(state),
                projection.counts,
            )
        )
    states = [state for state, _, _ in templates]
    counts: dict[tuple[str, str], CountsRow] = {}
    sql = ProjectionSQL("sqlite")
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        connection.execute("PRAGMA synchronous = OFF")
        connection.execute("BEGIN")
        for i in range(projects):
            version, text, events = texts[i % len(texts)]
            pid = f"R{i:07d}"
            team = TEAMS[i % len(TEAMS)]
            text = text.replace('"TPLPROJECT"', f'"{pid}"').replace(
                '"team":"light_alloy"', f'"team":"{team}"'
            )
            rows, head = chained_copy(events, pid, team)
            connection.execute(
                "INSERT INTO projects (project, version) VALUES (?, ?)", (pid, version)
            )
            connection.executemany(
                f"INSERT INTO {EVENT_INSERT_COLUMNS} VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows
            )
            connection.execute(
                f"INSERT INTO {SNAPSHOT_INSERT_COLUMNS} VALUES (?, ?, ?, ?)",
                copied_snapshot(pid, version, text, head),
            )
            connection.executemany(
                "INSERT INTO timers (project, kind, branch, due_us, due_at) VALUES (?, ?, ?, ?, ?)",
                [(pid, *timer) for timer in timer_rows[i % len(timer_rows)]],
            )
            summary, intervals, milestones, own = projected[i % len(projected)]
            assert own is not None
            key = (team, own[1])
            counts[key] = added_counts(counts.get(key), (team, *own[1:]))
            connection.execute(sql.upsert_summary, (pid, team, *summary[2:]))
            connection.executemany(
                sql.upsert_interval, [(pid, k, n, team, a, b) for _, k, n, _, a, b in intervals]
            )
            connection.executemany(
                sql.insert_milestone, [(pid, m, team, *rest) for _, m, _, *rest in milestones]
            )
        connection.executemany(sql.add_counts, [sql.counts_params(r) for r in counts.values()])
        connection.execute("COMMIT")
        connection.execute("ANALYZE")
        db_bytes = connection.execute(
            "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()"
        ).fetchone()[0]
    finally:
        connection.close()
    return {"states": states, "texts": [t for _, t, _ in texts], "db_bytes": db_bytes}


def report_sqlite(directory: str, projects: int, month: str, repeats: int) -> dict[str, Any]:
    from approvalflow.stores.sqlite import SQLiteStore

    path = os.path.join(directory, "report.db")
    SQLiteStore(path).close()
    load_start = time.perf_counter()
    loaded = load_report_sqlite(path, projects)
    templates, texts, db_bytes = loaded["states"], loaded["texts"], loaded["db_bytes"]
    signed_templates = sum("signed" in s.milestones for s in templates)
    load = time.perf_counter() - load_start
    store = SQLiteStore(path)
    try:
        engine, _ = new_engine(store)
        metrics_s: list[float] = []
        board_s: list[float] = []
        for _ in range(repeats):
            gc.collect()
            start = time.perf_counter()
            metrics = engine.metrics()
            metrics_s.append(time.perf_counter() - start)
            start = time.perf_counter()
            board = engine.leaderboard(month)
            board_s.append(time.perf_counter() - start)
    finally:
        store.close()
        _remove_db(path)
    full_cycles, rest = divmod(projects, len(texts))
    expected_signed = full_cycles * signed_templates + sum(
        "signed" in s.milestones for s in templates[:rest]
    )
    return {
        "store": "sqlite",
        "projects": projects,
        "db_mib": db_bytes / 2**20,
        "snapshot_bytes_avg": sum(len(t) for t in texts) / len(texts),
        "load_s": load,
        "metrics_s": statistics.median(metrics_s),
        "leaderboard_s": statistics.median(board_s),
        "seconds": statistics.median(metrics_s) + statistics.median(board_s),
        "samples_metrics_s": metrics_s,
        "samples_leaderboard_s": board_s,
        "signed_count": metrics["signed_count"],
        "expected_signed": expected_signed,
        "leaderboard_teams": len(board),
        "finished": metrics["signed_count"] == expected_signed and len(board) > 0,
    }


# -- import ------------------------------------------------------------------------------------


def import_ms(repeats: int, directory: str) -> dict[str, Any]:
    """``import approvalflow`` timed inside a fresh interpreter, ``repeats`` times.

    ``ms``: with every module's bytecode cached, as after a normal install (a private
    ``PYTHONPYCACHEPREFIX`` filled by one untimed import first, so the work tree is not
    touched). ``env_ms``: in the environment as it is; where ``PYTHONDONTWRITEBYTECODE`` is set
    and the source tree has no ``__pycache__``, approvalflow compiles from source each time.
    """
    code = (
        "import time; t = time.perf_counter(); import approvalflow; "
        "print((time.perf_counter() - t) * 1000)"
    )
    cached = dict(os.environ, PYTHONPYCACHEPREFIX=os.path.join(directory, "pycache"))
    cached.pop("PYTHONDONTWRITEBYTECODE", None)

    def once(env: dict[str, str]) -> float:
        out = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            cwd="/",
            env=env,
        )
        return float(out.stdout.strip())

    once(cached)  # fills the bytecode cache
    samples = [once(cached) for _ in range(repeats)]
    env_samples = [once(dict(os.environ)) for _ in range(repeats)]
    startup = []
    for _ in range(min(repeats, 3)):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True, cwd="/", env=cached)
        startup.append((time.perf_counter() - start) * 1000)
    return {
        "ms": statistics.median(samples),
        "samples_ms": samples,
        "env_ms": statistics.median(env_samples),
        "env_samples_ms": env_samples,
        "env_dont_write_bytecode": os.environ.get("PYTHONDONTWRITEBYTECODE"),
        "interpreter_startup_ms": statistics.median(startup),
    }

"""The stateful property test of ``test_properties.py`` on the SQLite store.

The same random actors, commands, arguments and clock jumps, with the same invariants after every
step (a refused command changes nothing, each state is the fold of its history, timers fall at
the end of working days, points add up), but each example's county keeps its projects in a fresh
SQLite file (WAL, ``synchronous=NORMAL``: durability is not what is tested here). So every step
also goes through the store's encoding of events, its snapshots and how ``load`` reads them back,
its timers (``run_due`` claims them) and its command records. Fewer examples than on the memory
store: each step costs a few transactions.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from builders import County
from hypothesis import settings
from test_properties import EngineMachine

from approvalflow.stores.sqlite import SQLiteStore


class SQLiteEngineMachine(EngineMachine):
    """``EngineMachine`` whose county stores everything in an SQLite file of its own, removed
    when the example ends."""

    def make_county(self, **options: Any) -> County:
        self.directory = Path(tempfile.mkdtemp(prefix="approvalflow-properties-"))
        self.store = SQLiteStore(self.directory / "county.db", synchronous="NORMAL")
        return super().make_county(store=self.store, **options)

    def teardown(self) -> None:
        self.store.close()
        shutil.rmtree(self.directory, ignore_errors=True)


TestEnginePropertiesOnSQLite = SQLiteEngineMachine.TestCase
TestEnginePropertiesOnSQLite.settings = settings(
    settings.get_profile(settings._current_profile or "default"),
    max_examples=20,
    stateful_step_count=200,
)

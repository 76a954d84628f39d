"""The memory store passes the store conformance suite (it is the reference backend)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from approvalflow.stores import MemoryStore, Store
from approvalflow.testing.store_conformance import StoreConformance


class TestMemoryStore(StoreConformance):
    """Every conformance test, against ``MemoryStore``."""

    @pytest.fixture
    def store(self) -> Iterator[Store]:
        store = MemoryStore()
        yield store
        store.close()

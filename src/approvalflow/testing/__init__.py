"""Helpers for testing code built on approvalflow, shipped with the package.

- ``approvalflow.testing.store_conformance``: ``StoreConformance``, the test suite every store
  backend must pass. Subclass it in a test module and provide a ``store`` fixture::

      from approvalflow.testing.store_conformance import StoreConformance

      class TestMyStore(StoreConformance):
          @pytest.fixture
          def store(self):
              store = MyStore(...)
              yield store
              store.close()

Its modules import pytest, so this package imports none of them itself.
"""

from __future__ import annotations

__all__: list[str] = []

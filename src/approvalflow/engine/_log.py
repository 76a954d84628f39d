"""The engine's logger."""

from __future__ import annotations

from typing import Any


def logger() -> Any:
    # Imported on first use, which keeps `import approvalflow` fast.
    from approvalflow.logs import library_logger

    return library_logger()

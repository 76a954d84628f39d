"""The engine's logger."""

from __future__ import annotations

from typing import Any


def logger() -> Any:
    # structlog is imported on first use, which keeps `import approvalflow` fast.
    import structlog

    return structlog.get_logger("approvalflow")

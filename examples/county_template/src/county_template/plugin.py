"""The template county's rules: one changed time limit, one notification channel, one command.

- **Time limit.** The construction permit (``zj``) is decided in 5 working days instead of the
  built-in 7 (``approvalflow_settings``).
- **SMS channel.** Every notice becomes one short text per recipient, handed to ``gateway``
  (``approvalflow_notify``). The default gateway logs the text (structlog event
  ``county_template.sms``); a county plugs in its SMS provider with ``set_gateway``.
- **A command of its own.** ``record_site_visit``: a recruiter of the project's team records an
  investor's visit to the site (实地考察); the project's leader is told
  (notice ``county_template.site_visit``). Allowed until the project has signed. The visits are
  folded into the project's ``plugin_data["county_template"]["visits"]``
  (``approvalflow_event_folds``).

It imports nothing but ``approvalflow`` and ``approvalflow.plugin``, the public plugin API.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

import structlog
from approvalflow.plugin import (
    CommandSpec,
    Context,
    Fold,
    Notice,
    Party,
    Settings,
    event_folds,
    hookimpl,
    read_text,
    require_stage,
)

__all__ = ["FOLDS", "gateway", "set_gateway"]

PLUGIN = "county_template"
ZJ_LIMIT_WD = 5


def _log_sms(recipient: str, text: str) -> None:
    structlog.get_logger("county_template").info("county_template.sms", to=recipient, text=text)


gateway: Callable[[str, str], None] = _log_sms


def set_gateway(send: Callable[[str, str], None]) -> Callable[[str, str], None]:
    """Send texts through ``send(recipient, text)``; returns the previous gateway."""
    global gateway
    previous, gateway = gateway, send
    return previous


@hookimpl
def approvalflow_settings(settings: Settings) -> Mapping[str, Any]:
    """The construction permit in 5 working days."""
    return {"time_limit_wd": {"zj": ZJ_LIMIT_WD}}


@hookimpl
def approvalflow_notify(notice: Notice) -> None:
    """One text per recipient: ``[project] kind: field=value ...``."""
    details = " ".join(f"{key}={value}" for key, value in sorted(notice.fields.items()))
    for recipient in notice.recipients:
        gateway(recipient, f"[{notice.project}] {notice.kind}: {details}".strip())


def _visited(data: dict[str, Any], payload: Mapping[str, Any], at: datetime) -> None:
    data.setdefault("visits", []).append({"visitor": payload["visitor"], "at": at.isoformat()})


FOLDS: Mapping[str, Fold] = event_folds(PLUGIN, {"site_visit": _visited})


@hookimpl
def approvalflow_event_folds() -> Mapping[str, Fold]:
    """The site visits, kept in the project's ``plugin_data``."""
    return FOLDS


def record_site_visit(ctx: Context) -> None:
    """An investor's site visit, before signing; the leader hears of it."""
    require_stage(ctx, "lead", "decision", "site visits are recorded until the project signs")
    visitor = read_text(ctx.args, "visitor", required=True)
    ctx.emit(f"{PLUGIN}.site_visit", visitor=visitor)
    ctx.notify(f"{PLUGIN}.site_visit", [ctx.state.leader], visitor=visitor)


@hookimpl
def approvalflow_commands() -> Sequence[CommandSpec]:
    """``record_site_visit``."""
    return [
        CommandSpec(
            "record_site_visit",
            (Party.RECRUITER,),
            record_site_visit,
            ("visitor",),
            stage_trigger=None,
            summary="Record an investor's site visit (template county).",
            title="登记客商考察",
        )
    ]

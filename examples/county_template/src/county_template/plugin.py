"""The template county's rules: one changed time limit, one notification channel, one command.

- **Time limit.** The construction permit (``zj``) is decided in 5 working days instead of the
  built-in 7 (``approvalflow_settings``).
- **SMS channel.** Every notice becomes one short text per recipient, handed to ``gateway``
  (``approvalflow_notify``). The default gateway logs the text (structlog event
  ``county_template.sms``); a county plugs in its SMS provider with ``set_gateway``.
- **A command of its own.** ``record_site_visit``: a recruiter of the project's team records an
  investor's visit to the site (实地考察); the project's leader is told
  (notice ``county_template.site_visit``). Allowed until the project has signed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import structlog
from approvalflow import CommandSpec, Context, InvalidTransition, Notice, Party, hookimpl
from approvalflow.rules import arguments

__all__ = ["gateway", "set_gateway"]

ZJ_LIMIT_WD = 5
_BEFORE_SIGNING = ("lead", "negotiating", "pre_review", "decision")


def _log_sms(recipient: str, text: str) -> None:
    structlog.get_logger("county_template").info("county_template.sms", to=recipient, text=text)


gateway: Callable[[str, str], None] = _log_sms


def set_gateway(send: Callable[[str, str], None]) -> Callable[[str, str], None]:
    """Send texts through ``send(recipient, text)``; returns the previous gateway."""
    global gateway
    previous, gateway = gateway, send
    return previous


@hookimpl
def approvalflow_settings(settings: Any) -> Mapping[str, Any]:
    """The construction permit in 5 working days."""
    return {"time_limit_wd": {"zj": ZJ_LIMIT_WD}}


@hookimpl
def approvalflow_notify(notice: Notice) -> None:
    """One text per recipient: ``[project] kind: field=value ...``."""
    details = " ".join(f"{key}={value}" for key, value in sorted(notice.fields.items()))
    for recipient in notice.recipients:
        gateway(recipient, f"[{notice.project}] {notice.kind}: {details}".strip())


def record_site_visit(ctx: Context) -> None:
    """An investor's site visit, before signing; the leader hears of it."""
    if ctx.state.stage.split(".")[0] not in _BEFORE_SIGNING:
        raise InvalidTransition(
            f"record_site_visit is for projects not yet signed; {ctx.state.id} is {ctx.state.stage}"
        )
    visitor = arguments.text(ctx.args, "visitor", required=True)
    ctx.emit("county_template.site_visit", visitor=visitor)
    ctx.notify("county_template.site_visit", [ctx.state.leader], visitor=visitor)


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
        )
    ]

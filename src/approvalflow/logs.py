"""Logging helpers: a structlog processor that masks personal data.

The library never configures logging; a host adds ``mask_personal_data`` to its structlog
processors (the ``approvalflow`` CLI does) so that phone numbers and identity-card numbers that
reach a log line through a reason, a name or a notice are masked.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, MutableMapping
from typing import Any

__all__ = ["mask_personal_data", "mask_text"]

# An 18-character resident identity number (17 digits and a digit or X), a mainland mobile
# number (11 digits from 13x to 19x, optionally +86), and a landline with an area code.
_ID_CARD = re.compile(r"(?<!\d)(\d{6})\d{8}(\d{3}[\dXx])(?!\d)")
_MOBILE = re.compile(r"(?<!\d)((?:\+?86[- ]?)?1[3-9]\d)\d{4}(\d{4})(?!\d)")
_LANDLINE = re.compile(r"(?<!\d)(0\d{2,3}-)\d{3,4}(\d{4})(?!\d)")


def mask_text(text: str) -> str:
    """``text`` with identity-card, mobile and landline numbers masked in the middle."""
    text = _ID_CARD.sub(lambda m: f"{m.group(1)}********{m.group(2)}", text)
    text = _MOBILE.sub(lambda m: f"{m.group(1)}****{m.group(2)}", text)
    return _LANDLINE.sub(lambda m: f"{m.group(1)}****{m.group(2)}", text)


def _mask(value: Any, depth: int = 0) -> Any:
    if isinstance(value, str):
        return mask_text(value)
    if depth > 8:
        return value
    if isinstance(value, Mapping):
        return {key: _mask(item, depth + 1) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_mask(item, depth + 1) for item in value)
    return value


def mask_personal_data(
    logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """A structlog processor: mask personal numbers in every value of the event."""
    for key, value in list(event_dict.items()):
        event_dict[key] = _mask(value)
    return event_dict

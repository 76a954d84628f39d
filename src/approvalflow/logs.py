"""The library's logs, and masking of personal data in them.

The library logs through the standard :mod:`logging` module, on the logger ``"approvalflow"``
(and its children), so the host's logging configuration decides what is shown and where. It
never configures logging itself: with no configuration, Python's defaults apply (the library
adds only a ``NullHandler`` to its own logger, as libraries should, so nothing is printed).
Events are built with structlog (:func:`library_logger`) independently of any global structlog
configuration the host may have: each becomes one ``logging`` record whose message is the
event name followed by ``key=value`` pairs, with the fields also in the record's
``approvalflow`` attribute for structured handlers.

Before a record leaves the library, personal numbers in every value are masked
(:func:`mask_text`): mainland mobile numbers (``13812345678``, ``138-1234-5678``,
``138 1234 5678``, with ``+86``/``0086``/``86`` in front), resident identity numbers (18 or 15
digits, also written in groups separated by spaces or hyphens) and landlines with an area code
(``0351-1234567``, ``(0351)1234567``, ``（0351）1234567``, ``0351 1234567``). Names, addresses and
numbers in other shapes are not masked. ``mask_personal_data`` is the same masking as a
structlog processor, for hosts that log with structlog themselves.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from functools import cache
from typing import Any

__all__ = ["LOGGER_NAME", "capture_logs", "library_logger", "mask_personal_data", "mask_text"]

#: The standard-library logger the library's records go to.
LOGGER_NAME = "approvalflow"

logging.getLogger(LOGGER_NAME).addHandler(logging.NullHandler())

_SEP = r"[ \-\u00a0]?"
# An 18-character resident identity number (6 + 8 + 3 + digit or X), or the older 15-digit
# one (6 + 6 + 3), possibly written in groups.
_ID_CARD = re.compile(
    rf"(?<![\dA-Za-z])(\d{{6}}){_SEP}\d{{4}}{_SEP}\d{{2}}{_SEP}\d{{2}}{_SEP}(\d{{3}}[\dXx])"
    r"(?![\dA-Za-z])"
)
_ID_CARD_15 = re.compile(rf"(?<!\d)(\d{{6}}){_SEP}\d{{6}}{_SEP}(\d{{3}})(?!\d)")
# A mainland mobile number (11 digits from 13x to 19x), optionally after +86, 0086 or 86.
_MOBILE = re.compile(
    rf"(?<![\d+])((?:(?:\+|00)?86{_SEP})?1[3-9]\d){_SEP}\d{{4}}{_SEP}(\d{{4}})(?!\d)"
)
# A landline with an area code: 0351-1234567, (0351)1234567, 0351 1234567.
_LANDLINE = re.compile(
    r"(?<!\d)((?:\(0\d{2,3}\)|（0\d{2,3}）)\s?|0\d{2,3}[- ])\d{3,4}[- ]?(\d{4})(?!\d)"
)


# Every shape above holds at least 10 digits (a landline: 3 + 3 + 4), so a text with fewer
# cannot hold one: counting them is far cheaper than four searches, and most values are short.
_DIGIT = re.compile(r"\d")
_FEWEST_DIGITS = 10


def mask_text(text: str) -> str:
    """``text`` with identity-card, mobile and landline numbers masked in the middle."""
    if len(text) < _FEWEST_DIGITS or len(_DIGIT.findall(text)) < _FEWEST_DIGITS:
        return text
    return _mask_every_shape(text)


def _mask_every_shape(text: str) -> str:
    text = _ID_CARD.sub(lambda m: f"{m.group(1)}********{m.group(2)}", text)
    text = _MOBILE.sub(lambda m: f"{m.group(1)}****{m.group(2)}", text)
    text = _ID_CARD_15.sub(lambda m: f"{m.group(1)}******{m.group(2)}", text)
    return _LANDLINE.sub(lambda m: f"{m.group(1)}****{m.group(2)}", text)


_PLAIN = frozenset({int, float, bool, type(None)})


def _mask(value: Any, depth: int = 0) -> Any:
    # Most values of a request's line are numbers or None: answered before the Mapping check,
    # an abstract-class check that costs more than the rest of the function.
    if type(value) in _PLAIN:
        return value
    if isinstance(value, str):
        return mask_text(value)
    if depth > 8:
        return value
    if isinstance(value, Mapping):
        return {key: _mask(item, depth + 1) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_mask(item, depth + 1) for item in value)
    if isinstance(value, int | float | bool) or value is None:
        return value
    # Anything else (an exception's repr, an attrs object) reaches the log as text.
    return mask_text(repr(value) if isinstance(value, BaseException) else str(value))


def mask_personal_data(
    logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """A structlog processor: mask personal numbers in every value of the event."""
    for key, value in list(event_dict.items()):
        event_dict[key] = _mask(value)
    return event_dict


def _to_logging(
    logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """The last processor: one ``logging`` call, ``event key=value ...`` as its message."""
    fields = dict(event_dict)
    event = str(fields.pop("event", ""))
    text = " ".join([event, *(f"{key}={value!r}" for key, value in fields.items())])
    # "%s" keeps a "%" in a value from being read as a format directive.
    return ("%s", text), {"extra": {"approvalflow": {"event": event, **fields}}}


class _LibraryLogger:
    """The standard logger's level is asked first, so a dropped line costs one cached check."""

    __slots__ = ("_bound", "_standard")

    def __init__(self, standard: logging.Logger, bound: Any) -> None:
        self._standard = standard
        self._bound = bound

    def _log(self, level: int, event: str, fields: dict[str, Any]) -> None:
        if self._standard.isEnabledFor(level):
            self._bound.log(level, event, **fields)

    def debug(self, event: str, **fields: Any) -> None:
        self._log(logging.DEBUG, event, fields)

    def info(self, event: str, **fields: Any) -> None:
        self._log(logging.INFO, event, fields)

    def warning(self, event: str, **fields: Any) -> None:
        self._log(logging.WARNING, event, fields)

    def error(self, event: str, **fields: Any) -> None:
        self._log(logging.ERROR, event, fields)


@cache
def library_logger(name: str = LOGGER_NAME) -> _LibraryLogger:
    """The logger the library logs with: structlog wrapping ``logging.getLogger(name)``.

    Its processors are its own (never the host's global structlog configuration): masking, then
    one ``logging`` record; the standard logger's level (the host's) decides first.
    """
    import structlog

    standard = logging.getLogger(name)
    bound = structlog.wrap_logger(
        standard,
        processors=[
            structlog.contextvars.merge_contextvars,
            mask_personal_data,
            _to_logging,
        ],
        wrapper_class=structlog.stdlib.BoundLogger,
    )
    return _LibraryLogger(standard, bound)


@contextmanager
def capture_logs(level: int = logging.DEBUG) -> Iterator[list[dict[str, Any]]]:
    """Collect the library's log events while the block runs, each as a mapping of its
    fields plus ``event`` and ``log_level`` (for tests, the host's and the library's own)."""
    captured: list[dict[str, Any]] = []

    class _Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            fields = dict(getattr(record, "approvalflow", {"event": record.getMessage()}))
            fields["log_level"] = record.levelname.lower()
            captured.append(fields)

    logger = logging.getLogger(LOGGER_NAME)
    handler = _Collect(level)
    previous = logger.level
    logger.addHandler(handler)
    if logger.getEffectiveLevel() > level:
        logger.setLevel(level)
    try:
        yield captured
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)

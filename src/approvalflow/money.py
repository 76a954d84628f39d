"""Money as integer yuan, parsed from the forms county staff write (``600万``, ``4.6亿``)."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from approvalflow.errors import InvalidCommand

__all__ = ["format_yuan", "parse_amount"]

_UNITS = {"": Decimal(1), "元": Decimal(1), "万": Decimal(10_000), "亿": Decimal(100_000_000)}
_AMOUNT = re.compile(r"^\s*(-?[0-9][0-9_,]*(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)\s*(万|亿|元)?\s*$")


def parse_amount(value: object, *, argument: str = "amount") -> int:
    """Return ``value`` as a whole number of yuan.

    Accepts an int, a float or numeric string (``1.5e8``), or a string with 万 or 亿. Rejects
    negative, fractional-yuan, boolean and malformed amounts with ``InvalidCommand`` naming
    ``argument``.
    """
    if isinstance(value, bool):
        raise InvalidCommand(f"{argument} must be an amount of yuan, not {value!r}")
    if isinstance(value, int):
        number = Decimal(value)
    elif isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise InvalidCommand(f"{argument} must be a finite amount, not {value!r}")
        number = Decimal(repr(value))
    elif isinstance(value, str):
        match = _AMOUNT.match(value)
        if match is None:
            raise InvalidCommand(
                f"{argument} {value!r} is not an amount (write yuan, or a number with 万 or 亿)"
            )
        try:
            number = Decimal(match.group(1).replace(",", "").replace("_", ""))
        except InvalidOperation:  # pragma: no cover - the pattern admits only valid decimals
            raise InvalidCommand(f"{argument} {value!r} is not an amount") from None
        number *= _UNITS[match.group(2) or ""]
    else:
        raise InvalidCommand(f"{argument} must be an amount of yuan, not {type(value).__name__}")
    if number < 0:
        raise InvalidCommand(f"{argument} must not be negative: {value!r}")
    if number != number.to_integral_value():
        raise InvalidCommand(f"{argument} {value!r} is not a whole number of yuan")
    if number > Decimal(10) ** 15:
        raise InvalidCommand(f"{argument} {value!r} is larger than any project (over 10^15 yuan)")
    return int(number)


def format_yuan(amount: int) -> str:
    """Render yuan the way a county report does: ``15亿``, ``600万``, ``1234元``."""
    if amount and amount % 100_000_000 == 0:
        return f"{amount // 100_000_000}亿"
    if amount >= 100_000_000:
        return f"{Decimal(amount) / Decimal(100_000_000):f}".rstrip("0").rstrip(".") + "亿"
    if amount and amount % 10_000 == 0:
        return f"{amount // 10_000}万"
    return f"{amount}元"

"""Money as integer yuan, parsed from the forms county staff write (``600万``, ``4.6亿``).

Text follows one grammar and nothing else is guessed (D70)::

    amount   = [spaces] number [spaces] [unit] [spaces]
    number   = integer [ "." digit { digit } ]
    integer  = digit { digit }                          (no separators: 1500000)
             | digit [digit] [digit] { "," 3 digits }    (groups of three: 1,500,000)
    unit     = "元" | "万" | "亿"                        (none: yuan)
    digit    = "0" .. "9"                               (ASCII only)

So ``1,500,000元``, ``4.6亿`` and ``15,000万`` are amounts, while ``1,5亿`` (a decimal
comma), ``12,3``, ``1,50,0万``, ``1_000``, ``1.5e8``, ``-5万``, ``１５亿`` (full-width digits) and
``十五亿`` are refused with the reason. An amount must be a whole number of yuan and at most
``MAX_YUAN`` (10^15 yuan, 1000万亿, far beyond any county project, and exact in a float and a
64-bit column). Numbers (int, or a float holding a whole number) are taken as yuan.
"""

from __future__ import annotations

import re

from approvalflow.errors import InvalidCommand

__all__ = ["MAX_YUAN", "format_amount", "format_yuan", "parse_amount"]

MAX_YUAN = 10**15
"""The largest amount (in yuan) any argument may carry."""

_UNIT_DIGITS = {"": 0, "元": 0, "万": 4, "亿": 8}
_AMOUNT = re.compile(
    r" *(?P<integer>[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)(?:\.(?P<fraction>[0-9]+))?"
    r" *(?P<unit>万|亿|元)? *"
)
# Longer text than this cannot hold an amount under MAX_YUAN (it is refused unread).
_MAX_TEXT = 64


def parse_amount(value: object, *, argument: str = "amount") -> int:
    """Return ``value`` as a whole number of yuan.

    Accepts an int, a float holding a whole number, or text in the grammar above. Refuses
    negative, fractional-yuan, boolean, oversized and malformed amounts with ``InvalidCommand``
    naming ``argument`` and the reason.
    """
    if isinstance(value, bool):
        raise InvalidCommand(f"{argument} must be an amount of yuan, not {value!r}")
    if isinstance(value, int):
        yuan = value
    elif isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise InvalidCommand(f"{argument} must be a finite amount, not {value!r}")
        if abs(value) > MAX_YUAN:
            raise _too_large(argument, value)
        if not value.is_integer():
            raise InvalidCommand(f"{argument} {value!r} is not a whole number of yuan")
        yuan = int(value)
    elif isinstance(value, str):
        yuan = _parse_text(value, argument)
    else:
        raise InvalidCommand(f"{argument} must be an amount of yuan, not {type(value).__name__}")
    if yuan < 0:
        shown = repr(value) if not isinstance(value, int) or value > -(10**30) else "a huge number"
        raise InvalidCommand(f"{argument} must not be negative: {shown}")
    if yuan > MAX_YUAN:
        raise _too_large(argument, value)
    return yuan


def _parse_text(value: str, argument: str) -> int:
    shown = value if len(value) <= _MAX_TEXT else value[:_MAX_TEXT] + "..."
    if len(value) > _MAX_TEXT:
        raise InvalidCommand(f"{argument} {shown!r} is not an amount: {_why_not(value)}")
    match = _AMOUNT.fullmatch(value)
    if match is None:
        raise InvalidCommand(f"{argument} {shown!r} is not an amount: {_why_not(value)}")
    integer = match.group("integer").replace(",", "")
    fraction = match.group("fraction") or ""
    scale = _UNIT_DIGITS[match.group("unit") or ""]
    # Exact integer arithmetic: a Decimal context would round long fractions to look whole.
    digits = int(integer + fraction)
    shift = scale - len(fraction)
    if shift >= 0:
        return int(digits * 10**shift)
    whole, rest = divmod(digits, 10**-shift)
    if rest:
        raise InvalidCommand(f"{argument} {shown!r} is not a whole number of yuan")
    return int(whole)


def _why_not(value: str) -> str:
    """The reason ``value`` is not in the grammar, as plainly as it can be said."""
    text = value.strip(" ")
    if len(value) > _MAX_TEXT:
        return f"longer than {_MAX_TEXT} characters"
    if not text:
        return "it is empty"
    if text.startswith(("-", "−")):
        return "amounts are not negative"
    if re.search(r"[eE]", text):
        return "write it without an exponent (1.5亿, not 1.5e8)"
    if "_" in text:
        return "write it without underscores (1,000,000 or 1000000)"
    if re.search(r"[^0-9,. 万亿元]", text):
        return "only ASCII digits (0-9), one '.', ',' between groups of three, then 元, 万 or 亿"
    if "," in text:
        return (
            "',' separates thousands only, in groups of three (1,500,000); a decimal part "
            "takes '.' (1.5亿)"
        )
    if text.count(".") > 1:
        return "a number has at most one decimal point"
    return "write digits with an optional decimal part, then 元, 万 or 亿 (600万, 4.6亿)"


def _too_large(argument: str, value: object) -> InvalidCommand:
    # A huge int has too many digits to print (and the number says nothing more).
    shown = repr(value) if not isinstance(value, int) or value < 10**30 else "(a huge number)"
    return InvalidCommand(
        f"{argument} {shown} is larger than any project (over 10^15 yuan, 1000万亿)"
    )


def format_amount(yuan: int) -> str:
    """Yuan as people write an amount, exactly: ``3.5亿``, ``2,800万``, ``1,234元``.

    From 1亿 up in 亿, from 1万 up in 万, below that in 元; the whole part in groups of three,
    the decimals only as many as the amount has (``1.23456789亿``: never rounded). Integer
    arithmetic only, so what is printed is the amount, and :func:`parse_amount` reads it back
    to the same yuan.
    """
    if isinstance(yuan, bool) or not isinstance(yuan, int):
        raise TypeError(f"an amount is a whole number of yuan, not {type(yuan).__name__}")
    sign = "-" if yuan < 0 else ""  # a negative figure (a change) is still written plainly
    amount = abs(yuan)
    for unit, digits in (("亿", 8), ("万", 4)):
        if amount >= 10**digits:
            whole, rest = divmod(amount, 10**digits)
            text = f"{whole:,}"
            if rest:
                text += "." + f"{rest:0{digits}d}".rstrip("0")
            return f"{sign}{text}{unit}"
    return f"{sign}{amount:,}元"


def format_yuan(amount: int) -> str:
    """The same as :func:`format_amount` (the earlier name)."""
    return format_amount(amount)

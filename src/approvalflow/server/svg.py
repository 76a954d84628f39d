"""Server-side SVG for the workbench: a project's timeline (Gantt) on the working-day calendar
and the workflow diagram with the current stage highlighted.

The timeline is read from the project's history: pre-review rounds, the collective decision and
each approval branch, each with its promised limit (承诺时限), its statutory limit (法定时限)
where the county's settings give one, the actual span, the pauses (暂停计时), the returns
(退回补正), the extensions (延期) and the warning cards. Days off are shaded, so a span can be
counted in working days by eye. Every mark carries its word as text, never colour alone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime, timedelta
from html import escape

import attrs

from approvalflow.calendar import WorkingCalendar, to_local
from approvalflow.model import Event
from approvalflow.settings import LADDER_CARDS

__all__ = ["Bar", "gantt_bars", "gantt_svg", "month_days"]

_DECIDED = {"approved", "conditional", "rejected", "not_needed", "revoked"}
# A card by its name (``yellow``) or by the notice it was sent as (``yellow_card``).
_CARD_WORDS = {
    **{card.name: card.title for card in LADDER_CARDS},
    **{card.notice: card.title for card in LADDER_CARDS},
}


_ROUND_OUTCOMES = {"passed": "通过", "failed": "未通过", "supplement": "一次性告知补材料"}


@attrs.define
class Bar:
    """One row of the timeline."""

    key: str
    label: str
    start: datetime
    end: datetime | None = None  # None: still open
    promised: datetime | None = None
    statutory: datetime | None = None
    pauses: list[tuple[datetime, datetime | None]] = attrs.field(factory=list)
    returns: list[tuple[datetime, datetime | None]] = attrs.field(factory=list)
    marks: list[tuple[datetime, str]] = attrs.field(factory=list)  # extensions, cards, overdue
    outcome: str | None = None


def _when(text: object) -> datetime | None:
    return datetime.fromisoformat(text) if isinstance(text, str) else None


def gantt_bars(
    history: Iterable[Event],
    *,
    department_name: Callable[[str], str],
    branch_state_name: Callable[[str], str],
    state_name: Callable[[str], str],
    statutory_wd: dict[str, int],
    calendar: WorkingCalendar,
) -> list[Bar]:
    """The timeline's rows from a project's history, in the order they opened."""
    bars: dict[str, Bar] = {}
    order: list[str] = []

    def open_bar(key: str, label: str, at: datetime) -> Bar:
        bar = Bar(key, label, at)
        if key not in bars:
            order.append(key)
        bars[key] = bar
        return bar

    for event in history:
        p = event.payload
        if event.type == "pre_review_round_opened":
            bar = open_bar(
                f"pre_review.{p.get('round')}", f"即时初审 第{p.get('round')}轮", event.at
            )
            bar.promised = _when(p.get("due"))
        elif event.type == "pre_review_round_closed":
            bar_or = bars.get(f"pre_review.{p.get('round')}")
            if bar_or is not None:
                bar_or.end = event.at
                outcome = str(p.get("outcome", ""))
                bar_or.outcome = _ROUND_OUTCOMES.get(outcome, outcome)
        elif event.type == "stage_changed":
            to, came = str(p.get("to", "")), str(p.get("from", ""))
            if to == "decision.pending" and "decision" not in bars:
                open_bar("decision", "集体决策", event.at)
            elif to == "pre_review.awaiting_materials":
                for key in reversed(order):
                    if key.startswith("pre_review.") and bars[key].end is None:
                        bars[key].returns.append((event.at, None))
                        break
            elif came == "pre_review.awaiting_materials":
                for key in reversed(order):
                    if key.startswith("pre_review.") and bars[key].returns:
                        start, end = bars[key].returns[-1]
                        if end is None:
                            bars[key].returns[-1] = (start, event.at)
                        break
            if (
                came.startswith("decision.")
                and not to.startswith("decision.")
                and "decision" in bars
            ):
                bars["decision"].end = event.at
                bars["decision"].outcome = state_name(to)
        elif event.type == "branch_opened":
            dept = str(p.get("department"))
            bar = open_bar(f"approval.{dept}", f"{department_name(dept)} 审批", event.at)
            bar.promised = _when(p.get("due"))
            limit = statutory_wd.get(dept)
            if limit is not None:
                opened = to_local(event.at).date()
                last = calendar.add_working_days(opened, limit)
                bar.statutory = datetime.combine(
                    last + timedelta(days=1), datetime.min.time(), tzinfo=to_local(event.at).tzinfo
                )
        elif event.type == "branch_changed":
            branch = bars.get(f"approval.{p.get('department')}")
            if branch is None:
                continue
            to, came = str(p.get("to", "")), str(p.get("from", ""))
            if p.get("due"):
                branch.promised = _when(p.get("due"))
            if came == "paused" and branch.pauses and branch.pauses[-1][1] is None:
                branch.pauses[-1] = (branch.pauses[-1][0], event.at)
            if came == "returned" and branch.returns and branch.returns[-1][1] is None:
                branch.returns[-1] = (branch.returns[-1][0], event.at)
            if to == "paused":
                branch.pauses.append((event.at, None))
            elif to == "returned":
                branch.returns.append((event.at, None))
            if to in _DECIDED:
                branch.end = event.at
                branch.outcome = branch_state_name(to)
            elif branch.end is not None:  # re-opened (a revoked branch applied for again)
                branch.end = None
                branch.outcome = None
        elif event.type == "limit_extended":
            branch = bars.get(f"approval.{p.get('department')}")
            if branch is not None:
                branch.promised = _when(p.get("due"))
                branch.marks.append((event.at, f"延期{p.get('days')}个工作日"))
        elif event.type == "card_issued":
            dept = str(p.get("department"))
            stage = str(p.get("stage", ""))
            where = f"approval.{dept}"
            if stage != "approval":
                where = next((k for k in reversed(order) if k.startswith("pre_review.")), where)
            target = bars.get(where)
            if target is not None:
                word = _CARD_WORDS.get(str(p.get("card")), str(p.get("card")))
                target.marks.append((event.at, word))
        elif event.type == "branch_overdue":
            branch = bars.get(f"approval.{p.get('department')}")
            if branch is not None:
                branch.marks.append((event.at, "逾期"))
    return [bars[k] for k in order]


_ROW = 34
_LABEL = 150
_TOP = 46


# A mark's label is 10 px bold (workbench.css): a CJK character is about 10 px wide, a Latin
# one about 6; the gap keeps two labels apart.
_MARK_CHAR_W = {True: 10.5, False: 6.5}
_MARK_GAP = 3.0


def _mark_width(word: str) -> float:
    """The width a mark's label takes on the timeline, in px (an estimate from its characters)."""
    return sum(_MARK_CHAR_W[ord(c) > 0x2E7F] for c in word)


def _placed_marks(
    bar: Bar, x: Callable[[datetime], float], top: float
) -> list[tuple[float, float, str]]:
    """Each of the bar's marks as (x, baseline, word): on the row's lower edge, or, where it
    would run into a label there (a warning a day before a yellow card), on its upper edge
    beside the pause and return labels; a label neither edge has room for goes on the lower
    edge, moved right past the labels there. No two labels overlap."""
    lower, upper = top + _ROW - 1, top + 9
    taken: dict[float, list[tuple[float, float]]] = {lower: [], upper: []}
    for spans, word in ((bar.pauses, "暂停"), (bar.returns, "退回")):
        for begin, _ in spans:
            left = x(begin) + 2
            taken[upper].append((left, left + _mark_width(word)))
    placed: list[tuple[float, float, str]] = []
    for at, word in sorted(bar.marks, key=lambda mark: mark[0]):
        left = x(at)
        right = left + _mark_width(word)
        fits = [
            edge
            for edge in (lower, upper)
            if all(right + _MARK_GAP <= a or b + _MARK_GAP <= left for a, b in taken[edge])
        ]
        edge = fits[0] if fits else lower
        if not fits:
            # Crowded on both edges: the label moves right, past the lower edge's labels.
            for a, b in sorted(taken[lower]):
                if not (right + _MARK_GAP <= a or b + _MARK_GAP <= left):
                    left = b + _MARK_GAP
                    right = left + _mark_width(word)
        taken[edge].append((left, right))
        placed.append((left, edge, word))
    return placed


def gantt_svg(bars: Sequence[Bar], calendar: WorkingCalendar, now: datetime) -> str:
    """The timeline as an SVG document: one row per bar, one column per calendar day."""
    if not bars:
        return (
            '<svg xmlns="http://www.w3.org/2000/svg" role="img" width="400" height="40" '
            'aria-label="时间轴：尚无审批环节">'
            '<text x="8" y="24">尚无初审、决策或审批环节</text></svg>'
        )
    local_now = to_local(now)
    moments: list[datetime] = [local_now]
    for bar in bars:
        moments += [m for m in (bar.start, bar.end, bar.promised, bar.statutory) if m is not None]
    first = min(to_local(m).date() for m in moments)
    last = max(to_local(m).date() for m in moments)
    days = (last - first).days + 1
    day_w = max(8, min(28, 900 // max(days, 1)))
    width = _LABEL + days * day_w + 20
    height = _TOP + len(bars) * _ROW + 60

    def x(moment: datetime) -> float:
        local = to_local(moment)
        offset = (local.date() - first).days + (local.hour * 60 + local.minute) / 1440
        return _LABEL + offset * day_w

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" class="gantt" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" aria-labelledby="gantt-title">',
        '<title id="gantt-title">项目时间轴（工作日日历）</title>',
    ]
    for i in range(days):
        day = first + timedelta(days=i)
        left = _LABEL + i * day_w
        if not calendar.is_working_day(day):
            out.append(
                f'<rect class="day-off" x="{left}" y="{_TOP - 6}" width="{day_w}" '
                f'height="{len(bars) * _ROW + 6}"><title>{day.isoformat()} 休息日</title></rect>'
            )
        if day.day == 1 or i == 0 or (day_w >= 14 and day.weekday() == 0):
            out.append(f'<text class="tick" x="{left + 1}" y="{_TOP - 12}">{day:%m-%d}</text>')
    for row, bar in enumerate(bars):
        top = _TOP + row * _ROW
        mid = top + _ROW / 2
        out.append(f'<g class="bar" data-key="{escape(bar.key)}">')
        out.append(f'<text class="label" x="4" y="{mid + 4}">{escape(bar.label)}</text>')
        if bar.statutory is not None:
            out.append(
                f'<rect class="statutory" x="{x(bar.start):.1f}" y="{top + 4}" '
                f'width="{max(1.0, x(bar.statutory) - x(bar.start)):.1f}" height="{_ROW - 8}">'
                f"<title>法定时限至 {_day(bar.statutory)}</title></rect>"
            )
        end = bar.end or local_now
        late = bar.promised is not None and end > bar.promised
        out.append(
            f'<rect class="actual{" late" if late else ""}" x="{x(bar.start):.1f}" '
            f'y="{top + 10}" width="{max(2.0, x(end) - x(bar.start)):.1f}" height="{_ROW - 20}">'
            f"<title>实际 {_day(bar.start)} 至 {_day(end) if bar.end else '今（未办结）'}"
            f"{'，超出承诺时限' if late else ''}</title></rect>"
        )
        for kind, spans, word in (("pause", bar.pauses, "暂停"), ("return", bar.returns, "退回")):
            for start, stop in spans:
                stop = stop or local_now
                out.append(
                    f'<rect class="{kind}" x="{x(start):.1f}" y="{top + 10}" '
                    f'width="{max(2.0, x(stop) - x(start)):.1f}" height="{_ROW - 20}">'
                    f"<title>{word} {_day(start)} 至 {_day(stop)}</title></rect>"
                    f'<text class="mark" x="{x(start) + 2:.1f}" y="{top + 9}">{word}</text>'
                )
        if bar.promised is not None:
            px = x(bar.promised)
            out.append(
                f'<line class="promised" x1="{px:.1f}" x2="{px:.1f}" y1="{top + 2}" '
                f'y2="{top + _ROW - 2}"><title>承诺时限 {_day(bar.promised)}</title></line>'
            )
        for mx, baseline, word in _placed_marks(bar, x, top):
            out.append(
                f'<text class="mark card-{_card_class(word)}" x="{mx:.1f}" '
                f'y="{baseline}">{escape(word)}</text>'
            )
        if bar.outcome:
            out.append(
                f'<text class="outcome" x="{x(end) + 4:.1f}" y="{mid + 4}">'
                f"{escape(bar.outcome)}</text>"
            )
        out.append("</g>")
    nx = x(local_now)
    out.append(
        f'<line class="now" x1="{nx:.1f}" x2="{nx:.1f}" y1="{_TOP - 8}" '
        f'y2="{_TOP + len(bars) * _ROW}"/><text class="tick" x="{nx + 2:.1f}" '
        f'y="{_TOP + len(bars) * _ROW + 12}">今天</text>'
    )
    legend_y = _TOP + len(bars) * _ROW + 36
    legend = [
        ("actual", "实际用时"),
        ("statutory", "法定时限"),
        ("pause", "暂停计时"),
        ("return", "退回补正"),
        ("day-off", "休息日"),
    ]
    lx = 4
    for cls, word in legend:
        out.append(
            f'<rect class="{cls}" x="{lx}" y="{legend_y - 10}" width="14" height="10"/>'
            f'<text class="tick" x="{lx + 18}" y="{legend_y}">{word}</text>'
        )
        lx += 90
    out.append(
        f'<line class="promised" x1="{lx + 6}" x2="{lx + 6}" y1="{legend_y - 12}" '
        f'y2="{legend_y + 2}"/><text class="tick" x="{lx + 12}" y="{legend_y}">承诺时限</text>'
    )
    out.append("</svg>")
    return "".join(out)


def _day(moment: datetime) -> str:
    local = to_local(moment)
    if local.time() == datetime.min.time():
        return (local.date() - timedelta(days=1)).isoformat()
    return local.date().isoformat()


def _card_class(word: str) -> str:
    return {"预警": "warning", "黄牌": "yellow", "红牌": "red", "逾期": "late"}.get(word, "other")


def month_days(year: int, month: int) -> list[date]:
    """Every day of a month."""
    day = date(year, month, 1)
    found = []
    while day.month == month:
        found.append(day)
        day += timedelta(days=1)
    return found

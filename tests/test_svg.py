"""The timeline's SVG: card labels that fall close together stay readable."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest

pytest.importorskip("litestar", reason="the server extra is not installed")

from approvalflow.calendar import SHANGHAI, WorkingCalendar
from approvalflow.server.svg import Bar, gantt_svg

START = datetime(2026, 9, 21, 9, 0, tzinfo=SHANGHAI)
MARK = re.compile(r'<text class="mark card-[a-z]+" x="([\d.]+)" y="([\d.]+)">([^<]+)</text>')
CJK_WIDTH = 10  # px: a bold 10 px character (workbench.css), the least a label can take


def labels(bar: Bar, *, span_days: int = 100) -> list[tuple[float, float, str]]:
    end = START + timedelta(days=span_days)
    svg = gantt_svg([bar], WorkingCalendar(), end)
    return [(float(x), float(y), word) for x, y, word in MARK.findall(svg)]


def overlapping(found: list[tuple[float, float, str]]) -> list[tuple[str, str]]:
    clashes = []
    for i, (x1, y1, w1) in enumerate(found):
        for x2, y2, w2 in found[i + 1 :]:
            if y1 == y2 and abs(x2 - x1) < CJK_WIDTH * len(w1 if x1 <= x2 else w2):
                clashes.append((w1, w2))
    return clashes


class TestCardLabels:
    def test_a_warning_a_day_before_a_yellow_card_and_a_red_one_do_not_overlap(self) -> None:
        """On a 100-day timeline a day is 9 px, a label about 21: the warning and the yellow
        card a day apart take the two edges, and the red card two days later fits below."""
        at = START + timedelta(days=70)
        bar = Bar(
            "P1.approval.zj",
            "住建 审批",
            START,
            marks=[
                (at, "预警"),
                (at + timedelta(days=1), "黄牌"),
                (at + timedelta(days=3), "红牌"),
            ],
        )
        found = labels(bar)
        assert [word for _, _, word in found] == ["预警", "黄牌", "红牌"]
        assert overlapping(found) == []
        assert len({y for _, y, _ in found}) == 2

    def test_marks_far_apart_share_the_lower_edge(self) -> None:
        at = START + timedelta(days=10)
        bar = Bar("P1", "发改 审批", START, marks=[(at, "预警"), (at + timedelta(days=20), "黄牌")])
        found = labels(bar)
        assert len({y for _, y, _ in found}) == 1 and overlapping(found) == []

    def test_a_card_beside_a_pause_label_goes_below_it(self) -> None:
        at = START + timedelta(days=40)
        bar = Bar(
            "P1",
            "住建 审批",
            START,
            pauses=[(at, at + timedelta(days=5))],
            marks=[(at - timedelta(days=1), "预警"), (at, "黄牌")],
        )
        svg = gantt_svg([bar], WorkingCalendar(), START + timedelta(days=100))
        pause = re.search(r'<text class="mark" x="([\d.]+)" y="([\d.]+)">暂停</text>', svg)
        assert pause is not None
        found = labels(bar)
        both = [*found, (float(pause.group(1)), float(pause.group(2)), "暂停")]
        assert overlapping(both) == []

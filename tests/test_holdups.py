"""Who holds a project up, and a county's late items by department."""

from __future__ import annotations

from datetime import datetime

from builders import County

from approvalflow.calendar import SHANGHAI


class TestHoldups:
    def test_pre_review_waits_on_the_silent_units(self) -> None:
        """Two units answered; the other two hold the project, due 03-05."""
        county = County()
        county.to_pre_review()
        county.do("opinion", "P1", "r_gxj", verdict="pass")
        county.do("opinion", "P1", "r_fgw", verdict="pass")
        items = county.engine.holdups("P1")
        assert [(i.waiting_on, i.what) for i in items] == [
            ("sthj", "pre_review"),
            ("zrzy", "pre_review"),
        ]

    def test_approval_waits_on_the_branch_due_first_then_the_applicant(self) -> None:
        """fgw (5 wd) heads the critical path; a returned branch waits on the applicant."""
        county = County()
        county.to_approval()
        county.do("return", "P1", "o_zj", corrections=["site_photos"])
        items = county.engine.holdups("P1")
        assert items[0].waiting_on == "fgw"
        assert items[0].working_days_left(county.engine.calendar, county.clock.now()) == 5
        assert ("applicant", "corrections") in [(i.waiting_on, i.what) for i in items]

    def test_late_items_are_listed_by_department(self) -> None:
        """On 03-12 fgw (due 03-09) is late on both projects, zj and yj (due 03-11) too."""
        county = County()
        county.to_approval("P1")
        county.to_approval("P2")
        county.approve_all("P2", departments=("zj",))
        late = county.engine.late_items(datetime(2026, 3, 12, 9, 0, tzinfo=SHANGHAI))
        assert sorted(late) == ["fgw", "yj", "zj"]
        assert [item.project for item in late["fgw"]] == ["P1", "P2"]
        assert [item.project for item in late["zj"]] == ["P1"]

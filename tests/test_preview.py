"""What-if preview: departments and deadlines for a project that does not exist yet."""

from __future__ import annotations

from datetime import datetime

import pytest
from builders import PROJECT_FIELDS, County

from approvalflow import InvalidCommand, NotAuthorized, hookimpl
from approvalflow.calendar import SHANGHAI


class TestPreview:
    def test_preview_gives_every_deadline_and_writes_nothing(self) -> None:
        """Submitted Monday 2026-03-02: pre-review due 03-05; applied 09-28 (before National
        Day): fgw's 5 wd are 09-29, 09-30, 10-08, 10-09 and the make-up Saturday 10-10."""
        county = County()
        preview = county.engine.preview(
            PROJECT_FIELDS,
            "guo",
            approval_start=datetime(2026, 9, 28, 9, 0, tzinfo=SHANGHAI),
        )
        assert preview.pre_review_due.display() == "2026-03-05 24:00"
        dues = {b.department: b.due.display() for b in preview.branches}
        assert dues["fgw"] == "2026-10-10 24:00"
        assert preview.approval_due.display() == dues["zrzy"]
        assert not preview.provisional
        assert county.engine.project_ids() == []

    def test_a_routing_plugin_shapes_the_preview(self) -> None:
        """Environmental review only for projects with emissions: no emissions, no branch."""

        class Route:
            @hookimpl
            def approvalflow_route(self, project, settings):  # type: ignore[no-untyped-def]
                return ["sthj"] if project.emissions else None

        routing = {"routing": {"departments": ["fgw", "zrzy", "zj", "yj"]}}
        county = County(plugins=[Route()], settings=routing)
        preview = county.engine.preview({**PROJECT_FIELDS, "emissions": False}, "guo")
        assert [b.department for b in preview.branches] == ["fgw", "zrzy", "zj", "yj"]

    def test_a_deadline_in_an_unpublished_year_is_provisional(self) -> None:
        """2027's holidays are not official yet."""
        county = County()
        preview = county.engine.preview(
            PROJECT_FIELDS, "guo", start=datetime(2026, 12, 30, 9, 0, tzinfo=SHANGHAI)
        )
        assert preview.pre_review_due.provisional

    def test_bad_fields_and_wrong_actors_are_refused(self) -> None:
        """The same checks as create."""
        county = County()
        with pytest.raises(InvalidCommand, match="leader"):
            county.engine.preview({**PROJECT_FIELDS, "leader": None}, "guo")
        with pytest.raises(NotAuthorized):
            county.engine.preview(PROJECT_FIELDS, "fuyuan")

    def test_a_time_limit_plugin_shapes_the_preview(self) -> None:
        """The preview asks the county's time-limit hook, as `apply` does: zj's 3 wd end on
        Thursday 03-05, not on 03-11."""

        class PriorityLane:
            @hookimpl
            def approvalflow_time_limit(self, project, department, settings):  # type: ignore[no-untyped-def]
                return 3 if department == "zj" else None

        county = County(plugins=[PriorityLane()])
        preview = county.engine.preview(PROJECT_FIELDS, "guo")
        dues = {b.department: (b.time_limit_wd, b.due.display()) for b in preview.branches}
        assert dues["zj"] == (3, "2026-03-05 24:00")
        assert dues["yj"] == (7, "2026-03-11 24:00")

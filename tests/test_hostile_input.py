"""Hostile or careless input gets a specific error, bounded work, and nothing stored; personal
numbers in logs are masked."""

from __future__ import annotations

import pytest
import structlog
from builders import PROJECT_FIELDS, County

from approvalflow import ApprovalflowError, InvalidCommand, NotAuthorized
from approvalflow.logs import mask_personal_data, mask_text


class TestCommandPayloads:
    @pytest.mark.parametrize(
        "project_id",
        ["'; DROP TABLE events; --", "", "x" * 101, "P1\u202egnp", "a b", "\u200d", None, 7],
    )
    def test_malformed_project_ids_are_refused(self, project_id: object) -> None:
        """SQL-looking, empty, overlong, bidi-override and non-text ids never reach a store."""
        county = County()
        with pytest.raises(InvalidCommand, match="project id"):
            county.do("create", project_id, "guo", **PROJECT_FIELDS)  # type: ignore[arg-type]
        assert county.engine.project_ids() == []

    def test_huge_strings_are_refused(self) -> None:
        """A 1 MB reason is an InvalidCommand naming the argument."""
        county = County()
        county.create()
        with pytest.raises(InvalidCommand, match="'reason' is longer"):
            county.do("withdraw", "P1", "fuyuan", reason="长" * 1_000_000)
        assert county.stage() == "lead"

    @pytest.mark.parametrize(
        "materials",
        [
            [[["business_license"]]],
            {"business_license": True},
            "business_license",
            ["business_license"] * 10_000,
            [None],
        ],
    )
    def test_wrong_shapes_in_lists_are_refused(self, materials: object) -> None:
        """Nesting, mappings, bare strings, oversized lists and nulls where ids belong."""
        county = County()
        county.create()
        county.do("negotiate", "P1", "guo")
        with pytest.raises(InvalidCommand, match="materials"):
            county.do("submit_pre_review", "P1", "guo", materials=materials)
        assert county.stage() == "negotiating"

    def test_non_text_actor_ids_are_not_authorised(self) -> None:
        """An actor id that is not text is no actor."""
        county = County()
        county.create()
        with pytest.raises(NotAuthorized):
            county.engine.execute("negotiate", "P1", ["guo"])  # type: ignore[arg-type]

    def test_plugin_fields_must_be_plain_data(self) -> None:
        """Fields stored in the history must be JSON-like; an object is refused."""
        from approvalflow import hookimpl

        class Towns:
            @hookimpl
            def approvalflow_project_fields(self) -> list[str]:
                return ["town"]

        county = County(plugins=[Towns()])
        with pytest.raises(InvalidCommand, match="town"):
            county.create(town=object())
        county.create(town="店上镇")
        assert county.engine.project("P1").extra == {"town": "店上镇"}

    def test_every_refusal_is_an_approvalflow_error(self) -> None:
        """A caller can catch one root class for every refusal."""
        county = County()
        with pytest.raises(ApprovalflowError):
            county.do("negotiate", "P1", "guo")


class TestPersonalData:
    def test_phone_and_identity_numbers_are_masked(self) -> None:
        """Mobile, +86 mobile, landline and ID card numbers keep only their ends."""
        text = "联系人 13812345678 / +86 13912345678, 座机 0355-6123456, 身份证 11010519491231002X"
        masked = mask_text(text)
        assert "13812345678" not in masked and "138****5678" in masked
        assert "139****5678" in masked
        assert "0355-****3456" in masked
        assert "110105********002X" in masked

    def test_the_processor_masks_nested_values(self) -> None:
        """Used as a structlog processor it masks inside mappings and lists."""
        with structlog.testing.capture_logs(processors=[mask_personal_data]) as logs:
            structlog.get_logger("t").info("x", reason="call 13812345678", who=["18612345678"])
        assert logs[0]["reason"] == "call 138****5678"
        assert logs[0]["who"] == ["186****5678"]

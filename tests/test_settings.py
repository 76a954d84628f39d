"""Settings as a county writes them: nested overrides, validated key by key."""

from __future__ import annotations

import pytest

from approvalflow import Settings, SettingsError


class TestScalarTypes:
    @pytest.mark.parametrize(
        ("overrides", "path"),
        [
            ({"pre_review": {"deadline_wd": True}}, "settings.pre_review.deadline_wd"),
            ({"supply_deadline_wd": "20"}, "settings.supply_deadline_wd"),
            ({"extension_wd": 2.5}, "settings.extension_wd"),
            ({"calendar": {"strict": "yes"}}, "settings.calendar.strict"),
        ],
    )
    def test_a_value_of_the_wrong_type_is_refused_not_converted(
        self, overrides: dict[str, object], path: str
    ) -> None:
        """`true` is not 1 working day and `"20"` is not 20: each is refused by its path."""
        with pytest.raises(SettingsError, match=path.replace(".", r"\.")):
            Settings.default().merged(overrides)

    def test_values_of_the_right_type_are_kept(self) -> None:
        """A whole number stays one; a share may be written as an integer."""
        merged = Settings.default().merged(
            {"supply_deadline_wd": 15, "decision": {"quorum": 0}, "calendar": {"strict": True}}
        )
        assert merged.supply_deadline_wd == 15
        assert merged.decision.quorum == 0.0
        assert merged.calendar.strict is True

"""Settings as a county writes them: nested overrides, validated key by key."""

from __future__ import annotations

import re

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


class TestLadder:
    def test_the_built_in_ladder_is_there_but_off(self) -> None:
        """Warning 2 wd before, yellow at the deadline, red 3 wd after; not enabled."""
        ladder = Settings.default().ladder
        assert ladder.enabled is False
        assert [(s.card, s.offset_wd) for s in ladder.steps] == [
            ("warning", 2),
            ("yellow", 0),
            ("red", -3),
        ]
        assert ladder.steps[-1].recipients == ("officer", "head", "leader", "efficiency_office")

    def test_a_scenario_switches_it_on_or_writes_its_own(self) -> None:
        """`ladder: {enabled: true}` keeps the built-in steps; `steps:` replaces them."""
        on = Settings.default().merged({"ladder": {"enabled": True}})
        assert on.ladder.enabled and len(on.ladder.steps) == 3
        own = Settings.default().merged(
            {"ladder": {"steps": [{"card": "red", "offset_wd": -1, "recipients": ["leader"]}]}}
        )
        assert [(s.card, s.offset_wd, s.recipients) for s in own.ladder.steps] == [
            ("red", -1, ("leader",))
        ]

    @pytest.mark.parametrize(
        ("steps", "message"),
        [
            (
                [{"card": "orange", "offset_wd": 0, "recipients": ["officer"]}],
                "steps[0].card: must be one of warning, yellow, red",
            ),
            (
                [{"card": "red", "offset_wd": 0, "recipients": ["mayor"]}],
                "steps[0].recipients: unknown recipient 'mayor'",
            ),
            ([{"card": "red", "offset_wd": 0, "recipients": []}], "at least one recipient"),
            (
                [{"card": "red", "offset_wd": 0, "recipients": ["head", "head"]}],
                "listed twice",
            ),
            (
                [{"card": "red", "offset_wd": 0, "recipients": "leader"}],
                "expected a list of recipients",
            ),
            (
                [
                    {"card": "warning", "offset_wd": 1, "recipients": ["officer"]},
                    {"card": "yellow", "offset_wd": 1, "recipients": ["officer"]},
                ],
                "steps[1].offset_wd: steps run in time order",
            ),
            (
                [
                    {"card": "red", "offset_wd": 1, "recipients": ["officer"]},
                    {"card": "warning", "offset_wd": 0, "recipients": ["officer"]},
                ],
                "steps[1].card: a ladder only escalates",
            ),
            (
                [{"card": "red", "offset_wd": "1", "recipients": ["officer"]}],
                "offset_wd",
            ),
            (
                [{"card": "red", "offset_wd": 1, "recipients": ["officer"], "to": ["x"]}],
                "extra fields",
            ),
        ],
    )
    def test_a_bad_ladder_is_refused_by_its_path(
        self, steps: list[dict[str, object]], message: str
    ) -> None:
        """Each problem names the step and the field."""
        with pytest.raises(SettingsError, match=re.escape(message)):
            Settings.default().merged({"ladder": {"steps": steps}})

    def test_an_unknown_ladder_key_is_refused(self) -> None:
        """A misspelt switch is an error, not a ladder silently off."""
        with pytest.raises(SettingsError, match=r"settings\.ladder\.enable: unknown setting"):
            Settings.default().merged({"ladder": {"enable": True}})

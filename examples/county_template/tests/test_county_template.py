"""The template county plugin: its scenarios pass, its channel sends texts, and its rules
need the plugin. Skipped, with the reason, where the template package is not installed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest

plugin = pytest.importorskip(
    "county_template.plugin",
    reason="the template plugin is not installed (pip install -e examples/county_template)",
)

from approvalflow.scenario.runner import load, run_paths, run_scenario  # noqa: E402

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"


@pytest.fixture
def texts() -> Iterator[list[tuple[str, str]]]:
    """Texts the SMS channel sends during the test, instead of logging them."""
    sent: list[tuple[str, str]] = []
    previous = plugin.set_gateway(lambda recipient, text: sent.append((recipient, text)))
    yield sent
    plugin.set_gateway(previous)


def test_every_template_scenario_passes() -> None:
    """Each scenario under scenarios/ passes with the plugin loaded."""
    results = run_paths([SCENARIOS])
    assert results
    assert [r.render() for r in results if not r.passed] == []


def test_the_scenarios_fail_without_the_plugin() -> None:
    """With `plugins:` stripped, the first plugin command is unknown and the story fails."""
    for path in sorted(SCENARIOS.glob("*.yaml")):
        result = run_scenario(attrs.evolve(load(path), plugins=()))
        assert not result.passed
        assert result.failure is not None
        assert result.failure.what.startswith("record_site_visit")


def test_the_sms_channel_sends_one_text_per_recipient(texts: list[tuple[str, str]]) -> None:
    """The site-visit notice reaches the leader as ``[P1] county_template.site_visit: ...``."""
    run_paths([SCENARIOS])
    assert ("li", "[P1] county_template.site_visit: visitor=投资方董事长") in texts

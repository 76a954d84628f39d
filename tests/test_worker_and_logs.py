"""The worker drops nothing without a word; the library logs through the host's logging, with
personal numbers masked; reports and `show` say what the store holds, one way."""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from builders import County
from hypothesis import given
from hypothesis import strategies as st
from test_cli import SCENARIO
from test_rule_sets import NEW, OLD, refused_without_change, republished

from approvalflow import InvalidTransition
from approvalflow.cli import main
from approvalflow.logs import _mask_every_shape, capture_logs, library_logger, mask_text
from approvalflow.stores import open_store

REPO_SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"


def run(argv: list[str], capsys: pytest.CaptureFixture[str], status: int = 0) -> tuple[str, str]:
    capsys.readouterr()
    assert main(argv) == status
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return out, err


@pytest.fixture
def filled(tmp_path: Path) -> str:
    (tmp_path / "story.yaml").write_text(SCENARIO, encoding="utf-8")
    url = f"sqlite:///{tmp_path / 'county.db'}"
    assert main(["scenario", "run", str(tmp_path / "story.yaml"), "--store", url]) == 0
    return url


def pending(url: str) -> list[str]:
    from datetime import UTC, datetime

    store = open_store(url, create=False)
    try:
        return [e.notice.kind for e in store.pending_notices(datetime.max.replace(tzinfo=UTC))]
    finally:
        store.close()


class TestWorkerKeepsNotices:
    def test_without_a_channel_fired_timers_notices_wait_in_the_outbox(
        self, filled: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """They used to be dropped: a channel installed later never got them."""
        before = pending(filled)
        _, err = run(["worker", "--store", filled, "--once"], capsys)
        assert "no channel plugin is loaded: notices stay in the outbox" in err
        after = pending(filled)
        assert len(after) > len(before) and "revoked" in after
        _, err = run(["worker", "--store", filled, "--once", "--plugin", "console"], capsys)
        assert f"0 timers fired, {len(after)} notices delivered" in err
        assert pending(filled) == []

    def test_notices_of_timers_it_fires_count_as_delivered(
        self, filled: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Notices sent inline were left out of the count."""
        waiting = len(pending(filled))
        _, err = run(["worker", "--store", filled, "--once", "--plugin", "console"], capsys)
        found = re.search(r"(\d+) timers fired, (\d+) notices delivered", err)
        assert found is not None
        fired, delivered = map(int, found.groups())
        assert fired > 0 and delivered > waiting
        assert pending(filled) == []


class TestWorkerSaysWhatItCannotFire:
    def test_a_countys_timers_without_its_plugin(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """They used to stay unfired without a word, even with -v."""
        url = f"sqlite:///{tmp_path / 'gaoqing.db'}"
        run(["scenario", "run", str(REPO_SCENARIOS / "gaoqing"), "--store", url], capsys)
        _, err = run(["worker", "--store", url, "--once", "--plugin", "console"], capsys)
        assert re.search(r"cannot fire \d+ timers? gaoqing\.visit \(", err)
        assert "no loaded plugin sets timers of kind 'gaoqing.visit'" in err
        # With the plugin they fire.
        _, err = run(["worker", "--store", url, "--once", "--plugin", "gaoqing"], capsys)
        assert "cannot fire" not in err

    def test_without_plugin_options_the_stores_record_is_used(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """The store records the plugins its projects were written with; the worker loads
        them (gaoqing's timers fire) when no --plugin is given."""
        url = f"sqlite:///{tmp_path / 'gaoqing.db'}"
        run(["scenario", "run", str(REPO_SCENARIOS / "gaoqing"), "--store", url], capsys)
        _, err = run(["worker", "--store", url, "--once"], capsys)
        assert "cannot fire" not in err
        found = re.search(r"(\d+) timers fired", err)
        assert found is not None and int(found.group(1)) > 0


class TestShowKeepsOverdue:
    def test_a_branch_stays_overdue_after_the_worker_fired_its_limit(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """`show` used to drop the limit once the overdue notice had gone out."""
        story = SCENARIO.replace(
            "{do: accept, project: P1, by: o_zj, args: {deficient: [site_photos]}}",
            "{do: accept, project: P1, by: o_zj}",
        ).replace("P1.approval.zj: deficient", "P1.approval.zj: accepted")
        (tmp_path / "story.yaml").write_text(story, encoding="utf-8")
        url = f"sqlite:///{tmp_path / 'county.db'}"
        run(["scenario", "run", str(tmp_path / "story.yaml"), "--store", url], capsys)
        project = run(["show", "--store", url], capsys)[0].split()[0]
        at = ["--at", "2026-03-13 10:00"]
        before, _ = run(["show", project, "--store", url, *at], capsys)
        assert f"{project}.approval.zj  2026-03-11 24:00  overdue by 2 wd" in before
        run(["worker", "--store", url, "--once"], capsys)
        after, _ = run(["show", project, "--store", url, *at], capsys)
        assert "branch_overdue" in after
        assert (
            f"{project}.approval.zj  2026-03-11 24:00  overdue by 2 wd (overdue notice sent)"
            in after
        )


class TestReportMetrics:
    def test_a_plugins_metrics_are_shown(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """`report metrics --plugin X` used to show the built-in metrics only."""
        url = f"sqlite:///{tmp_path / 'gaoqing.db'}"
        run(["scenario", "run", str(REPO_SCENARIOS / "gaoqing"), "--store", url], capsys)
        argv = ["report", "metrics", "--store", url, "--format", "json"]
        rows = json.loads(run([*argv, "--plugin", "gaoqing"], capsys)[0])
        plugin = {row["metric"]: row["value"] for row in rows if row["scope"] == "plugin"}
        assert {"gaoqing.chains", "gaoqing.units", "gaoqing.campaign"} <= set(plugin)
        table, _ = run(["report", "metrics", "--store", url, "--plugin", "gaoqing"], capsys)
        assert "gaoqing.chains" in table
        csv_text, _ = run([*argv[:-1], "csv", "--plugin", "gaoqing"], capsys)
        assert "gaoqing.units" in csv_text


class TestMigrateRulesCheckOrder:
    def test_the_state_is_checked_before_the_arguments(self) -> None:
        """WORKFLOW.md: InvalidTransition before argument errors (no reason given here)."""
        old = County(settings=OLD)
        old.to_decision("P1")
        old.do("convene", "P1", "chair", present=["chair", "m1", "m2", "m3"])
        new = republished(old, NEW)
        message = refused_without_change(new, InvalidTransition, "migrate_rules", "P1", "chair")
        assert "leading group meets" in message


class TestLibraryLogs:
    def test_nothing_reaches_stdout_when_the_host_configures_nothing(self) -> None:
        """structlog's default printed `[info] approvalflow.command_refused ...` to stdout."""
        code = textwrap.dedent(
            """\
            import sys
            sys.path.insert(0, "tests")
            from builders import County
            from approvalflow.errors import ApprovalflowError
            county = County()
            try:
                county.engine.execute("negotiate", "NOPE", "guo", {})
            except ApprovalflowError:
                pass
            from approvalflow.logs import library_logger
            library_logger().warning("approvalflow.test", phone="13812345678")
            """
        )
        done = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
            cwd=Path(__file__).resolve().parents[1],
        )
        assert done.stdout == "" and done.stderr == ""

    def test_the_hosts_logging_decides_and_numbers_are_masked(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        """One standard logging record, masked, with the fields attached."""
        with caplog.at_level(logging.INFO, logger="approvalflow"):
            library_logger().info("approvalflow.command_refused", applicant="13812345678")
        (record,) = [r for r in caplog.records if r.name == "approvalflow"]
        assert record.levelno == logging.INFO
        assert record.getMessage() == "approvalflow.command_refused applicant='138****5678'"
        assert record.approvalflow == {  # type: ignore[attr-defined]
            "event": "approvalflow.command_refused",
            "applicant": "138****5678",
        }

    def test_below_the_hosts_level_nothing_is_recorded(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        """The host's level filters the library's lines."""
        with caplog.at_level(logging.WARNING, logger="approvalflow"):
            library_logger().info("approvalflow.command_refused", applicant="x")
        assert [r for r in caplog.records if r.name == "approvalflow"] == []

    def test_capture_logs_sees_the_engines_events(self) -> None:
        """The test helper collects what the engine and plugins log."""
        county = County(plugins=["console"])
        county.to_decision()
        with capture_logs() as logs:
            county.approve_in_meeting()
        assert any(line["event"] == "approvalflow.notice" for line in logs)


_SEPARATORS = st.sampled_from(["", "-", " "])
_TEXT = st.text(alphabet="项目申请人电话：, abc", max_size=8)


def _digits(n: int) -> st.SearchStrategy[str]:
    return st.text(alphabet="0123456789", min_size=n, max_size=n)


@st.composite
def mobiles(draw: st.DrawFn) -> tuple[str, str]:
    """A mainland mobile number as people write it, and its middle four digits."""
    head = "1" + draw(st.sampled_from("3456789")) + draw(_digits(1))
    middle, tail = draw(_digits(4)), draw(_digits(4))
    sep = draw(_SEPARATORS)
    prefix = draw(st.sampled_from(["", "+86", "+86 ", "86", "0086", "+86-"]))
    return f"{prefix}{head}{sep}{middle}{sep}{tail}", middle


@st.composite
def id_numbers(draw: st.DrawFn) -> tuple[str, str]:
    """An 18- or 15-character resident identity number, maybe in groups, and its birth date."""
    area = draw(_digits(6))
    if draw(st.booleans()):
        birth = draw(_digits(8))
        tail = draw(_digits(3)) + draw(st.sampled_from("0123456789Xx"))
        sep = draw(_SEPARATORS)
        return f"{area}{sep}{birth[:4]}{birth[4:6]}{birth[6:]}{sep}{tail}", birth
    birth = draw(_digits(6))
    sep = draw(_SEPARATORS)
    return f"{area}{sep}{birth}{sep}{draw(_digits(3))}", birth


@st.composite
def landlines(draw: st.DrawFn) -> tuple[str, str]:
    area = "0" + draw(st.text(alphabet="123456789", min_size=2, max_size=3))
    number = draw(st.sampled_from("2345678")) + draw(_digits(6))
    shape = draw(st.sampled_from(["({a}){n}", "({a}) {n}", "（{a}）{n}", "{a}-{n}", "{a} {n}"]))
    return shape.format(a=area, n=number), number[:-4]


class TestMasking:
    @given(before=_TEXT, number=mobiles(), after=_TEXT)
    def test_mobile_numbers_in_every_written_form(
        self, before: str, number: tuple[str, str], after: str
    ) -> None:
        """With separators and +86/86/0086, anywhere in text."""
        written, _ = number
        masked = mask_text(f"{before}{written}{after}")
        assert "****" in masked and written not in masked
        assert masked.startswith(before) and masked.endswith(after)

    @given(before=_TEXT, number=id_numbers(), after=_TEXT)
    def test_identity_numbers_18_and_15_spaced_or_not(
        self, before: str, number: tuple[str, str], after: str
    ) -> None:
        """The birth date (the middle) never survives."""
        written, birth = number
        masked = mask_text(f"{before} {written} {after}")
        assert written not in masked and "*" * len(birth) in masked

    @given(before=_TEXT, number=landlines(), after=_TEXT)
    def test_landlines_with_an_area_code(
        self, before: str, number: tuple[str, str], after: str
    ) -> None:
        """With a hyphen, a space, or the area code in brackets."""
        written, _ = number
        masked = mask_text(f"{before} {written} {after}")
        assert written not in masked and "****" in masked

    @pytest.mark.parametrize(
        "text",
        [
            "138-1234-5678",
            "+86 138 1234 5678",
            "110101900307123",
            "110101 19900307 123X",
            "(0351)1234567",
        ],
    )
    def test_the_examples_of_the_issue(self, text: str) -> None:
        """The forms that used to pass unmasked."""
        assert "****" in mask_text(text)

    @pytest.mark.parametrize(
        "text", ["2026-03-11 24:00", "投资 1.5亿", "P1 v12", "张三", "rules 2026-2"]
    )
    def test_dates_amounts_and_names_are_left_alone(self, text: str) -> None:
        """Masking does not touch what is not a number of a person; names are not masked."""
        assert mask_text(text) == text

    @given(
        before=_TEXT,
        number=st.one_of(mobiles(), id_numbers(), landlines()).map(lambda found: found[0]),
        after=_TEXT,
        noise=st.text(alphabet=st.sampled_from("0123456789０１X -+()（）a中"), max_size=30),
    )
    def test_the_digit_count_shortcut_masks_exactly_what_the_patterns_would(
        self, before: str, number: str, after: str, noise: str
    ) -> None:
        """A text with fewer than 10 digits is passed through without the four searches: no
        shape of number fits in fewer (the shortest, a landline, has 10), so the shortcut
        leaves nothing unmasked that the searches catch."""
        for text in (f"{before}{number}{after}", noise, f"{noise} {number}"):
            assert mask_text(text) == _mask_every_shape(text)


class TestTheCliLeavesLoggingAsItFoundIt:
    def test_after_main_the_hosts_configuration_is_back(
        self, filled: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A host (or a test) calling `main()` keeps its own logging afterwards."""
        logger = logging.getLogger("approvalflow")
        before = (logger.level, logger.propagate, list(logger.handlers))
        run(["-v", "show", "--store", filled], capsys)
        assert (logger.level, logger.propagate, list(logger.handlers)) == before

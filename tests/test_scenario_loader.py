"""The scenario loader: YAML files (SCENARIOS.md) into typed steps, or one precise error."""

from __future__ import annotations

import copy
import pickle
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from approvalflow.scenario import (
    LOCAL_TIMEZONE,
    MAX_FILE_BYTES,
    ActorSpec,
    AdvanceStep,
    CommandStep,
    ExpectStep,
    RulesStep,
    Scenario,
    ScenarioFileError,
    find_scenario_files,
    is_scenario_file,
    load_scenario,
    loads_scenario,
)

COMMANDS = [
    "create",
    "negotiate",
    "submit_pre_review",
    "opinion",
    "supply",
    "convene",
    "vote",
    "close_meeting",
    "sign",
    "apply",
    "accept",
    "return",
    "approve",
    "reject",
    "accept_commitment",
    "verify",
    "urge",
    "report_funds",
    "start_construction",
    "start_production",
    "reach_target",
    "delegate",
    "withdraw",
    "terminate",
]
ERROR_CODES = [
    "NotAuthorized",
    "InvalidTransition",
    "UnknownProject",
    "DuplicateProject",
    "InvalidCommand",
    "KeyMaterialMissing",
    "UnknownMaterial",
    "AlreadyVoted",
    "ConcurrencyConflict",
    "CalendarUnknown",
]

# SCENARIOS.md: the examples live beside the contract, outside the project.
SHARED_SCENARIOS = Path(__file__).resolve().parents[2] / "shared" / "scenarios"
needs_shared = pytest.mark.skipif(
    not SHARED_SCENARIOS.is_dir(),
    reason=f"{SHARED_SCENARIOS} is absent (a clone without ../shared); the examples live there",
)

# Eleven lines; steps appended after it start at line 12 and are step 2 onwards.
HEADER = """\
scenario: test
start: 2026-07-06 09:00
actors:
  zhao: {roles: [recruiter]}
  fuyuan: {roles: [applicant]}
  li: {roles: [leader]}
  wu: {roles: [officer], department: sthj}
steps:
  - create: P1
    by: zhao
    project: {name: 铝合金, investment: 1.5亿, applicant: fuyuan, leader: li, team: light_alloy}
"""

# A file using every feature of the format; the base of the mutation tests.
FULL = """\
scenario: Missing non-key material is accepted and supplied in time
plugins: [jiangle]
settings: {time_limit_wd: {zj: 5}, pre_review: {deadline_wd: 5}}
start: 2026-07-06 09:00
actors:
  zhao: {name: 赵, roles: [recruiter], teams: [new_materials]}
  fuyuan: {roles: [applicant]}
  li: {roles: [leader]}
  wu: {roles: [officer], department: sthj}
  chair: {roles: [chair, member], recuse: [P2]}
steps:
  - create: P1
    by: zhao
    project: {name: 10万吨新型铝合金, investment: 1.5亿, industry: light_alloy,
              applicant: fuyuan, leader: li, department: gxj, team: new_materials}
  - do: negotiate
    project: P1
    by: zhao
    command_id: c-1
  - do: accept
    project: P1
    by: wu
    args: {deficient: [eia_report]}
    error: KeyMaterialMissing
  - advance: 3 wd
  - advance: 2026-07-20 24:00
  - expect:
      P1: approval
      P1.approval.sthj: deficient
      notices:
        - {to: li, kind: overdue, project: P1}
      no_notices: [{kind: pre_review_notice}]
      points: {new_materials: 7}
      metrics: {start_rate: 0.5, funds_rate: null, stage_days: {approval: {avg: 2, max: 3}}}
      deadline: {P1.approval.sthj: 2026-07-20 24:00, P1.approval.sthj.supply: 2026-08-03}
  - create: P2
    by: zhao
"""


def load(text: str, path: str = "t.yaml") -> Scenario:
    return loads_scenario(text, path, known_commands=COMMANDS, known_error_codes=ERROR_CODES)


def with_steps(steps: str) -> str:
    return HEADER + steps


def error_of(text: str) -> ScenarioFileError:
    with pytest.raises(ScenarioFileError) as caught:
        load(text)
    return caught.value


def shanghai(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=LOCAL_TIMEZONE)


class TestSharedExamples:
    """The two examples of SCENARIOS.md load as they are."""

    @needs_shared
    def test_lead_to_effective_loads_with_its_steps_and_lines(self) -> None:
        """All 37 steps load, numbered from 1, each with the line where it starts."""
        scenario = load_scenario(
            SHARED_SCENARIOS / "lead_to_effective.yaml",
            known_commands=COMMANDS,
            known_error_codes=ERROR_CODES,
        )
        assert scenario.name == "富远新型铝材产业园 goes from a lead to target output"
        assert scenario.start == shanghai(2026, 3, 2, 9, 0)
        assert len(scenario.steps) == 37
        assert [step.index for step in scenario.steps] == list(range(1, 38))
        first = scenario.steps[0]
        assert isinstance(first, CommandStep)
        assert (first.command, first.project, first.by, first.line) == ("create", "FY-1", "guo", 20)
        assert first.args["investment"] == "15亿"
        assert first.args["applicant"] == "fuyuan"
        assert [step.line for step in scenario.steps[1:4]] == [24, 25, 29]
        advance = scenario.steps[30]
        assert advance == AdvanceStep(index=31, line=75, amount=10, unit="days", until=None)

    @needs_shared
    def test_lead_to_effective_has_its_actors(self) -> None:
        """Actors keep their names, roles, departments and lines, in file order."""
        scenario = load_scenario(
            str(SHARED_SCENARIOS / "lead_to_effective.yaml"),
            known_commands=COMMANDS,
            known_error_codes=ERROR_CODES,
        )
        assert len(scenario.actors) == 15
        assert list(scenario.actors)[:3] == ["guo", "fuyuan", "huang"]
        assert scenario.actors["chair"] == ActorSpec(
            id="chair",
            name="领导小组组长",
            roles=("chair", "member"),
            department=None,
            teams=None,
            recuse=(),
            line=7,
        )
        assert scenario.actors["o_yj"].department == "yj"

    @needs_shared
    def test_deadlines_at_24_00_are_the_next_midnight_in_shanghai(self) -> None:
        """`2026-03-05 24:00` is 2026-03-06 00:00+08:00, an aware datetime, with its line."""
        scenario = load_scenario(
            SHARED_SCENARIOS / "lead_to_effective.yaml",
            known_commands=COMMANDS,
            known_error_codes=ERROR_CODES,
        )
        expect = scenario.steps[3]
        assert isinstance(expect, ExpectStep)
        (deadline,) = expect.deadlines
        assert deadline.key == "FY-1.pre_review"
        assert deadline.value == shanghai(2026, 3, 6, 0, 0)
        assert deadline.value.utcoffset() == timedelta(hours=8)
        assert deadline.line == 31
        approval = scenario.steps[17]
        assert isinstance(approval, ExpectStep)
        assert {d.key: (d.value, d.line) for d in approval.deadlines} == {
            "FY-1.approval.fgw": (shanghai(2026, 3, 10), 52),
            "FY-1.approval.zj": (shanghai(2026, 3, 12), 52),
            "FY-1.approval.yj": (shanghai(2026, 3, 12), 53),
            "FY-1.approval.zrzy": (shanghai(2026, 3, 17), 53),
            "FY-1.approval.sthj": (shanghai(2026, 3, 17), 54),
        }

    @needs_shared
    def test_lead_to_effective_expectations_keep_their_types(self) -> None:
        """Metrics stay numbers as written (ints, floats) and points ints, each with its line."""
        scenario = load_scenario(
            SHARED_SCENARIOS / "lead_to_effective.yaml",
            known_commands=COMMANDS,
            known_error_codes=ERROR_CODES,
        )
        metrics_step = scenario.steps[33]
        assert isinstance(metrics_step, ExpectStep)
        assert {m.key: m.value for m in metrics_step.metrics} == {
            "signed_count": 1,
            "signed_amount": 1500000000,
            "start_rate": 1.0,
            "funds_in_place": 500000000,
            "funds_rate": 0.333,
        }
        last = scenario.steps[-1]
        assert isinstance(last, ExpectStep)
        assert [(p.key, p.value, p.line) for p in last.points] == [("light_alloy", 45, 85)]
        assert [(s.key, s.value, s.line) for s in last.states] == [("FY-1", "effective", 84)]

    @needs_shared
    def test_rejected_and_withdrawn_loads_with_errors_and_notices(self) -> None:
        """The second example: 15 steps, expected error codes, notices as mappings, lines."""
        scenario = load_scenario(
            SHARED_SCENARIOS / "rejected_and_withdrawn.yaml",
            known_commands=COMMANDS,
            known_error_codes=ERROR_CODES,
        )
        assert len(scenario.steps) == 15
        assert len(scenario.actors) == 9
        assert scenario.actors["daiban"].name == "代办员"
        refused = scenario.steps[5]
        assert isinstance(refused, CommandStep)
        assert (refused.line, refused.error, refused.args) == (
            22,
            "InvalidTransition",
            {"verdict": "pass"},
        )
        withdraw = scenario.steps[11]
        assert isinstance(withdraw, CommandStep)
        assert (withdraw.command, withdraw.by, withdraw.error) == (
            "withdraw",
            "daiban",
            "NotAuthorized",
        )
        expect = scenario.steps[8]
        assert isinstance(expect, ExpectStep)
        assert [(n.key, n.value, n.line) for n in expect.notices] == [
            ("notices[1]", {"to": "ent_a", "kind": "rejected", "project": "A-1"}, 32),
            ("notices[2]", {"to": "guo", "kind": "rejected", "project": "A-1"}, 33),
            ("notices[3]", {"to": "huang", "kind": "rejected", "project": "A-1"}, 34),
        ]

    @needs_shared
    def test_find_scenario_files_finds_both_examples(self) -> None:
        """The shared folder holds exactly the two example scenarios, found in sorted order."""
        assert find_scenario_files([SHARED_SCENARIOS]) == [
            SHARED_SCENARIOS / "lead_to_effective.yaml",
            SHARED_SCENARIOS / "rejected_and_withdrawn.yaml",
        ]


class TestFullFile:
    """A file that uses every feature of the format."""

    def test_every_part_is_typed(self) -> None:
        """Plugins, settings, actors, each step kind and each expectation kind come out typed."""
        scenario = load(FULL)
        assert scenario.path == "t.yaml"
        assert scenario.plugins == ("jiangle",)
        assert scenario.settings == {"time_limit_wd": {"zj": 5}, "pre_review": {"deadline_wd": 5}}
        assert scenario.actors["zhao"].teams == ("new_materials",)
        assert scenario.actors["chair"].recuse == ("P2",)
        negotiate, refused = scenario.steps[1], scenario.steps[2]
        assert isinstance(negotiate, CommandStep) and isinstance(refused, CommandStep)
        assert negotiate.command_id == "c-1"
        assert negotiate.args == {}
        assert refused.args == {"deficient": ["eia_report"]}
        assert refused.error == "KeyMaterialMissing"
        assert scenario.steps[3] == AdvanceStep(index=4, line=25, amount=3, unit="wd", until=None)
        assert scenario.steps[4] == AdvanceStep(
            index=5, line=26, amount=0, unit=None, until=shanghai(2026, 7, 21)
        )
        expect = scenario.steps[5]
        assert isinstance(expect, ExpectStep)
        assert [(s.key, s.value, s.line) for s in expect.states] == [
            ("P1", "approval", 28),
            ("P1.approval.sthj", "deficient", 29),
        ]
        assert [(n.key, n.value) for n in expect.no_notices] == [
            ("no_notices[1]", {"kind": "pre_review_notice"})
        ]
        assert {m.key: m.value for m in expect.metrics} == {
            "start_rate": 0.5,
            "funds_rate": None,
            "stage_days": {"approval": {"avg": 2, "max": 3}},
        }
        assert {d.key: d.value for d in expect.deadlines} == {
            "P1.approval.sthj": shanghai(2026, 7, 21),
            "P1.approval.sthj.supply": shanghai(2026, 8, 3),
        }

    def test_model_objects_are_frozen(self) -> None:
        """Steps and scenarios are immutable values: assigning a field raises."""
        scenario = load(FULL)
        with pytest.raises(AttributeError):
            scenario.name = "other"  # type: ignore[misc]
        with pytest.raises(AttributeError):
            scenario.steps[0].line = 1  # type: ignore[misc]

    def test_a_create_step_without_project_fields_has_empty_args(self) -> None:
        """`create: P2` alone is a valid step whose args are `{}` (the engine judges them)."""
        last = load(FULL).steps[-1]
        assert isinstance(last, CommandStep)
        assert (last.command, last.project, last.args) == ("create", "P2", {})


class TestScalars:
    """The loader types scalars itself instead of PyYAML's YAML 1.1 guesses."""

    def test_dates_stay_text_outside_time_fields(self) -> None:
        """`2026-07-20` in settings or arguments stays the text written, not a `date`."""
        scenario = load(
            HEADER.replace("scenario: test", "scenario: test\nsettings: {holiday: 2026-07-20}")
        )
        assert scenario.settings == {"holiday": "2026-07-20"}

    @pytest.mark.parametrize("word", ["no", "yes", "on", "off", "No", "YES", "y", "n"])
    def test_yes_no_on_off_stay_text(self, word: str) -> None:
        """YAML 1.1 booleans other than true/false are plain words."""
        scenario = load(
            with_steps(f"  - {{do: negotiate, project: P1, by: zhao, args: {{x: {word}}}}}\n")
        )
        step = scenario.steps[1]
        assert isinstance(step, CommandStep)
        assert step.args == {"x": word}

    def test_only_true_and_false_are_booleans(self) -> None:
        """`true`/`false` (any common case) become booleans."""
        step = load(
            with_steps(
                "  - {do: verify, project: P1, by: wu, args: {a: true, b: False, c: TRUE}}\n"
            )
        ).steps[1]
        assert isinstance(step, CommandStep)
        assert step.args == {"a": True, "b": False, "c": True}

    def test_leading_zero_is_not_octal(self) -> None:
        """`0600` stays the text `0600`: never 384, never silently 600."""
        step = load(
            with_steps("  - {do: negotiate, project: P1, by: zhao, args: {room: 0600}}\n")
        ).steps[1]
        assert isinstance(step, CommandStep)
        assert step.args == {"room": "0600"}

    def test_numbers_and_amounts_are_left_as_written(self) -> None:
        """Ints stay ints, `1.5e8` a float, `5亿` and quoted numbers text; nulls are None."""
        step = load(
            with_steps(
                "  - do: report_funds\n"
                "    project: P1\n"
                "    by: zhao\n"
                "    args: {a: 5亿, b: 150000000, c: 1.5e8, d: '42', e: ~, f: null, g: -3,"
                " h: 1_000, i: '1:30', j: 1:30, k: .inf}\n"
            )
        ).steps[1]
        assert isinstance(step, CommandStep)
        assert step.args == {
            "a": "5亿",
            "b": 150000000,
            "c": 1.5e8,
            "d": "42",
            "e": None,
            "f": None,
            "g": -3,
            "h": "1_000",
            "i": "1:30",
            "j": "1:30",
            "k": ".inf",
        }

    def test_keys_stay_exactly_as_written(self) -> None:
        """Mapping keys are names: `yes`, `1` and `null` as keys stay text."""
        scenario = load(
            HEADER.replace("scenario: test", "scenario: test\nsettings: {yes: 1, 1: 2, null: 3}")
        )
        assert scenario.settings == {"yes": 1, "1": 2, "null": 3}

    def test_numeric_ids_are_their_text(self) -> None:
        """An unquoted id such as `2026` is the id '2026' wherever a name is expected."""
        scenario = load(
            "scenario: 2026\nstart: 2026-07-06\nactors: {7: {roles: [recruiter]}}\n"
            "steps:\n  - {create: 2026, by: 7}\n  - expect: {2026: lead}\n"
        )
        assert scenario.name == "2026"
        step = scenario.steps[0]
        assert isinstance(step, CommandStep)
        assert (step.project, step.by) == ("2026", "7")

    def test_overlong_numbers_are_refused(self) -> None:
        """A 5000-digit number is an error with its line, not Python's int-size ValueError."""
        error = error_of(
            with_steps(f"  - {{do: negotiate, project: P1, by: zhao, args: {{n: {'9' * 5000}}}}}\n")
        )
        assert (error.line, error.key) == (12, "$.steps[2].args.n")

    @given(day=st.dates(min_value=date(1, 1, 1), max_value=date(9999, 12, 31)))
    @settings(deadline=None, max_examples=50)
    def test_any_date_in_settings_stays_text(self, day: date) -> None:
        """Whatever the date, an unquoted ISO date in settings loads as its own text."""
        text = HEADER.replace(
            "scenario: test", f"scenario: test\nsettings: {{d: {day.isoformat()}}}"
        )
        assert load(text).settings == {"d": day.isoformat()}


class TestTimes:
    """`start`, `advance` to a time and `deadline` values are aware Asia/Shanghai datetimes."""

    @pytest.mark.parametrize(
        ("written", "expected"),
        [
            ("2026-07-06 09:00", (2026, 7, 6, 9, 0)),
            ("2026-07-06 9:05", (2026, 7, 6, 9, 5)),
            ("2026-07-06", (2026, 7, 6, 0, 0)),
            ("2026-07-06 24:00", (2026, 7, 7, 0, 0)),
            ("2026-12-31 24:00", (2027, 1, 1, 0, 0)),
            ("'2026-07-06 09:00'", (2026, 7, 6, 9, 0)),
        ],
    )
    def test_accepted_forms(self, written: str, expected: tuple[int, ...]) -> None:
        """Each documented form (quoted or not) gives the local time meant."""
        scenario = load(HEADER.replace("2026-07-06 09:00", written))
        assert scenario.start == shanghai(*expected)
        assert scenario.start.tzinfo is LOCAL_TIMEZONE

    @pytest.mark.parametrize(
        "written",
        [
            "2026-02-30",
            "2026-07-06 25:00",
            "2026-07-06 24:30",
            "2026-07-06T09:00",
            "9:00",
            "20260706",
            "2026-07-06 09:00+08:00",
            "[2026]",
            "9999-12-31 24:00",
            "2026-7-6",
        ],
    )
    def test_bad_start_is_an_error_on_its_line(self, written: str) -> None:
        """An impossible or undocumented time names `start` and line 2."""
        error = error_of(HEADER.replace("2026-07-06 09:00", written))
        assert (error.line, error.key) == (2, "$.start")

    def test_bad_deadline_value_names_its_key(self) -> None:
        """A deadline that is not a time points at its own key inside `deadline`."""
        error = error_of(with_steps("  - expect:\n      deadline: {P1.pre_review: soon}\n"))
        assert (error.line, error.key) == (13, "$.steps[2].expect.deadline['P1.pre_review']")


class TestAdvance:
    """`advance: N wd | N days | N hours | <local time>`."""

    @pytest.mark.parametrize(
        ("written", "amount", "unit"),
        [
            ("3 wd", 3, "wd"),
            ("0 wd", 0, "wd"),
            ("1 day", 1, "days"),
            ("10 days", 10, "days"),
            ("1 hour", 1, "hours"),
            ("36 hours", 36, "hours"),
            ("2wd", 2, "wd"),
        ],
    )
    def test_amounts(self, written: str, amount: int, unit: str) -> None:
        """Counted forms give amount and unit (singular accepted) and no `until`."""
        step = load(with_steps(f"  - advance: {written}\n")).steps[1]
        assert step == AdvanceStep(index=2, line=12, amount=amount, unit=unit, until=None)  # type: ignore[arg-type]

    def test_a_local_time_moves_the_clock_to_it(self) -> None:
        """A time gives `until` and no unit."""
        step = load(with_steps("  - advance: 2026-07-08 10:30\n")).steps[1]
        assert step == AdvanceStep(
            index=2, line=12, amount=0, unit=None, until=shanghai(2026, 7, 8, 10, 30)
        )

    @pytest.mark.parametrize(
        "written",
        ["3", "-1 wd", "3 weeks", "1.5 days", "soon", "[3, wd]", "{n: 3}", "9999999 days", "''"],
    )
    def test_bad_advance_is_an_error(self, written: str) -> None:
        """Anything else names `advance` on the step's line."""
        error = error_of(with_steps(f"  - advance: {written}\n"))
        assert (error.line, error.key) == (12, "$.steps[2].advance")


class TestYamlSafety:
    """Hostile or broken files fail fast with a clear error and construct nothing."""

    def test_yaml_bomb_is_refused_fast(self) -> None:
        """Nested aliases (billion laughs) are refused at the first anchor, in well under 1 s."""
        rows = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
        rows += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
        text = "scenario: bomb\nsettings:\n" + "".join(f"  {row}\n" for row in rows)
        began = time.perf_counter()
        error = error_of(text)
        assert time.perf_counter() - began < 10  # a guard against blow-up, not a speed claim
        assert (error.line, error.key) == (3, "$")
        assert "anchors" in error.message

    def test_an_alias_alone_is_refused(self) -> None:
        """An alias to an undefined anchor is reported as an alias, with its line."""
        error = error_of(with_steps("  - {do: negotiate, project: P1, by: *zhao}\n"))
        assert error.line == 12
        assert "aliases" in error.message

    @pytest.mark.parametrize(
        "value",
        [
            "!!python/object/apply:os.system ['echo hacked']",
            "!!binary aGk=",
            "!!str 0600",
            "!custom x",
            "!!set {a, b}",
        ],
    )
    def test_tags_are_refused(self, value: str) -> None:
        """No tag is honoured, so a file can never construct a Python object."""
        error = error_of(
            with_steps(f"  - {{do: negotiate, project: P1, by: zhao, args: {{x: {value}}}}}\n")
        )
        assert (error.line, error.key) == (12, "$")
        assert "tags" in error.message

    def test_deep_nesting_is_refused(self) -> None:
        """Ten thousand nested lists are an error, not a RecursionError."""
        error = error_of("scenario: deep\nsettings: {x: " + "[" * 10_000 + "]" * 10_000 + "}\n")
        assert error.line == 2
        assert "nested" in error.message

    def test_two_mebibyte_text_is_refused(self) -> None:
        """Text over 1 MiB is refused before parsing, naming no line."""
        error = error_of(FULL + "#" * (2 * 1024 * 1024) + "\n")
        assert (error.line, error.key) == (None, "$")
        assert "1 MiB" in error.message

    def test_two_mebibyte_file_is_refused(self, tmp_path: Path) -> None:
        """A file over 1 MiB is refused having read only just over 1 MiB of it."""
        big = tmp_path / "big.yaml"
        big.write_text(FULL + ("# padding\n" * (2 * 1024 * 1024 // 10)), encoding="utf-8")
        with pytest.raises(ScenarioFileError) as caught:
            load_scenario(big, known_commands=COMMANDS, known_error_codes=ERROR_CODES)
        assert str(caught.value) == f"{big}: $: the file is larger than 1 MiB"

    def test_a_file_of_exactly_the_limit_is_read(self, tmp_path: Path) -> None:
        """The limit is inclusive: a valid file of exactly 1 MiB loads."""
        exact = tmp_path / "exact.yaml"
        body = FULL.encode("utf-8")
        exact.write_bytes(body + b"#" * (MAX_FILE_BYTES - len(body) - 1) + b"\n")
        assert load_scenario(exact, known_commands=COMMANDS, known_error_codes=ERROR_CODES).name

    def test_binary_file_is_refused(self, tmp_path: Path) -> None:
        """Non-UTF-8 bytes are an error naming the line where the first bad byte is."""
        binary = tmp_path / "bin.yaml"
        binary.write_bytes(b"scenario: x\nstart: \xff\xfe\x00\x01\n")
        with pytest.raises(ScenarioFileError) as caught:
            load_scenario(binary, known_commands=COMMANDS, known_error_codes=ERROR_CODES)
        assert (caught.value.line, caught.value.key) == (2, "$")
        assert "UTF-8" in caught.value.message

    def test_control_characters_are_refused(self) -> None:
        """A NUL in otherwise valid text is an error on its line."""
        error = error_of("scenario: x\nstart: \x00\n")
        assert (error.line, error.key) == (2, "$")
        assert "control character #x0000" in error.message

    @pytest.mark.parametrize("text", ["", "   \n\n", "# only a comment\n", "---\n", "\ufeff"])
    def test_empty_file_is_refused(self, text: str) -> None:
        """Nothing but whitespace, comments or a document marker is 'the file is empty'."""
        error = error_of(text)
        assert (error.line, error.key, error.message) == (None, "$", "the file is empty")

    def test_syntax_error_names_its_line(self) -> None:
        """A YAML syntax error points at the line PyYAML found it on."""
        error = error_of("scenario: x\nstart: 2026-07-06\nactors: {a: [b}\n")
        assert (error.line, error.key) == (3, "$")
        assert error.message.startswith("not valid YAML")

    def test_two_documents_are_refused(self) -> None:
        """A second `---` document is an error at its line."""
        error = error_of(HEADER + "---\nscenario: again\n")
        assert (error.line, error.key) == (12, "$")

    @pytest.mark.parametrize(
        ("text", "described"), [("- a\n- b\n", "a list"), ("just words\n", "text")]
    )
    def test_top_level_must_be_a_mapping(self, text: str, described: str) -> None:
        """A list or a scalar at the top is an error that says what was found."""
        error = error_of(text)
        assert (error.line, error.key) == (1, "$")
        assert described in error.message

    def test_duplicate_keys_are_refused(self) -> None:
        """A key given twice (PyYAML would keep the last silently) names both lines."""
        error = error_of(
            with_steps("  - do: negotiate\n    project: P1\n    by: zhao\n    by: li\n")
        )
        assert (error.line, error.key) == (15, "$.steps[2].by")
        assert "first at line 14" in error.message

    def test_complex_keys_are_refused(self) -> None:
        """A list used as a key is an error at that key."""
        error = error_of("scenario: x\n? [a, b]\n: c\n")
        assert (error.line, error.key) == (2, "$")

    def test_merge_keys_are_not_special(self) -> None:
        """`<<` is an ordinary (here unknown) key, never a merge."""
        error = error_of(HEADER + "<<: {x: 1}\n")
        assert (error.line, error.key) == (12, "$['<<']")


class TestTopLevel:
    """Required, optional and unknown top-level keys."""

    @pytest.mark.parametrize("key", ["scenario", "start", "actors", "steps"])
    def test_missing_required_key(self, key: str) -> None:
        """Dropping a required key names it, at the top of the file."""
        document = yaml.safe_load(FULL)
        del document[key]
        error = error_of(yaml.safe_dump(document, allow_unicode=True, sort_keys=False))
        assert (error.line, error.key) == (1, f"$.{key}")
        assert error.message.startswith("missing")

    def test_unknown_key_is_named_with_a_suggestion(self) -> None:
        """A misspelt top-level key names itself, its line, and the closest valid key."""
        error = error_of(HEADER + "setings: {}\n")
        assert (error.line, error.key) == (12, "$.setings")
        assert "did you mean 'settings'?" in error.message

    @pytest.mark.parametrize(
        ("replacement", "key"),
        [
            ("scenario: [a]", "$.scenario"),
            ("scenario: ''", "$.scenario"),
            ("scenario: test\nplugins: jiangle", "$.plugins"),
            ("scenario: test\nplugins: [jiangle, [x]]", "$.plugins[2]"),
            ("scenario: test\nsettings: [a]", "$.settings"),
        ],
    )
    def test_wrong_types(self, replacement: str, key: str) -> None:
        """A name that is not text, plugins that are not a list of names, settings not a mapping."""
        error = error_of(HEADER.replace("scenario: test", replacement))
        assert error.key == key
        assert error.line in (1, 2)

    def test_empty_optional_keys_mean_their_defaults(self) -> None:
        """`plugins:` and `settings:` left empty are `()` and `{}`."""
        scenario = load(HEADER.replace("scenario: test", "scenario: test\nplugins:\nsettings:"))
        assert (scenario.plugins, scenario.settings) == ((), {})

    @pytest.mark.parametrize(
        ("steps", "line"), [("steps: []\n", 8), ("steps: {a: 1}\n", 8), ("steps:\n", 8)]
    )
    def test_steps_must_be_a_non_empty_list(self, steps: str, line: int) -> None:
        """No steps, or steps that are not a list, is an error at `steps`."""
        error = error_of(HEADER.split("steps:")[0] + steps)
        assert (error.line, error.key) == (line, "$.steps")


class TestActors:
    """The `actors:` mapping."""

    @pytest.mark.parametrize(
        ("actor", "key", "words"),
        [
            ("{name: 赵}", "$.actors.zhao.roles", "missing"),
            ("{roles: []}", "$.actors.zhao.roles", "at least one role"),
            ("{roles: recruiter}", "$.actors.zhao.roles", "must be a list"),
            ("{roles: [recruiter, {a: 1}]}", "$.actors.zhao.roles[2]", "a role name"),
            ("{roles: [recruiter], rolse: [x]}", "$.actors.zhao.rolse", "did you mean 'roles'?"),
            ("{roles: [recruiter], teams: energy}", "$.actors.zhao.teams", "must be a list"),
            ("{roles: [recruiter], department: [a]}", "$.actors.zhao.department", "department"),
            ("", "$.actors.zhao", "must be a mapping"),
        ],
    )
    def test_bad_actor(self, actor: str, key: str, words: str) -> None:
        """Each malformed actor names the offending key on the actor's line."""
        error = error_of(HEADER.replace("zhao: {roles: [recruiter]}", f"zhao: {actor}"))
        assert (error.line, error.key) == (4, key)
        assert words in error.message

    def test_actors_must_be_a_mapping(self) -> None:
        """A list of actors is an error at `actors`."""
        error = error_of(
            "scenario: t\nstart: 2026-07-06\nactors: [zhao]\nsteps: [{advance: 1 wd}]\n"
        )
        assert (error.line, error.key) == (3, "$.actors")

    def test_recuse_must_name_a_created_project(self) -> None:
        """`recuse` lists project ids (WORKFLOW.md); one no step creates is an error."""
        error = error_of(
            HEADER.replace("li: {roles: [leader]}", "li: {roles: [member], recuse: [P1, P9]}")
        )
        assert (error.line, error.key) == (6, "$.actors.li.recuse[2]")
        assert "'P9'" in error.message

    def test_teams_absent_is_none_and_listed_is_a_tuple(self) -> None:
        """No `teams` (serves every team) is distinct from a given list."""
        scenario = load(
            HEADER.replace("li: {roles: [leader]}", "li: {roles: [leader], teams: [a, b]}")
        )
        assert scenario.actors["zhao"].teams is None
        assert scenario.actors["li"].teams == ("a", "b")


class TestCommandSteps:
    """`create:` and `do:` steps."""

    def test_a_step_without_by_is_an_error(self) -> None:
        """SCENARIOS.md: a command step that names no `by` is an error in the file."""
        error = error_of(with_steps("  - do: negotiate\n    project: P1\n"))
        assert (error.line, error.key) == (12, "$.steps[2].by")
        assert "by" in error.message

    def test_a_create_without_by_is_an_error(self) -> None:
        """The rule holds for create steps too."""
        error = error_of(HEADER.replace("    by: zhao\n", ""))
        assert (error.line, error.key) == (9, "$.steps[1].by")

    def test_by_must_be_an_actor(self) -> None:
        """An unknown actor in `by` is named, with the closest actor suggested."""
        error = error_of(with_steps("  - do: negotiate\n    project: P1\n    by: zhoa\n"))
        assert (error.line, error.key) == (14, "$.steps[2].by")
        assert error.message == "'zhoa' is not one of the actors (did you mean 'zhao'?)"

    @pytest.mark.parametrize("field", ["applicant", "leader", "agent"])
    def test_create_fields_that_name_actors_must_be_actors(self, field: str) -> None:
        """`applicant`, `leader` and `agent` of a new project must be declared actors."""
        error = error_of(
            with_steps(f"  - create: P2\n    by: zhao\n    project:\n      {field}: ghost\n")
        )
        assert (error.line, error.key) == (15, f"$.steps[2].project.{field}")

    def test_unknown_command_is_named_with_a_suggestion(self) -> None:
        """A command the engine does not know is an error, with the closest one suggested."""
        error = error_of(with_steps("  - {do: negotiat, project: P1, by: zhao}\n"))
        assert (error.line, error.key) == (12, "$.steps[2].do")
        assert "did you mean 'negotiate'?" in error.message

    def test_do_create_is_refused(self) -> None:
        """Creating goes through `create: <id>`, so `do: create` is pointed at it."""
        error = error_of(with_steps("  - {do: create, project: P2, by: zhao}\n"))
        assert (error.line, error.key) == (12, "$.steps[2].do")
        assert "create: <id>" in error.message

    def test_unknown_error_code_is_an_error(self) -> None:
        """`error:` must name one of the engine's codes; the message lists them."""
        error = error_of(
            with_steps("  - {do: negotiate, project: P1, by: zhao, error: NotAuthorised}\n")
        )
        assert (error.line, error.key) == (12, "$.steps[2].error")
        assert "did you mean 'NotAuthorized'?" in error.message
        assert "CalendarUnknown" in error.message

    def test_a_step_of_no_known_kind(self) -> None:
        """A step that is none of create/do/advance/expect says so."""
        error = error_of(with_steps("  - {project: P1, by: zhao}\n"))
        assert (error.line, error.key) == (12, "$.steps[2]")
        assert "create:, do:, advance:, expect:, rules:" in error.message

    def test_a_rules_step_holds_a_settings_mapping(self) -> None:
        """`rules:` carries the new settings as written; anything but a mapping is an error."""
        scenario = load(with_steps("  - rules: {rules_version: '2', extension_wd: 5}\n"))
        step = scenario.steps[-1]
        assert isinstance(step, RulesStep)
        assert step.settings == {"rules_version": "2", "extension_wd": 5}
        error = error_of(with_steps("  - rules: [extension_wd]\n"))
        assert (error.line, error.key) == (12, "$.steps[2].rules")

    def test_a_misspelt_step_kind_is_named(self) -> None:
        """`crate: P2` is reported as an unknown key with the right word suggested."""
        error = error_of(with_steps("  - {crate: P2, by: zhao}\n"))
        assert error.key == "$.steps[2].crate"
        assert "did you mean 'create'?" in error.message

    def test_a_step_of_two_kinds(self) -> None:
        """`do` and `advance` in one step is an error at the second."""
        error = error_of(with_steps("  - do: negotiate\n    advance: 1 wd\n"))
        assert (error.line, error.key) == (13, "$.steps[2].advance")

    @pytest.mark.parametrize(
        ("step", "key"),
        [
            ("{do: negotiate, project: P1, by: zhao, arsg: {}}", "$.steps[2].arsg"),
            ("{do: negotiate, project: P1, by: zhao, args: [1]}", "$.steps[2].args"),
            ("{create: P2, by: zhao, args: {}}", "$.steps[2].args"),
            ("{create: P2, by: zhao, project: P2}", "$.steps[2].project"),
            ("{advance: 1 wd, by: zhao}", "$.steps[2].by"),
            ("{do: negotiate, by: zhao}", "$.steps[2].project"),
            ("{do: negotiate, project: [P1], by: zhao}", "$.steps[2].project"),
            ("{do: negotiate, project: P1, by: zhao, command_id: [1]}", "$.steps[2].command_id"),
            ("[do, negotiate]", "$.steps[2]"),
        ],
    )
    def test_bad_keys_and_types(self, step: str, key: str) -> None:
        """Unknown keys in a step and values of the wrong type name the key, on its line."""
        error = error_of(with_steps(f"  - {step}\n"))
        assert (error.line, error.key) == (12, key)

    def test_a_command_on_a_project_not_created_yet(self) -> None:
        """A do step on a project no earlier step created can only be `error: UnknownProject`."""
        error = error_of(
            with_steps("  - {do: negotiate, project: P2, by: zhao}\n  - {create: P2, by: zhao}\n")
        )
        assert (error.line, error.key) == (12, "$.steps[2].project")
        allowed = load(
            with_steps("  - {do: negotiate, project: P2, by: zhao, error: UnknownProject}\n")
        )
        assert isinstance(allowed.steps[1], CommandStep)

    def test_creating_a_project_twice(self) -> None:
        """A second create of the same id can only be `error: DuplicateProject`."""
        error = error_of(with_steps("  - {create: P1, by: zhao}\n"))
        assert (error.line, error.key) == (12, "$.steps[2].create")
        assert "step 1" in error.message
        load(with_steps("  - {create: P1, by: zhao, error: DuplicateProject}\n"))

    def test_a_failed_create_does_not_create(self) -> None:
        """After a create that must fail, the project still does not exist for later steps."""
        error = error_of(
            with_steps(
                "  - {create: P2, by: li, error: NotAuthorized}\n"
                "  - {do: negotiate, project: P2, by: zhao}\n"
            )
        )
        assert (error.line, error.key) == (13, "$.steps[3].project")


class TestExpectSteps:
    """`expect:` steps."""

    @pytest.mark.parametrize(
        ("checks", "key", "words"),
        [
            ("{deadlines: {}}", "$.steps[2].expect.deadlines", "did you mean 'deadline'?"),
            ("{P2: lead}", "$.steps[2].expect.P2", "neither a project"),
            ("{P1.: lead}", "$.steps[2].expect['P1.']", "neither a project"),
            ("{P1: [lead]}", "$.steps[2].expect.P1", "state path"),
            ("{points: {energy: 1.5}}", "$.steps[2].expect.points.energy", "whole number"),
            ("{points: {energy: true}}", "$.steps[2].expect.points.energy", "whole number"),
            ("{points: [1]}", "$.steps[2].expect.points", "mapping"),
            ("{notices: {kind: x}}", "$.steps[2].expect.notices", "list"),
            ("{notices: [kind]}", "$.steps[2].expect.notices[1]", "mapping"),
            ("{no_notices: [{kind: a}, 3]}", "$.steps[2].expect.no_notices[2]", "mapping"),
            ("{events: {type: copied}}", "$.steps[2].expect.events", "list"),
            ("{events: [copied]}", "$.steps[2].expect.events[1]", "mapping"),
            ("{event: []}", "$.steps[2].expect.event", "did you mean 'events'?"),
            ("{metrics: {start_rate: [high]}}", "$.steps[2].expect.metrics.start_rate", "metric"),
            (
                "{metrics: {stage_days: {a: {avg: [x]}}}}",
                "$.steps[2].expect.metrics.stage_days.a.avg",
                "metric",
            ),
            ("{deadline: {P1: 2026-07-20}}", "$.steps[2].expect.deadline.P1", "deadline key"),
            (
                "{deadline: {P2.pre_review: 2026-07-20}}",
                "$.steps[2].expect.deadline['P2.pre_review']",
                "deadline key",
            ),
            ("[P1]", "$.steps[2].expect", "mapping"),
            ("", "$.steps[2].expect", "mapping"),
        ],
    )
    def test_bad_checks(self, checks: str, key: str, words: str) -> None:
        """Each malformed check names its key on the step's line."""
        error = error_of(with_steps(f"  - expect: {checks}\n"))
        assert (error.line, error.key) == (12, key)
        assert words in error.message

    def test_expected_events_are_mappings_with_their_lines(self) -> None:
        """`events:` gives one expectation per entry, keyed `events[i]`, on its own line."""
        step = load(
            with_steps(
                "  - expect:\n      events:\n        - {type: copied, by: zhao}\n"
                "        - {type: branch_entrusted, on_behalf_of: null}\n"
            )
        ).steps[1]
        assert isinstance(step, ExpectStep)
        assert [(e.key, e.value, e.line) for e in step.events] == [
            ("events[1]", {"type": "copied", "by": "zhao"}, 14),
            ("events[2]", {"type": "branch_entrusted", "on_behalf_of": None}, 15),
        ]

    def test_state_keys_need_a_project_created_earlier(self) -> None:
        """A project created only after the expect step is not yet known to it."""
        error = error_of(with_steps("  - expect:\n      P2: lead\n  - {create: P2, by: zhao}\n"))
        assert (error.line, error.key) == (13, "$.steps[2].expect.P2")

    def test_project_ids_with_dots_match_the_longest_id(self) -> None:
        """With projects `P1` and `P1.x`, `P1.x.approval` belongs to `P1.x`; both are accepted."""
        scenario = load(
            with_steps("  - {create: P1.x, by: zhao}\n  - expect: {P1.x: lead, P1.x.approval: b}\n")
        )
        expect = scenario.steps[2]
        assert isinstance(expect, ExpectStep)
        assert [s.key for s in expect.states] == ["P1.x", "P1.x.approval"]

    def test_an_empty_expect_is_allowed(self) -> None:
        """`expect: {}` checks nothing (it only closes the notice window)."""
        step = load(with_steps("  - expect: {}\n")).steps[1]
        assert step == ExpectStep(
            index=2,
            line=12,
            states=(),
            notices=(),
            no_notices=(),
            points=(),
            metrics=(),
            deadlines=(),
        )

    def test_each_check_has_its_own_line(self) -> None:
        """Checks written on separate lines carry those lines."""
        step = load(
            with_steps(
                "  - expect:\n      points:\n        a: 1\n        b: 2\n"
                "      metrics:\n        m: 0.5\n"
            )
        ).steps[1]
        assert isinstance(step, ExpectStep)
        assert [(p.key, p.line) for p in step.points] == [("a", 14), ("b", 15)]
        assert [(m.key, m.line) for m in step.metrics] == [("m", 17)]


class TestScenarioFileError:
    """The one error type."""

    def test_str_names_file_line_key_and_message(self) -> None:
        """`str()` is `path:line: key: message`."""
        error = ScenarioFileError("a.yaml", 3, "$.steps[1].by", "missing")
        assert str(error) == "a.yaml:3: $.steps[1].by: missing"
        assert isinstance(error, ValueError)

    def test_without_a_line_the_line_is_left_out(self) -> None:
        """A whole-file problem reads `path: key: message`."""
        assert (
            str(ScenarioFileError("a.yaml", None, "$", "the file is empty"))
            == "a.yaml: $: the file is empty"
        )

    def test_it_survives_pickling(self) -> None:
        """The error crosses process boundaries (pytest-xdist) intact."""
        error = pickle.loads(pickle.dumps(ScenarioFileError("a.yaml", 3, "$.start", "bad")))
        assert (error.path, error.line, error.key, error.message) == ("a.yaml", 3, "$.start", "bad")

    def test_loader_errors_carry_the_given_path(self) -> None:
        """The text loader reports under the name it was given."""
        with pytest.raises(ScenarioFileError) as caught:
            loads_scenario("", "mine.yaml", known_commands=COMMANDS, known_error_codes=ERROR_CODES)
        assert caught.value.path == "mine.yaml"


class TestLoadScenarioFile:
    """Reading from disk."""

    def test_loads_from_path_objects_and_strings(self, tmp_path: Path) -> None:
        """A file loads the same given as `Path` or `str`, and records that path."""
        file = tmp_path / "s.yaml"
        file.write_text(FULL, encoding="utf-8")
        from_path = load_scenario(file, known_commands=COMMANDS, known_error_codes=ERROR_CODES)
        from_str = load_scenario(str(file), known_commands=COMMANDS, known_error_codes=ERROR_CODES)
        assert from_path == from_str
        assert from_path.path == str(file)

    def test_a_byte_order_mark_is_accepted(self, tmp_path: Path) -> None:
        """Windows editors' UTF-8 BOM does not disturb the loader or the line numbers."""
        file = tmp_path / "bom.yaml"
        file.write_bytes(b"\xef\xbb\xbf" + FULL.encode("utf-8"))
        scenario = load_scenario(file, known_commands=COMMANDS, known_error_codes=ERROR_CODES)
        assert scenario.steps[0].line == 12

    def test_a_missing_file_is_a_scenario_file_error(self, tmp_path: Path) -> None:
        """An unreadable file is reported like any other invalid scenario file."""
        with pytest.raises(ScenarioFileError) as caught:
            load_scenario(
                tmp_path / "none.yaml", known_commands=COMMANDS, known_error_codes=ERROR_CODES
            )
        assert (caught.value.line, caught.value.key) == (None, "$")
        assert "cannot read" in caught.value.message


class TestIsScenarioFile:
    """Cheap detection of scenario files among other YAML."""

    @pytest.mark.parametrize(
        ("name", "text", "expected"),
        [
            ("a.yaml", "scenario: x\n", True),
            ("a.yml", "# comment\nscenario: x\n", True),
            ("a.YAML", "scenario: x\n", True),
            ("a.yaml", "other: {scenario: 1}\nscenario: x\n", True),
            ("a.yaml", "{steps: [], scenario: x}\n", True),
            ("a.yaml", "scenario: x\nsteps: [unclosed\n", True),
            ("a.txt", "scenario: x\n", False),
            ("a.yaml", "other: {scenario: 1}\n", False),
            ("a.yaml", "name: scenario\n", False),
            ("a.yaml", "- scenario: x\n", False),
            ("a.yaml", "scenario\n", False),
            ("a.yaml", "", False),
            ("a.yaml", "a: [unclosed\nscenario: x\n", False),
            ("a.yaml", "a: 1\n---\nscenario: x\n", False),
        ],
    )
    def test_detection(self, tmp_path: Path, name: str, text: str, expected: bool) -> None:
        """Only a top-level `scenario` key in a .yaml/.yml file counts."""
        file = tmp_path / name
        file.write_text(text, encoding="utf-8")
        assert is_scenario_file(file) is expected

    def test_never_raises(self, tmp_path: Path) -> None:
        """Binary content, directories and missing files are simply `False`."""
        binary = tmp_path / "bin.yaml"
        binary.write_bytes(b"\xff\xfe\x00 scenario: \x01" * 100)
        unreadable = tmp_path / "folder.yaml"
        unreadable.mkdir()
        for path in (binary, unreadable, tmp_path / "missing.yaml"):
            assert is_scenario_file(path) is False

    def test_deep_nesting_is_rejected_fast(self, tmp_path: Path) -> None:
        """100,000 open brackets before `scenario:` cost well under a second (no quadratic scan)."""
        deep = tmp_path / "deep.yaml"
        deep.write_text("a: " + "[" * 100_000 + "\nscenario: x\n", encoding="utf-8")
        began = time.perf_counter()
        assert is_scenario_file(deep) is False
        assert time.perf_counter() - began < 10  # a guard against blow-up, not a speed claim

    def test_a_scenario_with_bad_bytes_is_still_a_scenario_file(self, tmp_path: Path) -> None:
        """Invalid UTF-8 or a control character does not hide a scenario: the loader reports it."""
        broken = tmp_path / "broken.yaml"
        broken.write_bytes(b"scenario: x\nstart: \xff\x00\n")
        assert is_scenario_file(broken) is True
        with pytest.raises(ScenarioFileError):
            load_scenario(broken, known_commands=COMMANDS, known_error_codes=ERROR_CODES)

    def test_a_huge_non_scenario_file_is_read_only_up_to_the_cap(self, tmp_path: Path) -> None:
        """A 3 MiB host YAML with no `scenario:` is rejected quickly."""
        file = tmp_path / "big.yaml"
        file.write_text("items:\n" + "  - {a: 1}\n" * 300_000, encoding="utf-8")
        began = time.perf_counter()
        assert is_scenario_file(file) is False
        assert time.perf_counter() - began < 10


class TestFindScenarioFiles:
    """Collecting scenario files from files and directories."""

    def test_walks_directories_sorted_and_deduplicated(self, tmp_path: Path) -> None:
        """Nested scenarios are found once each, sorted; other YAML and hidden folders are not."""
        (tmp_path / "b").mkdir()
        (tmp_path / "a" / "deep").mkdir(parents=True)
        (tmp_path / ".hidden").mkdir()
        for relative in ("b/two.yml", "a/deep/one.yaml", "a/zero.yaml", ".hidden/x.yaml"):
            (tmp_path / relative).write_text("scenario: x\n", encoding="utf-8")
        (tmp_path / "a" / "config.yaml").write_text("key: value\n", encoding="utf-8")
        (tmp_path / "a" / "notes.txt").write_text("scenario: x\n", encoding="utf-8")
        found = find_scenario_files([tmp_path, tmp_path / "a" / "zero.yaml", str(tmp_path / "b")])
        assert found == [
            tmp_path / "a/deep/one.yaml",
            tmp_path / "a/zero.yaml",
            tmp_path / "b/two.yml",
        ]

    def test_a_named_file_that_is_not_a_scenario_is_left_out(self, tmp_path: Path) -> None:
        """Only scenario files are returned, even when named directly."""
        other = tmp_path / "other.yaml"
        other.write_text("key: value\n", encoding="utf-8")
        assert find_scenario_files([other]) == []

    def test_a_missing_path_raises(self, tmp_path: Path) -> None:
        """A path that does not exist is a FileNotFoundError naming it."""
        with pytest.raises(FileNotFoundError, match="nowhere"):
            find_scenario_files([tmp_path / "nowhere"])


# -- mutation testing ----------------------------------------------------------------------

BASE_TREE: dict[str, Any] = yaml.safe_load(FULL)


def _all_paths(value: object, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    paths = [path] if path else []
    if isinstance(value, dict):
        for key, inner in value.items():
            paths += _all_paths(inner, (*path, key))
    elif isinstance(value, list):
        for i, inner in enumerate(value):
            paths += _all_paths(inner, (*path, i))
    return paths


ALL_PATHS = _all_paths(BASE_TREE)

yaml_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=20)
    | st.dates()
    | st.sampled_from(["no", "on", "0600", "2026-07-20", "2026-07-20 24:00", "3 wd", "P1", "zhao"])
)
yaml_values = st.recursive(
    yaml_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
yaml_punctuation = st.text(
    alphabet=st.sampled_from(list(":-[]{}&*!|>'\"#%@`, \n\t?~0123456789abcP.\u00a0中\x00")),
    max_size=30,
)


def _outcome(text: str) -> None:
    """Load ``text``; only success or ScenarioFileError are acceptable outcomes."""
    try:
        load(text)
    except ScenarioFileError as error:
        assert error.key.startswith("$")
        assert error.line is None or error.line >= 1


class TestMutations:
    """Whatever is done to a valid file, the loader answers with a model or ScenarioFileError."""

    @given(path=st.sampled_from(ALL_PATHS))
    @settings(deadline=None)
    def test_dropping_any_key_or_item(self, path: tuple[Any, ...]) -> None:
        """Removing any one key or list item never escapes as another exception."""
        tree = copy.deepcopy(BASE_TREE)
        parent = tree
        for part in path[:-1]:
            parent = parent[part]
        del parent[path[-1]]
        _outcome(yaml.safe_dump(tree, allow_unicode=True, sort_keys=False))

    @given(path=st.sampled_from(ALL_PATHS), value=yaml_values)
    @settings(deadline=None)
    def test_replacing_any_value(self, path: tuple[Any, ...], value: object) -> None:
        """A value replaced by a random scalar, list or mapping loads or is a ScenarioFileError."""
        tree = copy.deepcopy(BASE_TREE)
        parent = tree
        for part in path[:-1]:
            parent = parent[part]
        parent[path[-1]] = value
        _outcome(yaml.safe_dump(tree, allow_unicode=True, sort_keys=False))

    @given(position=st.integers(0, len(FULL)), junk=yaml_punctuation)
    @settings(deadline=None)
    def test_inserting_random_text(self, position: int, junk: str) -> None:
        """Random YAML-ish text spliced in anywhere never escapes as another exception."""
        _outcome(FULL[:position] + junk + FULL[position:])

    @given(start=st.integers(0, len(FULL)), length=st.integers(1, 80), junk=yaml_punctuation)
    @settings(deadline=None)
    def test_replacing_a_slice(self, start: int, length: int, junk: str) -> None:
        """Cutting out any slice (maybe putting junk there) never escapes as another exception."""
        _outcome(FULL[:start] + junk + FULL[start + length :])

    @given(text=st.text(max_size=200))
    @settings(deadline=None)
    def test_arbitrary_text(self, text: str) -> None:
        """Any text at all, surrogates included, loads or is a ScenarioFileError."""
        _outcome(text)

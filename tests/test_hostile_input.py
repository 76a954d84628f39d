"""Hostile or careless input gets a specific error, bounded work, and nothing stored; personal
numbers in logs are masked."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import Any

import pytest
import structlog
from builders import PROJECT_FIELDS, County
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from approvalflow import (
    ApprovalflowError,
    CalendarOutOfRange,
    Engine,
    InvalidCommand,
    NotAuthorized,
    UnknownProject,
    parse_amount,
)
from approvalflow.calendar import SHANGHAI
from approvalflow.logs import mask_personal_data, mask_text
from approvalflow.money import MAX_YUAN


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


# Every public read that names one project, and one that chooses projects, months, moments
# or limits: each is called with what a careless or hostile caller might pass.
ONE_PROJECT_READS = ("project", "history", "deadlines", "holdups", "allowed_commands")
CHOOSING_READS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("projects", {}),
    ("points", {}),
    ("points_by_milestone", {"month": None}),
    ("leaderboard", {"month": "2026-03"}),
    ("signed_in", {"month": "2026-03"}),
    ("metric_inputs", {}),
    ("metrics", {}),
    ("rating_metrics", {}),
    ("team_metrics", {}),
    ("team_metric_inputs", {}),
    ("late_items", {}),
)


class TestEveryReadChecksItsInputs:
    """The reads pass the door ``execute`` does (D297): a malformed input is an
    ``InvalidCommand`` naming it (never a ``TypeError``, an ``AttributeError`` or a store's
    error), a well-formed id of no project an ``UnknownProject``."""

    @pytest.mark.usefixtures("every_store")
    @pytest.mark.parametrize("read", ONE_PROJECT_READS)
    @pytest.mark.parametrize("project_id", [["P1"], None, 7, "", "P1\n", "a b", "x" * 101])
    def test_a_malformed_project_id_is_invalid(self, read: str, project_id: object) -> None:
        county = County()
        county.create("P1")
        with pytest.raises(InvalidCommand, match="project id"):
            getattr(county.engine, read)(project_id)

    @pytest.mark.usefixtures("every_store")
    @pytest.mark.parametrize("read", ONE_PROJECT_READS)
    def test_an_id_of_no_project_is_unknown(self, read: str) -> None:
        county = County()
        county.create("P1")
        with pytest.raises(UnknownProject):
            getattr(county.engine, read)("P2")
        getattr(county.engine, read)("P1")

    @pytest.mark.usefixtures("every_store")
    @pytest.mark.parametrize(("read", "arguments"), CHOOSING_READS)
    @pytest.mark.parametrize("ids", ["P1", [["P1"]], [None], b"P1"])
    def test_a_choice_of_projects_is_a_collection_of_ids(
        self, read: str, arguments: dict[str, Any], ids: object
    ) -> None:
        """One text would be read letter by letter: refused, as a list holding a non-id is."""
        county = County()
        county.create("P1")
        with pytest.raises(InvalidCommand, match="project"):
            getattr(county.engine, read)(ids=ids, **arguments)
        getattr(county.engine, read)(ids=["P1"], **arguments)
        with pytest.raises(InvalidCommand, match="project"):
            county.engine.project_names(ids)  # type: ignore[arg-type]

    @pytest.mark.parametrize("month", ["2026-3", "2026-13", ["2026-03"], 202603, "March"])
    def test_a_month_is_yyyy_mm(self, month: object) -> None:
        engine = County().engine
        for read in ("leaderboard", "signed_in"):
            with pytest.raises(InvalidCommand, match="YYYY-MM"):
                getattr(engine, read)(month)
        for read in ("points", "metrics", "rating_metrics", "team_metrics", "metric_inputs"):
            with pytest.raises(InvalidCommand, match="YYYY-MM"):
                getattr(engine, read)(month=month)

    @pytest.mark.parametrize("now", ["2026-03-02", datetime(2026, 3, 2), 0])
    def test_a_moment_has_its_time_zone(self, now: object) -> None:
        engine = County().engine
        for read in (engine.late_items, engine.late_summary):
            with pytest.raises(InvalidCommand, match="time zone"):
                read(now)  # type: ignore[arg-type]
        with pytest.raises(InvalidCommand, match="time zone"):
            engine.tasks("guo", now)  # type: ignore[arg-type]

    @pytest.mark.parametrize("limit", [-1, True, "3", 2.5])
    def test_a_limit_is_a_whole_number(self, limit: object) -> None:
        engine = County().engine
        with pytest.raises(InvalidCommand, match="limit"):
            engine.late_summary(None, limit)  # type: ignore[arg-type]
        with pytest.raises(InvalidCommand, match="limit"):
            engine.done("guo", limit)  # type: ignore[arg-type]


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


# -- money ----------------------------------------------------------------------------------------

_UNITS = {"": 1, "元": 1, "万": 10_000, "亿": 100_000_000}


def _grouped(number: int) -> str:
    return f"{number:,}"


@st.composite
def written_amounts(draw: st.DrawFn) -> tuple[str, int]:
    """An amount as the grammar allows it to be written, with its value in yuan."""
    unit = draw(st.sampled_from(sorted(_UNITS)))
    scale = _UNITS[unit]
    decimals = draw(st.integers(0, {1: 0, 10_000: 4, 100_000_000: 8}[scale]))
    yuan = draw(st.integers(0, MAX_YUAN))
    yuan -= yuan % (scale // 10**decimals)  # a whole number of yuan in that many decimals
    whole, part = divmod(yuan, scale)
    integer = _grouped(whole) if draw(st.booleans()) else str(whole)
    fraction = str(part * 10**decimals // scale).zfill(decimals) if decimals else ""
    spaces = draw(st.sampled_from(["", " "]))
    text = integer + (f".{fraction}" if fraction else "") + spaces + unit
    return text, yuan


def _in_grammar(text: str) -> bool:
    """The grammar of docs/concepts.md, checked without the parser's regular expression."""
    body = text.strip(" ")
    for unit in ("元", "万", "亿"):
        if body.endswith(unit):
            body = body[: -len(unit)].rstrip(" ")
            break
    integer, dot, fraction = body.partition(".")
    if dot and (not fraction or not fraction.isascii() or not fraction.isdigit()):
        return False
    groups = integer.split(",")
    if not all(group.isascii() and group.isdigit() for group in groups):
        return False
    return len(groups) == 1 or (
        1 <= len(groups[0]) <= 3 and all(len(group) == 3 for group in groups[1:])
    )


class TestMoneyGrammar:
    @pytest.mark.parametrize(
        ("text", "yuan"),
        [
            ("15亿", 1_500_000_000),
            ("4.6亿", 460_000_000),
            ("600万", 6_000_000),
            ("1,500,000元", 1_500_000),
            ("15,000万", 150_000_000),
            ("1500000", 1_500_000),
            (" 8000 万 ", 80_000_000),
            ("10000000亿", MAX_YUAN),
        ],
    )
    def test_the_written_forms_are_read(self, text: str, yuan: int) -> None:
        assert parse_amount(text) == yuan

    @pytest.mark.parametrize(
        ("text", "reason"),
        [
            ("1,5亿", "groups of three"),  # a European decimal comma: not 15亿
            ("12,3", "groups of three"),
            ("1,50,0万", "groups of three"),
            ("1,000,00元", "groups of three"),
            (",500万", "groups of three"),
            ("1_000_000", "underscores"),
            ("1.5e8", "exponent"),
            ("1e1000000", "exponent"),
            ("-5万", "negative"),
            ("１５亿", "ASCII digits"),
            ("十五亿", "ASCII digits"),
            ("1.5.0万", "one decimal point"),
            ("5亿元", "not an amount"),
            ("", "empty"),
            ("1.00001万", "whole number of yuan"),
            ("10000000.00000001亿", "larger than any project"),
            ("9" * 65, "longer than"),
        ],
    )
    def test_anything_else_is_refused_with_the_reason(self, text: str, reason: str) -> None:
        with pytest.raises(InvalidCommand, match=re.escape(reason)):
            parse_amount(text, argument="investment")

    @pytest.mark.parametrize(
        "value",
        [
            pytest.param(10**5000, id="10**5000"),
            pytest.param(-(10**5000), id="-10**5000"),
            MAX_YUAN + 1,
            1e300,
            -1,
            True,
        ],
    )
    def test_numbers_are_bounded(self, value: object) -> None:
        with pytest.raises(InvalidCommand, match="investment"):
            parse_amount(value, argument="investment")

    @given(written_amounts())
    def test_every_form_of_the_grammar_reads_as_its_value(self, case: tuple[str, int]) -> None:
        text, yuan = case
        assert parse_amount(text) == yuan

    @given(st.text(alphabet="0123456789,.,_ eE-+万亿元十１", max_size=14))
    def test_text_outside_the_grammar_is_refused(self, text: str) -> None:
        """Any text is either in the grammar (and read) or refused: nothing is guessed."""
        try:
            parse_amount(text)
        except InvalidCommand as error:
            assert "not an amount" in error.message or "yuan" in error.message
        else:
            assert _in_grammar(text), text


# -- the command's envelope and arguments, on every store ---------------------------------------


def _stored(engine: Engine) -> dict[str, int]:
    return {p: len(engine.history(p)) for p in engine.project_ids()}


@pytest.fixture
def county(every_store: str) -> Iterator[County]:
    yield County()


class TestEveryInputIsRefusedBeforeTheStore:
    """Each value once escaped `Engine.execute` as something other than an ApprovalflowError
    (or reached a store that could not hold it). Now: a library error, nothing stored."""

    @pytest.mark.parametrize(
        ("fields", "error", "match"),
        [
            ({"investment": "1e1000000"}, InvalidCommand, "exponent"),  # decimal.Overflow
            ({"investment": 10**5000}, InvalidCommand, "64-bit"),  # ValueError in the hash
            ({"investment": float("nan")}, InvalidCommand, "finite"),
            ({"name": "富远\ud800铝业"}, InvalidCommand, "surrogate"),  # UnicodeEncodeError
            ({"name": "富远\n铝业"}, InvalidCommand, "one line"),
            ({"name": "\x1b[2J\x1b[31m富远"}, InvalidCommand, "escape"),
            ({"name": "富远\u202e业铝"}, InvalidCommand, "bidirectional"),
            ({"name": "富远\x00"}, InvalidCommand, "control"),
            ({"name": "长" * 201}, InvalidCommand, "longer than 200"),
            ({"industry": "light_alloy\n"}, InvalidCommand, "one line"),
            ({"industry": [[[[[[[[[[["deep"]]]]]]]]]]]}, InvalidCommand, "deep"),
            ({"applicant": "huang"}, InvalidCommand, "applicant role"),
            ({"project_code": "2026-140527-30-03-012345\n"}, InvalidCommand, "project code"),
        ],
    )
    def test_bad_project_fields(
        self, county: County, fields: dict[str, Any], error: type[Exception], match: str
    ) -> None:
        with pytest.raises(error, match=match):
            county.create(**fields)
        assert county.engine.project_ids() == []

    def test_a_project_id_with_a_trailing_newline_is_no_second_project(
        self, county: County
    ) -> None:
        """`$` matched before a final newline: "P1\\n" was a second P1."""
        county.create("P1")
        with pytest.raises(InvalidCommand, match="project id"):
            county.create("P1\n")
        with pytest.raises(InvalidCommand, match="project id"):
            county.do("negotiate", "P1\n", "guo")
        assert county.engine.project_ids() == ["P1"]

    @pytest.mark.parametrize(
        ("project", "by", "args", "command_id", "error", "match"),
        [
            (["P1"], "guo", {}, None, InvalidCommand, "project id"),  # TypeError: unhashable
            ({"P1": 1}, "guo", {}, None, InvalidCommand, "project id"),
            ("P1", "guo\ud800", {}, None, NotAuthorized, "surrogate"),
            ("P1", "g" * 101, {}, None, NotAuthorized, "longer than 100"),
            ("P1", "guo", ["materials"], None, InvalidCommand, "mapping"),
            ("P1", "guo", {1: "x"}, None, InvalidCommand, "argument names must be text"),
            ("P1", "guo", {"x\n": 1}, None, InvalidCommand, "one line"),
            ("P1", "guo", {"amount": 10**5000}, None, InvalidCommand, "64-bit"),
            ("P1", "guo", {"until": date(9999, 12, 31)}, None, InvalidCommand, "2199"),
            ("P1", "guo", {"at": datetime(1, 1, 1)}, None, InvalidCommand, "1990"),
            ("P1", "guo", {"x": {1, 2}}, None, InvalidCommand, "not set"),
            ("P1", "guo", {"x": b"bytes"}, None, InvalidCommand, "not bytes"),
            ("P1", "guo", {"x": ["a"] * 10_001}, None, InvalidCommand, "10000 values"),
            ("P1", "guo", {"x": "长" * 20_001}, None, InvalidCommand, "longer than 20000"),
            ("P1", "guo", {}, 7, InvalidCommand, "command id must be text"),
            ("P1", "guo", {}, "c\x00", InvalidCommand, "control character"),
            ("P1", "guo", {}, "c" * 100_000, InvalidCommand, "longer than 200"),
            ("P1", "guo", {}, " ", InvalidCommand, "empty"),
            ("P1", "guo", {}, "c\ud800", InvalidCommand, "surrogate"),
        ],
    )
    def test_bad_envelopes_and_arguments(
        self,
        county: County,
        project: Any,
        by: Any,
        args: Any,
        command_id: Any,
        error: type[Exception],
        match: str,
    ) -> None:
        county.create()
        before = _stored(county.engine)
        with pytest.raises(error, match=match):
            county.engine.execute("negotiate", project, by, args, command_id=command_id)
        assert _stored(county.engine) == before
        assert county.stage() == "lead"

    def test_arguments_nested_past_any_stack_are_refused(self, county: County) -> None:
        """A RecursionError in hashing or storing once escaped; now the depth is bounded."""
        county.create()
        nested: Any = "x"
        for _ in range(100_000):
            nested = [nested]
        with pytest.raises(InvalidCommand, match="deep"):
            county.do("negotiate", "P1", "guo", extra=nested)
        assert county.stage() == "lead"

    @pytest.mark.parametrize("command", [["negotiate"], "negotiate\n", "x" * 101, 7])
    def test_bad_command_names(self, county: County, command: Any) -> None:
        county.create()
        with pytest.raises(InvalidCommand, match="command"):
            county.engine.execute(command, "P1", "guo")
        assert county.stage() == "lead"

    def test_free_text_may_run_over_lines_but_never_hold_an_escape(self, county: County) -> None:
        county.create()
        with pytest.raises(InvalidCommand, match="escape"):
            county.do("withdraw", "P1", "fuyuan", reason="资金\x1b]0;owned\x07不到位")
        assert county.stage() == "lead"
        county.do("withdraw", "P1", "fuyuan", reason="资金不到位:\n一、融资未落实\n二、\t其他")
        assert county.stage() == "withdrawn"

    def test_a_date_argument_past_the_calendar_is_refused(self) -> None:
        """`until: 9999-12-31` once overflowed the date type (OverflowError)."""
        county = County()
        county.to_approval()
        county.do("accept", "P1", "o_fgw")
        for until in ("9999-12-31", "2200-01-01"):
            with pytest.raises(InvalidCommand, match="2199"):
                county.do("pause_clock", "P1", "o_fgw", reason="hearing", until=until)
        assert county.branch("fgw") == "accepted"

    def test_a_deadline_past_the_calendar_is_a_library_error(self) -> None:
        """A deadline after 2199 once raised ValueError out of the engine."""
        county = County(start=datetime(2199, 12, 30, 9, 0, tzinfo=SHANGHAI))
        county.create()
        county.do("negotiate", "P1", "guo")
        with pytest.raises(CalendarOutOfRange, match="2199"):
            county.do("submit_pre_review", "P1", "guo", materials=[])
        assert county.stage() == "negotiating"

    def test_funds_in_place_are_bounded(self) -> None:
        county = County()
        county.to_signed()
        county.do("report_funds", "P1", "guo", amount=MAX_YUAN)
        with pytest.raises(InvalidCommand, match="funds in place"):
            county.do("report_funds", "P1", "guo", amount=1)
        assert county.engine.project("P1").funds == MAX_YUAN


# -- hypothesis: whatever comes in, a library error or a whole command --------------------------

_NASTY = st.sampled_from(
    [
        "\ud800",
        "\udfff",
        "\x00",
        "\x1b",
        "\x1b[31m",
        "\x9b",
        "\n",
        "\r",
        "\t",
        "\u202e",
        "\u2028",
        "\u2066",
        "\x7f",
        "\ufeff",
        "长",
        "P1",
        " ",
        "'",
        '"',
        "%s",
        "\\",
    ]
)
_TEXT = st.one_of(
    st.text(max_size=30),
    st.lists(st.one_of(_NASTY, st.text(max_size=3)), max_size=8).map("".join),
    st.text(max_size=3).map(lambda s: s * 10_000),
)
_NUMBERS = st.one_of(
    st.integers(),
    st.integers(min_value=2**62, max_value=2**70),
    st.just(5000).map(lambda digits: 10**digits),
    st.floats(),
    st.decimals(allow_nan=False, allow_infinity=False).map(str),
    st.sampled_from(["1e1000000", "1,5亿", "12,3", "1,50,0万", "-0", "9" * 40 + "亿"]),
)
_DATES = st.one_of(
    st.dates(),
    st.datetimes(),
    st.dates().map(date.isoformat),
    st.sampled_from(["9999-12-31", "2200-01-01", "0001-01-01", "2026-02-30", "2026-3-1"]),
)
_SCALARS = st.one_of(st.none(), st.booleans(), _TEXT, _NUMBERS, _DATES)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(_TEXT, inner, max_size=4)),
    max_leaves=12,
)
_IDS = st.one_of(
    _TEXT,
    st.sampled_from(["P1", "P1\n", "guo", "guo\n", "fuyuan", "o_fgw", "chair"]),
    st.integers(),
    st.none(),
    st.lists(st.text(max_size=3), max_size=2),
)
_FUZZ = settings(suppress_health_check=[HealthCheck.function_scoped_fixture])


class TestAnythingIntoExecute:
    """Text, numbers, dates and ids from anywhere: each command raises an ApprovalflowError
    and stores nothing, or is stored whole; never another exception (every store)."""

    @staticmethod
    def _run(county: County, command: Any, project: Any, by: Any, args: Any, cid: Any) -> None:
        engine = county.engine
        before = _stored(engine)
        readable = isinstance(cid, str) and cid.isprintable() and 0 < len(cid) <= 200
        record = engine.store.command(cid) if readable else None
        try:
            engine.execute(command, project, by, args, command_id=cid)
        except ApprovalflowError:
            assert _stored(engine) == before
            if readable:
                assert engine.store.command(cid) == record

    @_FUZZ
    @given(
        name=_TEXT,
        investment=_NUMBERS,
        project=_IDS,
        applicant=_IDS,
        industry=_VALUES,
        command_id=_IDS,
    )
    def test_create(
        self,
        county: County,
        name: Any,
        investment: Any,
        project: Any,
        applicant: Any,
        industry: Any,
        command_id: Any,
    ) -> None:
        fields = {
            **PROJECT_FIELDS,
            "name": name,
            "investment": investment,
            "applicant": applicant,
            "industry": industry,
        }
        engine = county.engine
        before = _stored(engine)
        try:
            result = engine.execute("create", project, "guo", fields, command_id=command_id)
        except ApprovalflowError:
            assert _stored(engine) == before
            return
        stored = engine.project(result.project)
        assert stored.name == name and stored.applicant == applicant

    @_FUZZ
    @given(
        command=st.one_of(
            st.sampled_from(
                [
                    "negotiate",
                    "withdraw",
                    "copy",
                    "delegate",
                    "report_funds",
                    "pause_clock",
                    "submit_pre_review",
                    "terminate",
                    "entrust",
                    "vote",
                ]
            ),
            _IDS,
        ),
        by=_IDS,
        args=st.one_of(st.dictionaries(_TEXT, _VALUES, max_size=4), _VALUES),
        named=st.dictionaries(
            st.sampled_from(["reason", "note", "to", "agent", "amount", "until", "materials"]),
            _VALUES,
            max_size=3,
        ),
        command_id=_IDS,
    )
    def test_any_command(
        self, county: County, command: Any, by: Any, args: Any, named: Any, command_id: Any
    ) -> None:
        if not county.engine.project_ids():
            county.create()
        if isinstance(args, dict):
            args = {**args, **named}
        self._run(county, command, "P1", by, args, command_id)

    @_FUZZ
    @given(until=_DATES, note=_TEXT, days=_NUMBERS)
    def test_dates_and_numbers_on_a_branch(
        self, county: County, until: Any, note: Any, days: Any
    ) -> None:
        if not county.engine.project_ids():
            county.to_approval()
            county.do("accept", "P1", "o_fgw")
        args = {"reason": "hearing", "until": until, "note": note}
        self._run(county, "pause_clock", "P1", "o_fgw", args, None)
        if county.branch("fgw") == "paused":
            county.do("resume_clock", "P1", "o_fgw")
        self._run(county, "extend_limit", "P1", "o_fgw", {"days": days, "reason": note}, None)
        county.clock.set(county.clock.now() + timedelta(minutes=1))


# -- conflicts of interest -----------------------------------------------------------------------


def _actors_with_interests() -> list[Any]:
    from builders import county_actors

    from approvalflow import Actor

    return [
        *county_actors(),
        # An enterprise one of whose staff is an fgw officer, a reviewer and a member.
        Actor("chengtou", ["applicant", "officer", "reviewer", "member"], department="fgw"),
        Actor("daiban_m", ["agent", "member"]),
    ]


class TestConflictsOfInterest:
    """The applicant and its agent may not decide on their own project (D73, D74)."""

    def test_the_applicant_named_must_hold_the_applicant_role(self) -> None:
        county = County()
        for actor in ("huang", "o_fgw", "guo"):
            with pytest.raises(InvalidCommand, match="does not hold the applicant role"):
                county.create(applicant=actor)
        assert county.engine.project_ids() == []

    def test_the_applicant_may_not_review_or_vote_on_its_project(self) -> None:
        county = County(actors=_actors_with_interests())
        county.create(applicant="chengtou", agent="daiban_m")
        county.do("negotiate", "P1", "guo")
        county.do("submit_pre_review", "P1", "guo", materials=[])
        with pytest.raises(NotAuthorized, match=r"is the applicant of P1 .* as reviewer"):
            county.do("opinion", "P1", "chengtou", verdict="pass")
        county.pass_pre_review()
        county.do("convene", "P1", "chair", present=["chair", "m1", "m2", "chengtou", "daiban_m"])
        with pytest.raises(NotAuthorized, match=r"is the applicant of P1 .* as member"):
            county.do("vote", "P1", "chengtou", vote="approve")
        with pytest.raises(NotAuthorized, match=r"agent of P1's applicant .* as member"):
            county.do("vote", "P1", "daiban_m", vote="approve")
        assert not [e for e in county.engine.history("P1") if e.type == "vote_cast"]

    def test_the_applicant_may_not_accept_or_approve_its_branch(self) -> None:
        county = County(actors=_actors_with_interests())
        county.create(applicant="chengtou")
        county.do("negotiate", "P1", "guo")
        county.do("submit_pre_review", "P1", "guo", materials=[])
        county.pass_pre_review()
        county.approve_in_meeting()
        county.do("sign", "P1", "guo")
        county.do("apply", "P1", "chengtou")
        for command in ("accept", "approve", "return", "reject", "pause_clock"):
            with pytest.raises(NotAuthorized, match="as officer"):
                county.do(command, "P1", "chengtou", reason="hearing")
        assert county.branch("fgw") == "pending"
        county.do("accept", "P1", "o_fgw")
        assert county.branch("fgw") == "accepted"

    def test_a_county_may_allow_a_role_despite_the_interest(self) -> None:
        county = County(
            actors=_actors_with_interests(), settings={"conflicts": {"allow": ["member"]}}
        )
        county.create(applicant="chengtou")
        county.do("negotiate", "P1", "guo")
        county.do("submit_pre_review", "P1", "guo", materials=[])
        with pytest.raises(NotAuthorized, match="as reviewer"):
            county.do("opinion", "P1", "chengtou", verdict="pass")
        county.pass_pre_review()
        county.do("convene", "P1", "chair", present=["chair", "m1", "chengtou"])
        county.do("vote", "P1", "chengtou", vote="approve")

    def test_only_deciding_roles_may_be_allowed(self) -> None:
        from approvalflow.settings import SettingsError

        with pytest.raises(SettingsError, match=r"conflicts\.allow: 'applicant'"):
            County(settings={"conflicts": {"allow": ["applicant"]}})


def test_a_rule_set_label_is_one_clean_line() -> None:
    """The label is shown by the CLI and stored with every project pinned to it."""
    from approvalflow.settings import SettingsError

    with pytest.raises(SettingsError, match=r"rules_version.*one line"):
        County(settings={"rules_version": "2026-2\n\x1b[31m"})

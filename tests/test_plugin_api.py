"""The public plugin API (``approvalflow.plugin``) and the hooks issue 13 added or changed:
strict event folds owned by the engine, notice recipients, after-timer, declared roles, routes
that add up, settings merged in registration order, and county settings that refuse a text
where a list belongs. docs/plugins.md is checked against the hook specifications here too."""

from __future__ import annotations

import inspect
import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import attrs
import pytest
from builders import County, county_actors, kinds

import approvalflow
import approvalflow.plugin as plugin_api
from approvalflow import Actor, Engine, Settings
from approvalflow.plugin import (
    Context,
    CountyConfig,
    CountySettings,
    Fold,
    Notice,
    PluginError,
    SettingsError,
    UnknownEventType,
    UnknownRole,
    event_folds,
    hookimpl,
)
from approvalflow.plugins import hookspecs

ROOT = Path(__file__).resolve().parents[1]
GUIDE = ROOT / "docs" / "plugins.md"
HOOKS = sorted(name for name in vars(hookspecs) if name.startswith("approvalflow_"))


def _signature(name: str) -> str:
    signature = inspect.signature(getattr(hookspecs, name))
    params = ", ".join(f"{p.name}: {p.annotation}" for p in signature.parameters.values())
    return f"{name}({params}) -> {signature.return_annotation}"


class TestTheGuideMatchesTheHookspecs:
    """As datasette's test_docs: the guide documents each hook with its exact signature."""

    def _documented(self) -> dict[str, str]:
        pattern = r"^### `(approvalflow_\w+)`\n\n```text\n(.*?)\n```"
        return dict(re.findall(pattern, GUIDE.read_text(), re.MULTILINE))

    def test_every_hookspec_is_documented_with_its_exact_signature(self) -> None:
        documented = self._documented()
        assert {hook: documented.get(hook) for hook in HOOKS} == {
            hook: _signature(hook) for hook in HOOKS
        }

    def test_no_documented_hook_is_missing_from_the_hookspecs(self) -> None:
        headings = re.findall(r"^#+ .*?`(approvalflow_\w+)", GUIDE.read_text(), re.MULTILINE)
        assert sorted(set(headings) - set(HOOKS)) == []
        assert sorted(set(self._documented()) - set(HOOKS)) == []

    def test_the_guide_imports_nothing_private(self) -> None:
        """Its examples import only ``approvalflow`` and ``approvalflow.plugin`` (and the
        scenario runner, a testing helper)."""
        imports = re.findall(r"^\s*(?:from|import) (approvalflow[\w.]*)", GUIDE.read_text(), re.M)
        allowed = {"approvalflow", "approvalflow.plugin", "approvalflow.scenario.runner"}
        assert sorted(set(imports) - allowed) == []


class TestThePublicModule:
    def test_every_exported_name_exists_and_the_package_says_what_is_public(self) -> None:
        assert [name for name in plugin_api.__all__ if not hasattr(plugin_api, name)] == []
        assert "approvalflow.plugin" in (approvalflow.__doc__ or "")

    def test_event_folds_prefixes_the_plugin_name(self) -> None:
        def fold(data: dict[str, Any], payload: Any, at: datetime) -> None:
            return None

        assert list(event_folds("guide", {"visited": fold})) == ["guide.visited"]
        with pytest.raises(PluginError, match="no dot"):
            event_folds("a.b", {"visited": fold})


# -- strict folds ------------------------------------------------------------------------------


def _count(data: dict[str, Any], payload: Any, at: datetime) -> None:
    data["count"] = data.get("count", 0) + 1


class Counter:
    """Counts ``negotiate`` commands in its own plugin data."""

    @hookimpl
    def approvalflow_event_folds(self) -> dict[str, Fold]:
        return event_folds("counter", {"counted": _count})

    @hookimpl
    def approvalflow_after_command(self, context: Context, command: str) -> None:
        if command == "negotiate":
            context.emit("counter.counted")


class TestFoldsBelongToTheEngine:
    def test_hook_approvalflow_event_folds(self) -> None:
        """The engine folds the plugin's event into the plugin's slice, on every store read."""
        county = County(plugins=[Counter()])
        county.create()
        county.do("negotiate", "P1", "guo")
        assert county.engine.project("P1").plugin_data == {"counter": {"count": 1}}

    def test_a_second_engine_without_the_plugin_reads_but_never_writes(self) -> None:
        """Same store, no Counter: the project reads, a command is refused naming the plugin,
        nothing is stored, and the plugin's engine carries on with its data intact."""
        county = County(plugins=[Counter()])
        county.create()
        county.do("negotiate", "P1", "guo")
        history = county.engine.history("P1")
        plain = Engine(actors=county_actors(), store=county.engine.store, clock=county.clock)
        assert plain.project("P1").stage == "negotiating"
        with pytest.raises(UnknownEventType, match="'counter'"):
            plain.execute("submit_pre_review", "P1", "guo", {"materials": []})
        assert county.engine.history("P1") == history
        county.do("submit_pre_review", "P1", "guo", materials=[])
        assert county.engine.project("P1").plugin_data == {"counter": {"count": 1}}

    def test_two_engines_in_one_process_fold_with_their_own_plugins(self) -> None:
        """No process-wide registry: Counter's folds in one engine are not another's."""
        with_counter = County(plugins=[Counter()])
        with_counter.create()
        with_counter.do("negotiate", "P1", "guo")

        class Emitter:
            @hookimpl
            def approvalflow_after_command(self, context: Context, command: str) -> None:
                if command == "negotiate":
                    context.emit("counter.counted")

        emitting = County(plugins=[Emitter()])
        emitting.create()
        with pytest.raises(UnknownEventType, match=r"counter\.counted"):
            emitting.do("negotiate", "P1", "guo")
        assert emitting.stage() == "lead"

    @pytest.mark.parametrize(
        ("folds", "message"),
        [
            ({"counted": _count}, "must be named <plugin>.<name>"),
            ({"signed": _count}, "must be named"),
            ({"x.signed": "not a function"}, "not callable"),
        ],
    )
    def test_a_bad_fold_table_is_a_plugin_error(self, folds: Any, message: str) -> None:
        class Bad:
            @hookimpl
            def approvalflow_event_folds(self) -> Any:
                return folds

        with pytest.raises(PluginError, match=message):
            County(plugins=[Bad()])

    def test_two_plugins_folding_one_type_is_a_plugin_error(self) -> None:
        class Other:
            @hookimpl
            def approvalflow_event_folds(self) -> dict[str, Fold]:
                return event_folds("counter", {"counted": _count})

        with pytest.raises(PluginError, match="folded by both"):
            County(plugins=[Counter(), Other()])


# -- notice recipients and after-timer ---------------------------------------------------------


class TestNoticeRecipients:
    def test_hook_approvalflow_notice_recipients(self) -> None:
        """Two plugins add to a built-in notice of a fired timer, in order, each actor once."""

        class Recruiter:
            @hookimpl
            def approvalflow_notice_recipients(
                self, notice: Notice, project: Any
            ) -> list[str] | None:
                return [project.recruiter, "huang"] if notice.kind == "overdue" else None

        class Chair:
            @hookimpl
            def approvalflow_notice_recipients(self, notice: Notice) -> list[str] | None:
                return ["chair", "guo", None] if notice.kind == "overdue" else None  # type: ignore[list-item]

        county = County(plugins=[Recruiter(), Chair()])
        county.to_approval()
        county.advance(timedelta(days=10))
        told = [(n["department"], n["to"]) for n in county.take_notices() if n["kind"] == "overdue"]
        assert ("fgw", "guo") in told and ("fgw", "chair") in told
        fgw = [to for dept, to in told if dept == "fgw"]
        assert fgw == ["huang", "o_fgw", "guo", "chair"]

    def test_a_command_notice_gets_the_additions_before_it_is_stored(self) -> None:
        """Notices of a command are extended too, and the result carries the longer list."""

        class CopyMeOnDecisions:
            @hookimpl
            def approvalflow_notice_recipients(self, notice: Notice) -> list[str] | None:
                return ["m1"] if notice.kind == "decision" else None

        county = County(plugins=[CopyMeOnDecisions()])
        county.to_signed()
        told = [n["to"] for n in county.take_notices() if n["kind"] == "decision"]
        assert "m1" in told and len(told) == len(set(told))
        plain = County()
        plain.to_signed()
        assert "m1" not in [n["to"] for n in plain.take_notices() if n["kind"] == "decision"]

    def test_the_three_shadow_timers_are_gone(self) -> None:
        """Huguan's landing owner hears through the overdue notice; no watch events or timers."""
        county = County(plugins=["huguan"])
        county.to_approval()
        assert not [t for t in county.engine.store.timers("P1") if t.kind.startswith("huguan.")]
        county.advance(timedelta(days=10))
        assert ("overdue", "guo") in kinds(county.take_notices())
        assert not [e for e in county.engine.history("P1") if e.type.startswith("huguan.")]


class TestAfterTimer:
    def test_hook_approvalflow_after_timer(self) -> None:
        """A plugin acts in the commit of a built-in timer: its event is stored with the
        overdue event, stamped with the due time."""

        class Flag:
            @hookimpl
            def approvalflow_event_folds(self) -> dict[str, Fold]:
                return event_folds("flag", {"raised": _count})

            @hookimpl
            def approvalflow_after_timer(self, context: Context, kind: str, branch: str) -> None:
                if any(e.type == "branch_overdue" for e in context.events):
                    context.emit("flag.raised", department=branch)

        county = County(plugins=[Flag()])
        county.to_approval()
        county.advance(timedelta(days=10))
        history = county.engine.history("P1")
        for flag in [e for e in history if e.type == "flag.raised"]:
            overdue = history[flag.version - 2]
            assert (overdue.type, overdue.at) == ("branch_overdue", flag.at)
        assert county.engine.project("P1").plugin_data["flag"]["count"] >= 1

    def test_a_failing_after_timer_stores_nothing_of_the_timer(self) -> None:
        class Broken:
            @hookimpl
            def approvalflow_after_timer(self, context: Context, kind: str, branch: str) -> None:
                raise RuntimeError("ledger unavailable")

        county = County(plugins=[Broken()])
        county.to_approval()
        before = county.engine.history("P1")
        with pytest.raises(RuntimeError, match="ledger unavailable"):
            county.advance(timedelta(days=10))
        assert county.engine.history("P1") == before


# -- roles, routes, settings -------------------------------------------------------------------


class TestRoles:
    def test_hook_approvalflow_roles(self) -> None:
        """A declared role is accepted; a typo is refused when the engine is built."""

        class Chains:
            @hookimpl
            def approvalflow_roles(self) -> list[str]:
                return ["chain_leader"]

        lian = Actor("lian", ["chain_leader"])
        County(plugins=[Chains()], actors=[*county_actors(), lian])
        with pytest.raises(UnknownRole, match=r"lian \(chain_leader\)"):
            County(actors=[*county_actors(), lian])
        with pytest.raises(UnknownRole, match="reveiwer"):
            County(actors=[*county_actors(), Actor("r_x", ["reveiwer"], department="gxj")])

    def test_gaoqing_declares_its_chain_roles(self) -> None:
        lian = Actor("lian", ["chain_leader"], teams=["new_materials"])
        County(plugins=["gaoqing"], actors=[*county_actors(), lian])
        with pytest.raises(UnknownRole):
            County(actors=[*county_actors(), lian])


class TestRoutesAddUp:
    def test_two_plugins_each_add_a_department_in_registration_order(self) -> None:
        def adding(*departments: str) -> object:
            class Adds:
                @hookimpl
                def approvalflow_route(self) -> list[str]:
                    return list(departments)

            adds = Adds()
            adds.__name__ = f"adds_{'_'.join(departments)}"  # type: ignore[attr-defined]
            return adds

        county = County(
            plugins=[adding("sthj", "fgw"), adding("yj", "sthj")],
            settings={"routing": {"departments": ["fgw", "zj"]}},
        )
        county.to_approval()
        assert list(county.engine.project("P1").branches) == ["fgw", "zj", "sthj", "yj"]

    def test_a_county_veto_of_apply_is_a_check_not_a_route(self) -> None:
        """Shangnan refuses apply without a measure set from approvalflow_check_command."""
        from approvalflow.counties import shangnan

        assert not hasattr(shangnan, "approvalflow_route")
        county = County(plugins=["shangnan"])
        county.to_signed()
        with pytest.raises(approvalflow.InvalidCommand, match="五个一"):
            county.do("apply", "P1", "fuyuan")
        assert county.engine.project("P1").branches == {}


class TestSettingsMergeInRegistrationOrder:
    def test_each_plugin_sees_the_settings_so_far(self) -> None:
        seen: list[tuple[str, int]] = []

        def shortening(name: str) -> object:
            class Shortens:
                @hookimpl
                def approvalflow_settings(self, settings: Settings) -> dict[str, Any]:
                    seen.append((name, settings.time_limit_wd["zj"]))
                    return {"time_limit_wd": {"zj": settings.time_limit_wd["zj"] - 1}}

            shortens = Shortens()
            shortens.__name__ = name  # type: ignore[attr-defined]
            return shortens

        county = County(plugins=[shortening("first"), shortening("second")])
        assert seen == [("first", 7), ("second", 6)]
        assert county.engine.settings.time_limit_wd["zj"] == 5


@attrs.frozen
class DisciplineSettings(CountySettings):
    discipline_office: tuple[str, ...] = ("jw",)
    reminder_wd: int = 2


class TestCountySettingsAreStrict:
    config = CountyConfig("discipline", DisciplineSettings())

    def test_a_text_where_a_list_belongs_is_refused_naming_the_key(self) -> None:
        """``discipline_office: jw1`` is one office misspelt, not ('j', 'w', '1')."""
        wrong = Settings.default().merged({"plugins": {"discipline": {"discipline_office": "jw1"}}})
        with pytest.raises(
            SettingsError, match=r"settings\.plugins\.discipline\.discipline_office"
        ):
            self.config.of(wrong)
        right = Settings.default().merged(
            {"plugins": {"discipline": {"discipline_office": ["jw1"]}}}
        )
        assert self.config.of(right).discipline_office == ("jw1",)

    def test_huguan_refuses_squads_given_as_one_text(self) -> None:
        with pytest.raises(SettingsError, match=r"settings\.plugins\.huguan\.squads"):
            County(plugins=["huguan"], settings={"plugins": {"huguan": {"squads": "digital"}}})

    def test_a_built_in_list_setting_refuses_a_text_too(self) -> None:
        with pytest.raises(SettingsError, match=r"settings\.routing\.departments"):
            Settings.default().merged({"routing": {"departments": "fgw"}})

    def test_unknown_keys_and_wrong_scalars_are_refused(self) -> None:
        for overrides in ({"reminder_wd": "2"}, {"reminder_wd": True}, {"remider_wd": 2}):
            wrong = Settings.default().merged({"plugins": {"discipline": overrides}})
            assert self.config.problems(wrong), overrides

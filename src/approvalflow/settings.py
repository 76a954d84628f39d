"""The county's numbers: every built-in setting of WORKFLOW.md in one typed, frozen object.

Rules read settings, never literals, so a county plugin (or a scenario's ``settings:``) can change
any number or list without touching a rule. ``Settings.default()`` is WORKFLOW.md's table;
``settings.merged({...})`` returns a new object with nested overrides applied and validated.
"""

from __future__ import annotations

import collections.abc
import hashlib
import json
import typing
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import date
from functools import cache
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar

if TYPE_CHECKING:
    import cattrs

import attrs

from approvalflow.errors import SettingsError
from approvalflow.inputs import text_problem

__all__ = [
    "CARDS",
    "CARD_RANK",
    "LADDER_CARDS",
    "LADDER_RECIPIENTS",
    "STAGE_TEMPLATES",
    "ApprovalSettings",
    "ApprovalStageSettings",
    "CalendarSettings",
    "CommitmentSettings",
    "ConflictSettings",
    "CountyConfig",
    "CountySettings",
    "DecisionSettings",
    "LadderCard",
    "LadderSettings",
    "LadderStep",
    "MaterialInfo",
    "PreReviewSettings",
    "RatingSettings",
    "RoutingSettings",
    "Settings",
    "SettingsError",
    "rule_set_fingerprint",
]


@attrs.frozen
class MaterialInfo:
    """A catalogue entry: a material's display name and whether it is key (never 容缺)."""

    name: str
    key: bool


@attrs.frozen
class PreReviewSettings:
    members: tuple[str, ...] = ("gxj", "fgw", "zrzy", "sthj")
    deadline_wd: int = 3
    silence: Literal["overdue", "pass"] = "overdue"


@attrs.frozen
class DecisionSettings:
    quorum: float = 0.5
    majority: float = 0.5


@attrs.frozen
class RoutingSettings:
    departments: tuple[str, ...] = ("fgw", "zrzy", "zj", "sthj", "yj")


@attrs.frozen
class CommitmentSettings:
    departments: tuple[str, ...] = ()
    verify_wd: int = 60


@attrs.frozen
class RatingSettings:
    """Service evaluation (好差评, GB/T 39734-2020; 国办发〔2019〕51号): a bad rating's
    rectification is due ``rectification_wd`` working days after it, with a warning
    ``warning_before_wd`` working days before that (0: none); the approval stage as a whole is
    rated against ``stage_department``, the one-window unit that delivers the combined result."""

    rectification_wd: int = 15
    warning_before_wd: int = 3
    stage_department: str = "xzsp"


CONFLICT_ROLES: tuple[str, ...] = ("reviewer", "member", "chair", "officer", "head", "leader")
"""The deciding roles a project's applicant and its agent may not act in on that project."""


@attrs.frozen
class ConflictSettings:
    """Conflicts of interest (D74): the project's applicant and its agent may not act in a
    deciding role (``CONFLICT_ROLES``) on that project. ``allow`` lists the roles a county has
    decided they may act in anyway (for example ``[member]`` where a member declares the
    interest and still votes)."""

    allow: tuple[str, ...] = ()


@attrs.frozen
class CalendarSettings:
    strict: bool = False
    official_years: tuple[int, ...] = (2025, 2026)


@attrs.frozen
class ApprovalStageSettings:
    """One stage of approval (审批阶段): its departments run in parallel under one lead
    department (一家牵头), which issues the stage's combined result (统一出件) within
    ``limit_wd`` working days of the stage's opening."""

    id: str
    name: str
    departments: tuple[str, ...]
    lead: str
    limit_wd: int


def _national_stages() -> tuple[ApprovalStageSettings, ...]:
    # 国办发〔2019〕11号: four stages after signing. The departments are a county's; this
    # mapping over the built-in departments is D141's.
    return (
        ApprovalStageSettings(
            "land_planning", "立项用地规划许可", ("fgw", "zrzy", "sthj"), "fgw", 20
        ),
        ApprovalStageSettings("engineering_permit", "工程建设许可", ("zrzy", "yj"), "zrzy", 30),
        ApprovalStageSettings("construction_permit", "施工许可", ("zj", "yj"), "zj", 30),
        ApprovalStageSettings("completion", "竣工验收", ("zj", "zrzy", "sthj"), "zj", 40),
    )


STAGE_TEMPLATES: dict[str, tuple[tuple[ApprovalStageSettings, ...], int]] = {
    "national": (_national_stages(), 120),
}
"""The named stage templates (``approval: {stages: national}``): stages and total limit."""


@attrs.frozen
class ApprovalSettings:
    """Approval in stages (D140). No stages (the default) is today's single stage: every routed
    department in parallel, no total limit. ``stages`` is an ordered list, or in settings a
    template's name (``national``); ``total_limit_wd`` watches all stages together."""

    stages: tuple[ApprovalStageSettings, ...] = ()
    total_limit_wd: int | None = None
    template: str | None = None

    def stage(self, stage_id: str) -> ApprovalStageSettings | None:
        return next((stage for stage in self.stages if stage.id == stage_id), None)


@attrs.frozen
class LadderCard:
    """One card of the warning ladder. ``name`` is what a ladder step, a task item, a holdup
    and an event call it (``yellow``); ``notice`` the notice kind it is sent as
    (``yellow_card``); ``title`` its Chinese name (``黄牌``)."""

    name: str
    notice: str
    title: str


LADDER_CARDS: tuple[LadderCard, ...] = (
    LadderCard("warning", "early_warning", "预警"),
    LadderCard("yellow", "yellow_card", "黄牌"),
    LadderCard("red", "red_card", "红牌"),
)
"""The warning ladder's cards, mildest first: the one table every reader of a card takes its
names, order and titles from (the ladder's notices, the task list's urgency, the pages)."""

CARDS: tuple[str, ...] = tuple(card.name for card in LADDER_CARDS)
"""The cards' names, mildest first (what a ladder step's ``card`` may be)."""

CARD_RANK: Mapping[str, int] = {card.name: rank for rank, card in enumerate(LADDER_CARDS, 1)}
"""Each card's severity by name, mildest 1; the task list sorts the sharper card first."""

# Who a ladder step may tell.
LADDER_RECIPIENTS: tuple[str, ...] = ("officer", "head", "leader", "efficiency_office")


def _tuple_of_str(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):  # tuple("leader") would be six one-letter recipients
        raise TypeError(f"expected a list of recipients, got text {value!r}")
    return tuple(value)


@attrs.frozen
class LadderStep:
    """One step of a warning ladder: show ``card`` to ``recipients`` at ``offset_wd``.

    ``offset_wd`` counts working days from the item's deadline: ``2`` is at the end of the
    working day that leaves 2 wd, ``0`` is the deadline itself, ``-3`` is the end of the third
    working day past it. ``recipients`` name roles of the item, not people: ``officer`` (the
    department's officers; a unit's reviewers in pre-review), ``head`` (the department's head),
    ``leader`` (the project's leader), ``efficiency_office`` (every 效能办 actor).
    """

    card: str
    offset_wd: int
    recipients: tuple[str, ...] = attrs.field(converter=_tuple_of_str)

    def to_dict(self) -> dict[str, Any]:
        """Plain data, as settings and event payloads write a step."""
        return {"card": self.card, "offset_wd": self.offset_wd, "recipients": list(self.recipients)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LadderStep:
        """The inverse of ``to_dict`` (no validation: see ``ladder_problems``)."""
        return cls(data["card"], data["offset_wd"], data["recipients"])


# Built-in, but off: the contract's notices stay as they are until a county switches it on.
_DEFAULT_LADDER = (
    LadderStep("warning", 2, ("officer",)),
    LadderStep("yellow", 0, ("officer", "head")),
    LadderStep("red", -3, ("officer", "head", "leader", "efficiency_office")),
)


@attrs.frozen
class LadderSettings:
    """The warning ladder (预警/黄牌/红牌) for open reviews and branches.

    ``steps`` apply to every pre-review unit and approval branch when ``enabled``; a plugin's
    ``approvalflow_ladder`` answer replaces them for a project and department.
    """

    enabled: bool = False
    steps: tuple[LadderStep, ...] = _DEFAULT_LADDER


def ladder_problems(steps: Sequence[LadderStep], path: str) -> list[str]:
    """Why ``steps`` is not a usable ladder, each as ``path[i].field: message``; [] if it is.

    Steps run in order, so offsets must fall (each step later than the one before) and cards
    may only get more severe.
    """
    found: list[str] = []
    previous: LadderStep | None = None
    for i, step in enumerate(steps):
        where = f"{path}[{i}]"
        problems: list[str] = []
        if step.card not in CARDS:
            problems.append(f"{where}.card: must be one of {', '.join(CARDS)}, got {step.card!r}")
        if isinstance(step.offset_wd, bool) or not isinstance(step.offset_wd, int):
            problems.append(f"{where}.offset_wd: must be a whole number, got {step.offset_wd!r}")
        if not step.recipients:
            problems.append(f"{where}.recipients: at least one recipient is needed")
        for recipient in step.recipients:
            if recipient not in LADDER_RECIPIENTS:
                problems.append(
                    f"{where}.recipients: unknown recipient {recipient!r} "
                    f"(one of {', '.join(LADDER_RECIPIENTS)})"
                )
        if len(set(step.recipients)) != len(step.recipients):
            problems.append(f"{where}.recipients: a recipient is listed twice")
        if previous is not None and not problems:
            if step.offset_wd >= previous.offset_wd:
                problems.append(
                    f"{where}.offset_wd: steps run in time order, so {step.offset_wd} must be "
                    f"below the previous step's {previous.offset_wd}"
                )
            if CARDS.index(step.card) < CARDS.index(previous.card):
                problems.append(
                    f"{where}.card: a ladder only escalates; {step.card} may not follow "
                    f"{previous.card}"
                )
        found.extend(problems)
        # Order is checked against the last well-formed step only.
        previous = step if not problems else previous
    return found


MILESTONES: tuple[str, ...] = (
    "lead",
    "negotiating",
    "pre_review_passed",
    "decision_approved",
    "signed",
    "approval_complete",
    "construction",
    "production",
    "effective",
)

_DEPARTMENTS = {
    "fgw": "发改",
    "zrzy": "自然资源",
    "zj": "住建",
    "sthj": "生态环境",
    "yj": "应急管理",
    "gxj": "工信",
    "xzsp": "行政审批服务",
}

_MATERIALS = {
    "business_license": MaterialInfo("营业执照", True),
    "feasibility_study": MaterialInfo("可行性研究报告", True),
    "land_certificate": MaterialInfo("土地证明", True),
    "eia_report": MaterialInfo("环境影响评价报告", True),
    "energy_report": MaterialInfo("节能评估报告", True),
    "safety_report": MaterialInfo("安全评价报告", True),
    "investment_agreement": MaterialInfo("投资协议", True),
    "credit_report": MaterialInfo("信用报告", False),
    "bank_reference": MaterialInfo("银行资信证明", False),
    "site_photos": MaterialInfo("现场照片", False),
    "org_chart": MaterialInfo("组织架构图", False),
}

_EVERY_DEPARTMENT = ("business_license", "credit_report")
_REQUIREMENTS = {
    "fgw": ("feasibility_study", "energy_report", *_EVERY_DEPARTMENT),
    "zrzy": ("land_certificate", *_EVERY_DEPARTMENT),
    "zj": ("business_license", "land_certificate", "site_photos", "credit_report"),
    "sthj": ("eia_report", "site_photos", *_EVERY_DEPARTMENT),
    "yj": ("safety_report", "org_chart", *_EVERY_DEPARTMENT),
}


@attrs.frozen(hash=False)
class Settings:
    """Every county number of WORKFLOW.md's settings table. Treat the mappings as read-only.

    ``rules_version`` is the county's label for this rule set (``"2026-2"``): a project keeps
    the rule set it was created under (by fingerprint) until a ``migrate_rules`` moves it.
    """

    rules_version: str = "builtin"
    pre_review: PreReviewSettings = attrs.field(factory=PreReviewSettings)
    decision: DecisionSettings = attrs.field(factory=DecisionSettings)
    routing: RoutingSettings = attrs.field(factory=RoutingSettings)
    time_limit_wd: dict[str, int] = attrs.field(
        factory=lambda: {"fgw": 5, "zrzy": 10, "zj": 7, "sthj": 10, "yj": 7}
    )
    # The promised limits above (承诺时限) sit inside the statutory ones (法定时限, Licensing Law
    # art. 42: 20 days); an extension, granted by a named authority, may add up to
    # `extension_wd` and never passes the statutory limit plus that.
    statutory_limit_wd: dict[str, int] = attrs.field(
        factory=lambda: {"fgw": 20, "zrzy": 20, "zj": 20, "sthj": 20, "yj": 20}
    )
    extension_wd: int = 10
    deemed_approval: tuple[str, ...] = ()
    supply_deadline_wd: int = 20
    # Administrative Licensing Law art. 32: no one-time notice within N wd of arrival and the
    # application counts as accepted from the day it arrived. Off (None) unless a county sets it.
    deemed_acceptance_wd: int | None = None
    reminder_before_wd: int = 3
    commitment: CommitmentSettings = attrs.field(factory=CommitmentSettings)
    ratings: RatingSettings = attrs.field(factory=RatingSettings)
    points: dict[str, int] = attrs.field(
        factory=lambda: {
            "lead": 1,
            "negotiating": 1,
            "pre_review_passed": 2,
            "decision_approved": 3,
            "signed": 5,
            "approval_complete": 5,
            "construction": 8,
            "production": 10,
            "effective": 10,
        }
    )
    materials: dict[str, MaterialInfo] = attrs.field(factory=lambda: dict(_MATERIALS))
    requirements: dict[str, tuple[str, ...]] = attrs.field(factory=lambda: dict(_REQUIREMENTS))
    departments: dict[str, str] = attrs.field(factory=lambda: dict(_DEPARTMENTS))
    # The investment-promotion teams' display names (招商小分队, 产业链专班), by the team id
    # projects carry; a team not listed shows its id (D121).
    teams: dict[str, str] = attrs.field(factory=dict)
    calendar: CalendarSettings = attrs.field(factory=CalendarSettings)
    conflicts: ConflictSettings = attrs.field(factory=ConflictSettings)
    ladder: LadderSettings = attrs.field(factory=LadderSettings)
    approval: ApprovalSettings = attrs.field(factory=ApprovalSettings)
    # Each plugin's own numbers, by plugin name, free-form: a scenario's `settings:` can set
    # them ({plugins: {huguan: {issue_deadline_wd: 3}}}) and they are in the fingerprint.
    plugins: dict[str, dict[str, Any]] = attrs.field(factory=dict)

    def plugin_settings(self, name: str) -> dict[str, Any]:
        """The settings given for plugin ``name`` (empty when none were)."""
        return self.plugins.get(name, {})

    @classmethod
    def default(cls) -> Settings:
        """WORKFLOW.md's built-in settings."""
        return _DEFAULT

    def to_dict(self) -> dict[str, Any]:
        """Plain nested data (JSON-ready), the form overrides are written in."""
        data: dict[str, Any] = _converter().unstructure(self)
        return data

    def merged(self, overrides: Mapping[str, Any]) -> Settings:
        """A new ``Settings`` with ``overrides`` applied; nested mappings merge key by key.

        Lists replace; a mapping value of ``None`` removes that key (for example a department's
        time limit). Raises ``SettingsError`` naming every bad or unknown key.
        """
        if not overrides:
            return self
        data = _deep_merge(self.to_dict(), dict(overrides), path="")
        return Settings.from_dict(data)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Settings:
        import cattrs

        try:
            settings = _converter().structure(dict(data), Settings)
        except Exception as exc:  # cattrs raises ExceptionGroups of many kinds
            messages = cattrs.transform_error(exc, path="settings")
            raise SettingsError("; ".join(messages)) from None
        problems = settings.problems()
        if problems:
            raise SettingsError("; ".join(problems))
        return settings

    def problems(self) -> list[str]:
        """Every inconsistency between the settings' parts, as ``settings.path: message``."""
        found: list[str] = []
        if not self.rules_version.strip() or len(self.rules_version) > 64:
            found.append(
                "settings.rules_version: must be a label of 1 to 64 characters, "
                f"got {self.rules_version!r}"
            )
        elif problem := text_problem(self.rules_version, single_line=True):
            found.append(f"settings.rules_version: {self.rules_version!a} {problem}")
        known_departments = set(self.departments)
        for unit in self.pre_review.members:
            if unit not in known_departments:
                found.append(f"settings.pre_review.members: unknown department {unit!r}")
        if not self.pre_review.members:
            found.append("settings.pre_review.members: at least one member unit is needed")
        for name, value in (
            ("pre_review.deadline_wd", self.pre_review.deadline_wd),
            ("supply_deadline_wd", self.supply_deadline_wd),
            ("commitment.verify_wd", self.commitment.verify_wd),
            ("ratings.rectification_wd", self.ratings.rectification_wd),
        ):
            if value < 1:
                found.append(f"settings.{name}: must be at least 1 working day, got {value}")
        if self.deemed_acceptance_wd is not None and self.deemed_acceptance_wd < 1:
            found.append(
                "settings.deemed_acceptance_wd: must be at least 1 working day or null, "
                f"got {self.deemed_acceptance_wd}"
            )
        if not 0 <= self.reminder_before_wd < self.supply_deadline_wd:
            found.append(
                "settings.reminder_before_wd: must be between 0 and supply_deadline_wd - 1, "
                f"got {self.reminder_before_wd}"
            )
        if not 0 <= self.ratings.warning_before_wd < self.ratings.rectification_wd:
            found.append(
                "settings.ratings.warning_before_wd: must be between 0 and "
                f"ratings.rectification_wd - 1, got {self.ratings.warning_before_wd}"
            )
        if self.ratings.stage_department not in known_departments:
            found.append(
                "settings.ratings.stage_department: unknown department "
                f"{self.ratings.stage_department!r}"
            )
        for name, share in (("quorum", self.decision.quorum), ("majority", self.decision.majority)):
            if not 0 <= share < 1:
                found.append(f"settings.decision.{name}: must be a share in [0, 1), got {share}")
        for dept, limit in self.time_limit_wd.items():
            if dept not in known_departments:
                found.append(f"settings.time_limit_wd.{dept}: unknown department")
            if limit < 1:
                found.append(f"settings.time_limit_wd.{dept}: must be at least 1, got {limit}")
        for dept, limit in self.time_limit_wd.items():
            statutory = self.statutory_limit_wd.get(dept)
            if statutory is not None and limit > statutory:
                found.append(
                    f"settings.time_limit_wd.{dept}: the promised {limit} wd exceed the statutory "
                    f"{statutory} wd (statutory_limit_wd.{dept})"
                )
        if self.extension_wd < 0:
            found.append(f"settings.extension_wd: must not be negative, got {self.extension_wd}")
        for listing, values in (
            ("routing.departments", self.routing.departments),
            ("deemed_approval", self.deemed_approval),
            ("commitment.departments", self.commitment.departments),
        ):
            for dept in values:
                if dept not in self.time_limit_wd:
                    found.append(
                        f"settings.{listing}: {dept!r} is not an approving department "
                        "(it has no time_limit_wd)"
                    )
        for dept, materials in self.requirements.items():
            if dept not in known_departments:
                found.append(f"settings.requirements.{dept}: unknown department")
            for material in materials:
                if material not in self.materials:
                    found.append(f"settings.requirements.{dept}: unknown material {material!r}")
        for milestone, points in self.points.items():
            if points < 0:
                found.append(f"settings.points.{milestone}: must not be negative")
        for role in self.conflicts.allow:
            if role not in CONFLICT_ROLES:
                found.append(
                    f"settings.conflicts.allow: {role!r} is not a deciding role "
                    f"({', '.join(CONFLICT_ROLES)})"
                )
        for team, name in self.teams.items():
            if not name.strip() or len(name) > 64:
                found.append(
                    f"settings.teams.{team}: a display name of 1 to 64 characters, got {name!r}"
                )
            elif problem := text_problem(name, single_line=True):
                found.append(f"settings.teams.{team}: {name!a} {problem}")
        found.extend(ladder_problems(self.ladder.steps, "settings.ladder.steps"))
        found.extend(self._approval_problems())
        return found

    def _approval_problems(self) -> list[str]:
        found: list[str] = []
        approval = self.approval
        if approval.template is not None and approval.template not in STAGE_TEMPLATES:
            found.append(
                f"settings.approval.stages: unknown stage template {approval.template!r} "
                f"(one of {', '.join(STAGE_TEMPLATES)}, or a list of stages)"
            )
        if approval.total_limit_wd is not None and approval.total_limit_wd < 1:
            found.append(
                "settings.approval.total_limit_wd: must be at least 1 working day or null, "
                f"got {approval.total_limit_wd}"
            )
        if approval.total_limit_wd is not None and not approval.stages:
            found.append("settings.approval.total_limit_wd: a total limit needs stages")
        seen: set[str] = set()
        for i, stage in enumerate(approval.stages):
            where = f"settings.approval.stages[{i}]"
            if not stage.id or not stage.id.isidentifier() or not stage.id.isascii():
                found.append(
                    f"{where}.id: must be a name of letters, digits and _, got {stage.id!r}"
                )
            elif stage.id in seen:
                found.append(f"{where}.id: {stage.id!r} names two stages")
            seen.add(stage.id)
            if not stage.name.strip():
                found.append(f"{where}.name: a stage needs a display name")
            if not stage.departments:
                found.append(f"{where}.departments: at least one department is needed")
            if len(set(stage.departments)) != len(stage.departments):
                found.append(f"{where}.departments: a department is listed twice")
            for dept in stage.departments:
                if dept not in self.time_limit_wd:
                    found.append(
                        f"{where}.departments: {dept!r} is not an approving department "
                        "(it has no time_limit_wd)"
                    )
            if stage.lead not in stage.departments:
                found.append(
                    f"{where}.lead: the lead department {stage.lead!r} must be one of the "
                    "stage's departments"
                )
            if stage.limit_wd < 1:
                found.append(f"{where}.limit_wd: must be at least 1, got {stage.limit_wd}")
        return found

    def fingerprint(self) -> str:
        """A stable hash of every setting, recorded in a project's ``created`` event: the
        identity of the rule set the project is pinned to."""
        return rule_set_fingerprint(self.canonical_json())

    def canonical_json(self) -> str:
        """Every setting as JSON text with sorted keys: what ``fingerprint`` hashes and what a
        store keeps of a pinned rule set."""
        return json.dumps(self.to_dict(), sort_keys=True, ensure_ascii=False)

    @classmethod
    def from_canonical_json(cls, text: str) -> Settings:
        """The settings ``canonical_json`` wrote (``SettingsError`` when they no longer fit)."""
        data = json.loads(text)
        if not isinstance(data, dict):
            raise SettingsError("settings: a rule set must be a JSON object")
        return cls.from_dict(data)

    def department_name(self, dept: str) -> str:
        return self.departments.get(dept, dept)

    def team_name(self, team: str) -> str:
        """The team's display name (``teams``), or its id when the county gave none."""
        return self.teams.get(team, team)

    def is_key_material(self, material: str) -> bool:
        info = self.materials.get(material)
        return bool(info and info.key)


def rule_set_fingerprint(canonical_json: str) -> str:
    """SHA-256 of a rule set's canonical JSON text, as 64 hex digits."""
    return hashlib.sha256(canonical_json.encode()).hexdigest()


# Nested settings whose keys are fixed (the others, such as time_limit_wd, take any key).
_CLOSED_SECTIONS = (
    "",
    "pre_review",
    "decision",
    "routing",
    "commitment",
    "ratings",
    "ladder",
    "approval",
)


def _deep_merge(base: dict[str, Any], overrides: dict[str, Any], *, path: str) -> dict[str, Any]:
    merged = dict(base)
    for key, value in overrides.items():
        here = f"{path}.{key}" if path else str(key)
        if key not in base and path in _CLOSED_SECTIONS:
            raise SettingsError(f"settings.{here}: unknown setting")
        if value is None and path:
            merged.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(base.get(key), dict):
            merged[key] = _deep_merge(base[key], dict(value), path=here)
        else:
            merged[key] = value
    return merged


def _structure_strict_int(value: Any, _: type) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected a whole number, got {value!r}")
    return value


def _structure_share(value: Any, _: type) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"expected a number, got {value!r}")
    return float(value)


def _structure_flag(value: Any, _: type) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"expected true or false, got {value!r}")
    return value


def _structure_text(value: Any, _: type) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected text, got {value!r}")
    return value


def strict_converter() -> cattrs.Converter:
    """A new cattrs converter for settings written by people: unknown keys are refused, and so
    is a scalar of the wrong type (``true`` is not 1 working day, ``"20"`` is not 20).

    Register class hooks on it afterwards: each class's generated function binds its fields'
    hooks when it is made, so scalar hooks registered after it would never run.
    """
    import cattrs

    converter = cattrs.Converter(forbid_extra_keys=True)
    converter.register_structure_hook(int, _structure_strict_int)
    converter.register_structure_hook(float, _structure_share)
    converter.register_structure_hook(bool, _structure_flag)
    converter.register_structure_hook(str, _structure_text)
    converter.register_structure_hook_factory(_is_collection, _strict_collection_hook)
    return converter


_COLLECTIONS: dict[Any, Callable[[Iterable[Any]], Any]] = {
    tuple: tuple,
    list: list,
    set: set,
    frozenset: frozenset,
    collections.abc.Sequence: tuple,
    collections.abc.MutableSequence: list,
    collections.abc.Set: frozenset,
    collections.abc.MutableSet: set,
}


def _is_collection(cls: Any) -> bool:
    return (typing.get_origin(cls) or cls) in _COLLECTIONS


def _strict_collection_hook(cls: Any, converter: cattrs.Converter) -> Callable[[Any, Any], Any]:
    """Structure a list-like setting from a list only: a text is not a list of its letters
    (``squads: digital`` is one squad misspelt, not seven)."""
    origin = typing.get_origin(cls) or cls
    build = _COLLECTIONS[origin]
    args = typing.get_args(cls)
    fixed = origin is tuple and bool(args) and args[-1] is not Ellipsis
    item = args[0] if args and not fixed else Any

    def structure(value: Any, _: Any) -> Any:
        if isinstance(value, str | bytes | Mapping) or not isinstance(value, Iterable):
            raise TypeError(f"expected a list, got {value!r}")
        items = list(value)
        if fixed:
            if len(items) != len(args):
                raise TypeError(f"expected a list of {len(args)} items, got {value!r}")
            return tuple(converter.structure(v, t) for v, t in zip(items, args, strict=True))
        if item is Any:
            return build(items)
        return build(converter.structure(v, item) for v in items)

    return structure


def merge_nested(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """``overrides`` over ``base``: nested mappings merge key by key, anything else replaces."""
    merged = dict(base)
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = merge_nested(merged[key], value)
        else:
            merged[key] = value
    return merged


@cache
def _converter() -> cattrs.Converter:
    # Built on first use: cattrs generates code per class, which `import approvalflow` should
    # not pay for. The library's own converter; the global one is never customised.
    from cattrs.gen import make_dict_structure_fn

    converter = strict_converter()
    # Before Settings: its generated function binds the hook its `approval` field has then.
    stage_hook = make_dict_structure_fn(
        ApprovalStageSettings, converter, _cattrs_forbid_extra_keys=True
    )
    converter.register_structure_hook(ApprovalStageSettings, stage_hook)
    approval_hook = make_dict_structure_fn(
        ApprovalSettings, converter, _cattrs_forbid_extra_keys=True
    )

    def structure_approval(value: Any, cls: type) -> ApprovalSettings:
        # `stages: national` names a template: its stages, and its total unless one is given.
        if isinstance(value, Mapping) and isinstance(value.get("stages"), str):
            name = value["stages"]
            # An unknown name keeps no stages; `problems` names it.
            stages, total = STAGE_TEMPLATES.get(name, ((), None))
            value = {
                **value,
                "stages": converter.unstructure(stages),
                "template": name,
                "total_limit_wd": total
                if value.get("total_limit_wd") is None
                else value["total_limit_wd"],
            }
        settings: ApprovalSettings = approval_hook(value, cls)
        return settings

    converter.register_structure_hook(ApprovalSettings, structure_approval)
    for cls in (
        Settings,
        PreReviewSettings,
        DecisionSettings,
        RoutingSettings,
        CommitmentSettings,
        CalendarSettings,
        ConflictSettings,
        LadderSettings,
        MaterialInfo,
    ):
        converter.register_structure_hook(
            cls, make_dict_structure_fn(cls, converter, _cattrs_forbid_extra_keys=True)
        )
    # A step's recipients go through its own converter, which refuses a text (iterated, it
    # would be one-letter recipients); ladder_problems checks each recipient.
    converter.register_structure_hook(
        LadderStep,
        make_dict_structure_fn(
            LadderStep,
            converter,
            _cattrs_forbid_extra_keys=True,
            _cattrs_prefer_attrib_converters=True,
        ),
    )
    return converter


_DEFAULT = Settings()


# -- a county plugin's own settings -----------------------------------------------------------


class CountySettings:
    """Base of a county plugin's own settings: subclass it as a frozen attrs class
    (``@attrs.frozen``) of typed fields with defaults, and hold an instance in a
    ``CountyConfig``.

    Values given under ``settings.plugins[<county>]`` are structured strictly: an unknown key,
    a scalar of the wrong type (``"3"`` for a number, ``true`` for a count) or a text where a list
    is expected (``squads: digital``) is a ``SettingsError`` naming the key.
    """


SettingsT = TypeVar("SettingsT", bound=CountySettings)


class CountyConfig(Generic[SettingsT]):
    """Holds one county plugin's own settings object (frozen attrs), replaceable at start-up,
    and reads a project's overrides of it from ``settings.plugins[name]``."""

    def __init__(self, name: str, default: SettingsT) -> None:
        self.name = name
        self._default = default
        self._current = default
        self._merged: dict[tuple[int, str], SettingsT] = {}

    def of(self, settings: Settings) -> SettingsT:
        """The county's numbers under ``settings``: the configured ones with
        ``settings.plugins[name]`` over them (nested mappings merge key by key)."""
        overrides = settings.plugin_settings(self.name)
        if not overrides:
            return self._current
        key = (id(self._current), json.dumps(overrides, sort_keys=True, default=str))
        found = self._merged.get(key)
        if found is None:
            found = self._structure(overrides)
            if len(self._merged) > 64:  # a handful of rule sets in practice
                self._merged.clear()
            self._merged[key] = found
        return found

    def problems(self, settings: Settings) -> list[str]:
        """What is wrong with ``settings.plugins[name]`` (for ``approvalflow_check_settings``)."""
        try:
            self.of(settings)
        except SettingsError as error:
            return [str(error)]
        return []

    def _structure(self, overrides: Mapping[str, Any]) -> SettingsT:
        import cattrs

        converter = _county_converter()
        data = merge_nested(converter.unstructure(self._current), overrides)
        try:
            merged: SettingsT = converter.structure(data, type(self._current))
        except Exception as exc:  # cattrs raises ExceptionGroups of many kinds
            path = f"settings.plugins.{self.name}"
            raise SettingsError("; ".join(cattrs.transform_error(exc, path=path))) from None
        return merged

    @property
    def current(self) -> SettingsT:
        """The settings every hook of the plugin reads now."""
        return self._current

    def configure(self, settings: SettingsT | None = None, /, **changes: Any) -> SettingsT:
        """Replace the settings (by an object, or by keywords over the current ones).

        Returns the previous object, so a caller can put it back. Unknown keywords raise
        ``TypeError`` naming them (attrs does).
        """
        previous = self._current
        base = settings if settings is not None else self._current
        self._current = attrs.evolve(base, **changes) if changes else base  # type: ignore[misc]
        return previous

    def reset(self) -> None:
        """Back to the module's defaults."""
        self._current = self._default

    @contextmanager
    def overridden(
        self, settings: SettingsT | None = None, /, **changes: Any
    ) -> Iterator[SettingsT]:
        """Use other settings inside a ``with`` block (tests), then restore the previous ones."""
        previous = self.configure(settings, **changes)
        try:
            yield self._current
        finally:
            self._current = previous


@cache
def _county_converter() -> cattrs.Converter:
    """Structures county settings from JSON-like data, refusing unknown keys and wrong types
    (a ``true`` is not 1 working day); dates are ISO text."""
    from cattrs.gen import make_dict_structure_fn

    converter = strict_converter()
    converter.register_structure_hook(date, lambda value, _: _iso_date(value))
    converter.register_unstructure_hook(date, date.isoformat)
    converter.register_structure_hook_factory(
        attrs.has,
        lambda cls: make_dict_structure_fn(cls, converter, _cattrs_forbid_extra_keys=True),
    )
    return converter


def _iso_date(value: Any) -> date:
    if isinstance(value, date):
        return value
    if not isinstance(value, str):
        raise TypeError(f"expected a date as YYYY-MM-DD, got {value!r}")
    return date.fromisoformat(value)

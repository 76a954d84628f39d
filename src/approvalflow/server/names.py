"""Display names for the workbench's pages: actors, teams, departments, materials, states.

``Names.of(settings, actors)`` answers each id with the name people use, or the id itself
when none is known, from the actor directory, the county's ``settings.departments`` and
``display.py``. Ids stay the keys in URLs and forms; only the text shown changes.
"""

from __future__ import annotations

from collections.abc import Mapping

import attrs

from approvalflow.display import BRANCH_STATE_NAMES, CARD_NAMES, STATE_NAMES
from approvalflow.model import ActorDirectory
from approvalflow.settings import Settings

__all__ = ["COMMAND_NAMES", "Names"]

COMMAND_NAMES: Mapping[str, str] = {
    "create": "登记项目",
    "negotiate": "开始洽谈",
    "submit_pre_review": "提交初审",
    "opinion": "初审意见",
    "supply": "补交材料",
    "convene": "召开决策会",
    "vote": "投票",
    "close_meeting": "结束会议",
    "sign": "签约",
    "apply": "申请并联审批",
    "accept": "受理",
    "return": "退回补正",
    "approve": "批准",
    "reject": "不予批准",
    "pause_clock": "暂停计时",
    "resume_clock": "恢复计时",
    "extend_limit": "延长时限",
    "issue_stage_result": "统一出件",
    "accept_commitment": "告知承诺",
    "verify": "核查承诺",
    "urge": "催办",
    "add_department": "加签",
    "remove_department": "减签",
    "consent_remove_department": "同意减签",
    "report_funds": "报送到位资金",
    "start_construction": "开工",
    "start_production": "投产",
    "reach_target": "达效",
    "rectify": "差评整改",
    "confirm_rectification": "确认整改",
    "withdraw": "撤回",
    "terminate": "终止",
}

_CARDS: Mapping[str, str] = {
    **CARD_NAMES,
    "early_warning": "预警",
    "yellow_card": "黄牌",
    "red_card": "红牌",
}


@attrs.frozen
class Names:
    """Id -> display name, each method answering the id itself when it knows no name."""

    departments: Mapping[str, str]
    actors: Mapping[str, str]
    teams: Mapping[str, str] = attrs.field(factory=dict)
    materials: Mapping[str, str] = attrs.field(factory=dict)

    @classmethod
    def of(cls, settings: Settings, actors: ActorDirectory) -> Names:
        return cls(
            departments=dict(settings.departments),
            actors={a.id: a.name for a in actors if a.name},
            materials={m: info.name for m, info in settings.materials.items() if info.name},
        )

    def actor(self, actor_id: str) -> str:
        return self.actors.get(actor_id, actor_id)

    def team(self, team_id: str) -> str:
        return self.teams.get(team_id, team_id)

    def department(self, department_id: str) -> str:
        return self.departments.get(department_id, department_id)

    def material(self, material_id: str) -> str:
        return self.materials.get(material_id, material_id)

    def state(self, state: str) -> str:
        return STATE_NAMES.get(state, state)

    def branch_state(self, state: str) -> str:
        return BRANCH_STATE_NAMES.get(state, state)

    def command(self, name: str) -> str:
        return COMMAND_NAMES.get(name, name)

    def card(self, card: str) -> str:
        return _CARDS.get(card, card)

"""Chinese display names beside the stable English ids, for people reading the CLI and notices."""

from __future__ import annotations

from approvalflow.settings import LADDER_CARDS

__all__ = [
    "BRANCH_STATE_NAMES",
    "CARD_NAMES",
    "COMMAND_NAMES",
    "NOTICE_NAMES",
    "ROLE_NAMES",
    "STATE_NAMES",
    "TRANSITION_NAMES",
    "branch_label",
    "state_label",
]

STATE_NAMES: dict[str, str] = {
    "lead": "线索",
    "negotiating": "洽谈",
    "pre_review.reviewing": "即时初审",
    "pre_review.awaiting_materials": "待补材料",
    "decision.pending": "待集体决策",
    "decision.meeting": "决策会议中",
    "decision.approved": "决策通过",
    "signed": "已签约",
    "approval": "并联审批",
    "approved": "审批完成",
    "construction": "在建",
    "production": "投产",
    "effective": "达效",
    "rejected": "已否决",
    "withdrawn": "已撤回",
    "terminated": "已终止",
}

BRANCH_STATE_NAMES: dict[str, str] = {
    "pending": "待受理",
    "accepted": "已受理",
    "deficient": "容缺受理",
    "returned": "退回补正",
    "approved": "已批准",
    "conditional": "有条件批准",
    "rejected": "不予批准",
    "revoked": "已撤销",
    "paused": "暂停计时",
    "not_needed": "已减签",
}

NOTICE_NAMES: dict[str, str] = {
    "pre_review_notice": "一次性告知",
    "decision": "决策结果",
    "returned": "退回补正",
    "reminder": "补正提醒",
    "revoked": "撤销通知",
    "overdue": "逾期督办",
    "urge": "催办",
    "approved": "审批完成",
    "rejected": "否决通知",
    "copy": "抄送",
    "transferred": "转办通知",
    "entrusted": "委托通知",
    "department_added": "加签通知",
    "department_removed": "减签通知",
    "removal_consent": "减签待同意",
    "removal_declined": "减签未获同意",
    **{card.notice: card.title for card in LADDER_CARDS},
    "stage_opened": "阶段受理",
    "stage_decided": "阶段待出件",
    "stage_result_issued": "统一出件",
    "rating_recorded": "好差评评价",
    "rectified": "差评整改反馈",
    "rectification_closed": "差评整改确认",
    "rectification_reopened": "差评整改退回",
    "rectification_warning": "差评整改预警",
}

CARD_NAMES: dict[str, str] = {card.name: card.title for card in LADDER_CARDS}

# Every built-in command (rules/commands.py's table), as the people who send it say it.
COMMAND_NAMES: dict[str, str] = {
    "create": "创建项目",
    "negotiate": "开始洽谈",
    "submit_pre_review": "提交初审",
    "opinion": "出具初审意见",
    "supply": "补交材料",
    "convene": "召开决策会议",
    "vote": "表决",
    "close_meeting": "结束会议",
    "sign": "签约",
    "apply": "申请审批",
    "accept": "受理",
    "return": "退回补正",
    "approve": "批准",
    "reject": "不予批准",
    "pause_clock": "暂停计时",
    "extend_limit": "延长时限",
    "resume_clock": "恢复计时",
    "issue_stage_result": "统一出件",
    "accept_commitment": "告知承诺办结",
    "verify": "承诺核查",
    "urge": "催办",
    "add_department": "加签",
    "remove_department": "减签",
    "consent_remove_department": "同意减签",
    "report_funds": "报告到位资金",
    "start_construction": "开工",
    "start_production": "投产",
    "reach_target": "达效",
    "delegate": "委托代办",
    "transfer": "转办",
    "entrust": "委托",
    "copy": "抄送",
    "rate": "好差评评价",
    "rectify": "差评整改",
    "confirm_rectification": "确认整改",
    "withdraw": "撤回",
    "migrate_rules": "迁移规则",
    "terminate": "终止",
}

# Every trigger of the stage and branch machines (states.py): the commands above, then the
# engine's own moves (a round's outcome, a meeting's, a deadline's), for diagram labels.
TRANSITION_NAMES: dict[str, str] = {
    **COMMAND_NAMES,
    "round_passed": "初审通过",
    "round_supplement": "一次性告知补正",
    "round_failed": "初审不通过",
    "materials_complete": "材料补齐",
    "meeting_approved": "会议通过",
    "meeting_rejected": "会议否决",
    "meeting_no_quorum": "不足法定人数",
    "approval_complete": "审批完成",
    "approval_rejected": "审批否决",
    "timer": "时限到期",
    "accept_deficient": "容缺受理",
    "deem_accepted": "视为受理",
    "deem_approved": "视为批准",
    "resume_pending": "补正后待受理",
    "resume_accepted": "补正后受理",
    "resume_deficient": "补正后容缺受理",
    "revoke": "撤销",
    "revoke_commitment": "撤销承诺",
    "reopen": "重新受理",
    "pause": "暂停计时",
    "unpause_accepted": "恢复计时",
    "unpause_deficient": "恢复计时",
    "remove": "减签",
}

ROLE_NAMES: dict[str, str] = {
    "recruiter": "招商小分队",
    "applicant": "企业",
    "agent": "代办员",
    "reviewer": "初审成员单位",
    "member": "领导小组成员",
    "chair": "领导小组组长",
    "officer": "审批科室",
    "leader": "包联领导",
    "head": "部门负责人",
    "efficiency_office": "效能办",
}


def state_label(state: str) -> str:
    """``approval (并联审批)``; an unknown state is shown as it is."""
    name = STATE_NAMES.get(state)
    return f"{state} ({name})" if name else state


def branch_label(state: str) -> str:
    name = BRANCH_STATE_NAMES.get(state)
    return f"{state} ({name})" if name else state

"""Workflow diagrams drawn by ``transitions`` from the very definitions the engine runs.

``draw("stages")``, ``draw("branch")`` and ``draw("approval_stages", stages=...)`` (a county's
approval in stages, each drawn with its name and lead department) give Mermaid (no binary
needed) or DOT text (needs the ``graphviz`` Python package:
``pip install 'approvalflow[diagrams]'``). Commands a county plugin
adds appear as transitions that keep the stage, in every stage where they are allowed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any, Literal

from approvalflow.errors import DiagramError
from approvalflow.settings import ApprovalStageSettings
from approvalflow.states import NON_TERMINAL, TransitionSpec, investment_project

__all__ = ["DiagramError", "draw"]

Machine = Literal["stages", "branch", "approval_stages"]
Format = Literal["mermaid", "dot"]


def draw(
    machine: Machine = "stages",
    fmt: Format = "mermaid",
    *,
    extra_commands: Sequence[str] = (),
    title: str = "investment_project",
    stages: Sequence[ApprovalStageSettings] = (),
) -> str:
    """The diagram of ``machine`` as Mermaid or DOT source (``DiagramError`` when it cannot)."""
    machines = investment_project()
    if machine == "approval_stages":
        return _approval_stages(stages, fmt, title)
    if machine == "stages":
        drawn = machines.stages
        specs = list(drawn.transitions)
        for command in extra_commands:
            specs.append({"trigger": command, "source": list(NON_TERMINAL), "dest": None})
        title = f"{title}: stages"
    elif machine == "branch":
        drawn = machines.branch
        specs = list(drawn.transitions)
        title = f"{title}: approval.<department>"
    else:
        raise DiagramError(f"unknown machine {machine!r} (stages, branch or approval_stages)")
    if fmt == "mermaid":
        return _mermaid(drawn.states, specs, drawn.initial, title)
    if fmt == "dot":
        return _dot(drawn.states, specs, drawn.initial, title)
    raise DiagramError(f"unknown format {fmt!r} (mermaid or dot)")


def _approval_stages(stages: Sequence[ApprovalStageSettings], fmt: Format, title: str) -> str:
    """``signed`` -> each stage in order (``issue_stage_result`` by its lead) -> ``approved``;
    a rejection in any stage -> ``rejected``. Without stages: the single ``approval`` stage."""
    ids = [stage.id for stage in stages] or ["approval"]
    states = ["signed", *ids, "approved", "rejected"]
    specs: list[TransitionSpec] = [{"trigger": "apply", "source": "signed", "dest": ids[0]}]
    for here, following in zip(ids, [*ids[1:], "approved"], strict=True):
        trigger = "issue_stage_result" if stages else "approval_complete"
        specs.append({"trigger": trigger, "source": here, "dest": following})
    specs.append({"trigger": "approval_rejected", "source": ids, "dest": "rejected"})
    title = f"{title}: approval stages"
    if fmt == "dot":
        return _dot(states, specs, "signed", title)
    if fmt != "mermaid":
        raise DiagramError(f"unknown format {fmt!r} (mermaid or dot)")
    text = _mermaid(states, specs, "signed", title)
    for stage in stages:
        label = f"{stage.id} {stage.name} (lead {stage.lead}, {stage.limit_wd} wd)"
        text = text.replace(f'state "{stage.id}" as {stage.id}', f'state "{label}" as {stage.id}')
    return text


def _safe(name: str) -> str:
    # Mermaid state ids may not contain dots; the label keeps the real name.
    return name.replace(".", "__")


def _graph_machine(
    states: Iterable[str],
    specs: Sequence[TransitionSpec],
    initial: str,
    engine: Literal["graphviz", "mermaid"],
    title: str,
) -> Any:
    from transitions.extensions.diagrams import GraphMachine

    class _Model:
        pass

    safe_specs = [
        {
            "trigger": spec["trigger"],
            "source": _safe(spec["source"])
            if isinstance(spec["source"], str)
            else [_safe(s) for s in spec["source"]],
            "dest": _safe(spec["dest"]) if spec["dest"] else None,
        }
        for spec in specs
    ]
    model = _Model()
    GraphMachine(
        model=model,
        states=[_safe(s) for s in states],
        transitions=safe_specs,
        initial=_safe(initial),
        auto_transitions=False,
        graph_engine=engine,
        title=title,
        show_state_attributes=False,
    )
    return model.get_graph()  # type: ignore[attr-defined]


def _mermaid(
    states: Sequence[str], specs: Sequence[TransitionSpec], initial: str, title: str
) -> str:
    text: str = _graph_machine(states, specs, initial, "mermaid", title).draw(None)
    labels = {_safe(s): s for s in states}
    return re.sub(
        r'state "([^"]+)" as (\S+)',
        lambda m: f'state "{labels.get(m.group(2), m.group(1))}" as {m.group(2)}',
        text,
    )


def _dot(states: Sequence[str], specs: Sequence[TransitionSpec], initial: str, title: str) -> str:
    try:
        import graphviz  # noqa: F401
    except ImportError:
        raise DiagramError(
            "DOT output needs the graphviz Python package: pip install 'approvalflow[diagrams]'"
        ) from None
    graph = _graph_machine(states, specs, initial, "graphviz", title)
    source: str = graph.source
    for state in states:
        if "." in state:
            source = source.replace(f'label="{_safe(state)}', f'label="{state}')
    return source

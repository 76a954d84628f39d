"""Workflow diagrams from the very definitions the engine runs.

``draw("stages")``, ``draw("branch")`` and ``draw("approval_stages", stages=...)`` (a county's
approval in stages, each drawn with its name and lead department) give Mermaid (no binary
needed) or DOT text (needs the ``graphviz`` Python package:
``pip install 'approvalflow[diagrams]'``), drawn by ``transitions``. Commands a county plugin
adds appear as transitions that keep the stage, in every stage where they are allowed.

``diagram_svg("stages", highlight="approval")`` draws the same machines as SVG in pure Python
(no binary): a layered layout (the longest path from the initial state, cycles broken at
their back edges, each layer ordered by barycentres, long edges through dummy points), states
as boxes with their Chinese names and ids, transitions as arrows labelled with the command or
the engine's own move (``labels="en"``: the ids). Transitions that keep the state (``opinion``,
``urge``) are listed inside the state's box; a transition from five or more states at once
(``withdraw`` from every open stage) starts from one "any of" box instead of a fan of arrows.
The highlighted state is filled, drawn with a thick border and a bold name, and marked in text
(``▶ 当前`` / ``▶ current``), never by colour alone; the document carries a ``<title>`` and
``<desc>`` naming it for screen readers.
"""

from __future__ import annotations

import itertools
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal
from xml.sax.saxutils import escape

import attrs

from approvalflow.errors import DiagramError
from approvalflow.names import Names
from approvalflow.settings import ApprovalStageSettings, Settings
from approvalflow.states import NON_TERMINAL, TransitionSpec, investment_project

__all__ = ["DiagramError", "Labels", "diagram_svg", "draw", "machine_specs"]

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
    if fmt not in ("mermaid", "dot"):
        raise DiagramError(f"unknown format {fmt!r} (mermaid or dot)")
    states, specs, initial, suffix = machine_specs(machine, extra_commands, stages)
    title = f"{title}: {suffix}"
    if fmt == "dot":
        return _dot(states, specs, initial, title)
    text = _mermaid(states, specs, initial, title)
    for stage in stages if machine == "approval_stages" else ():
        label = f"{stage.id} {stage.name} (lead {stage.lead}, {stage.limit_wd} wd)"
        text = text.replace(f'state "{stage.id}" as {stage.id}', f'state "{label}" as {stage.id}')
    return text


def machine_specs(
    machine: str,
    extra_commands: Sequence[str] = (),
    stages: Sequence[ApprovalStageSettings] = (),
) -> tuple[list[str], list[TransitionSpec], str, str]:
    """``(states, transitions, initial state, title)`` of ``machine``, from ``states.py``:
    the project's stages (with a county's ``extra_commands`` kept in every open stage), one
    approval branch, or the approval stages (``stages``, or the single ``approval``)."""
    machines = investment_project()
    if machine == "approval_stages":
        return _approval_stages(stages)
    if machine == "stages":
        drawn = machines.stages
        specs = list(drawn.transitions)
        for command in extra_commands:
            specs.append({"trigger": command, "source": list(NON_TERMINAL), "dest": None})
        return list(drawn.states), specs, drawn.initial, "stages"
    if machine == "branch":
        drawn = machines.branch
        return list(drawn.states), list(drawn.transitions), drawn.initial, "approval.<department>"
    raise DiagramError(f"unknown machine {machine!r} (stages, branch or approval_stages)")


def _approval_stages(
    stages: Sequence[ApprovalStageSettings],
) -> tuple[list[str], list[TransitionSpec], str, str]:
    """``signed`` -> each stage in order (``issue_stage_result`` by its lead) -> ``approved``;
    a rejection in any stage -> ``rejected``. Without stages: the single ``approval`` stage."""
    ids = [stage.id for stage in stages] or ["approval"]
    states = ["signed", *ids, "approved", "rejected"]
    specs: list[TransitionSpec] = [{"trigger": "apply", "source": "signed", "dest": ids[0]}]
    for here, following in zip(ids, [*ids[1:], "approved"], strict=True):
        trigger = "issue_stage_result" if stages else "approval_complete"
        specs.append({"trigger": trigger, "source": here, "dest": following})
    specs.append({"trigger": "approval_rejected", "source": ids, "dest": "rejected"})
    return states, specs, "signed", "approval stages"


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


# -- SVG, laid out here -----------------------------------------------------------------------

Labels = Literal["zh", "en"]

_FONT = "'Noto Sans CJK SC','Source Han Sans SC','Microsoft YaHei','PingFang SC',sans-serif"
_SIZE = 14  # the state name's font size (px)
_SMALL = 11  # ids, in-state commands and edge labels
_PAD = 10
_LAYER_GAP = 64
_NODE_GAP = 36
_MARGIN = 24
_GROUP_AT = 5  # a transition from this many states or more starts from one "any of" box
_HIGHLIGHT_FILL = "#fde68a"
_HIGHLIGHT_STROKE = "#b45309"
_TERMINAL_FILL = "#f3f4f6"
_FILL = "#ffffff"
_STROKE = "#374151"


def text_width(text: str, size: float) -> float:
    """An estimate of the text's width: a CJK character is one em, others about 0.6 em."""
    return sum(size if ord(char) > 0x2E80 else size * 0.6 for char in text)


@attrs.define
class _Node:
    key: str
    lines: list[tuple[str, float, bool]]  # (text, font size, bold)
    kind: Literal["state", "group", "dummy"] = "state"
    members: frozenset[str] = frozenset()
    terminal: bool = False
    current: bool = False
    layer: int = 0
    order: float = 0.0
    x: float = 0.0  # centre
    y: float = 0.0  # top
    width: float = 0.0
    height: float = 0.0


@attrs.define
class _Edge:
    source: str
    dest: str
    label: str
    back: bool = False
    points: list[str] = attrs.field(factory=list)  # dummy node keys along a long edge


def diagram_svg(
    machine: str = "stages",
    highlight: str | None = None,
    labels: Labels = "zh",
    *,
    extra_commands: Sequence[str] = (),
    stages: Sequence[ApprovalStageSettings] = (),
    names: Names | None = None,
) -> str:
    """The SVG document of ``machine`` (``stages``, ``branch`` or ``approval_stages``), with
    ``highlight`` (a state of that machine, or ``None``) marked as the current state and the
    labels in Chinese (``zh``) or as the engine's ids (``en``). ``DiagramError`` for an unknown
    machine, state or label language."""
    if labels not in ("zh", "en"):
        raise DiagramError(f"unknown labels {labels!r} (zh or en)")
    states, specs, initial, title = machine_specs(machine, extra_commands, stages)
    if highlight is not None and highlight not in states:
        raise DiagramError(
            f"--highlight {highlight!r} is not a state of the {machine} machine "
            f"(states: {', '.join(states)})"
        )
    names = names or Names.of(Settings.default())
    if stages:
        names = attrs.evolve(
            names, states={**names.states, **{stage.id: stage.name for stage in stages}}
        )
    zh = labels == "zh"
    state_name = names.branch_state if machine == "branch" else names.state

    def state_label(state: str) -> str:
        return state_name(state) if zh else state

    def trigger_label(trigger: str) -> str:
        return names.transition(trigger) if zh else trigger

    # Transitions: arrows between states, commands that keep the state, "any of" groups.
    inside: dict[str, list[str]] = defaultdict(list)
    arrows: dict[tuple[str, str], list[str]] = defaultdict(list)
    groups: dict[frozenset[str], str] = {}
    leaving: set[str] = set()  # states a transition leaves: the others are end states
    for spec in specs:
        sources = spec["source"] if isinstance(spec["source"], list) else [spec["source"]]
        dest = spec["dest"]
        label = trigger_label(spec["trigger"])
        if dest is None:
            for source in sources:
                if label not in inside[source]:
                    inside[source].append(label)
            continue
        leaving.update(source for source in sources if source != dest)
        if len(sources) >= _GROUP_AT:
            key = groups.setdefault(frozenset(sources), f"any:{len(groups)}")
            sources = [key]
        for source in sources:
            if label not in arrows[(source, dest)]:
                arrows[(source, dest)].append(label)
    terminal = set(states) - leaving

    # What every open state allows (抄送, 时限到期...) is said once, under the title.
    open_states = [state for state in states if state not in terminal]
    everywhere: list[str] = []
    if len(open_states) >= _GROUP_AT:
        everywhere = [
            label
            for label in inside.get(open_states[0], [])
            if all(label in inside.get(state, ()) for state in open_states)
        ]
    for state in inside:
        inside[state] = [label for label in inside[state] if label not in everywhere]
    nodes: dict[str, _Node] = {}
    for state in states:
        lines: list[tuple[str, float, bool]] = [(state_label(state), _SIZE, state == highlight)]
        if zh and state_label(state) != state:
            lines.append((state, _SMALL, False))
        if state == highlight:
            lines.insert(0, ("▶ 当前" if zh else "▶ current", _SMALL, True))
        for chunk in _wrap(inside.get(state, []), 18 if zh else 36):
            lines.append((chunk, _SMALL, False))
        nodes[state] = _Node(
            state,
            lines,
            terminal=state in terminal and state != initial,
            current=state == highlight,
        )
    for members, key in groups.items():
        ordered = [state for state in states if state in members]
        head = "以下任一状态：" if zh else "any of:"
        listed = [state_label(state) for state in ordered]
        group: list[tuple[str, float, bool]] = [(head, _SMALL, True)]
        group += [(chunk, _SMALL, False) for chunk in _wrap(listed, 14 if zh else 30)]
        nodes[key] = _Node(key, group, kind="group", members=members)
    edges = [
        _Edge(source, dest, " / ".join(found))
        for (source, dest), found in arrows.items()
        if source != dest
    ]
    for node in nodes.values():
        _measure(node)
    _layer(nodes, edges, initial, [state for state in states])
    _add_dummies(nodes, edges)
    _order(nodes, edges)
    _place(nodes, edges)
    if zh:
        heading = _ZH_TITLES.get(machine, title)
        heading += f"（当前：{state_label(highlight)}）" if highlight else ""
        note = f"每个未结状态均可：{'、'.join(everywhere)}" if everywhere else ""
    else:
        heading = f"investment_project: {title}" + (f" (current: {highlight})" if highlight else "")
        note = f"in every open state: {', '.join(everywhere)}" if everywhere else ""
    return _render(nodes, edges, heading, note, highlight)


def _wrap(items: Sequence[str], width: int) -> list[str]:
    """``items`` joined with ``、``/``, `` into lines of about ``width`` characters."""
    lines: list[str] = []
    line = ""
    for item in items:
        candidate = f"{line}、{item}" if line else item
        if line and len(candidate) > width:
            lines.append(line)
            line = item
        else:
            line = candidate
    if line:
        lines.append(line)
    return lines


def _measure(node: _Node) -> None:
    if node.kind == "dummy":
        node.width, node.height = 8.0, 8.0
        return
    node.width = max(text_width(text, size) for text, size, _ in node.lines) + 2 * _PAD
    node.width = max(node.width, 72.0)
    node.height = sum(size * 1.35 for _, size, _ in node.lines) + 2 * _PAD - 4


def _layer(nodes: dict[str, _Node], edges: list[_Edge], initial: str, states: list[str]) -> None:
    """Longest-path layers from the initial state (groups just above their first target),
    with the back edges of a depth-first walk turned round first."""
    out: dict[str, list[str]] = defaultdict(list)
    for edge in edges:
        out[edge.source].append(edge.dest)
    # An "any of" box hangs below its states: the walk follows them to it first.
    for key, group in nodes.items():
        for member in sorted(group.members):
            out[member].insert(0, key)
    seen: set[str] = set()
    active: set[str] = set()
    back: set[tuple[str, str]] = set()
    # Iterative DFS, the initial state first, then any state it does not reach.
    starts = [initial, *(k for k in nodes if k not in states), *(s for s in states if s != initial)]
    for start in starts:
        if start in seen:
            continue
        stack: list[tuple[str, int]] = [(start, 0)]
        seen.add(start)
        active.add(start)
        while stack:
            node, index = stack[-1]
            children = out.get(node, [])
            if index < len(children):
                stack[-1] = (node, index + 1)
                child = children[index]
                if child in active:
                    back.add((node, child))
                elif child not in seen:
                    seen.add(child)
                    active.add(child)
                    stack.append((child, 0))
            else:
                active.discard(node)
                stack.pop()
    for edge in edges:
        edge.back = (edge.source, edge.dest) in back
    # Every edge points down once its back edges are turned round.
    downward = [(e.dest, e.source) if e.back else (e.source, e.dest) for e in edges]
    layer = dict.fromkeys(nodes, 0)
    for _ in range(2 * len(nodes) + 2):  # relax: a DAG settles in at most |V| passes
        changed = False
        # An "any of" box sits below the deepest of its states, its targets below it.
        for key, group in nodes.items():
            if group.kind == "group":
                above = [m for m in group.members if m in layer and (m, key) not in back]
                deepest = max((layer[m] for m in above), default=0) + 1
                if layer[key] != deepest:
                    layer[key] = deepest
                    changed = True
        for upper, lower in downward:
            if layer[lower] < layer[upper] + 1:
                layer[lower] = layer[upper] + 1
                changed = True
        if not changed:
            break
    for key, value in layer.items():
        nodes[key].layer = value


def _add_dummies(nodes: dict[str, _Node], edges: list[_Edge]) -> None:
    """A dummy point in each layer a long edge crosses, top to bottom, so it is routed
    around the boxes (a back edge is routed as if it pointed down, its arrow at the top)."""
    count = 0
    for edge in edges:
        upper, lower = _ends(nodes, edge)
        for layer in range(nodes[upper].layer + 1, nodes[lower].layer):
            key = f"dummy:{count}"
            count += 1
            nodes[key] = _Node(key, [], kind="dummy", layer=layer)
            _measure(nodes[key])
            edge.points.append(key)


def _ends(nodes: Mapping[str, _Node], edge: _Edge) -> tuple[str, str]:
    """The edge's upper and lower end."""
    if nodes[edge.source].layer <= nodes[edge.dest].layer:
        return edge.source, edge.dest
    return edge.dest, edge.source


def _chain(edge: _Edge, nodes: Mapping[str, _Node]) -> list[str]:
    """The edge's ends and dummy points, top to bottom."""
    upper, lower = _ends(nodes, edge)
    return [upper, *edge.points, lower]


def _order(nodes: dict[str, _Node], edges: list[_Edge]) -> None:
    """Barycentre ordering, sweeping down and up a few times."""
    layers: dict[int, list[str]] = defaultdict(list)
    for key, node in nodes.items():
        layers[node.layer].append(key)
    for keys in layers.values():
        for position, key in enumerate(keys):
            nodes[key].order = float(position)
    above: dict[str, list[str]] = defaultdict(list)
    below: dict[str, list[str]] = defaultdict(list)
    for edge in edges:
        for upper, lower in itertools.pairwise(_chain(edge, nodes)):
            below[upper].append(lower)
            above[lower].append(upper)
    depth = max(layers) if layers else 0
    for sweep in range(8):
        downward = sweep % 2 == 0
        sequence = range(1, depth + 1) if downward else range(depth - 1, -1, -1)
        for index in sequence:
            neighbours = above if downward else below
            keyed = []
            for key in layers[index]:
                found = [nodes[n].order for n in neighbours[key]]
                centre = sum(found) / len(found) if found else nodes[key].order
                keyed.append((centre, nodes[key].order, key))
            keyed.sort()
            layers[index] = [key for _, _, key in keyed]
            for position, key in enumerate(layers[index]):
                nodes[key].order = float(position)


def _place(nodes: dict[str, _Node], edges: list[_Edge]) -> None:
    """Coordinates: layers top to bottom, each layer's boxes left to right, then pulled
    towards their neighbours' centres without overlapping."""
    layers: dict[int, list[_Node]] = defaultdict(list)
    for node in nodes.values():
        layers[node.layer].append(node)
    y = float(_MARGIN + 44)
    for index in sorted(layers):
        row = sorted(layers[index], key=lambda n: n.order)
        height = max(n.height for n in row)
        x = 0.0
        for node in row:
            node.x = x + node.width / 2
            node.y = y + (height - node.height) / 2
            x += node.width + _NODE_GAP
        y += height + _LAYER_GAP
    neighbours: dict[str, list[str]] = defaultdict(list)
    for edge in edges:
        for first, second in itertools.pairwise(_chain(edge, nodes)):
            neighbours[first].append(second)
            neighbours[second].append(first)
    for sweep in range(8):
        sequence = sorted(layers) if sweep % 2 == 0 else sorted(layers, reverse=True)
        for index in sequence:
            row = sorted(layers[index], key=lambda n: n.order)
            wanted = []
            for node in row:
                found = [nodes[n].x for n in neighbours[node.key]]
                wanted.append(sum(found) / len(found) if found else node.x)
            for node, x in zip(row, _spread(row, wanted), strict=True):
                node.x = x
    lowest = min(node.x - node.width / 2 for node in nodes.values())
    for node in nodes.values():
        node.x += _MARGIN - lowest


def _spread(row: Sequence[_Node], wanted: Sequence[float]) -> list[float]:
    """The centres nearest ``wanted`` (least squares) that keep ``row``'s order and gaps:
    isotonic regression (pool adjacent violators) on the centres less their least offsets."""
    offsets = [0.0]
    for left, right in itertools.pairwise(row):
        offsets.append(offsets[-1] + (left.width + right.width) / 2 + _NODE_GAP)
    blocks: list[list[float]] = []  # [mean, count]
    for want, offset in zip(wanted, offsets, strict=True):
        blocks.append([want - offset, 1.0])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            mean, count = blocks.pop()
            blocks[-1][0] = (blocks[-1][0] * blocks[-1][1] + mean * count) / (blocks[-1][1] + count)
            blocks[-1][1] += count
    values = [mean for mean, count in blocks for _ in range(int(count))]
    return [value + offset for value, offset in zip(values, offsets, strict=True)]


_ZH_TITLES = {
    "stages": "招商引资项目：项目阶段",
    "branch": "并联审批：每个部门的审批分支",
    "approval_stages": "分阶段审批",
}


def _render(
    nodes: Mapping[str, _Node],
    edges: Sequence[_Edge],
    heading: str,
    note: str,
    highlight: str | None,
) -> str:
    width = max(node.x + node.width / 2 for node in nodes.values()) + _MARGIN + 120
    height = max(node.y + node.height for node in nodes.values()) + _MARGIN
    width = max(width, text_width(heading, _SIZE + 2) + 2 * _MARGIN)
    width = max(width, text_width(note, _SMALL) + 2 * _MARGIN)
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" role="img" '
        'aria-labelledby="diagram-title diagram-desc" font-family="' + _FONT + '">',
        f'<title id="diagram-title">{escape(heading)}</title>',
        '<desc id="diagram-desc">'
        + escape(
            f"{sum(1 for n in nodes.values() if n.kind == 'state')} states, "
            f"{len(edges)} transitions"
            + (f"; the current state is {highlight}" if highlight else "")
        )
        + "</desc>",
        "<defs>"
        '<marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
        f'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
        f'fill="{_STROKE}"/></marker>'
        "</defs>",
        f'<rect width="100%" height="100%" fill="{_FILL}"/>',
        f'<text x="{_MARGIN}" y="{_MARGIN + 4}" font-size="{_SIZE + 2}" font-weight="bold" '
        f'fill="#111827">{escape(heading)}</text>',
        f'<text class="note" x="{_MARGIN}" y="{_MARGIN + 24}" font-size="{_SMALL}" '
        f'fill="#4b5563">{escape(note)}</text>',
        '<g class="edges" fill="none">',
    ]
    labels: list[str] = []
    taken = [
        (n.x - n.width / 2, n.y, n.x + n.width / 2, n.y + n.height)
        for n in nodes.values()
        if n.kind != "dummy"
    ]
    for edge in edges:
        path, points = _path(nodes, edge)
        # A back edge is drawn top to bottom like the others, its arrow at the top.
        dash = ' stroke-dasharray="5,3"' if edge.back else ""
        upward = nodes[edge.source].layer > nodes[edge.dest].layer
        arrow = "marker-start" if upward else "marker-end"
        parts.append(
            f'<path class="edge" data-source="{_attr(edge.source)}" '
            f'data-dest="{_attr(edge.dest)}" d="{path}" stroke="{_STROKE}" '
            f'stroke-width="1.2"{dash} {arrow}="url(#arrow)"/>'
        )
        if edge.label:
            w = text_width(edge.label, _SMALL) + 6
            lx, ly = _label_at(points, (w, 15.0), taken)
            labels.append(
                f'<g class="edge-label"><rect x="{lx - w / 2:.1f}" y="{ly - 8:.1f}" '
                f'width="{w:.1f}" height="15" rx="3" fill="#ffffff" fill-opacity="0.85"/>'
                f'<text x="{lx:.1f}" y="{ly + 3.5:.1f}" font-size="{_SMALL}" '
                f'text-anchor="middle" fill="#1f2937">{escape(edge.label)}</text></g>'
            )
    parts.append("</g>")
    parts.append('<g class="states">')
    for node in nodes.values():
        if node.kind == "dummy":
            continue
        parts.append(_box(node))
    parts.append("</g>")
    parts.append('<g class="labels">')
    parts.extend(labels)
    parts.append("</g>")
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def _attr(value: str) -> str:
    """``value`` inside a double-quoted attribute."""
    return escape(value, {'"': "&quot;"})


def _box(node: _Node) -> str:
    left = node.x - node.width / 2
    fill = _HIGHLIGHT_FILL if node.current else (_TERMINAL_FILL if node.terminal else _FILL)
    stroke = _HIGHLIGHT_STROKE if node.current else _STROKE
    stroke_width = 3.5 if node.current else 1.2
    dash = ' stroke-dasharray="4,3"' if node.kind == "group" else ""
    classes = "state current" if node.current else ("group" if node.kind == "group" else "state")
    current = ' aria-current="true"' if node.current else ""
    out = [
        f'<g class="{classes}" data-state="{_attr(node.key)}"{current}>',
        f"<title>{escape(' '.join(text for text, _, _ in node.lines))}</title>",
        f'<rect x="{left:.1f}" y="{node.y:.1f}" width="{node.width:.1f}" '
        f'height="{node.height:.1f}" rx="{12 if node.terminal else 6}" fill="{fill}" '
        f'stroke="{stroke}" stroke-width="{stroke_width}"{dash}/>',
    ]
    if node.terminal:  # an end state: a double border, as state charts draw it
        out.append(
            f'<rect x="{left + 3:.1f}" y="{node.y + 3:.1f}" width="{node.width - 6:.1f}" '
            f'height="{node.height - 6:.1f}" rx="9" fill="none" stroke="{stroke}" '
            'stroke-width="0.8"/>'
        )
    y = node.y + _PAD - 2
    for text, size, bold in node.lines:
        y += size * 1.35
        weight = ' font-weight="bold"' if bold else ""
        colour = "#111827" if size == _SIZE else "#4b5563"
        out.append(
            f'<text x="{node.x:.1f}" y="{y - size * 0.3:.1f}" font-size="{size}"{weight} '
            f'text-anchor="middle" fill="{colour}">{escape(text)}</text>'
        )
    out.append("</g>")
    return "".join(out)


def _path(nodes: Mapping[str, _Node], edge: _Edge) -> tuple[str, list[tuple[float, float]]]:
    """The edge's SVG path, top to bottom through its dummy points, and the polyline it
    follows (for its label)."""
    upper, lower = _ends(nodes, edge)
    top, bottom = nodes[upper], nodes[lower]
    points: list[tuple[float, float]] = [(top.x, top.y + top.height)]
    for key in edge.points:
        dummy = nodes[key]
        points.append((dummy.x, dummy.y))
        points.append((dummy.x, dummy.y + dummy.height))
    points.append((bottom.x, bottom.y))
    d = f"M{points[0][0]:.1f},{points[0][1]:.1f}"
    for (xa, ya), (xb, yb) in itertools.pairwise(points):
        middle = (ya + yb) / 2
        d += f" C{xa:.1f},{middle:.1f} {xb:.1f},{middle:.1f} {xb:.1f},{yb:.1f}"
    return d, points


def _label_at(
    points: Sequence[tuple[float, float]],
    size: tuple[float, float],
    taken: list[tuple[float, float, float, float]],
) -> tuple[float, float]:
    """A place on the polyline for a label of ``size`` that overlaps no box in ``taken``
    (the states and the labels placed so far): the middle first, then further out."""
    lengths = [
        ((xb - xa) ** 2 + (yb - ya) ** 2) ** 0.5
        for (xa, ya), (xb, yb) in itertools.pairwise(points)
    ]
    total = sum(lengths) or 1.0
    w, h = size
    best: tuple[float, float] | None = None
    for t in (0.5, 0.4, 0.6, 0.3, 0.7, 0.22, 0.78, 0.15, 0.85):
        at = _point_at(points, lengths, total * t)
        box = (at[0] - w / 2, at[1] - h / 2, at[0] + w / 2, at[1] + h / 2)
        if not any(_overlap(box, other) for other in taken):
            best = at
            break
    if best is None:
        best = _point_at(points, lengths, total * 0.5)
    taken.append((best[0] - w / 2, best[1] - h / 2, best[0] + w / 2, best[1] + h / 2))
    return best


def _point_at(
    points: Sequence[tuple[float, float]], lengths: Sequence[float], distance: float
) -> tuple[float, float]:
    for ((xa, ya), (xb, yb)), length in zip(itertools.pairwise(points), lengths, strict=True):
        if distance <= length and length:
            share = distance / length
            return xa + (xb - xa) * share, ya + (yb - ya) * share
        distance -= length
    return points[-1]


def _overlap(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]

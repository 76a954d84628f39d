"""Workflow diagrams come from the engine's own machine definitions."""

from __future__ import annotations

from xml.etree import ElementTree

import pytest

from approvalflow.cli import main
from approvalflow.diagram import DiagramError, diagram_svg, draw
from approvalflow.display import STATE_NAMES, TRANSITION_NAMES
from approvalflow.rules.commands import BUILTIN_COMMANDS
from approvalflow.states import BRANCH_STATES, STAGES

SVG = "{http://www.w3.org/2000/svg}"


class TestMermaid:
    def test_every_state_and_command_of_the_workflow_is_drawn(self) -> None:
        """Each stage is a node with its real name; each stage-level command labels an edge."""
        text = draw("stages", "mermaid")
        for stage in STAGES:
            assert f'state "{stage}" as {stage.replace(".", "__")}' in text
        branch_commands = {"accept", "return", "approve", "reject", "verify"}
        for command in set(BUILTIN_COMMANDS) - {"create"}:
            assert command in text, command
        branch = draw("branch", "mermaid")
        for state in BRANCH_STATES:
            assert f'state "{state}"' in branch
        for command in branch_commands - {"verify"}:
            assert f": {command}" in branch or f"| {command}" in branch

    def test_a_plugin_command_appears_in_every_non_terminal_stage(self) -> None:
        """Commands a county adds are drawn as transitions that keep the stage."""
        text = draw("stages", "mermaid", extra_commands=["raise_issue"])
        assert "lead --> lead: " in text and "raise_issue" in text
        ended = [line for line in text.splitlines() if line.strip().startswith("effective -->")]
        # Once the project ended only the 好差评 commands remain (D154), never a county's.
        assert ended and not any("raise_issue" in line for line in ended)

    def test_the_cli_prints_it(self, capsys: pytest.CaptureFixture[str]) -> None:
        """`approvalflow diagram` prints Mermaid by default."""
        assert main(["diagram"]) == 0
        assert "stateDiagram-v2" in capsys.readouterr().out
        assert main(["diagram", "nope"]) == 2


class TestDot:
    def test_dot_output_keeps_dotted_names_as_labels(self) -> None:
        """DOT source (graphviz package) labels nodes with the real state names."""
        pytest.importorskip("graphviz")
        text = draw("stages", "dot")
        assert text.startswith("digraph")
        assert 'label="pre_review.reviewing' in text


class TestSvg:
    """`diagram_svg`: a pure-Python layout, Chinese labels, the current state marked."""

    @staticmethod
    def parse(text: str) -> ElementTree.Element:
        root = ElementTree.fromstring(text.encode("utf-8"))
        assert root.tag == f"{SVG}svg"
        return root

    @staticmethod
    def states(root: ElementTree.Element) -> dict[str, ElementTree.Element]:
        return {
            group.attrib["data-state"]: group
            for group in root.iter(f"{SVG}g")
            if "state" in group.attrib.get("class", "").split()
        }

    @staticmethod
    def texts(element: ElementTree.Element) -> list[str]:
        return [node.text or "" for node in element.iter(f"{SVG}text")]

    def test_every_stage_is_drawn_with_its_chinese_name(self) -> None:
        root = self.parse(diagram_svg("stages"))
        drawn = self.states(root)
        assert set(drawn) == set(STAGES)
        for stage, group in drawn.items():
            assert STATE_NAMES[stage] in self.texts(group), stage
            assert stage in self.texts(group)

    def test_transitions_are_labelled_in_chinese(self) -> None:
        """Each arrow between two stages carries its command's (or move's) Chinese name."""
        text = diagram_svg("stages")
        labels = " ".join(self.texts(self.parse(text)))
        for trigger in ("negotiate", "submit_pre_review", "sign", "apply", "round_passed"):
            assert TRANSITION_NAMES[trigger] in labels, trigger
        assert "submit_pre_review" not in labels  # the ids stay out of the Chinese labels
        paths = [p for p in self.parse(text).iter(f"{SVG}path") if "edge" in p.get("class", "")]
        arrows = {(p.get("data-source"), p.get("data-dest")) for p in paths}
        assert ("lead", "negotiating") in arrows

    @pytest.mark.parametrize(("machine", "initial"), [("stages", "lead"), ("branch", "pending")])
    def test_the_layout_starts_at_the_top_and_no_boxes_overlap(
        self, machine: str, initial: str
    ) -> None:
        """The initial state is the top box; state boxes never overlap one another."""
        root = self.parse(diagram_svg(machine))
        boxes = {}
        for state, group in self.states(root).items():
            rect = group.find(f"{SVG}rect")
            assert rect is not None
            x, y = float(rect.get("x", "0")), float(rect.get("y", "0"))
            boxes[state] = (
                x,
                y,
                x + float(rect.get("width", "0")),
                y + float(rect.get("height", "0")),
            )
        assert min(boxes, key=lambda state: boxes[state][1]) == initial
        ordered = sorted(boxes.items())
        for index, (one, a) in enumerate(ordered):
            for other, b in ordered[index + 1 :]:
                apart = a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1]
                assert apart, (one, other)

    def test_english_labels_are_the_ids(self) -> None:
        root = self.parse(diagram_svg("branch", labels="en"))
        drawn = self.states(root)
        assert set(drawn) == set(BRANCH_STATES)
        labels = " ".join(self.texts(root))
        assert "accept_deficient" in labels and "容缺受理" not in labels

    def test_the_current_state_is_marked_in_text_and_border_not_colour_only(self) -> None:
        root = self.parse(diagram_svg("branch", highlight="deficient"))
        drawn = self.states(root)
        current = [state for state, group in drawn.items() if "current" in group.get("class", "")]
        assert current == ["deficient"]
        group = drawn["deficient"]
        assert group.get("aria-current") == "true"
        assert "▶ 当前" in self.texts(group)
        box = group.find(f"{SVG}rect")
        assert box is not None and float(box.get("stroke-width", "0")) >= 3
        bold = [t.text for t in group.iter(f"{SVG}text") if t.get("font-weight") == "bold"]
        assert "容缺受理" in bold
        title = root.find(f"{SVG}title")
        assert title is not None and "容缺受理" in (title.text or "")
        others = [g for s, g in drawn.items() if s != "deficient"]
        assert all("▶ 当前" not in self.texts(g) for g in others)

    def test_approval_stages_by_their_names(self) -> None:
        from approvalflow.settings import STAGE_TEMPLATES

        stages = STAGE_TEMPLATES["national"][0]
        root = self.parse(diagram_svg("approval_stages", stages=stages, highlight=stages[1].id))
        drawn = self.states(root)
        assert set(drawn) == {"signed", *(s.id for s in stages), "approved", "rejected"}
        for stage in stages:
            assert stage.name in self.texts(drawn[stage.id])
        assert "▶ 当前" in self.texts(drawn[stages[1].id])

    def test_names_with_markup_characters_stay_valid_xml(self) -> None:
        """A county's stage name is text in the document, never markup."""
        from approvalflow.settings import ApprovalStageSettings

        stage = ApprovalStageSettings(
            id="s1", name='立项 <A&B> "一"', departments=("fgw",), lead="fgw", limit_wd=5
        )
        root = self.parse(diagram_svg("approval_stages", stages=[stage], highlight="s1"))
        assert '立项 <A&B> "一"' in self.texts(self.states(root)["s1"])

    def test_a_countys_commands_are_drawn_where_they_are_allowed(self) -> None:
        """A plugin command allowed in every open stage is named once, under the title."""
        root = self.parse(diagram_svg("stages", extra_commands=["raise_issue"]))
        notes = [t.text or "" for t in root.iter(f"{SVG}text") if t.get("class") == "note"]
        assert len(notes) == 1 and "raise_issue" in notes[0] and "抄送" in notes[0]

    def test_bad_arguments_are_refused(self) -> None:
        with pytest.raises(DiagramError, match="not a state of the branch machine"):
            diagram_svg("branch", highlight="approval")
        with pytest.raises(DiagramError, match="unknown labels"):
            diagram_svg("stages", labels="fr")  # type: ignore[arg-type]
        with pytest.raises(DiagramError, match="unknown machine"):
            diagram_svg("nope")

    def test_the_cli_writes_it(self, capsys: pytest.CaptureFixture[str]) -> None:
        argv = ["diagram", "--format", "svg", "--machine", "branch", "--highlight", "returned"]
        assert main(argv) == 0
        root = self.parse(capsys.readouterr().out)
        assert "current" in self.states(root)["returned"].get("class", "")
        assert main(["diagram", "--format", "svg", "--labels", "en"]) == 0
        assert "pre_review.reviewing" in capsys.readouterr().out

    @pytest.mark.parametrize(
        ("argv", "message"),
        [
            (["diagram", "--highlight", "approval"], "--highlight needs --format svg"),
            (["diagram", "--format", "dot", "--labels", "zh"], "--labels needs --format svg"),
            (["diagram", "--format", "svg", "--highlight", "nowhere"], "'nowhere' is not a state"),
            (["diagram", "--format", "svg", "--labels", "fr"], "invalid choice: 'fr'"),
        ],
    )
    def test_the_cli_refuses_bad_options(
        self, argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A usage error: exit 2, the reason on stderr, nothing on stdout, no traceback."""
        assert main(argv) == 2
        captured = capsys.readouterr()
        assert message in captured.err and "Traceback" not in captured.err
        assert "<svg" not in captured.out

"""Pages of the documentation site that are generated from the code at build time.

Two directives, so that these pages can never drift from what the code does:

``{approvalflow-cli}``
    One section per ``approvalflow`` command with its ``--help`` text, taken from the argparse
    parser the CLI itself builds (``approvalflow.cli._parser``). A command added to the CLI
    appears on the page with no edit.

``{approvalflow-diagram} stages`` (or ``branch``)
    A workflow machine drawn by ``approvalflow.diagram.draw`` as a Mermaid diagram (rendered by
    sphinxcontrib-mermaid). Options are those of the ``mermaid`` directive (``:caption:``...).

``{approvalflow-svg} stages`` (or ``branch``), option ``:highlight: STATE``
    The same machine as ``approvalflow diagram --format svg`` writes it (``diagram_svg``), inline
    in the page: drawn when the site is built, no script needed.
"""

from __future__ import annotations

import argparse
import functools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective
from sphinxcontrib.mermaid import Mermaid

__all__ = ["setup"]

# Help text is wrapped at a fixed width, not the width of the terminal that runs the build.
HELP_WIDTH = 90


def cli_commands() -> Iterator[tuple[str, str, argparse.ArgumentParser]]:
    """``(prog, one-line help, parser)`` for ``approvalflow`` itself, then each leaf command.

    Commands come in the order the CLI declares them; a command with sub-commands (``audit``)
    is represented by its leaves (``audit verify``).
    """
    from approvalflow.cli import _parser

    top = _parser()
    yield top.prog, top.description or "", top
    yield from _leaves(top)


def _leaves(parser: argparse.ArgumentParser) -> Iterator[tuple[str, str, argparse.ArgumentParser]]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help or "" for choice in action._choices_actions}
            for name, child in action.choices.items():
                if any(isinstance(a, argparse._SubParsersAction) for a in child._actions):
                    yield from _leaves(child)
                else:
                    yield child.prog, helps.get(name, ""), child


def help_text(parser: argparse.ArgumentParser) -> str:
    """``parser``'s ``--help`` output at a fixed width."""
    parser.formatter_class = functools.partial(argparse.HelpFormatter, width=HELP_WIDTH)
    return parser.format_help().rstrip()


class CliReference(SphinxDirective):
    """Sections with every command's usage; place it last on its page."""

    has_content = False

    def run(self) -> list[nodes.Node]:
        _note_code_dependencies(self.env)
        result: list[nodes.Node] = []
        for prog, summary, parser in cli_commands():
            section = nodes.section()
            section["names"].append(nodes.fully_normalize_name(prog))
            section["ids"].append(nodes.make_id(prog))
            section += nodes.title(prog, "", nodes.literal(prog, prog))
            if summary:
                sentence = summary[0].upper() + summary[1:]
                section += nodes.paragraph(sentence, sentence.rstrip(".") + ".")
            text = help_text(parser)
            block = nodes.literal_block(text, text, language="text")
            self.set_source_info(block)
            section += block
            self.state.document.note_implicit_target(section, section)
            result.append(section)
        return result


class WorkflowDiagram(Mermaid):
    """The ``mermaid`` directive with its code drawn from the engine's machine definitions."""

    has_content = False
    required_arguments = 1
    optional_arguments = 0

    def get_mm_code(self) -> Any:
        from approvalflow.diagram import draw

        machine = self.arguments[0]
        if machine not in ("stages", "branch"):
            return [
                self.state.document.reporter.warning(
                    f"approvalflow-diagram takes 'stages' or 'branch', not {machine!r}",
                    line=self.lineno,
                )
            ]
        return _without_front_matter(draw(machine, "mermaid"))

    def run(self, **kwargs: Any) -> list[nodes.Node]:
        _note_code_dependencies(self.state.document.settings.env)
        return list(super().run(**kwargs))


class WorkflowSvg(SphinxDirective):
    """``diagram_svg``'s document, inline in the page (HTML builders only)."""

    has_content = False
    required_arguments = 1
    option_spec = {"highlight": str}  # noqa: RUF012 (docutils reads a class attribute)

    def run(self) -> list[nodes.Node]:
        from approvalflow.diagram import DiagramError, diagram_svg

        _note_code_dependencies(self.env)
        try:
            svg = diagram_svg(self.arguments[0], highlight=self.options.get("highlight"))
        except DiagramError as error:
            return [self.state.document.reporter.warning(str(error), line=self.lineno)]
        body = svg.split("?>", 1)[1].strip() if svg.startswith("<?xml") else svg
        html = f'<figure class="approvalflow-svg" style="overflow-x:auto">{body}</figure>'
        return [nodes.raw("", html, format="html")]


def _note_code_dependencies(env: Any) -> None:
    # An incremental build re-reads the page when any of approvalflow's modules changes.
    import approvalflow

    for path in sorted(Path(approvalflow.__file__).parent.rglob("*.py")):
        env.note_dependency(str(path))


def _without_front_matter(text: str) -> str:
    # transitions writes the title as YAML front matter that Mermaid does not display; the
    # page gives the diagram a caption instead.
    if text.startswith("---\n"):
        end = text.find("\n---\n", 4)
        if end != -1:
            return text[end + len("\n---\n") :]
    return text


def setup(app: Sphinx) -> dict[str, Any]:
    app.setup_extension("sphinxcontrib.mermaid")
    app.add_directive("approvalflow-cli", CliReference)
    app.add_directive("approvalflow-diagram", WorkflowDiagram)
    app.add_directive("approvalflow-svg", WorkflowSvg)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}

"""``approvalflow diagram [WORKFLOW] --format mermaid|dot|svg``: the workflow as the engine runs
it; SVG (pure Python, no binary) with Chinese labels and the current state highlighted."""

from __future__ import annotations

import argparse

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "workflow", nargs="?", default="investment_project", help="workflow name (built-in only)"
    )
    parser.add_argument(
        "--format",
        choices=["mermaid", "dot", "svg"],
        default="mermaid",
        help="Mermaid text, Graphviz DOT (graphviz package), or an SVG document",
    )
    parser.add_argument(
        "--highlight",
        metavar="STATE",
        default=None,
        help="with --format svg: mark this state as the current one",
    )
    parser.add_argument(
        "--labels",
        choices=["zh", "en"],
        default=None,
        help="with --format svg: Chinese names (zh, the default) or the engine's ids (en)",
    )
    parser.add_argument(
        "--machine",
        choices=["stages", "branch", "approval_stages"],
        default="stages",
        help="the project's stages, one approval branch's states, or the approval stages "
        "(approval in stages) of the county's settings",
    )
    parser.add_argument(
        "--stages",
        default=None,
        help="with --machine approval_stages: a stage template (national) instead of the "
        "county's settings",
    )
    parser.add_argument(
        "--plugin", action="append", default=[], help="apply a county plugin's commands"
    )
    parser.set_defaults(run=run)


def run(options: argparse.Namespace) -> int:
    from approvalflow.cli.common import CommandFailed, CommandLineError, open_engine
    from approvalflow.diagram import DiagramError, diagram_svg, draw
    from approvalflow.names import Names
    from approvalflow.rules.commands import BUILTIN_COMMANDS
    from approvalflow.states import WORKFLOW_NAME
    from approvalflow.stores import MemoryStore

    if options.format != "svg":
        for given, flag in ((options.highlight, "--highlight"), (options.labels, "--labels")):
            if given is not None:
                raise CommandLineError(f"{flag} needs --format svg")
    if options.workflow != WORKFLOW_NAME:
        raise CommandLineError(f"unknown workflow {options.workflow!r} (known: {WORKFLOW_NAME})")
    from approvalflow.settings import STAGE_TEMPLATES, ApprovalStageSettings, Settings

    extra: list[str] = []
    settings = Settings.default()
    if options.plugin:
        engine = open_engine(MemoryStore(), options.plugin)
        extra = sorted(set(engine.commands) - set(BUILTIN_COMMANDS))
        settings = engine.settings
    stages: tuple[ApprovalStageSettings, ...] = settings.approval.stages
    if options.stages is not None:
        if options.stages not in STAGE_TEMPLATES:
            raise CommandLineError(
                f"unknown stage template {options.stages!r} (known: {', '.join(STAGE_TEMPLATES)})"
            )
        stages = STAGE_TEMPLATES[options.stages][0]
    try:
        if options.format == "svg":
            text = diagram_svg(
                options.machine,
                highlight=options.highlight,
                labels=options.labels or "zh",
                extra_commands=extra,
                stages=stages,
                names=Names.of(settings),
            )
            print(text, end="")
        else:
            print(draw(options.machine, options.format, extra_commands=extra, stages=stages))
    except DiagramError as error:
        if options.highlight is not None and "--highlight" in error.message:
            raise CommandLineError(error.message) from error
        raise CommandFailed(str(error)) from error
    return 0

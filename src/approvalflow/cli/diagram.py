"""``approvalflow diagram [WORKFLOW] --format mermaid|dot``: the workflow as the engine runs it."""

from __future__ import annotations

import argparse

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "workflow", nargs="?", default="investment_project", help="workflow name (built-in only)"
    )
    parser.add_argument("--format", choices=["mermaid", "dot"], default="mermaid")
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
    from approvalflow.diagram import DiagramError, draw
    from approvalflow.rules.commands import BUILTIN_COMMANDS
    from approvalflow.states import WORKFLOW_NAME
    from approvalflow.stores import MemoryStore

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
        print(draw(options.machine, options.format, extra_commands=extra, stages=stages))
    except DiagramError as error:
        raise CommandFailed(str(error)) from error
    return 0

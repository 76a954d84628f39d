"""The tutorial's commands run as written and print what the page says they print.

`docs/tutorial.md` is read as a script: every ```sh block runs, in page order, in one temporary
folder (the repository's `scenarios/` linked into it) with this interpreter's `bin` first on
`PATH`, so `approvalflow` is the command under test. The ```text block after a sh block is what
it must print (stdout and stderr together): `...` inside a line stands for any text, a line of
`...` for any lines; otherwise lines match whole and in order, first to last. A one-line comment
before a block changes how it runs: `<!-- tutorial-test: skip -->` (the install step),
`<!-- tutorial-test: exit N -->` (the exit status it must have, 0 by default) and
`<!-- tutorial-test: file NAME -->` (a yaml block the reader saves as NAME).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import attrs
import pytest

REPO = Path(__file__).resolve().parents[1]
TUTORIAL = REPO / "docs" / "tutorial.md"
BIN = Path(sys.executable).parent

_FENCE = re.compile(r"^```(\w*)\s*$")
_DIRECTIVE = re.compile(r"^<!-- tutorial-test: (skip|exit \d+|file [\w.-]+) -->$")


@attrs.frozen
class Block:
    """One fenced block of the page: its language, text, line and the directive before it."""

    language: str
    text: str
    line: int
    directive: str | None = None
    expected_output: str | None = None


def read_blocks(page: Path = TUTORIAL) -> list[Block]:
    """The page's fenced blocks in order, each sh block with the text block that follows it."""
    blocks: list[Block] = []
    lines = page.read_text(encoding="utf-8").splitlines()
    directive: str | None = None
    index = 0
    while index < len(lines):
        line = lines[index]
        found = _DIRECTIVE.match(line)
        if found:
            directive = found.group(1)
        fence = _FENCE.match(line)
        if fence:
            end = next(i for i in range(index + 1, len(lines)) if lines[i] == "```")
            text = "\n".join(lines[index + 1 : end])
            blocks.append(Block(fence.group(1), text, index + 1, directive))
            directive = None
            index = end
        index += 1
    paired: list[Block] = []
    for block in blocks:
        if block.language == "text" and paired and paired[-1].language == "sh":
            paired[-1] = attrs.evolve(paired[-1], expected_output=block.text)
        else:
            paired.append(block)
    return paired


def mismatch(expected: str, output: str) -> str | None:
    """Why ``output`` does not read as ``expected`` says, or ``None`` when it does."""
    found = [line.rstrip() for line in output.rstrip().splitlines()]
    wanted = [line.rstrip() for line in expected.strip("\n").splitlines()]
    # Chunks of consecutive lines, separated by `...` lines (any lines, possibly none).
    chunks: list[list[str]] = [[]]
    for line in wanted:
        if line.strip() == "...":
            chunks.append([])
        else:
            chunks[-1].append(line)
    anchored_start = bool(chunks[0])
    anchored_end = bool(chunks[-1])
    position = 0
    for number, chunk in enumerate(chunks):
        if not chunk:
            continue
        patterns = [_pattern(line) for line in chunk]
        starts = [position] if number == 0 and anchored_start else range(position, len(found))
        for start in starts:
            window = found[start : start + len(chunk)]
            if len(window) == len(chunk) and all(
                p.match(line) for p, line in zip(patterns, window, strict=True)
            ):
                position = start + len(chunk)
                break
        else:
            return f"these lines were not printed (in this order):\n{chr(10).join(chunk)}"
    if anchored_end and position != len(found):
        return f"more was printed after the last expected line: {found[position]!r}"
    return None


def _pattern(line: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(part) for part in line.split("...")) + r"\Z")


class TestTheTutorial:
    def test_every_step_has_a_command_and_shows_its_output(self) -> None:
        """The page has the steps the tutorial promises, and every run block shows its output."""
        blocks = read_blocks()
        commands = [b for b in blocks if b.language == "sh" and b.directive != "skip"]
        text = "\n".join(b.text for b in commands)
        for step in (
            "scenario run scenarios/",
            "scenario run first_project.yaml",
            "show",
            "diagram",
        ):
            assert step in text, step
        assert [b.directive for b in blocks if b.language == "yaml"] == [
            "file first_project.yaml",
            "file people.yaml",
        ]
        # The tutorial's people are read by name where the project is shown.
        shown = next(b for b in commands if "--actors people.yaml" in b.text)
        assert "郭强 (guo)" in (shown.expected_output or "")
        assert "黄副县长 (huang)" in (shown.expected_output or "")
        assert all(b.language in ("sh", "yaml") for b in blocks), "a text block follows no command"
        checked = [b for b in commands if b.expected_output is not None]
        assert len(checked) >= len(commands) - 1, "show what each command prints"

    def test_its_commands_print_what_the_page_says(self, tmp_path: Path) -> None:
        """Each sh block runs in the reader's order and prints its text block."""
        if not (BIN / "approvalflow").exists():
            pytest.skip(f"the approvalflow command is not installed next to {sys.executable}")
        (tmp_path / "scenarios").symlink_to(REPO / "scenarios", target_is_directory=True)
        env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
        for block in read_blocks():
            where = f"docs/tutorial.md line {block.line}"
            if block.directive and block.directive.startswith("file "):
                (tmp_path / block.directive.removeprefix("file ")).write_text(
                    block.text + "\n", encoding="utf-8"
                )
                continue
            if block.language != "sh" or block.directive == "skip":
                continue
            status = int(block.directive.removeprefix("exit ")) if block.directive else 0
            done = subprocess.run(
                ["bash", "-e", "-o", "pipefail", "-c", block.text],
                cwd=tmp_path,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                timeout=60,
            )
            assert done.returncode == status, f"{where}: exit {done.returncode}\n{done.stdout}"
            if block.expected_output is not None:
                problem = mismatch(block.expected_output, done.stdout)
                assert problem is None, f"{where}: {problem}\n--- printed:\n{done.stdout}"


class TestMatching:
    def test_ellipsis_stands_for_text_in_a_line_and_for_whole_lines(self) -> None:
        """`...` in a line is any text; a line of `...` is any lines; the rest is exact."""
        output = "PASS a\nPASS b\nPASS c\n3 passed, 0 failed\n"
        assert mismatch("PASS a\n...\n... passed, 0 failed", output) is None
        assert mismatch("PASS b\n...", output) is not None  # anchored at the first line
        assert mismatch("...\nPASS b\nPASS c\n...", output) is None
        assert mismatch("...\nPASS c\nPASS b\n...", output) is not None  # order counts
        assert mismatch("PASS a\nPASS b", output) is not None  # more was printed

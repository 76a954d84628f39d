"""The documentation site builds strictly, and its generated pages come from the code.

The build is the one CI and the README run: `sphinx-build -W --keep-going -b html docs OUT`,
into a temporary folder, so any warning (a broken cross-reference, a page outside every
toctree, a bad directive) fails the test. Without the site's tools installed (`pip install -e
'.[docs]'`, also in `.[dev]`) the tests skip and say so, except under `CI=true`, where CI has
installed `.[dev]` and a missing tool is a broken extra.
"""

from __future__ import annotations

import html
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
TOOLS = ("sphinx", "myst_parser", "furo", "sphinxcontrib.mermaid")


def _missing_tools() -> list[str]:
    missing = []
    for name in TOOLS:
        try:
            found = importlib.util.find_spec(name) is not None
        except ModuleNotFoundError:  # a namespace parent (sphinxcontrib) is missing
            found = False
        if not found:
            missing.append(name)
    return missing


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site built once, strictly, into a temporary folder."""
    missing = _missing_tools()
    if missing:
        message = (
            f"the docs tools are not installed ({', '.join(missing)}): pip install -e '.[docs]'"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    out = tmp_path_factory.mktemp("site")
    command = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html"]
    done = subprocess.run(
        [*command, "-d", str(out / "doctrees"), str(DOCS), str(out / "html")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, f"the strict build failed:\n{done.stderr}{done.stdout}"
    assert "WARNING" not in done.stderr, done.stderr
    return out / "html"


def _text(page: Path) -> str:
    """A built page's visible text (tags dropped, entities decoded)."""
    return html.unescape(re.sub(r"<[^>]+>", "", page.read_text(encoding="utf-8")))


class TestTheSite:
    def test_every_page_is_built(self, site: Path) -> None:
        """Each Markdown page of docs/ becomes an HTML page (none is left out of the toctree)."""
        pages = {path.stem for path in DOCS.glob("*.md")}
        assert {"index", "tutorial", "concepts", "storage", "cli", "changelog"} <= pages
        for page in pages:
            assert (site / f"{page}.html").exists(), page

    def test_the_cli_reference_is_the_parsers_help(self, site: Path) -> None:
        """Every command's --help text is on the CLI page, as the parser prints it now."""
        sys.path.insert(0, str(DOCS / "_ext"))
        try:
            from approvalflow_docs import cli_commands, help_text
        finally:
            sys.path.remove(str(DOCS / "_ext"))
        page = _text(site / "cli.html")
        commands = list(cli_commands())
        assert len(commands) >= 7
        for prog, _, parser in commands:
            assert help_text(parser) in page, prog

    def test_the_diagrams_are_drawn_from_the_engines_machines(self, site: Path) -> None:
        """The concepts page carries both machines exactly as `approvalflow.diagram` draws them."""
        from approvalflow.diagram import draw

        page = (site / "concepts.html").read_text(encoding="utf-8")
        blocks = [
            html.unescape(block).strip()
            for block in re.findall(r'<pre\s+class="mermaid">(.*?)</pre>', page, re.S)
        ]
        assert len(blocks) == 2
        for machine, block in zip(("stages", "branch"), blocks, strict=True):
            drawn = draw(machine, "mermaid")
            body = drawn.split("\n---\n", 1)[1] if drawn.startswith("---\n") else drawn
            assert block == body.strip(), machine

    def test_the_svg_diagram_is_inline_in_chinese(self, site: Path) -> None:
        """concepts.html carries `diagram_svg("stages", highlight="approval")` as it is."""
        from approvalflow.diagram import diagram_svg

        page = (site / "concepts.html").read_text(encoding="utf-8")
        svg = diagram_svg("stages", highlight="approval")
        body = svg.split("?>", 1)[1].strip()
        assert body in page
        assert "招商引资项目：项目阶段（当前：并联审批）" in page

    def test_the_changelog_is_included(self, site: Path) -> None:
        """docs/changelog.md shows CHANGELOG.md itself: each of its headings is on the page."""
        headings = [
            line.lstrip("#").strip()
            for line in (REPO / "CHANGELOG.md").read_text(encoding="utf-8").splitlines()
            if line.startswith("#")
        ]
        page = _text(site / "changelog.html")
        assert headings
        for heading in headings:
            assert heading in page, heading

    def test_the_api_reference_is_generated_from_the_public_docstrings(self, site: Path) -> None:
        """docs/api.md documents every public name of ``approvalflow.plugin`` by its id, and
        the engine's entry points, with the docstrings' own words."""
        import approvalflow.plugin as plugin_api
        from approvalflow import Engine

        page = (site / "api.html").read_text(encoding="utf-8")
        documented = set(re.findall(r'id="approvalflow\.plugin\.(\w+)"', page))
        own = {
            name
            for name in plugin_api.__all__
            if getattr(getattr(plugin_api, name), "__module__", "") == "approvalflow.plugin"
        }
        assert own and own <= documented
        assert {"hookimpl", "Context", "CountyConfig", "UnknownEventType"} <= documented
        wanted = {"execute", "run_due", "project", "deadlines", "metrics"}
        assert {f"Engine.{name}" for name in wanted} <= set(
            re.findall(r'id="approvalflow\.(Engine\.\w+)"', page)
        )
        first_line = (Engine.execute.__doc__ or "").split("\n")[0].replace("``", "").strip()
        assert first_line in _text(site / "api.html")


MERMAID_VERSION = "11.12.1"
VENDOR = DOCS / "_static" / "vendor" / "mermaid"
# A script's source, an ES module import, or a stylesheet: what a page would fetch.
_FETCHES = re.compile(
    r"<script[^>]*\ssrc=[\"']([^\"']+)|\bimport\s+\w+\s+from\s+[\"']([^\"']+)"
    r"|<link[^>]*\shref=[\"']([^\"']+\.css[^\"']*)",
)


class TestOffline:
    """The site loads nothing from outside it: mermaid is vendored, not fetched from a CDN."""

    def test_mermaid_is_vendored_with_its_licence(self) -> None:
        """The npm package's build and MIT licence, and conf.py points at them."""
        import runpy

        script = (VENDOR / "mermaid.min.js").read_text(encoding="utf-8")
        assert f'"{MERMAID_VERSION}"' in script and "globalThis" in script
        assert "MIT License" in (VENDOR / "LICENSE").read_text(encoding="utf-8")
        conf = runpy.run_path(str(DOCS / "conf.py"))
        assert conf["mermaid_version"] == MERMAID_VERSION
        assert (DOCS / "_static" / conf["mermaid_use_local"]).is_file()
        assert "_static" in conf["html_static_path"]
        loader = (DOCS / "_static" / conf["mermaid_use_local"]).read_text(encoding="utf-8")
        assert "./mermaid.min.js" in loader and "https:" not in loader

    def test_no_page_fetches_anything_from_another_host(self, site: Path) -> None:
        """Every script, module import and stylesheet of every page is a local path."""
        pages = sorted(site.glob("**/*.html"))
        assert pages
        for page in pages:
            text = page.read_text(encoding="utf-8")
            for found in _FETCHES.finditer(text):
                url = next(group for group in found.groups() if group)
                assert not re.match(r"(?i)(https?:)?//", url), f"{page.name} fetches {url}"
            assert "cdn.jsdelivr" not in text, page.name

    def test_the_diagram_pages_load_the_vendored_mermaid(self, site: Path) -> None:
        """concepts.html draws its diagrams with the copy in _static, which the build ships."""
        text = (site / "concepts.html").read_text(encoding="utf-8")
        assert 'import mermaid from "./_static/vendor/mermaid/mermaid-module.js"' in text
        assert (site / "_static" / "vendor" / "mermaid" / "mermaid.min.js").is_file()
        assert (site / "_static" / "vendor" / "mermaid" / "LICENSE").is_file()

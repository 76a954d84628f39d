"""Sphinx configuration for approvalflow's documentation site.

Build it strictly, as CI does: ``sphinx-build -W --keep-going -b html docs docs/_build/html``.
The pages are the Markdown files in this folder (MyST); the CLI reference and the workflow
diagrams are generated from the code at build time by ``_ext/approvalflow_docs.py``, and the API
reference (``api.md``) from the public modules' docstrings by ``sphinx.ext.autodoc``.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "_ext"))
# A checkout without `pip install -e .` still documents its own code, not an installed copy.
sys.path.insert(0, str(HERE.parent / "src"))

project = "approvalflow"
author = "the approvalflow authors"
copyright = "2026, the approvalflow authors"
language = "en"

extensions = [
    "sphinx.ext.autodoc",
    "myst_parser",
    "sphinxcontrib.mermaid",
    "approvalflow_docs",
    "approvalflow_openapi",
]

source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "_ext", "Thumbs.db", ".DS_Store"]

# The pages link to their own headings as `[text](#slug)`, GitHub style.
myst_heading_anchors = 4

# The API reference documents what the public modules export, in source order, with the
# signatures as written (annotations stay text: the modules use postponed evaluation).
autodoc_default_options = {"members": True, "member-order": "bysource", "imported-members": True}
autodoc_typehints = "signature"
autodoc_preserve_defaults = True
# Docstrings name other objects in double backticks, not as cross-references.
default_role = "literal"

# Offline: mermaid is vendored (docs/_static/vendor/mermaid/, from the npm registry, with its
# licence), so the state diagrams draw on an intranet with no internet access; no page loads a
# script from a CDN (tests/test_docs_build.py checks the built html).
html_static_path = ["_static"]
mermaid_version = "11.12.1"
mermaid_use_local = "vendor/mermaid/mermaid-module.js"
mermaid_include_elk = False
mermaid_include_zenuml = False
mermaid_d3_zoom = False

html_theme = "furo"
html_title = "approvalflow"
html_theme_options = {"navigation_with_keys": True}
pygments_style = "friendly"
pygments_dark_style = "monokai"

"""The service's API reference page, generated from the committed OpenAPI document.

``{approvalflow-openapi}`` renders one section per operation of ``docs/openapi.json`` (the
document a test proves equal to what the app serves): its method and path, its description,
its parameters and its answers, so the page can never drift from the contract.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective

__all__ = ["setup"]

DOCUMENT = Path(__file__).resolve().parents[1] / "openapi.json"
METHODS = ("get", "post", "put", "patch", "delete")


def _type(schema: dict[str, Any]) -> str:
    if "$ref" in schema:
        return str(schema["$ref"]).rsplit("/", 1)[-1]
    if "oneOf" in schema:
        return " or ".join(_type(s) for s in schema["oneOf"])
    kind = schema.get("type", "any")
    if kind == "array":
        return f"list of {_type(schema.get('items', {}))}"
    return str(kind)


def _paragraph(text: str) -> nodes.paragraph:
    return nodes.paragraph(text, text)


def _bullets(items: list[str]) -> nodes.bullet_list:
    found = nodes.bullet_list()
    for text in items:
        found += nodes.list_item("", _paragraph(text))
    return found


class OpenAPIReference(SphinxDirective):
    """Sections with every operation of the service; place it last on its page."""

    has_content = False

    def run(self) -> list[nodes.Node]:
        self.env.note_dependency(str(DOCUMENT))
        document = json.loads(DOCUMENT.read_text(encoding="utf-8"))
        result: list[nodes.Node] = []
        for path, item in document["paths"].items():
            for method in METHODS:
                operation = item.get(method)
                if operation is None:
                    continue
                title = f"{method.upper()} {path}"
                section = nodes.section()
                section["names"].append(nodes.fully_normalize_name(title))
                section["ids"].append(nodes.make_id(title))
                section += nodes.title(title, "", nodes.literal(title, title))
                description = " ".join(operation.get("description", "").split())
                if description:
                    section += _paragraph(description.replace("``", ""))
                if not operation.get("security"):
                    section += _paragraph("No credential needed.")
                parameters = [
                    f"{p['name']} ({p['in']}, {_type(p.get('schema', {}))}"
                    + (", required)" if p.get("required") else ")")
                    for p in operation.get("parameters", [])
                ]
                body = operation.get("requestBody", {}).get("content", {})
                for media, content in body.items():
                    parameters.append(f"body ({media}): {_type(content.get('schema', {}))}")
                if parameters:
                    section += _paragraph("Takes:")
                    section += _bullets(parameters)
                answers = []
                for status, response in operation.get("responses", {}).items():
                    content = response.get("content", {})
                    schema = next(iter(content.values()), {}).get("schema", {})
                    shape = f" ({_type(schema)})" if schema else ""
                    answers.append(f"{status}: {response.get('description', '')}{shape}")
                section += _paragraph("Answers:")
                section += _bullets(answers)
                self.state.document.note_implicit_target(section, section)
                result.append(section)
        return result


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_directive("approvalflow-openapi", OpenAPIReference)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}

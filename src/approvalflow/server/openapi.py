"""Print the service's OpenAPI document: ``python -m approvalflow.server.openapi``.

``docs/openapi.json`` is this output, committed; a test fails when the two differ, so a change
to the API shows as a diff of that file in review.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["document", "main"]


def document() -> dict[str, Any]:
    """The document the app serves at ``/openapi.json``."""
    from approvalflow.server.app import create_app, published_document

    return published_document(create_app(store=None))


def main() -> None:
    print(json.dumps(document(), indent=2, ensure_ascii=False, sort_keys=True))


if __name__ == "__main__":
    main()

"""``approvalflow serve``: the engine as an HTTP service with an OpenAPI contract.

Install with ``pip install 'approvalflow[server]'`` (Litestar and uvicorn). ``create_app``
builds the ASGI app; ``docs/service.md`` tells how to deploy it.
"""

from __future__ import annotations

from approvalflow.server.app import create_app
from approvalflow.server.auth import Authenticator, Caller, JWTSettings, issue_token

__all__ = ["Authenticator", "Caller", "JWTSettings", "create_app", "issue_token"]

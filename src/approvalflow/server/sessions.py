"""The workbench's signed session cookie and the CSRF token every form carries.

A session is the person a credential named, kept in an HttpOnly, SameSite=Strict cookie signed
with HMAC-SHA256 under the service's session key. A session from a personal token keeps the
token's hash, so revoking the token ends every session opened with it (D131). Each form carries
``HMAC(key, "csrf|" + session id)``; a post without it, or with another, is refused.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time

import attrs

__all__ = ["CSRF_FIELD", "SESSION_COOKIE", "SIGNIN_COOKIE", "Session", "SessionKeys"]

SESSION_COOKIE = "afw_session"
SIGNIN_COOKIE = "afw_signin"
CSRF_FIELD = "_csrf"
SESSION_SECONDS = 8 * 3600
"""A working day: a session ends at the latest eight hours after sign-in."""


@attrs.frozen
class Session:
    """A signed-in person: ``actor``, the ``system`` their credential belongs to, how they
    signed in (``token`` or ``jwt``), the token's hash (for token sessions), the session's
    random id and its end (epoch seconds), and the county of their credential (``None`` on a
    one-county service's credential of before counties)."""

    actor: str
    system: str
    credential: str
    token_hash: str | None
    sid: str
    expires: int
    county: str | None = None


class SessionKeys:
    """Signs and checks session cookies and CSRF tokens with one secret key."""

    def __init__(self, key: bytes | None = None) -> None:
        # No key given: one per process, so sessions end when the service restarts (D130).
        self._key = key or secrets.token_bytes(32)

    def _mac(self, text: str) -> str:
        return hmac.new(self._key, text.encode(), hashlib.sha256).hexdigest()

    def new(
        self,
        actor: str,
        system: str,
        credential: str,
        token_hash: str | None,
        until: int | None = None,
        county: str | None = None,
    ) -> Session:
        end = int(time.time()) + SESSION_SECONDS
        return Session(
            actor,
            system,
            credential,
            token_hash,
            secrets.token_urlsafe(16),
            min(end, until) if until else end,
            county,
        )

    def dump(self, session: Session) -> str:
        payload = json.dumps(attrs.asdict(session), separators=(",", ":"), sort_keys=True)
        body = base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")
        return f"{body}.{self._mac(body)}"

    def load(self, cookie: str | None) -> Session | None:
        """The session a cookie holds, or ``None`` for none, a forged or an expired one."""
        if not cookie or "." not in cookie:
            return None
        body, _, mac = cookie.rpartition(".")
        if not hmac.compare_digest(mac, self._mac(body)):
            return None
        try:
            data = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
            session = Session(**data)
        except (ValueError, TypeError):
            return None
        if session.expires < time.time():
            return None
        return session

    def csrf(self, sid: str) -> str:
        return self._mac("csrf|" + sid)

    def csrf_ok(self, sid: str, given: object) -> bool:
        return isinstance(given, str) and hmac.compare_digest(given, self.csrf(sid))

"""Who is calling: a calling system and, for what acts or reads a person's list, the person.

A system authenticates with a bearer token the county issued (``approvalflow token issue``;
only its hash is stored) or with a JWT from the host's identity service, verified with a
configured public key. The acting person is the token's bound actor, the JWT's subject, or,
for a token issued as ``trusted``, the ``Approvalflow-Actor`` header; any other claim to act
as someone is refused. The engine's role checks then decide what that person may do.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any

import attrs

from approvalflow.errors import NotAuthorized
from approvalflow.server.problems import Unauthenticated
from approvalflow.stores.tokens import PROVINCE, TokenRecord, token_hash

__all__ = [
    "ACTOR_HEADER",
    "SYSTEM_HEADER",
    "TOKEN_PREFIX",
    "Authenticator",
    "Caller",
    "JWTSettings",
    "issue_token",
]

ACTOR_HEADER = "Approvalflow-Actor"
SYSTEM_HEADER = "Approvalflow-System"
TOKEN_PREFIX = "afw_"
"""Issued tokens start with this, so a secret scanner (and a person) can tell what one is."""


@attrs.frozen
class Caller:
    """An authenticated request: the ``system``, if known the acting ``actor``, and the
    ``county`` whose data the credential reaches (``PROVINCE`` for the province reports,
    ``None`` for a credential of a one-county service)."""

    system: str
    actor: str | None
    credential: str  # "token" or "jwt"
    county: str | None = None

    def acting(self) -> str:
        """The acting person, or ``NotAuthorized`` for a credential that names nobody."""
        if self.actor is None:
            raise NotAuthorized(
                f"system {self.system!r} acts as nobody: its token names no actor and is not "
                f"trusted to assert one ({ACTOR_HEADER})"
            )
        return self.actor


@attrs.frozen
class JWTSettings:
    """How the host's identity service signs its JWTs.

    ``public_key`` is PEM text; ``system_claim`` names the calling system (``azp`` is the
    OAuth client a token was issued to), ``actor_claim`` the person (``sub``), ``county_claim``
    the county whose data the person works on (``*`` for the province's own readers; a JWT
    without it names no county).
    """

    public_key: str
    algorithms: tuple[str, ...] = ("RS256", "ES256", "EdDSA")
    audience: str | None = None
    issuer: str | None = None
    system_claim: str = "azp"
    actor_claim: str = "sub"
    county_claim: str = "county"


def issue_token(
    store: Any,
    system: str,
    *,
    actor: str | None = None,
    trusted: bool = False,
    county: str | None = None,
) -> tuple[str, TokenRecord]:
    """A new token for ``system``: the token itself (shown once) and its stored record.

    ``county`` is the county whose data the token reaches (``PROVINCE``: the province reports
    only, so it names no actor and is not trusted)."""
    if not system or not system.strip():
        raise ValueError("a token needs the name of the system it is issued to")
    if actor is not None and trusted:
        raise ValueError("a token either names its actor or is trusted to assert one, not both")
    if county == PROVINCE:
        if actor is not None or trusted:
            raise ValueError("a province token reads the province reports only: it acts as nobody")
    elif county is not None:
        from approvalflow.province import check_county_id

        check_county_id(county)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    record = TokenRecord(
        token_id=secrets.token_hex(6),
        system=system,
        hash=token_hash(token),
        created_at=datetime.now(UTC),
        actor=actor,
        trusted=trusted,
        county=county,
    )
    store.save_token(record)
    return token, record


_CACHED_TOKENS = 512
"""Verified token records kept at most; past that the cache starts again (a county issues a
few dozen tokens)."""


class Authenticator:
    """Checks a request's credential against the store's tokens (and the JWT key, if any).

    A verified token's record is kept with the store's ``token_generation`` at the time it was
    read, and used again only while the store answers the same generation: a token saved or
    revoked anywhere changes it, so a revocation takes effect on the next request (D186).
    A store that cannot tell (``None``) has every token looked up each time."""

    def __init__(self, store: Any, jwt: JWTSettings | None = None) -> None:
        self._store = store
        self._jwt = jwt
        self._generation = getattr(store, "token_generation", None)
        self._verified: dict[str, tuple[object, TokenRecord]] = {}

    @property
    def store(self) -> Any:
        """The store the tokens are kept in."""
        return self._store

    def authenticate(
        self,
        authorization: str | None,
        asserted_actor: str | None = None,
        asserted_system: str | None = None,
    ) -> Caller:
        """The caller of a request with these headers; ``Unauthenticated`` (401) for no or a
        bad credential, ``NotAuthorized`` (403) for a claim the credential does not allow."""
        scheme, _, credential = (authorization or "").partition(" ")
        credential = credential.strip()
        if scheme.lower() != "bearer" or not credential:
            raise Unauthenticated("no bearer credential (Authorization: Bearer <token>)")
        if credential.startswith(TOKEN_PREFIX) or self._jwt is None:
            caller = self._from_token(credential, asserted_actor)
        else:
            caller = self._from_jwt(credential, asserted_actor)
        if asserted_system is not None and asserted_system != caller.system:
            raise NotAuthorized(
                f"the credential was issued to system {caller.system!r}, not {asserted_system!r}"
            )
        return caller

    def _record(self, token: str) -> TokenRecord | None:
        hashed = token_hash(token)
        # Read before the lookup: a change that lands in between makes the next request's
        # generation differ, so the record kept here is never trusted past it.
        generation = None if self._generation is None else self._generation()
        if generation is not None:
            kept = self._verified.get(hashed)
            if kept is not None and kept[0] == generation:
                return kept[1]
        record: TokenRecord | None = self._store.token_with_hash(hashed)
        if generation is not None and record is not None and record.revoked_at is None:
            if len(self._verified) >= _CACHED_TOKENS:
                self._verified.clear()
            self._verified[hashed] = (generation, record)
        return record

    def _from_token(self, token: str, asserted_actor: str | None) -> Caller:
        record = self._record(token)
        if record is None:
            raise Unauthenticated("the bearer token is not one this service issued")
        if record.revoked_at is not None:
            raise Unauthenticated(f"token {record.token_id} was revoked")
        actor = record.actor
        if asserted_actor is not None:
            if record.trusted:
                actor = asserted_actor
            elif asserted_actor != record.actor:
                raise NotAuthorized(
                    f"system {record.system!r} may not assert the acting person "
                    f"({ACTOR_HEADER}: {asserted_actor}): its token is not trusted to"
                )
        return Caller(record.system, actor, "token", record.county)

    def _from_jwt(self, token: str, asserted_actor: str | None) -> Caller:
        import jwt

        assert self._jwt is not None
        settings = self._jwt
        try:
            claims = jwt.decode(
                token,
                settings.public_key,
                algorithms=list(settings.algorithms),
                audience=settings.audience,
                issuer=settings.issuer,
                options={"require": ["exp", settings.actor_claim]},
            )
        except jwt.PyJWTError as error:
            raise Unauthenticated(f"the JWT was refused: {error}") from None
        actor = claims.get(settings.actor_claim)
        system = claims.get(settings.system_claim) or claims.get("iss") or "jwt"
        if not isinstance(actor, str) or not isinstance(system, str):
            raise Unauthenticated(
                f"the JWT's {settings.actor_claim} and {settings.system_claim} must be strings"
            )
        if asserted_actor is not None and asserted_actor != actor:
            raise NotAuthorized(
                f"the JWT speaks for {actor!r}; {ACTOR_HEADER} may not name {asserted_actor!r}"
            )
        county = claims.get(settings.county_claim)
        if county is not None and not isinstance(county, str):
            raise Unauthenticated(f"the JWT's {settings.county_claim} must be a string")
        return Caller(system, actor, "jwt", county)

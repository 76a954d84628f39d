"""Sealed checkpoints: every project's chain head, signed with a key kept outside the database.

``seal(store, key)`` reads every project's head (id, version, hash of its event at that
version) in one statement, adds their ``store_digest`` and the time, signs the document with
``key`` and keeps it in the store's ``checkpoints`` table; the caller also writes it where the
county keeps it (``approvalflow audit seal --out FILE``). ``verify_store(store, checkpoint=...,
key=...)`` then checks the signature and that every sealed head is still a prefix of its
project's chain: a rewritten chain (every hash recomputed with the public function), removed
newest events with the version rewound, or a removed project no longer fit, whoever could write
the database, as long as they lack the key.

Keys (``load_key``): a file holding an HMAC-SHA256 secret (at least 32 bytes, e.g.
``head -c 32 /dev/urandom``), or an Ed25519 key in PEM (``openssl genpkey -algorithm ed25519``;
needs ``cryptography``, the ``audit`` extra). An Ed25519 public key checks checkpoints but cannot
seal them, so an auditor needs no secret. Each key has a ``key_id`` (a digest of the secret or
public key) recorded in the checkpoint, so the wrong key is named as such.

Counties (D299): a checkpoint names the county whose view it seals (``county``, signed with
the rest; the unscoped store is ``DEFAULT_COUNTY``'s), and ``verify_store`` refuses it on
another county's view with a finding that names both. A checkpoint sealed before counties
were named (format ``approvalflow.checkpoint/1``) is the default county's, and verifies as it
always did.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from datetime import UTC, datetime
from typing import Any, Literal

import attrs

from approvalflow.errors import CheckpointError
from approvalflow.stores.audit import ProjectHead, store_digest
from approvalflow.stores.base import DEFAULT_COUNTY
from approvalflow.stores.serialization import format_datetime

__all__ = [
    "FORMAT",
    "FORMAT_WITHOUT_COUNTY",
    "MIN_SECRET_BYTES",
    "Checkpoint",
    "SealKey",
    "load_key",
    "newest_checkpoint",
    "seal",
]

FORMAT = "approvalflow.checkpoint/2"
"""The format ``seal`` writes: format 1 and the sealed view's ``county``."""
FORMAT_WITHOUT_COUNTY = "approvalflow.checkpoint/1"
"""The format of checkpoints sealed before they named their county: the default county's."""
MIN_SECRET_BYTES = 32
"""The shortest HMAC secret a key file may hold."""

Algorithm = Literal["hmac-sha256", "ed25519"]


@attrs.frozen
class SealKey:
    """A key that signs (and checks) checkpoints; ``load_key`` reads one from a file."""

    algorithm: Algorithm
    key_id: str
    _secret: bytes | None = attrs.field(default=None, repr=False)
    _private: Any = attrs.field(default=None, repr=False)
    _public: Any = attrs.field(default=None, repr=False)

    @property
    def can_sign(self) -> bool:
        return self._secret is not None or self._private is not None

    def sign(self, message: bytes) -> str:
        if self._secret is not None:
            return hmac.new(self._secret, message, hashlib.sha256).hexdigest()
        if self._private is None:
            raise CheckpointError("an Ed25519 public key checks checkpoints but cannot seal one")
        return str(self._private.sign(message).hex())

    def verifies(self, message: bytes, signature: str) -> bool:
        if self._secret is not None:
            return hmac.compare_digest(self.sign(message), signature)
        try:
            raw = bytes.fromhex(signature)
        except ValueError:
            return False
        from cryptography.exceptions import InvalidSignature

        try:
            self._public.verify(raw, message)
        except InvalidSignature:
            return False
        return True


def load_key(path: str | os.PathLike[str]) -> SealKey:
    """The key in ``path``: an Ed25519 key in PEM (private, to seal; public, to check), else
    an HMAC-SHA256 secret (the file's bytes, a trailing newline apart).

    :raises CheckpointError: the file cannot be read, or holds no usable key.
    """
    try:
        with open(path, "rb") as file:
            data = file.read()
    except OSError as error:
        raise CheckpointError(f"cannot read the key file {os.fspath(path)}: {error}") from None
    if data.lstrip().startswith(b"-----BEGIN"):
        return _ed25519(data, os.fspath(path))
    secret = data.rstrip(b"\r\n")
    if len(secret) < MIN_SECRET_BYTES:
        raise CheckpointError(
            f"the key file {os.fspath(path)} holds {len(secret)} bytes: an HMAC secret needs at "
            f"least {MIN_SECRET_BYTES} (make one with `head -c 32 /dev/urandom > FILE`), or give "
            "an Ed25519 PEM key"
        )
    key_id = hashlib.sha256(b"approvalflow.seal-key\n" + secret).hexdigest()[:16]
    return SealKey("hmac-sha256", key_id, secret=secret)


def _ed25519(data: bytes, where: str) -> SealKey:
    try:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ed25519
    except ImportError:
        raise CheckpointError(
            "Ed25519 keys need the cryptography package: pip install 'approvalflow[audit]'"
        ) from None
    private: Any = None
    try:
        if b"PRIVATE KEY" in data:
            private = serialization.load_pem_private_key(data, password=None)
            public: Any = private.public_key()
        else:
            public = serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as error:
        raise CheckpointError(f"the key file {where} is not a PEM key: {error}") from None
    if not isinstance(public, ed25519.Ed25519PublicKey):
        raise CheckpointError(
            f"the key file {where} holds a {type(public).__name__}, not an Ed25519 key"
        )
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return SealKey("ed25519", hashlib.sha256(raw).hexdigest()[:16], private=private, public=public)


@attrs.frozen
class Checkpoint:
    """Every project's head at ``sealed_at`` (UTC) in the view of ``county``, their
    ``store_digest`` and the signature over the rest (``signed_text``). ``number`` is its row
    in the checkpoints table, if it was read from there (it is not signed). ``county`` is
    ``None`` only for a checkpoint sealed before checkpoints named their county
    (``FORMAT_WITHOUT_COUNTY``): ``sealed_county`` reads it as the default county's."""

    sealed_at: str
    heads: tuple[tuple[str, int, str], ...]
    digest: str
    algorithm: str
    key_id: str
    signature: str
    number: int | None = None
    county: str | None = None

    @property
    def sealed_county(self) -> str:
        """The county whose view this checkpoint seals."""
        return DEFAULT_COUNTY if self.county is None else self.county

    def signed_text(self) -> str:
        document: dict[str, Any] = {
            "format": FORMAT_WITHOUT_COUNTY if self.county is None else FORMAT,
            "sealed_at": self.sealed_at,
            "heads": [list(head) for head in self.heads],
            "digest": self.digest,
            "algorithm": self.algorithm,
            "key_id": self.key_id,
        }
        if self.county is not None:
            document["county"] = self.county
        return json.dumps(document, ensure_ascii=False, sort_keys=True, separators=(",", ":"))

    def to_json(self) -> str:
        """The checkpoint as one JSON document (what ``--out`` writes)."""
        document = json.loads(self.signed_text())
        document["signature"] = self.signature
        return json.dumps(document, ensure_ascii=False, sort_keys=True, indent=1) + "\n"

    @classmethod
    def from_json(cls, text: str, number: int | None = None) -> Checkpoint:
        """Read a document written by ``to_json``; ``CheckpointError`` if it is not one."""
        try:
            document = json.loads(text)
            formats = (FORMAT, FORMAT_WITHOUT_COUNTY)
            if not isinstance(document, dict) or document.get("format") not in formats:
                raise ValueError(f"its format is not {' or '.join(formats)}")
            county = None
            if document["format"] == FORMAT:
                county = document["county"]
                if not isinstance(county, str) or not county:
                    raise ValueError(f"its county is not a county id: {county!r}")
            elif "county" in document:
                raise ValueError(f"a {FORMAT_WITHOUT_COUNTY} document names no county")
            heads = tuple(
                (str(project), int(version), str(digest))
                for project, version, digest in document["heads"]
            )
            return cls(
                str(document["sealed_at"]),
                heads,
                str(document["digest"]),
                str(document["algorithm"]),
                str(document["key_id"]),
                str(document["signature"]),
                number,
                county,
            )
        except (ValueError, KeyError, TypeError) as error:
            raise CheckpointError(f"not an approvalflow checkpoint: {error}") from None

    def describe(self) -> str:
        number = f" {self.number}" if self.number is not None else ""
        return (
            f"checkpoint{number} of county {self.sealed_county} sealed {self.sealed_at} "
            f"({len(self.heads)} projects, {self.algorithm} key {self.key_id})"
        )

    def signature_problem(self, key: SealKey) -> str | None:
        """Why the signature does not verify with ``key``, or ``None`` if it does."""
        if (key.algorithm, key.key_id) != (self.algorithm, self.key_id):
            return (
                f"it was sealed with the {self.algorithm} key {self.key_id}, not the "
                f"{key.algorithm} key {key.key_id} given"
            )
        if not key.verifies(self.signed_text().encode(), self.signature):
            return "its signature does not verify: the checkpoint was altered or forged"
        return None


def seal(store: Any, key: SealKey, now: datetime | None = None) -> Checkpoint:
    """Sign every project's head in ``store`` (a county's view, or the unscoped store: the
    default county's) with ``key``, naming that county, and keep the checkpoint in the
    store's checkpoints table.

    :raises CheckpointError: ``key`` cannot sign, the store keeps no chains, or a project's
        events end before its recorded version (run ``audit verify``).
    """
    if not key.can_sign:
        raise CheckpointError("an Ed25519 public key checks checkpoints but cannot seal one")
    heads_of = getattr(store, "project_heads", None)
    if heads_of is None:
        raise CheckpointError(f"{type(store).__name__} keeps no audit chain to seal")
    heads = []
    for project, version, digest in heads_of():
        if digest is None:
            raise CheckpointError(
                f"{project} is at version {version} but has no event at that version: not "
                "sealed (run `approvalflow audit verify`)"
            )
        heads.append((project, version, digest))
    sealed_at = format_datetime((now or datetime.now(UTC)).astimezone(UTC))
    unsigned = Checkpoint(
        sealed_at,
        tuple(heads),
        store_digest(ProjectHead(*head) for head in heads),
        key.algorithm,
        key.key_id,
        "",
        county=getattr(store, "county", None) or DEFAULT_COUNTY,
    )
    checkpoint = attrs.evolve(unsigned, signature=key.sign(unsigned.signed_text().encode()))
    store.save_checkpoint(checkpoint.sealed_at, checkpoint.digest, checkpoint.to_json())
    return checkpoint


def newest_checkpoint(store: Any) -> Checkpoint | None:
    """The newest checkpoint in the store's checkpoints table, or ``None``."""
    newest = getattr(store, "newest_checkpoint", None)
    found = newest() if newest is not None else None
    if found is None:
        return None
    number, document = found
    return Checkpoint.from_json(document, number)

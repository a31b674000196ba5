"""The tool's own RSA signing keys: created on first run, rotated with an overlap, published."""

from __future__ import annotations

import json
import logging
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import current_app
from jwt.algorithms import RSAAlgorithm
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from ..db import as_utc, utcnow
from ..sealing import Unsealable, app_secrets, reseal, seal, unseal
from .models import ToolKey

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private_pem: str
    private_key: rsa.RSAPrivateKey


def _new_key_pair() -> tuple[str, dict[str, Any]]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    jwk = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
    return pem, jwk


def create_key(s: Session, activates_at: datetime | None = None) -> ToolKey:
    pem, jwk = _new_key_pair()
    kid = secrets.token_urlsafe(12)
    # Canvas rejects a published key without alg and use (tsugi#82).
    jwk.update(kid=kid, alg="RS256", use="sig")
    row = ToolKey(
        kid=kid,
        private_key_pem=seal(pem),
        public_jwk=jwk,
        activates_at=activates_at or utcnow(),
    )
    s.add(row)
    return row


def ensure_key(s: Session) -> None:
    """Generate the first key on first run."""
    if s.scalars(select(ToolKey.id).limit(1)).first() is None:
        create_key(s)
        s.commit()


def rotate(s: Session, publish_delay: int, grace: int) -> ToolKey:
    """Publish a new key now, sign with it after `publish_delay`, retire the old ones later.

    Platforms cache tool key sets (Canvas for up to five minutes), so the new key must be visible
    before anything is signed with it, and the old one must stay visible after.
    """
    now = utcnow()
    new = create_key(s, activates_at=now + timedelta(seconds=publish_delay))
    retire_at = new.activates_at + timedelta(seconds=grace)
    current = app_secrets()
    for old in s.scalars(
        select(ToolKey).where(ToolKey.kid != new.kid, ToolKey.retires_at.is_(None))
    ):
        old.retires_at = retire_at
        resealed = reseal(old.private_key_pem, current)
        if resealed is not None:
            old.private_key_pem = resealed
    s.commit()
    _cache().clear()
    return new


def _published(s: Session) -> list[ToolKey]:
    now = utcnow()
    return list(
        s.scalars(
            select(ToolKey)
            .where(or_(ToolKey.retires_at.is_(None), ToolKey.retires_at > now))
            .order_by(ToolKey.activates_at, ToolKey.id)
        )
    )


class _KeyCache:
    """Parsed keys kept in memory: PEM parsing on every signature is measurable (bench/launch)."""

    def __init__(self, ttl: float = 60.0) -> None:
        self._ttl = ttl
        self._lock = threading.Lock()
        self._loaded_at = 0.0
        self._jwks: dict[str, Any] = {"keys": []}
        self._signing: SigningKey | None = None
        self._signing_valid_until = 0.0
        # The newest active key could not be unsealed (SECRET_KEY changed without a fallback).
        self._unusable: str | None = None

    def clear(self) -> None:
        with self._lock:
            self._loaded_at = 0.0

    def _load(self, s: Session) -> None:
        rows = _published(s)
        now = utcnow()
        active = [r for r in rows if as_utc(r.activates_at) <= now]
        pending = [r for r in rows if as_utc(r.activates_at) > now]
        self._jwks = {"keys": [dict(r.public_jwk) for r in rows]}
        signing, previous = None, self._signing
        self._unusable = None
        if active:
            newest = active[-1]
            if previous is not None and previous.kid == newest.kid:
                signing = previous  # parsing a private key takes milliseconds
            else:
                try:
                    pem = unseal(newest.private_key_pem)
                except Unsealable:
                    log.error(
                        "signing key %s cannot be unsealed: SECRET_KEY changed without the old "
                        "one in SECRET_KEY_FALLBACKS; a new signing key replaces it",
                        newest.kid,
                    )
                    self._unusable = newest.kid
                else:
                    pk = serialization.load_pem_private_key(pem.encode(), None)
                    assert isinstance(pk, rsa.RSAPrivateKey)
                    signing = SigningKey(newest.kid, pem, pk)
        self._signing = signing
        # Reload when a pending key becomes the signer.
        self._signing_valid_until = time.monotonic() + self._ttl
        if pending:
            wait = (as_utc(pending[0].activates_at) - now).total_seconds()
            self._signing_valid_until = min(self._signing_valid_until, time.monotonic() + wait)
        self._loaded_at = time.monotonic()

    def _fresh(self, s: Session) -> None:
        now = time.monotonic()
        if not self._loaded_at or now >= self._signing_valid_until:
            with self._lock:
                if not self._loaded_at or now >= self._signing_valid_until:
                    self._load(s)

    def jwks(self, s: Session) -> dict[str, Any]:
        self._fresh(s)
        return self._jwks

    def signing_key(self, s: Session) -> SigningKey:
        self._fresh(s)
        if self._signing is None:
            if self._unusable is not None:
                # Platforms fetch the key set by URL and find the new kid there; the old key
                # stays published until the next rotation retires it.
                create_key(s)
                s.commit()
            else:
                ensure_key(s)
            with self._lock:
                self._load(s)
        assert self._signing is not None
        return self._signing


def _cache() -> _KeyCache:
    # One per app: each app (and each test) has its own database of keys.
    cache: _KeyCache = current_app.extensions.setdefault("lti_tool.keycache", _KeyCache())
    return cache


def jwks(s: Session) -> dict[str, Any]:
    return _cache().jwks(s)


def signing_key(s: Session) -> SigningKey:
    return _cache().signing_key(s)


def list_keys(s: Session) -> list[ToolKey]:
    return list(s.scalars(select(ToolKey).order_by(ToolKey.id)))


def reset_cache() -> None:
    _cache().clear()

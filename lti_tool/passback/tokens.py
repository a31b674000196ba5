"""Access tokens for the platform's services, shared by every thread and process.

A token per (registration, sorted scope set) lives in the database until shortly before it
expires, and in each process's memory beside it. When none is valid, one process takes the
row's lease and asks the platform; the others wait for its answer instead of asking too, so a
burst of a thousand scores costs one token request.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

import jwt
import requests
from flask import Flask
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from .. import db
from ..db import as_utc, utcnow
from ..lti import keys
from ..sealing import Unsealable, app_secrets, seal, unseal
from . import leases
from .http import RETRY, ServiceError, request_token
from .models import AccessToken

ASSERTION_LIFETIME = 120  # seconds; the platform only needs it for this one request


@dataclass(frozen=True)
class Platform:
    """What the token request needs to know about a registration."""

    pk: int
    client_id: str
    token_url: str
    audience: str | None


@dataclass
class _Cached:
    token: str
    expires_at: datetime


def client_assertion(s: Session, platform: Platform) -> str:
    # iss = sub = client id; aud = the token URL unless the platform names another audience
    # (Brightspace); a fresh jti each time, because platforms refuse replays.
    key = keys.signing_key(s)
    now = int(time.time())
    claims = {
        "iss": platform.client_id,
        "sub": platform.client_id,
        "aud": platform.audience or platform.token_url,
        "iat": now,
        "exp": now + ASSERTION_LIFETIME,
        "jti": secrets.token_urlsafe(24),
    }
    return jwt.encode(claims, key.private_key, algorithm="RS256", headers={"kid": key.kid})


def _opened(stored: str, secrets: list[str]) -> str | None:
    """A stored token, or None when it was sealed under another SECRET_KEY (ask again)."""
    try:
        return unseal(stored, secrets)
    except Unsealable:
        return None


class TokenCache:
    def __init__(self, app: Flask, http: requests.Session) -> None:
        self._app = app
        self._http = http
        self._lock = threading.Lock()
        self._key_locks: dict[tuple[int, str], threading.Lock] = {}
        self._memory: dict[tuple[int, str], _Cached] = {}
        # A refused or failed token request, remembered briefly: without it every score of a
        # batch would ask the platform again.
        self._failed: dict[tuple[int, str], tuple[float, ServiceError]] = {}
        self.requests_made = 0

    def _key_lock(self, key: tuple[int, str]) -> threading.Lock:
        with self._lock:
            return self._key_locks.setdefault(key, threading.Lock())

    def get(self, platform: Platform, scopes: list[str]) -> tuple[str, bool]:
        """(token, fresh): `fresh` is True when it was fetched from the platform just now."""
        key = (platform.pk, " ".join(sorted(set(scopes))))
        cached = self._memory.get(key)
        if cached is not None and cached.expires_at > utcnow():
            return cached.token, False
        # Threads of this process queue here, so only one of them goes to the database.
        with self._key_lock(key):
            cached = self._memory.get(key)
            if cached is not None and cached.expires_at > utcnow():
                return cached.token, False
            failed = self._failed.get(key)
            if failed is not None and time.monotonic() < failed[0]:
                raise failed[1]
            try:
                token, expires_at, fresh = self._from_database_or_platform(platform, key)
            except ServiceError as exc:
                pause = exc.retry_after or float(self._app.config["PASSBACK_RETRY_BASE"])
                self._failed[key] = (time.monotonic() + pause, exc)
                raise
            self._failed.pop(key, None)
            self._memory[key] = _Cached(token, expires_at)
            return token, fresh

    def invalidate(self, platform: Platform, scopes: list[str], token: str) -> None:
        """Forget a token the platform refused (401), here and for every other process."""
        key = (platform.pk, " ".join(sorted(set(scopes))))
        cached = self._memory.get(key)
        if cached is not None and cached.token == token:
            self._memory.pop(key, None)
        with db.standalone_session() as s:
            row = s.execute(
                select(AccessToken.id, AccessToken.access_token).where(
                    AccessToken.registration_id == platform.pk, AccessToken.scopes == key[1]
                )
            ).first()
            # Sealed values differ each time: compare the token, then clear exactly the value
            # read (another process may have stored a new token meanwhile).
            if row is None or not row.access_token:
                return
            if _opened(row.access_token, app_secrets(self._app)) == token:
                s.execute(
                    update(AccessToken)
                    .where(AccessToken.id == row.id, AccessToken.access_token == row.access_token)
                    .values(access_token=None, expires_at=None)
                )
                s.commit()

    def _from_database_or_platform(
        self, platform: Platform, key: tuple[int, str]
    ) -> tuple[str, datetime, bool]:
        cfg = self._app.config
        lease_seconds = float(cfg["PASSBACK_LEASE_SECONDS"])
        # Bounded well inside the learner's own lease, which is held while this waits.
        deadline = time.monotonic() + lease_seconds / 4
        owner = leases.new_owner()
        pause = 0.02
        while True:
            with db.standalone_session() as s:
                leases.insert_ignore(
                    s,
                    AccessToken,
                    [{"registration_id": platform.pk, "scopes": key[1]}],
                    ["registration_id", "scopes"],
                )
                s.commit()
                row = s.scalars(
                    select(AccessToken).where(
                        AccessToken.registration_id == platform.pk, AccessToken.scopes == key[1]
                    )
                ).one()
                stored = (
                    _opened(row.access_token, app_secrets(self._app)) if row.access_token else None
                )
                if stored and row.expires_at and as_utc(row.expires_at) > utcnow():
                    return stored, as_utc(row.expires_at), False
                claimed = leases.take(s, AccessToken, row.id, owner, lease_seconds)
                s.commit()
                if claimed:
                    return self._fetch(s, platform, key, row.id, owner)
            if time.monotonic() > deadline:
                raise ServiceError(RETRY, "token request: another process did not finish its own")
            time.sleep(pause)
            pause = min(pause * 2, 0.25)

    def _fetch(
        self, s: Session, platform: Platform, key: tuple[int, str], row_id: int, owner: str
    ) -> tuple[str, datetime, bool]:
        try:
            assertion = client_assertion(s, platform)
            self.requests_made += 1
            token, expires_in = request_token(
                self._http,
                platform.token_url,
                assertion,
                key[1].split(" "),
                float(self._app.config["LTI_HTTP_TIMEOUT"]),
            )
        except BaseException:
            leases.release(s, AccessToken, [row_id], owner)
            s.commit()
            raise
        margin = min(float(self._app.config["PASSBACK_TOKEN_MARGIN"]), expires_in / 5)
        expires_at = utcnow() + timedelta(seconds=max(expires_in - margin, 1.0))
        sealed = seal(token, app_secrets(self._app))
        leases.release(s, AccessToken, [row_id], owner, access_token=sealed, expires_at=expires_at)
        s.commit()
        return token, expires_at, True

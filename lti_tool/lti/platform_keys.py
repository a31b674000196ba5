"""Platform public keys: fetched from the registration's JWKS URL, kept parsed in memory.

pylti1p3 re-parses the key set on every launch and never re-fetches it when a platform rotates
its keys (Brightspace does so about hourly). Here a key set is cached per URL, and an unknown
`kid` triggers one re-fetch, no more often than a minimum interval so that a flood of forged
tokens cannot make us hammer the platform.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import requests
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from jwt.algorithms import RSAAlgorithm

from .errors import LtiError

log = logging.getLogger(__name__)


@dataclass
class _KeySet:
    keys: dict[str, RSAPublicKey] = field(default_factory=dict)
    fetched_at: float = 0.0


class PlatformKeys:
    def __init__(self, http: requests.Session, ttl: int, refetch_interval: int, timeout: float):
        self._http = http
        self._ttl = ttl
        self._refetch_interval = refetch_interval
        self._timeout = timeout
        self._sets: dict[str, _KeySet] = {}
        self._lock = threading.Lock()

    def _fetch(self, url: str) -> _KeySet:
        try:
            resp = self._http.get(url, timeout=self._timeout)
            resp.raise_for_status()
            data = resp.json()
        except (requests.RequestException, ValueError) as exc:
            raise LtiError("platform_keys", f"fetching {url}: {exc}") from exc
        keys: dict[str, RSAPublicKey] = {}
        for jwk in data.get("keys", []) if isinstance(data, dict) else []:
            if not isinstance(jwk, dict) or jwk.get("kty") != "RSA" or not jwk.get("kid"):
                continue
            if jwk.get("use", "sig") != "sig" or jwk.get("alg", "RS256") != "RS256":
                continue
            try:
                key = RSAAlgorithm.from_jwk(json.dumps(jwk))
            except Exception:  # noqa: BLE001  (one malformed key must not hide the others)
                log.warning("skipping malformed key %s in %s", jwk.get("kid"), url)
                continue
            if isinstance(key, RSAPublicKey):
                keys[str(jwk["kid"])] = key
        return _KeySet(keys=keys, fetched_at=time.monotonic())

    def get(self, url: str, kid: str) -> RSAPublicKey:
        now = time.monotonic()
        ks = self._sets.get(url)
        if ks is None or now - ks.fetched_at > self._ttl:
            ks = self._refresh(url, ks)
        key = ks.keys.get(kid)
        if key is None and now - ks.fetched_at >= self._refetch_interval:
            log.info("unknown kid %s for %s: re-fetching the key set", kid, url)
            ks = self._refresh(url, ks)
            key = ks.keys.get(kid)
        if key is None:
            raise LtiError("bad_token", f"no key with kid {kid!r} in {url}")
        return key

    def _refresh(self, url: str, seen: _KeySet | None) -> _KeySet:
        with self._lock:
            current = self._sets.get(url)
            if current is not None and current is not seen:
                return current  # another thread refreshed it meanwhile
            fresh = self._fetch(url)
            self._sets[url] = fresh
            return fresh

    def forget(self, url: str | None = None) -> None:
        with self._lock:
            if url is None:
                self._sets.clear()
            else:
                self._sets.pop(url, None)

    def snapshot(self) -> dict[str, Any]:
        return {url: sorted(ks.keys) for url, ks in self._sets.items()}

"""RSA keys of the platform and the cache of tools' public keys."""

from __future__ import annotations

import json
import threading
import uuid
from dataclasses import dataclass
from typing import Any

import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm


@dataclass
class KeyPair:
    kid: str
    private_key: rsa.RSAPrivateKey

    @classmethod
    def generate(cls, kid: str | None = None) -> KeyPair:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return cls(kid=kid or uuid.uuid4().hex[:16], private_key=key)

    @property
    def private_pem(self) -> bytes:
        return self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    @property
    def public_pem(self) -> bytes:
        return self.private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def public_jwk(self) -> dict[str, Any]:
        jwk: dict[str, Any] = json.loads(RSAAlgorithm.to_jwk(self.private_key.public_key()))
        # Some tools pick the key by kid *and* alg, so publish both like real LMSs do.
        jwk.update({"kid": self.kid, "alg": "RS256", "use": "sig"})
        return jwk


_MATERIAL: list[rsa.RSAPrivateKey] = []
_MATERIAL_LOCK = threading.Lock()


def _material(index: int) -> rsa.RSAPrivateKey:
    """RSA keys shared by all platforms of this process: index n is the n-th key a platform uses.

    RSA generation dominates start-up time; platforms are separate issuers with their own
    kids, so reusing key material across them is harmless while keys within one platform differ.
    """
    with _MATERIAL_LOCK:
        while len(_MATERIAL) <= index:
            _MATERIAL.append(rsa.generate_private_key(public_exponent=65537, key_size=2048))
        return _MATERIAL[index]


class PlatformKeys:
    """Published signing keys; the newest one signs. An extra key is never published."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._used = 0
        self.published: list[KeyPair] = [self._next()]
        self._unpublished: KeyPair | None = None

    def _next(self) -> KeyPair:
        key = _material(self._used)
        self._used += 1
        return KeyPair(kid=uuid.uuid4().hex[:16], private_key=key)

    @property
    def current(self) -> KeyPair:
        return self.published[-1]

    @property
    def unpublished(self) -> KeyPair:
        with self._lock:
            if self._unpublished is None:
                self._unpublished = self._next()
            return self._unpublished

    def rotate(self, retire_old: bool = False) -> KeyPair:
        with self._lock:
            new = self._next()
            self.published = [new] if retire_old else [*self.published, new]
        return new

    def jwks(self) -> dict[str, Any]:
        return {"keys": [k.public_jwk() for k in self.published]}


class ToolKeyError(Exception):
    pass


class ToolKeyCache:
    """Fetches each tool's JWKS over HTTP like an LMS does: cached, re-fetched on an unknown kid."""

    def __init__(self, verify: bool | str = True, timeout: float = 5.0) -> None:
        self.verify = verify
        self.timeout = timeout
        self.fetches: list[str] = []
        self._cache: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def forget(self, jwks_url: str | None = None) -> None:
        with self._lock:
            if jwks_url is None:
                self._cache.clear()
            else:
                self._cache.pop(jwks_url, None)

    def _fetch(self, jwks_url: str) -> dict[str, Any]:
        self.fetches.append(jwks_url)
        try:
            resp = requests.get(jwks_url, timeout=self.timeout, verify=self.verify)
        except requests.RequestException as exc:
            raise ToolKeyError(f"could not fetch tool JWKS {jwks_url}: {exc}") from exc
        if resp.status_code != 200:
            raise ToolKeyError(f"tool JWKS {jwks_url} answered HTTP {resp.status_code}")
        try:
            data = resp.json()
        except ValueError as exc:
            raise ToolKeyError(f"tool JWKS {jwks_url} is not JSON") from exc
        if not isinstance(data, dict) or not isinstance(data.get("keys"), list):
            raise ToolKeyError(f"tool JWKS {jwks_url} has no 'keys' list")
        with self._lock:
            self._cache[jwks_url] = data
        return data

    def find(self, kid: str, jwks_url: str | None, static_jwks: dict[str, Any] | None) -> Any:
        """Return the public key object for kid, fetching at most twice."""
        if static_jwks is not None:
            key = _pick(static_jwks, kid)
            if key is None:
                raise ToolKeyError(f"kid {kid!r} is not in the tool's configured JWKS")
            return key
        if not jwks_url:
            raise ToolKeyError("the tool has no jwks_url registered")
        with self._lock:
            cached = self._cache.get(jwks_url)
        if cached is not None:
            key = _pick(cached, kid)
            if key is not None:
                return key
        key = _pick(self._fetch(jwks_url), kid)
        if key is None:
            raise ToolKeyError(f"kid {kid!r} is not in the tool's JWKS at {jwks_url}")
        return key


def _pick(jwks: dict[str, Any], kid: str) -> Any:
    for jwk in jwks.get("keys", []):
        if isinstance(jwk, dict) and jwk.get("kid") == kid and jwk.get("kty") == "RSA":
            return RSAAlgorithm.from_jwk(jwk)
    return None

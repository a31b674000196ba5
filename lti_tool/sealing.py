"""Secrets the tool keeps in its database, sealed with a key derived from SECRET_KEY.

The tool's private signing keys and the platforms' access tokens live in the database so that
every process shares them. Sealed, a copy of the database alone (a backup, a read-only leak)
does not let anyone sign as the tool at the LMSs or call their services with its tokens: that
also takes the instance's SECRET_KEY, which lives elsewhere (instance folder or environment).

Fernet (AES-128-CBC + HMAC-SHA256, from `cryptography`) with a key per secret derived by HKDF.
SECRET_KEY can be rotated like Flask's session key: the old one goes into SECRET_KEY_FALLBACKS,
values sealed with it stay readable, and new ones are sealed with the current key (`lti
rotate-key` re-seals the signing keys; access tokens are renewed within the hour).
"""

from __future__ import annotations

import base64
from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import Flask, current_app

PREFIX = "sealed:v1:"
_INFO = b"lti_tool: secrets at rest, v1"


class Unsealable(Exception):
    """Sealed with a key that is neither SECRET_KEY nor one of SECRET_KEY_FALLBACKS."""


_SEALERS: dict[tuple[str, ...], MultiFernet] = {}


def _derive(secret: str) -> Fernet:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(
        secret.encode()
    )
    return Fernet(base64.urlsafe_b64encode(key))


def sealer(secrets: Sequence[str]) -> MultiFernet:
    """Seals with the first secret, opens with any of them."""
    key = tuple(secrets)
    found = _SEALERS.get(key)
    if found is None:
        if not key:
            raise ValueError("no secret key to seal with")
        found = _SEALERS[key] = MultiFernet([_derive(k) for k in key])
    return found


def app_secrets(app: Flask | None = None) -> list[str]:
    """SECRET_KEY first, then SECRET_KEY_FALLBACKS (Flask's own setting for rotation)."""
    cfg = (app or current_app).config
    return [str(cfg["SECRET_KEY"]), *(str(k) for k in cfg.get("SECRET_KEY_FALLBACKS") or ())]


def is_sealed(stored: str) -> bool:
    return stored.startswith(PREFIX)


def seal(value: str, secrets: Sequence[str] | None = None) -> str:
    return PREFIX + sealer(secrets or app_secrets()).encrypt(value.encode()).decode()


def unseal(stored: str, secrets: Sequence[str] | None = None) -> str:
    """The secret; a value stored before sealing existed is returned as it is."""
    if not is_sealed(stored):
        return stored
    try:
        return sealer(secrets or app_secrets()).decrypt(stored[len(PREFIX) :].encode()).decode()
    except InvalidToken as exc:
        raise Unsealable("sealed with a secret key this instance does not have") from exc


def reseal(stored: str, secrets: Sequence[str]) -> str | None:
    """The value sealed with the current key, or None when it already is (or cannot be opened)."""
    try:
        value = unseal(stored, secrets)
    except Unsealable:
        return None
    if is_sealed(stored):
        try:
            sealer(secrets[:1]).decrypt(stored[len(PREFIX) :].encode())
            return None  # already sealed with the current key
        except InvalidToken:
            pass
    return seal(value, secrets)

"""Deliberately broken or unusual id_tokens (LTI Advantage certification guide §6.1).

A ``Tamper`` is applied after the platform has built a correct id_token, so each
field describes one deviation. ``Tamper.bad_payloads()`` and
``Tamper.valid_variants()`` give named sets ready for ``pytest.mark.parametrize``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import jwt

from . import claims as C

if TYPE_CHECKING:
    from .keys import PlatformKeys

PII_CLAIMS = ("name", "given_name", "family_name", "middle_name", "email", "picture")
NAME_CLAIMS = ("name", "given_name", "family_name", "middle_name")
UNKNOWN_ROLE = "http://example.org/vocab/unknown-roles#Astronaut"


@dataclass(frozen=True)
class Tamper:
    # --- header and signature ---
    no_kid: bool = False
    kid: str | None = None
    unpublished_key: bool = False
    alg_none: bool = False
    hs256_public_key: bool = False
    garbage: str | None = None
    # --- claims that make the launch invalid ---
    version: str | None = None
    no_version: bool = False
    iat_offset: int | None = None
    exp_offset: int | None = None
    no_message_type: bool = False
    no_roles: bool = False
    no_deployment_id: bool = False
    no_resource_link_id: bool = False
    no_sub: bool = False
    aud: str | list[str] | None = None
    extra_aud: str | None = None
    azp: str | None = None
    no_azp: bool = False
    iss: str | None = None
    nonce: str | None = None
    remove: Sequence[str | tuple[str, ...]] = ()
    # --- valid but unusual launches ---
    roles: Sequence[str] | None = None
    no_pii: bool = False
    email_only: bool = False
    names_only: bool = False
    no_context: bool = False

    @staticmethod
    def bad_payloads() -> dict[str, Tamper]:
        """Every launch a tool must reject."""
        return {
            "no_kid": Tamper(no_kid=True),
            "wrong_kid": Tamper(kid="kid-unknown-to-the-jwks"),
            "unpublished_key": Tamper(unpublished_key=True),
            "alg_none": Tamper(alg_none=True),
            "hs256_with_public_key": Tamper(hs256_public_key=True),
            "wrong_version": Tamper(version="1.2.0"),
            "no_version": Tamper(no_version=True),
            "not_a_jwt": Tamper(garbage="this.is-not-a-jwt"),
            "iat_in_future": Tamper(iat_offset=3600, exp_offset=7200),
            "exp_in_past": Tamper(iat_offset=-600, exp_offset=-300),
            "old_iat": Tamper(iat_offset=-86400),
            "no_iss": Tamper(remove=("iss",)),
            "no_aud": Tamper(remove=("aud",)),
            "no_exp": Tamper(remove=("exp",)),
            "no_iat": Tamper(remove=("iat",)),
            "no_nonce": Tamper(remove=("nonce",)),
            "no_message_type": Tamper(no_message_type=True),
            "no_roles": Tamper(no_roles=True),
            "no_deployment_id": Tamper(no_deployment_id=True),
            "no_resource_link_id": Tamper(no_resource_link_id=True),
            "no_sub": Tamper(no_sub=True),
            "wrong_aud": Tamper(aud="some-other-client"),
            "multiple_aud_without_azp": Tamper(extra_aud="some-other-client", no_azp=True),
            "wrong_azp": Tamper(extra_aud="some-other-client", azp="some-other-client"),
            "wrong_iss": Tamper(iss="https://evil.example.com"),
            "nonce_changed": Tamper(nonce="nonce-the-tool-never-issued"),
        }

    @staticmethod
    def valid_variants(learner: bool = True) -> dict[str, Tamper]:
        """Launches a tool must accept (certification §6.1.2 instructor / §6.1.3 learner)."""
        if learner:
            full, short, extra = C.ROLE_LEARNER, "Learner", C.INST_ROLE_STUDENT
        else:
            full, short, extra = C.ROLE_INSTRUCTOR, "Instructor", C.INST_ROLE_FACULTY
        return {
            "multiple_roles": Tamper(roles=(full, extra, C.ROLE_MENTOR)),
            "short_role": Tamper(roles=(short,)),
            "unknown_role": Tamper(roles=(UNKNOWN_ROLE,)),
            "empty_roles": Tamper(roles=()),
            "no_pii": Tamper(no_pii=True),
            "email_only": Tamper(email_only=True),
            "names_only": Tamper(names_only=True),
            "no_context": Tamper(no_context=True),
            "email_only_no_context": Tamper(email_only=True, no_context=True),
        }


def remove_path(claims: dict[str, Any], path: str | Sequence[str]) -> None:
    """Delete a claim or a nested key; a tuple path walks into objects (claim URIs contain dots)."""
    parts = [path] if isinstance(path, str) else list(path)
    node: Any = claims
    for part in parts[:-1]:
        if not isinstance(node, dict) or part not in node:
            return
        node = node[part]
    if isinstance(node, dict):
        node.pop(parts[-1], None)


def apply_claims(claims: dict[str, Any], t: Tamper, now: int, lifetime: int) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(json.dumps(claims))
    if t.version is not None:
        out[C.VERSION] = t.version
    if t.no_version:
        out.pop(C.VERSION, None)
    if t.iat_offset is not None:
        out["iat"] = now + t.iat_offset
        if t.exp_offset is None:
            # Keep the token unexpired so only the iat check can fail.
            out["exp"] = max(now + lifetime, out["iat"] + lifetime)
    if t.exp_offset is not None:
        out["exp"] = now + t.exp_offset
    if t.no_message_type:
        out.pop(C.MESSAGE_TYPE, None)
    if t.no_roles:
        out.pop(C.ROLES, None)
    if t.no_deployment_id:
        out.pop(C.DEPLOYMENT_ID, None)
    if t.no_resource_link_id and isinstance(out.get(C.RESOURCE_LINK), dict):
        out[C.RESOURCE_LINK].pop("id", None)
    if t.no_sub:
        out.pop("sub", None)
    if t.aud is not None:
        out["aud"] = t.aud
    if t.extra_aud is not None:
        aud = out.get("aud")
        base = aud if isinstance(aud, list) else [aud]
        out["aud"] = [*base, t.extra_aud]
    if t.no_azp:
        out.pop("azp", None)
    if t.azp is not None:
        out["azp"] = t.azp
    if t.iss is not None:
        out["iss"] = t.iss
    if t.nonce is not None:
        out["nonce"] = t.nonce
    if t.roles is not None:
        out[C.ROLES] = list(t.roles)
    if t.no_pii:
        for name in PII_CLAIMS:
            out.pop(name, None)
        if isinstance(out.get(C.LIS), dict):
            out[C.LIS].pop("person_sourcedid", None)
    if t.email_only:
        for name in (*NAME_CLAIMS, "picture"):
            out.pop(name, None)
    if t.names_only:
        out.pop("email", None)
    if t.no_context:
        # Services are scoped to the course, so they go with the context claim.
        for name in (C.CONTEXT, C.AGS_ENDPOINT, C.NRPS):
            out.pop(name, None)
        if isinstance(out.get(C.LIS), dict):
            out[C.LIS].pop("course_offering_sourcedid", None)
            out[C.LIS].pop("course_section_sourcedid", None)
    for path in t.remove:
        remove_path(out, path)
    return out


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _segment(obj: dict[str, Any]) -> str:
    return b64url(json.dumps(obj, separators=(",", ":")).encode())


def sign(claims: dict[str, Any], keys: PlatformKeys, t: Tamper | None) -> str:
    """Sign claims with the platform's current key, or break the JWS as the tamper asks."""
    t = t or Tamper()
    if t.garbage is not None:
        return t.garbage
    key = keys.unpublished if t.unpublished_key else keys.current
    header: dict[str, Any] = {"typ": "JWT", "alg": "RS256", "kid": key.kid}
    if t.kid is not None:
        header["kid"] = t.kid
    if t.no_kid:
        header.pop("kid")
    if t.alg_none:
        header["alg"] = "none"
        return f"{_segment(header)}.{_segment(claims)}."
    if t.hs256_public_key:
        # Classic algorithm-confusion attack: HMAC keyed with the public PEM the tool can fetch.
        header["alg"] = "HS256"
        signing_input = f"{_segment(header)}.{_segment(claims)}"
        mac = hmac.new(key.public_pem, signing_input.encode(), hashlib.sha256).digest()
        return f"{signing_input}.{b64url(mac)}"
    headers = {k: v for k, v in header.items() if k != "alg"}
    return jwt.encode(claims, key.private_key, algorithm="RS256", headers=headers)

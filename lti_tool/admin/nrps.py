"""The LMS course roster through Names and Role Provisioning Services 2.0 (NRPS).

A small client of our own rather than pylti1p3's `NamesRolesProvisioningService`: that one
lower-cases the next-page URL it reads from the `Link` header (Canvas page bookmarks are
case-sensitive), sets no timeouts, and asks for a new access token for every service object.

Access tokens come from the OAuth 2 client-credentials grant with a signed JWT assertion (LTI
Security Framework 1.0 §4.1), cached in the shared cache for every worker until shortly before
they expire; a token the platform refuses is dropped and asked for once more.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import jwt
import requests
from flask import Flask, current_app
from flask_babel import gettext as _
from sqlalchemy.orm import Session

from .. import cache
from ..lti import keys
from ..lti.models import Registration

SCOPE = "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"
MEDIA_TYPE = "application/vnd.ims.lti-nrps.v2.membershipcontainer+json"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
TOKEN_KEY = "admin:nrps:token:"  # noqa: S105  (a cache key prefix)
ASSERTION_LIFETIME = 60  # seconds; the platform needs it for this one request only
TOKEN_MARGIN = 30  # seconds before expiry when a cached token is no longer used
MAX_PAGES = 500  # 500 pages of members is far beyond any course; stops a looping platform


class NrpsError(Exception):
    """The roster could not be read; `message` is for the course admin (translated)."""

    def __init__(self, message: str, detail: str = "") -> None:
        super().__init__(detail or message)
        self.message = message
        self.detail = detail


@dataclass(frozen=True)
class Member:
    """One membership (NRPS §2.2): a person and their roles in the context."""

    user_id: str
    status: str
    roles: tuple[str, ...]
    name: str | None = None
    given_name: str | None = None
    family_name: str | None = None
    email: str | None = None

    @property
    def display_name(self) -> str:
        full = " ".join(p for p in (self.given_name, self.family_name) if p)
        return self.name or full or self.email or self.user_id


@dataclass
class Roster:
    members: list[Member] = field(default_factory=list)
    pages: int = 0
    context_title: str | None = None


def http(app: Flask | None = None) -> requests.Session:
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    found: requests.Session = app.extensions["lti_tool.admin.http"]
    return found


def make_http() -> requests.Session:
    from ..lti import USER_AGENT

    session = requests.Session()
    session.headers["User-Agent"] = USER_AGENT
    session.trust_env = True
    return session


def _timeout() -> float:
    return float(current_app.config["LTI_HTTP_TIMEOUT"])


def _token_key(reg: Registration) -> str:
    digest = hashlib.sha256(f"{reg.id}|{reg.client_id}|{reg.auth_token_url}|{SCOPE}".encode())
    return TOKEN_KEY + digest.hexdigest()[:32]


def _assertion(s: Session, reg: Registration) -> str:
    key = keys.signing_key(s)
    now = int(time.time())
    claims = {
        "iss": reg.client_id,
        "sub": reg.client_id,
        # Brightspace expects its own audience instead of the token URL.
        "aud": reg.auth_audience or reg.auth_token_url,
        "iat": now,
        "exp": now + ASSERTION_LIFETIME,
        "jti": secrets.token_urlsafe(24),
    }
    return jwt.encode(claims, key.private_key, algorithm="RS256", headers={"kid": key.kid})


def _oauth_error(resp: requests.Response) -> str:
    try:
        body = resp.json()
    except ValueError:
        return resp.text[:300]
    if isinstance(body, dict):
        return " ".join(str(body.get(k, "")) for k in ("error", "error_description")).strip()
    return resp.text[:300]


def access_token(s: Session, reg: Registration, *, renew: bool = False) -> str:
    key = _token_key(reg)
    if not renew:
        cached = cache.get(key)
        if isinstance(cached, dict) and cached.get("expires", 0) > time.time():
            return str(cached["token"])
    try:
        resp = http().post(
            reg.auth_token_url,
            data={
                "grant_type": "client_credentials",
                "client_assertion_type": ASSERTION_TYPE,
                "client_assertion": _assertion(s, reg),
                "scope": SCOPE,
            },
            headers={"Accept": "application/json"},
            timeout=_timeout(),
        )
    except requests.RequestException as exc:
        raise NrpsError(_("The LMS could not be reached. Try again later."), str(exc)) from exc
    if resp.status_code != 200:
        raise NrpsError(
            _("The LMS refused the tool access to the course roster (%(status)s).",
              status=resp.status_code),
            _oauth_error(resp),
        )
    try:
        body = resp.json()
        token = body["access_token"]
        expires_in = float(body.get("expires_in", 3600))
    except (ValueError, KeyError, TypeError) as exc:
        raise NrpsError(
            _("The LMS sent an answer the tool does not understand."), str(exc)
        ) from exc
    if not isinstance(token, str) or not token:
        raise NrpsError(_("The LMS sent an answer the tool does not understand."), "no token")
    lifetime = max(1, int(expires_in - min(TOKEN_MARGIN, expires_in / 5)))
    cache.set(key, {"token": token, "expires": time.time() + lifetime}, lifetime)
    return token


def with_rlid(url: str, rlid: str | None) -> str:
    if not rlid:
        return url
    parts = urlsplit(url)
    query = "&".join(q for q in (parts.query, urlencode({"rlid": rlid})) if q)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


def _same_origin(a: str, b: str) -> bool:
    pa, pb = urlsplit(a), urlsplit(b)
    return (pa.scheme, pa.netloc) == (pb.scheme, pb.netloc)


def _member(raw: Any) -> Member | None:
    if not isinstance(raw, dict) or not isinstance(raw.get("user_id"), str):
        return None

    def text(name: str) -> str | None:
        value = raw.get(name)
        return value if isinstance(value, str) and value else None

    roles = raw.get("roles")
    return Member(
        user_id=raw["user_id"],
        status=text("status") or "Active",  # NRPS §2.2: absent means Active
        roles=tuple(r for r in roles if isinstance(r, str)) if isinstance(roles, list) else (),
        name=text("name"),
        given_name=text("given_name"),
        family_name=text("family_name"),
        email=text("email"),
    )


def _get(s: Session, reg: Registration, url: str, token: str) -> tuple[requests.Response, str]:
    """GET one page; a refused token is renewed once (it may have been revoked)."""
    for attempt in (1, 2):
        try:
            resp = http().get(
                url,
                headers={"Authorization": "Bearer " + token, "Accept": MEDIA_TYPE},
                timeout=_timeout(),
            )
        except requests.RequestException as exc:
            raise NrpsError(
                _("The LMS could not be reached. Try again later."), str(exc)
            ) from exc
        if resp.status_code == 401 and attempt == 1:
            token = access_token(s, reg, renew=True)
            continue
        return resp, token
    raise AssertionError("unreachable")


def fetch_roster(s: Session, reg: Registration, memberships_url: str, rlid: str | None) -> Roster:
    """Every member, following `Link: rel="next"` pages (NRPS §2.4.1)."""
    token = access_token(s, reg)
    first = with_rlid(memberships_url, rlid)
    url: str | None = first
    seen: set[str] = set()
    roster = Roster()
    while url:
        if url in seen or roster.pages >= MAX_PAGES:
            raise NrpsError(
                _("The LMS sent the course roster in endless pages."), f"loop at {url}"
            )
        # The bearer token goes only to the platform's own membership service.
        if not _same_origin(url, first):
            raise NrpsError(_("The LMS sent an answer the tool does not understand."),
                            f"next page on another site: {url}")
        seen.add(url)
        resp, token = _get(s, reg, url, token)
        if resp.status_code != 200:
            raise NrpsError(
                _("The LMS refused the tool access to the course roster (%(status)s).",
                  status=resp.status_code),
                _oauth_error(resp),
            )
        try:
            body = resp.json()
        except ValueError as exc:
            raise NrpsError(
                _("The LMS sent an answer the tool does not understand."), "not JSON"
            ) from exc
        members = body.get("members") if isinstance(body, dict) else None
        if not isinstance(members, list):
            raise NrpsError(_("The LMS sent an answer the tool does not understand."),
                            "no members array")
        roster.pages += 1
        roster.members.extend(m for m in map(_member, members) if m is not None)
        ctx = body.get("context")
        if isinstance(ctx, dict) and isinstance(ctx.get("title"), str):
            roster.context_title = ctx["title"]
        url = resp.links.get("next", {}).get("url")
    return roster

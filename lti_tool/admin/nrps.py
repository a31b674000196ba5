"""The LMS course roster through Names and Role Provisioning Services 2.0 (NRPS).

A small client of our own rather than pylti1p3's `NamesRolesProvisioningService`: that one
lower-cases the next-page URL it reads from the `Link` header (Canvas page bookmarks are
case-sensitive), sets no timeouts, and asks for a new access token for every service object.

Access tokens come from the grade-passback package's token cache (`lti_tool.passback.tokens`): one
client-credentials grant per registration and scope set, shared by every process; a token the
platform refuses is dropped there and asked for once more.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import requests
from flask import Flask, current_app
from flask_babel import gettext as _
from sqlalchemy.orm import Session

from ..lti.models import Registration

SCOPE = "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"
MEDIA_TYPE = "application/vnd.ims.lti-nrps.v2.membershipcontainer+json"
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


def access_token(s: Session, reg: Registration, *, refused: str | None = None) -> str:
    """A bearer token for the roster scope; `refused` is one the platform just turned down."""
    from ..passback.http import ServiceError
    from ..passback.jobs import services
    from ..passback.tokens import Platform

    platform = Platform(reg.id, reg.client_id, reg.auth_token_url, reg.auth_audience)
    tokens = services(current_app._get_current_object()).tokens  # type: ignore[attr-defined]
    if refused:
        tokens.invalidate(platform, [SCOPE], refused)
    try:
        token, _fresh = tokens.get(platform, [SCOPE])
    except ServiceError as exc:
        raise NrpsError(
            _("The LMS refused the tool access to the course roster (%(status)s).",
              status=exc.status or "—"),
            str(exc),
        ) from exc
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
            token = access_token(s, reg, refused=token)
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
                resp.text[:300],
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

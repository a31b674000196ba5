"""Record who launched, from which course and link, with which roles (one transaction)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..db import Base, utcnow
from ..lti.roles import is_course_admin
from .models import Instructor, LmsContext, Membership, ResourceLink

log = logging.getLogger(__name__)
CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"
AGS_CLAIM = "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"
NRPS_CLAIM = "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice"

M = TypeVar("M", bound=Base)


@dataclass(frozen=True)
class LaunchIdentity:
    instructor_id: int
    context_pk: int | None
    resource_link_pk: int | None
    is_admin: bool
    preferred_language: str | None
    module_id: str | None


def _str(value: Any, limit: int) -> str | None:
    return value[:limit] if isinstance(value, str) and value else None


def parse_certification_date(value: Any) -> date | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = date.fromisoformat(value.strip()[:10])
    except ValueError:
        return None
    # An exam date in the future or before the program existed is a typo, not a fact.
    if parsed > date.today() or parsed.year < 1990:
        return None
    return parsed


def parse_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        v = value.strip().lower()
        if v in {"true", "yes", "1"}:
            return True
        if v in {"false", "no", "0"}:
            return False
    return None


def _get_or_create(s: Session, model: type[M], where: dict[str, Any]) -> M:
    q = select(model).filter_by(**where)
    row = s.scalars(q).first()
    if row is not None:
        return row
    # Committed on its own so that losing a race costs nothing else (SQLite has no reliable
    # SAVEPOINT through pysqlite); callers create rows before they change any.
    row = model(**where)
    s.add(row)
    try:
        s.commit()
    except IntegrityError:
        s.rollback()  # created by a concurrent launch of the same person or link
        row = s.scalars(q).one()
    return row


def record_launch(
    s: Session,
    *,
    issuer: str,
    deployment_pk: int,
    claims: dict[str, Any],
    allow_assistants: bool = False,
) -> LaunchIdentity:
    now = utcnow()
    ctx_claim = claims.get(CLAIM + "context")
    ctx_claim = (
        ctx_claim if isinstance(ctx_claim, dict) and isinstance(ctx_claim.get("id"), str) else None
    )
    link_claim = claims.get(CLAIM + "resource_link")
    link_claim = (
        link_claim
        if isinstance(link_claim, dict) and isinstance(link_claim.get("id"), str)
        else None
    )

    # Rows first (each creation commits on its own), then every change in one commit.
    inst = _get_or_create(s, Instructor, {"issuer": issuer, "sub": claims["sub"]})
    ctx = membership = link = None
    if ctx_claim:
        ctx = _get_or_create(
            s, LmsContext, {"deployment_id": deployment_pk, "context_id": ctx_claim["id"]}
        )
        membership = _get_or_create(s, Membership, {"instructor_id": inst.id, "context_pk": ctx.id})
    if link_claim:
        link = _get_or_create(
            s, ResourceLink, {"deployment_id": deployment_pk, "resource_link_id": link_claim["id"]}
        )

    # Names and e-mail only when sent: a launch without PII keeps what an earlier one gave.
    for attr, limit in (("name", 300), ("given_name", 200), ("family_name", 200), ("email", 320)):
        value = _str(claims.get(attr), limit)
        if value is not None and getattr(inst, attr) != value:
            setattr(inst, attr, value)
    presentation = claims.get(CLAIM + "launch_presentation")
    locale = _str(presentation.get("locale"), 35) if isinstance(presentation, dict) else None
    if locale and inst.lms_locale != locale:
        inst.lms_locale = locale
    custom = claims.get(CLAIM + "custom")
    custom = custom if isinstance(custom, dict) else {}
    cert = parse_certification_date(custom.get("certification_date"))
    if cert is not None and inst.certification_date != cert:
        inst.certification_date = cert
    elif "certification_date" in custom and cert is None:
        log.info("ignoring unusable certification_date %r", custom.get("certification_date"))
    member = parse_bool(custom.get("spin_member"))
    if member is not None and inst.spin_member != member:
        inst.spin_member = member
    inst.last_launch_at = now

    roles = [r for r in claims.get(CLAIM + "roles") or [] if isinstance(r, str)]
    admin = is_course_admin(roles, allow_assistants)
    if ctx is not None and ctx_claim is not None and membership is not None:
        ctx.title = _str(ctx_claim.get("title"), 500) or ctx.title
        ctx.label = _str(ctx_claim.get("label"), 255) or ctx.label
        membership.roles = roles
        membership.is_admin = admin
        membership.last_launch_at = now

    module_id = _str(custom.get("module"), 100)
    if link is not None and link_claim is not None:
        link.context_pk = ctx.id if ctx is not None else None
        link.title = _str(link_claim.get("title"), 500) or link.title
        if module_id:
            link.module_id = module_id
        ags = claims.get(AGS_CLAIM)
        if isinstance(ags, dict):
            link.ags_endpoint = ags
        nrps = claims.get(NRPS_CLAIM)
        if isinstance(nrps, dict) and isinstance(nrps.get("context_memberships_url"), str):
            link.nrps_url = nrps["context_memberships_url"]
        module_id = link.module_id

    s.commit()
    return LaunchIdentity(
        instructor_id=inst.id,
        context_pk=ctx.id if ctx is not None else None,
        resource_link_pk=link.id if link is not None else None,
        is_admin=admin,
        preferred_language=inst.preferred_language,
        module_id=module_id,
    )

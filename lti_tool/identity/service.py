"""Record who launched, from which course and link, with which roles (one transaction)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy.orm import Session

from ..db import upsert, utcnow
from ..lti.roles import ASSISTANT, classify, is_course_admin
from .models import Instructor, LmsContext, Membership, ResourceLink

log = logging.getLogger(__name__)
CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"
AGS_CLAIM = "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"
NRPS_CLAIM = "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice"


_INSTRUCTOR_COLUMNS = tuple(c.name for c in Instructor.__table__.columns)


@dataclass(frozen=True)
class LaunchIdentity:
    instructor_id: int
    # The instructor's row as the launch left it; not in any session, to read only (the
    # launch's own page shows it without loading it again).
    instructor: Instructor
    context_pk: int | None
    settings_version: int | None  # of the context's course set-up (LmsContext)
    resource_link_pk: int | None
    is_admin: bool
    is_assistant: bool  # a teaching assistant: an admin only where the course allows it
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


def record_launch(
    s: Session,
    *,
    issuer: str,
    deployment_pk: int,
    claims: dict[str, Any],
    allow_assistants: bool = False,
) -> LaunchIdentity:
    """Upsert the instructor, context, membership and resource link; the caller commits.

    Four statements, no reads: this runs on every launch (see bench/launch).
    """
    now = utcnow()
    custom = claims.get(CLAIM + "custom")
    custom = custom if isinstance(custom, dict) else {}

    profile: dict[str, Any] = {"last_launch_at": now}
    # Names and e-mail only when sent: a launch without PII keeps what an earlier one gave.
    for attr, limit in (("name", 300), ("given_name", 200), ("family_name", 200), ("email", 320)):
        value = _str(claims.get(attr), limit)
        if value is not None:
            profile[attr] = value
    presentation = claims.get(CLAIM + "launch_presentation")
    locale = _str(presentation.get("locale"), 35) if isinstance(presentation, dict) else None
    if locale:
        profile["lms_locale"] = locale
    cert = parse_certification_date(custom.get("certification_date"))
    sticky: tuple[tuple[str, str], ...] = ()
    if cert is not None:
        profile["certification_date"] = profile["lms_certification_date"] = cert
        # Resent unchanged on every launch, the platform's date must not undo the instructor's
        # correction; a new date from the platform is news and replaces it.
        sticky = (("certification_date", "lms_certification_date"),)
    elif "certification_date" in custom:
        log.info("ignoring unusable certification_date %r", custom.get("certification_date"))
    member = parse_bool(custom.get("spin_member"))
    if member is not None:
        profile["spin_member"] = member
    row = upsert(
        s, Instructor, {"issuer": issuer, "sub": claims["sub"]}, profile,
        returning=_INSTRUCTOR_COLUMNS, sticky=sticky,
    )
    inst_id, preferred = row.id, row.preferred_language

    roles = [r for r in claims.get(CLAIM + "roles") or [] if isinstance(r, str)]
    admin = is_course_admin(roles, allow_assistants)

    context_pk = settings_version = None
    ctx_claim = claims.get(CLAIM + "context")
    if isinstance(ctx_claim, dict) and isinstance(ctx_claim.get("id"), str):
        ctx_values = {
            k: v
            for k, v in (("title", _str(ctx_claim.get("title"), 500)),
                         ("label", _str(ctx_claim.get("label"), 255)))
            if v is not None
        }
        context_pk, settings_version = upsert(
            s, LmsContext, {"deployment_id": deployment_pk, "context_id": ctx_claim["id"]},
            ctx_values, returning=("id", "settings_version"),
        )
        upsert(
            s, Membership, {"instructor_id": inst_id, "context_pk": context_pk},
            {"roles": roles, "is_admin": admin, "last_launch_at": now},
        )

    link_pk = None
    module_id = _str(custom.get("module"), 100)
    link_claim = claims.get(CLAIM + "resource_link")
    if isinstance(link_claim, dict) and isinstance(link_claim.get("id"), str):
        link_values: dict[str, Any] = {"context_pk": context_pk}
        title = _str(link_claim.get("title"), 500)
        if title:
            link_values["title"] = title
        if module_id:
            link_values["module_id"] = module_id
        ags = claims.get(AGS_CLAIM)
        if isinstance(ags, dict):
            link_values["ags_endpoint"] = ags
        nrps = claims.get(NRPS_CLAIM)
        if isinstance(nrps, dict) and isinstance(nrps.get("context_memberships_url"), str):
            link_values["nrps_url"] = nrps["context_memberships_url"][:1000]
        link_pk, module_id = upsert(
            s, ResourceLink,
            {"deployment_id": deployment_pk, "resource_link_id": link_claim["id"]},
            link_values, returning=("id", "module_id"),
        )

    return LaunchIdentity(
        instructor_id=inst_id,
        instructor=Instructor(**row._asdict()),
        context_pk=context_pk,
        settings_version=settings_version,
        resource_link_pk=link_pk,
        is_admin=admin,
        is_assistant=classify(roles) == ASSISTANT,
        preferred_language=preferred,
        module_id=module_id,
    )

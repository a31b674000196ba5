"""The gradebook column of a resource link: found by resourceLinkId and tag, or created.

AGS §3.2: the launch's `lineitem` is used when given (the delivery code does that); otherwise
the line items container is paged through for this link's column, which is created when the
platform granted the lineitem scope. One process at a time resolves a link (a lease on its
`passback_lineitem` row), so a burst of first scores cannot create two columns.
"""

from __future__ import annotations

import time

from flask import Flask
from flask_babel import force_locale, gettext
from sqlalchemy import select

from .. import db
from ..db import utcnow
from . import leases
from .http import (
    AUTH,
    FAIL,
    RETRY,
    SCOPE_LINEITEM,
    SCOPE_LINEITEM_READONLY,
    LineItemSpec,
    ServiceError,
    create_lineitem,
    iter_lineitems,
)
from .jobs import Job, lease_seconds, number, services
from .models import LineItemLink

TAG = "spin-cecs"


def _label(lang: str) -> str:
    with force_locale(lang):
        return gettext("SPIN® CECs")


def resolve(app: Flask, job: Job, scopes: list[str]) -> str:
    """The column's URL; found or created once, then remembered for the link."""
    lineitems_url = job.ags.get("lineitems")
    if not isinstance(lineitems_url, str):
        raise ServiceError(FAIL, "the platform gave neither a line item nor a line items URL")
    can_create = SCOPE_LINEITEM in scopes
    if not can_create and SCOPE_LINEITEM_READONLY not in scopes:
        raise ServiceError(
            FAIL,
            "the launch named no line item and the platform granted only the score scope, "
            "so the tool can neither find nor create the gradebook column",
        )
    seconds = lease_seconds(app)
    # Bounded well inside the learner's own lease, which is held while this waits.
    deadline = time.monotonic() + seconds / 4
    owner = leases.new_owner()
    pause = 0.02
    while True:
        with db.standalone_session() as s:
            leases.insert_ignore(
                s, LineItemLink, [{"resource_link_pk": job.resource_link_pk}], ["resource_link_pk"]
            )
            s.commit()
            row = s.scalars(
                select(LineItemLink).where(LineItemLink.resource_link_pk == job.resource_link_pk)
            ).one()
            if row.lineitem_url:
                return row.lineitem_url
            claimed = leases.take(
                s, LineItemLink, row.id, owner, seconds, LineItemLink.lineitem_url.is_(None)
            )
            s.commit()
            if claimed:
                try:
                    url, origin = _find_or_create(app, job, scopes, lineitems_url, can_create)
                except BaseException:
                    leases.release(s, LineItemLink, [row.id], owner)
                    s.commit()
                    raise
                leases.release(
                    s, LineItemLink, [row.id], owner,
                    lineitem_url=url, origin=origin, resolved_at=utcnow(),
                )
                s.commit()
                return url
        if time.monotonic() > deadline:
            raise ServiceError(RETRY, "line item: another process did not finish resolving it")
        time.sleep(pause)
        pause = min(pause * 2, 0.25)


def _find_or_create(
    app: Flask, job: Job, scopes: list[str], lineitems_url: str, can_create: bool
) -> tuple[str, str]:
    svc = services(app)
    timeout = float(app.config["LTI_HTTP_TIMEOUT"])
    for attempt in (1, 2):
        token, fresh = svc.tokens.get(job.platform, scopes)
        try:
            # Filtered by the platform when it supports resource_link_id, and here as well.
            coupled = [
                item
                for item in iter_lineitems(
                    svc.http,
                    lineitems_url,
                    token,
                    {"resource_link_id": job.resource_link_id, "limit": "100"},
                    timeout,
                )
                if item.get("resourceLinkId") == job.resource_link_id
            ]
            tagged = [item for item in coupled if item.get("tag") == TAG]
            if tagged:
                return str(tagged[0]["id"]), "found"
            if can_create:
                spec = LineItemSpec(
                    resource_link_id=job.resource_link_id,
                    tag=TAG,
                    resource_id=job.resource_id,
                    label=_label(job.course_language),
                    score_maximum=number(job.score_maximum),
                )
                return create_lineitem(svc.http, lineitems_url, token, spec, timeout), "created"
            if len(coupled) == 1:
                return str(coupled[0]["id"]), "found"
            raise ServiceError(
                FAIL,
                "no gradebook column for this link, and the tool may not create one "
                "(the platform granted lineitem.readonly only)",
            )
        except ServiceError as exc:
            if exc.kind != AUTH or attempt == 2 or fresh:
                raise
            svc.tokens.invalidate(job.platform, scopes, token)
    raise AssertionError("unreachable")

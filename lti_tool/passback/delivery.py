"""Delivering a learner's newest pending score: lease, timestamp, send, record.

Each attempt commits its timestamp before the request leaves, so a retry (after a timeout the
platform may have processed, or after this process was killed) always carries a later one:
AGS §3.4 lets a platform ignore a score whose timestamp is not newer, and the tool would never
learn of it.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import requests
from flask import Flask
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from .. import db
from ..db import as_utc, utcnow
from ..i18n import DEFAULT, negotiate
from ..identity.models import Instructor, ResourceLink
from ..lti.models import Deployment, Registration
from . import leases
from .http import (
    AUTH,
    FAIL,
    RETRY,
    SCOPE_LINEITEM,
    SCOPE_LINEITEM_READONLY,
    SCOPE_SCORE,
    LineItemSpec,
    ServiceError,
    create_lineitem,
    iter_lineitems,
    post_score,
)
from .models import FAILED, PENDING, SENT, SUPERSEDED, LineItemLink, OutboxScore, PassbackTarget
from .tokens import Platform, TokenCache

log = logging.getLogger(__name__)

TAG = "spin-cecs"
ONE_MICROSECOND = timedelta(microseconds=1)
OK = "ok"
Target = tuple[int, int]  # (resource_link_pk, instructor_id)


@dataclass
class Services:
    """Per-app state shared by the sender threads and the worker."""

    http: requests.Session
    tokens: TokenCache
    lock: threading.Lock = field(default_factory=threading.Lock)
    score_posts: int = 0

    def count_post(self) -> None:
        with self.lock:
            self.score_posts += 1


def services(app: Flask) -> Services:
    found: Services = app.extensions["lti_tool.passback"]
    return found


def make_services(app: Flask) -> Services:
    http = requests.Session()
    cfg = app.config
    threads = int(cfg["PASSBACK_WORKER_THREADS"]) + int(cfg["PASSBACK_SENDER_THREADS"])
    adapter = requests.adapters.HTTPAdapter(pool_connections=8, pool_maxsize=max(threads, 10))
    http.mount("https://", adapter)
    http.mount("http://", adapter)
    from ..lti import USER_AGENT

    http.headers["User-Agent"] = USER_AGENT
    return Services(http=http, tokens=TokenCache(app, http))


@dataclass(frozen=True)
class Job:
    row_id: int
    target_id: int
    owner: str
    platform: Platform
    ags: dict[str, Any]
    resource_link_pk: int
    resource_link_id: str
    resource_id: str
    course_language: str
    score_maximum: float
    body: dict[str, Any]
    lineitem_url: str | None
    lineitem_cached: bool
    created_at: datetime


@dataclass
class Outcome:
    kind: str
    message: str | None = None
    status: int | None = None
    retry_after: float | None = None
    lineitem_url: str | None = None
    stale_lineitem: bool = False
    token_fresh: bool = False


def wire_time(value: datetime) -> str:
    # ISO 8601 with microseconds and an explicit offset (AGS §3.4.4 timestamp).
    return as_utc(value).isoformat(timespec="microseconds")


def _number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value


def score_body(row: OutboxScore, user_id: str, timestamp: datetime) -> dict[str, Any]:
    body: dict[str, Any] = {
        "userId": user_id,
        "activityProgress": row.activity_progress,
        "gradingProgress": row.grading_progress,
        "timestamp": wire_time(timestamp),
    }
    given = row.score_given
    # Canvas shows a score of 0 as "needs grading" (canvas-lms#1977): until there is something
    # to score, only progress is reported; an explicit final 0 is still sent.
    if given is not None and (given > 0 or row.grading_progress == "FullyGraded"):
        body["scoreGiven"] = _number(given)
        body["scoreMaximum"] = _number(row.score_maximum)
    if row.comment:
        body["comment"] = row.comment
    return body


def token_scopes(ags: dict[str, Any]) -> list[str]:
    granted = ags.get("scope")
    wanted = (SCOPE_SCORE, SCOPE_LINEITEM, SCOPE_LINEITEM_READONLY)
    if isinstance(granted, list):
        scopes = [s for s in wanted if s in granted]
        # lineitem implies reading; asking for both is harmless but not needed.
        if SCOPE_LINEITEM in scopes and SCOPE_LINEITEM_READONLY in scopes:
            scopes.remove(SCOPE_LINEITEM_READONLY)
        return scopes
    return [SCOPE_SCORE]


def lease_seconds(app: Flask) -> float:
    return float(app.config["PASSBACK_LEASE_SECONDS"])


def retry_delay(app: Flask, attempts: int, retry_after: float | None) -> float:
    if retry_after is not None:
        return retry_after + random.uniform(0, min(1.0, retry_after / 10))  # noqa: S311
    base = float(app.config["PASSBACK_RETRY_BASE"])
    cap = float(app.config["PASSBACK_RETRY_MAX"])
    delay = min(cap, base * 2 ** min(max(attempts - 1, 0), 30))
    # Full jitter on the upper half: a platform back from an outage is not hit by everyone at once.
    return random.uniform(delay / 2, delay)  # noqa: S311


# -------------------------------------------------------------------------------- phase 1


def _prepare(app: Flask, target: Target) -> Job | None:
    rl_pk, instructor_id = target
    with db.standalone_session() as s:
        leases.insert_ignore(
            s,
            PassbackTarget,
            {"resource_link_pk": rl_pk, "instructor_id": instructor_id},
            ["resource_link_pk", "instructor_id"],
        )
        target_id = s.scalars(
            select(PassbackTarget.id).where(
                PassbackTarget.resource_link_pk == rl_pk,
                PassbackTarget.instructor_id == instructor_id,
            )
        ).one()
        owner = leases.new_owner()
        if not leases.take(s, PassbackTarget, target_id, owner, lease_seconds(app)):
            s.rollback()
            return None  # another thread or process is sending for this learner
        # Read after taking the lease: the previous holder may just have moved the timestamp.
        tgt = s.get(PassbackTarget, target_id, populate_existing=True)
        assert tgt is not None
        rows = list(
            s.scalars(
                select(OutboxScore)
                .where(
                    OutboxScore.resource_link_pk == rl_pk,
                    OutboxScore.instructor_id == instructor_id,
                    OutboxScore.state == PENDING,
                )
                .order_by(OutboxScore.id)
            )
        )
        now = utcnow()
        if rows:
            for old in rows[:-1]:
                old.state = SUPERSEDED
            newest = rows[-1]
        if not rows or as_utc(newest.next_attempt_at) > now:
            leases.release(s, PassbackTarget, target_id, owner)
            s.commit()
            return None
        job = _job(s, app, tgt, newest, owner)
        if isinstance(job, str):
            newest.state, newest.last_error = FAILED, job
            leases.release(s, PassbackTarget, target_id, owner)
            s.commit()
            return None
        s.commit()
        return job


def _job(
    s: Session, app: Flask, tgt: PassbackTarget, row: OutboxScore, owner: str
) -> Job | str:
    """The attempt, with its timestamp reserved; or why the row can never be delivered."""
    link = s.get(ResourceLink, row.resource_link_pk)
    inst = s.get(Instructor, row.instructor_id)
    if link is None or inst is None:
        return "the resource link or the learner no longer exists"
    ags = link.ags_endpoint
    if not isinstance(ags, dict):
        return "the platform no longer offers grade passback for this link"
    if not isinstance(ags.get("scope"), list) or SCOPE_SCORE not in ags["scope"]:
        return "the platform did not grant the score scope (AGS) to this tool"
    dep = s.get(Deployment, link.deployment_id)
    reg = s.get(Registration, dep.registration_id) if dep is not None else None
    if reg is None:
        return "the platform registration no longer exists"
    lineitem_url: str | None = ags.get("lineitem") if isinstance(ags.get("lineitem"), str) else None
    cached = False
    if lineitem_url is None:
        lineitem_url = s.scalars(
            select(LineItemLink.lineitem_url).where(
                LineItemLink.resource_link_pk == link.id, LineItemLink.lineitem_url.is_not(None)
            )
        ).first()
        cached = lineitem_url is not None
    timestamp = as_utc(row.created_at)
    if tgt.last_timestamp is not None:
        timestamp = max(timestamp, as_utc(tgt.last_timestamp) + ONE_MICROSECOND)
    now = utcnow()
    tgt.last_timestamp = timestamp
    row.attempts += 1
    row.last_attempt_at = now
    row.wire_timestamp = timestamp
    return Job(
        row_id=row.id,
        target_id=tgt.id,
        owner=owner,
        platform=Platform(reg.id, reg.client_id, reg.auth_token_url, reg.auth_audience),
        ags=dict(ags),
        resource_link_pk=link.id,
        resource_link_id=link.resource_link_id,
        resource_id=link.module_id or "spin-recertification",
        course_language=negotiate(inst.lms_locale) or inst.preferred_language or DEFAULT,
        score_maximum=row.score_maximum,
        body=score_body(row, inst.sub, timestamp),
        lineitem_url=lineitem_url,
        lineitem_cached=cached,
        created_at=as_utc(row.created_at),
    )


# -------------------------------------------------------------------------------- phase 2


def _send(app: Flask, job: Job) -> Outcome:
    svc = services(app)
    scopes = token_scopes(job.ags)
    timeout = float(app.config["LTI_HTTP_TIMEOUT"])
    url = job.lineitem_url
    token: str | None = None
    fresh = False
    try:
        if url is None:
            url = _resolve_lineitem(app, job, scopes)
        token, fresh = svc.tokens.get(job.platform, scopes)
        svc.count_post()
        status = post_score(svc.http, url, token, job.body, timeout)
    except ServiceError as exc:
        if exc.kind == AUTH and token is not None:
            svc.tokens.invalidate(job.platform, scopes, token)
        return Outcome(
            exc.kind,
            exc.message,
            exc.status,
            exc.retry_after,
            url,
            stale_lineitem=exc.stale_lineitem and job.lineitem_cached,
            token_fresh=fresh,
        )
    return Outcome(OK, None, status, lineitem_url=url)


def _label(lang: str) -> str:
    from flask_babel import force_locale, gettext

    with force_locale(lang):
        return gettext("SPIN® CECs")


def _resolve_lineitem(app: Flask, job: Job, scopes: list[str]) -> str:
    """Find this link's column by resourceLinkId and tag, or create it (AGS §3.2)."""
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
    deadline = time.monotonic() + seconds + 1
    owner = leases.new_owner()
    pause = 0.02
    while True:
        with db.standalone_session() as s:
            leases.insert_ignore(
                s, LineItemLink, {"resource_link_pk": job.resource_link_pk}, ["resource_link_pk"]
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
                    leases.release(s, LineItemLink, row.id, owner)
                    s.commit()
                    raise
                leases.release(
                    s, LineItemLink, row.id, owner,
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
                    score_maximum=_number(job.score_maximum),
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


# -------------------------------------------------------------------------------- phase 3


def _record(app: Flask, job: Job, outcome: Outcome) -> None:
    with db.standalone_session() as s:
        row = s.get(OutboxScore, job.row_id)
        now = utcnow()
        if row is not None:
            row.http_status = outcome.status
            if outcome.lineitem_url:
                row.lineitem_url = outcome.lineitem_url
            if outcome.kind == OK:
                row.state, row.sent_at, row.last_error = SENT, now, None
            elif outcome.kind == FAIL:
                row.state, row.last_error = FAILED, outcome.message
            else:
                _schedule_retry(app, row, outcome, now)
        if outcome.stale_lineitem and outcome.lineitem_url:
            # The column was deleted at the platform: find or create it again next time.
            s.execute(
                delete(LineItemLink).where(
                    LineItemLink.resource_link_pk == job.resource_link_pk,
                    LineItemLink.lineitem_url == outcome.lineitem_url,
                )
            )
        leases.release(s, PassbackTarget, job.target_id, job.owner)
        s.commit()
    if outcome.kind != OK:
        log.info("passback of score %s: %s (%s)", job.row_id, outcome.kind, outcome.message)


def _schedule_retry(app: Flask, row: OutboxScore, outcome: Outcome, now: datetime) -> None:
    give_up = timedelta(seconds=float(app.config["PASSBACK_GIVE_UP_AFTER"]))
    if now - as_utc(row.created_at) > give_up:
        row.state = FAILED
        row.last_error = f"gave up after {row.attempts} attempts: {outcome.message}"
        return
    if outcome.kind == AUTH and not outcome.token_fresh:
        delay = 0.0  # the cached token had expired at the platform; a new one is one call away
    else:
        delay = retry_delay(app, row.attempts, outcome.retry_after)
    row.next_attempt_at = now + timedelta(seconds=delay)
    row.last_error = outcome.message


# -------------------------------------------------------------------------------- entry


def deliver_target(app: Flask, target: Target, max_rounds: int = 20) -> int:
    """Send what is due for one learner; returns the number of attempts made.

    After each attempt the lease is released and the outbox looked at again, so a score that
    was committed while this one was in flight (its own sender found the lease taken) is not
    left waiting for the worker.
    """
    attempts = 0
    with app.app_context():
        for _ in range(max_rounds):
            job = _prepare(app, target)
            if job is None:
                break
            outcome = _send(app, job)
            _record(app, job, outcome)
            attempts += 1
    return attempts

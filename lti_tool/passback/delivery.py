"""Delivering the newest pending score of each learner: lease, timestamp, send, record.

Each attempt commits its timestamp before the request leaves, so a retry (after a timeout the
platform may have processed, or after this process was killed) always carries a later one:
AGS §3.4 lets a platform ignore a score whose timestamp is not newer, and the tool would never
learn of it. A group of learners sent in parallel costs two short transactions whatever its
size.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from concurrent.futures import Executor
from datetime import datetime, timedelta
from typing import Any

from flask import Flask
from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from .. import db
from ..db import as_utc, utcnow
from ..i18n import DEFAULT, negotiate
from ..identity.models import Instructor, ResourceLink
from ..lti.models import Deployment, Registration
from . import leases, lineitems
from .http import AUTH, FAIL, RETRY, SCOPE_SCORE, ServiceError, lineitem_exists, post_score
from .jobs import (
    OK,
    Job,
    Outcome,
    Target,
    lease_seconds,
    retry_delay,
    score_body,
    services,
    token_scopes,
)
from .models import (
    FAILED,
    HELD,
    PENDING,
    SENT,
    SUPERSEDED,
    LineItemLink,
    OutboxScore,
    PassbackTarget,
)
from .tokens import Platform

log = logging.getLogger(__name__)

ONE_MICROSECOND = timedelta(microseconds=1)
# How often a score held for a deactivated registration or deployment is looked at again.
HOLD_SECONDS = 300.0
MIN_ATTEMPTS_BEFORE_GIVING_UP = 5


def _of(targets: Iterable[Target]) -> Any:
    """WHERE clause for outbox rows of these (resource link, instructor) pairs."""
    by_link: dict[int, set[int]] = {}
    for rl, iid in targets:
        by_link.setdefault(rl, set()).add(iid)
    return or_(
        *(
            and_(OutboxScore.resource_link_pk == rl, OutboxScore.instructor_id.in_(iids))
            for rl, iids in by_link.items()
        )
    )


# -------------------------------------------------------------------------------- phase 1


def _target_ids(s: Session, targets: set[Target]) -> dict[Target, int]:
    def load() -> dict[Target, int]:
        rows = s.execute(
            select(PassbackTarget.resource_link_pk, PassbackTarget.instructor_id, PassbackTarget.id)
            .where(
                or_(
                    *(
                        and_(
                            PassbackTarget.resource_link_pk == rl,
                            PassbackTarget.instructor_id == iid,
                        )
                        for rl, iid in targets
                    )
                )
            )
        ).all()
        return {(rl, iid): pk for rl, iid, pk in rows}

    found = load()
    missing = targets - found.keys()
    if missing:
        leases.insert_ignore(
            s,
            PassbackTarget,
            [{"resource_link_pk": rl, "instructor_id": iid} for rl, iid in sorted(missing)],
            ["resource_link_pk", "instructor_id"],
        )
        found = load()
    return found


def _prepare(app: Flask, targets: Sequence[Target]) -> list[Job]:
    """Lease the learners nobody else is sending for, reserve the timestamps; one transaction."""
    now = utcnow()
    with db.standalone_session() as s:
        # A plain read first: a call that finds nothing due takes no write lock.
        due = {
            (int(rl), int(iid))
            for rl, iid in s.execute(
                select(OutboxScore.resource_link_pk, OutboxScore.instructor_id)
                .where(
                    _of(targets),
                    OutboxScore.state == PENDING,
                    OutboxScore.next_attempt_at <= now,
                )
                .distinct()
            )
        }
        if not due:
            return []
        ids = _target_ids(s, due)
        owner = leases.new_owner()
        taken = leases.take_many(s, PassbackTarget, list(ids.values()), owner, lease_seconds(app))
        if not taken:
            s.rollback()
            return []  # other threads or processes are sending for these learners
        mine = {t for t, pk in ids.items() if pk in taken}
        # Read after taking the leases: a previous holder may just have moved the timestamps.
        last = dict(
            s.execute(
                select(PassbackTarget.id, PassbackTarget.last_timestamp).where(
                    PassbackTarget.id.in_(taken)
                )
            ).all()
        )
        newest: dict[Target, OutboxScore] = {}
        for row in s.scalars(
            select(OutboxScore)
            .where(_of(mine), OutboxScore.state == PENDING)
            .order_by(OutboxScore.id)
        ):
            key = (row.resource_link_pk, row.instructor_id)
            if key in newest:
                newest[key].state = SUPERSEDED  # only the newest pending score is ever sent
            newest[key] = row
        links = _links(s, {rl for rl, _iid in newest})
        people = {
            pk: (sub, locale, preferred)
            for pk, sub, locale, preferred in s.execute(
                select(
                    Instructor.id,
                    Instructor.sub,
                    Instructor.lms_locale,
                    Instructor.preferred_language,
                ).where(Instructor.id.in_({iid for _rl, iid in newest}))
            )
        }
        jobs: list[Job] = []
        stamps: list[dict[str, Any]] = []
        idle: list[int] = [ids[t] for t in mine - newest.keys()]
        for key, row in newest.items():
            target_id = ids[key]
            if as_utc(row.next_attempt_at) > now:
                idle.append(target_id)
                continue
            if _deactivated(links.get(row.resource_link_pk)):
                # An operator switched the platform off here: send it nothing, lose nothing.
                row.last_error = HELD
                row.next_attempt_at = now + timedelta(seconds=hold_seconds(app))
                idle.append(target_id)
                continue
            job = _job(row, target_id, last.get(target_id), owner, links, people)
            if isinstance(job, str):
                row.state, row.last_error = FAILED, job
                idle.append(target_id)
                continue
            row.attempts = job.attempts
            row.last_attempt_at = now
            row.wire_timestamp = job.wire_timestamp
            stamps.append({"id": target_id, "last_timestamp": job.wire_timestamp})
            jobs.append(job.job)
        if stamps:
            s.execute(update(PassbackTarget), stamps)
        leases.release(s, PassbackTarget, idle, owner)
        s.commit()
        return jobs


LinkInfo = tuple[ResourceLink, Registration, LineItemLink | None, bool]


def _links(s: Session, pks: set[int]) -> dict[int, LinkInfo]:
    """Each link with its registration, known gradebook column and whether its deployment is
    active."""
    if not pks:
        return {}
    rows = s.execute(
        select(ResourceLink, Registration, LineItemLink, Deployment.is_active)
        .join(Deployment, Deployment.id == ResourceLink.deployment_id)
        .join(Registration, Registration.id == Deployment.registration_id)
        .outerjoin(LineItemLink, LineItemLink.resource_link_pk == ResourceLink.id)
        .where(ResourceLink.id.in_(pks))
    ).all()
    return {link.id: (link, reg, known, bool(dep)) for link, reg, known, dep in rows}


def _deactivated(found: LinkInfo | None) -> bool:
    return found is not None and not (found[1].is_active and found[3])


def hold_seconds(app: Flask) -> float:
    # Never longer than the longest back-off: tests (and impatient operators) shorten both.
    return min(HOLD_SECONDS, float(app.config["PASSBACK_RETRY_MAX"]))


class _Planned:
    def __init__(self, job: Job, attempts: int, wire_timestamp: datetime) -> None:
        self.job, self.attempts, self.wire_timestamp = job, attempts, wire_timestamp


def _job(
    row: OutboxScore,
    target_id: int,
    last_timestamp: datetime | None,
    owner: str,
    links: dict[int, LinkInfo],
    people: dict[int, tuple[str, str | None, str | None]],
) -> _Planned | str:
    """The attempt and its timestamp; or why the row can never be delivered."""
    found = links.get(row.resource_link_pk)
    person = people.get(row.instructor_id)
    if found is None or person is None:
        return "the resource link, its registration or the learner no longer exists"
    link, reg, known, _active = found
    ags = link.ags_endpoint
    if not isinstance(ags, dict):
        return "the platform no longer offers grade passback for this link"
    if not isinstance(ags.get("scope"), list) or SCOPE_SCORE not in ags["scope"]:
        return "the platform did not grant the score scope (AGS) to this tool"
    claim = ags.get("lineitem") if isinstance(ags.get("lineitem"), str) else None
    if claim is not None and known is not None and known.dead_claim_url == claim:
        claim = None  # deleted at the platform: find or create the column instead
    timestamp = as_utc(row.created_at)
    if last_timestamp is not None:
        timestamp = max(timestamp, as_utc(last_timestamp) + ONE_MICROSECOND)
    sub, lms_locale, preferred = person
    attempts = row.attempts + 1
    job = Job(
        row_id=row.id,
        target_id=target_id,
        instructor_id=row.instructor_id,
        owner=owner,
        attempts=attempts,
        platform=Platform(reg.id, reg.client_id, reg.auth_token_url, reg.auth_audience),
        ags=dict(ags),
        resource_link_pk=link.id,
        resource_link_id=link.resource_link_id,
        resource_id=link.module_id or "spin-recertification",
        course_language=negotiate(lms_locale) or preferred or DEFAULT,
        score_maximum=row.score_maximum,
        body=score_body(row, sub, timestamp),
        lineitem_url=claim or (known.lineitem_url if known is not None else None),
        lineitem_from_claim=claim is not None,
        created_at=as_utc(row.created_at),
    )
    return _Planned(job, attempts, timestamp)


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
            url = lineitems.resolve(app, job, scopes)
        token, fresh = svc.tokens.get(job.platform, scopes)
        svc.count_post()
        status = post_score(svc.http, url, token, job.body, timeout)
    except ServiceError as exc:
        if exc.kind == AUTH and token is not None:
            svc.tokens.invalidate(job.platform, scopes, token)
        stale = False
        if exc.stale_lineitem and url is not None and token is not None:
            stale = lineitem_exists(svc.http, url, token, timeout) is False
        return Outcome(
            RETRY if stale else exc.kind,
            exc.message + (" (the gradebook column no longer exists)" if stale else ""),
            exc.status,
            exc.retry_after,
            url,
            stale_lineitem=stale,
            token_fresh=fresh,
        )
    except Exception as exc:  # a bug must not leave the lease held until it expires
        log.exception("passback: sending score %s failed", job.row_id)
        return Outcome(RETRY, f"internal error: {type(exc).__name__}")
    return Outcome(OK, None, status, lineitem_url=url)


def _send_in_context(app: Flask, job: Job) -> Outcome:
    with app.app_context():
        return _send(app, job)


# -------------------------------------------------------------------------------- phase 3


def _record(app: Flask, jobs: list[Job], outcomes: list[Outcome]) -> None:
    now = utcnow()
    updates = []
    for job, outcome in zip(jobs, outcomes, strict=True):
        values: dict[str, Any] = {
            "id": job.row_id,
            "http_status": outcome.status,
            "lineitem_url": outcome.lineitem_url or job.lineitem_url,
            "state": PENDING,
            "sent_at": None,
            "last_error": outcome.message,
            "next_attempt_at": now,
        }
        if outcome.kind == OK:
            values.update(state=SENT, sent_at=now, last_error=None)
        elif outcome.kind == FAIL:
            values.update(state=FAILED)
        else:
            values.update(_retry_values(app, job, outcome, now))
        updates.append(values)
        if outcome.kind != OK:
            log.info("passback of score %s: %s (%s)", job.row_id, outcome.kind, outcome.message)
    with db.standalone_session() as s:
        s.execute(update(OutboxScore), updates)
        for job, outcome in zip(jobs, outcomes, strict=True):
            if outcome.stale_lineitem and outcome.lineitem_url:
                _forget_lineitem(s, job, outcome.lineitem_url)
        for owner in {job.owner for job in jobs}:
            leases.release(
                s, PassbackTarget, [j.target_id for j in jobs if j.owner == owner], owner
            )
        s.commit()


def _forget_lineitem(s: Session, job: Job, url: str) -> None:
    """The column was deleted at the platform: the retry finds or creates it again."""
    if job.lineitem_from_claim:
        leases.insert_ignore(
            s, LineItemLink, [{"resource_link_pk": job.resource_link_pk}], ["resource_link_pk"]
        )
        s.execute(
            update(LineItemLink)
            .where(LineItemLink.resource_link_pk == job.resource_link_pk)
            .values(dead_claim_url=url)
        )
    s.execute(
        update(LineItemLink)
        .where(
            LineItemLink.resource_link_pk == job.resource_link_pk,
            LineItemLink.lineitem_url == url,
        )
        .values(lineitem_url=None, origin=None, resolved_at=None)
    )


def _retry_values(app: Flask, job: Job, outcome: Outcome, now: datetime) -> dict[str, Any]:
    give_up = timedelta(seconds=float(app.config["PASSBACK_GIVE_UP_AFTER"]))
    # An old score is not given up at its first failures: it may have waited for a worker that
    # was down, or been held while its platform was deactivated.
    if now - job.created_at > give_up and job.attempts >= MIN_ATTEMPTS_BEFORE_GIVING_UP:
        return {
            "state": FAILED,
            "last_error": f"gave up after {job.attempts} attempts: {outcome.message}",
        }
    if outcome.kind == AUTH and not outcome.token_fresh:
        delay = 0.0  # the cached token had expired at the platform; a new one is one call away
    else:
        delay = retry_delay(app, job.attempts, outcome.retry_after)
    return {"next_attempt_at": now + timedelta(seconds=delay)}


# -------------------------------------------------------------------------------- entry


def deliver(
    app: Flask,
    targets: Sequence[Target],
    pool: Executor | None = None,
    parallel: int = 1,
    max_rounds: int = 20,
) -> int:
    """Send what is due for these learners, `parallel` at a time; returns the attempts made.

    Learners are leased `parallel` at a time, so that a lease only has to outlast one request
    and a killed process holds few of them. After each round the outbox is looked at again
    for the same learners: a score committed while theirs was in flight (its own sender found
    the lease taken) does not wait for the worker.
    """
    attempts = 0
    step = max(1, parallel if pool is not None else 1)
    todo = list(dict.fromkeys(targets))
    with app.app_context():
        for _ in range(max_rounds):
            again: list[Target] = []
            for i in range(0, len(todo), step):
                jobs = _prepare(app, todo[i : i + step])
                if not jobs:
                    continue
                if pool is not None and len(jobs) > 1:
                    outcomes = list(pool.map(lambda j: _send_in_context(app, j), jobs))
                else:
                    outcomes = [_send(app, j) for j in jobs]
                _record(app, jobs, outcomes)
                attempts += len(jobs)
                again.extend(j.target for j in jobs)
            if not again:
                break
            todo = again
    return attempts


def deliver_target(app: Flask, target: Target) -> int:
    return deliver(app, [target])

"""What the admin pages show and do: per-learner passback state, and resends."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from ..db import as_utc, utcnow
from ..identity.models import Instructor, ResourceLink
from .models import HELD, PENDING, SENT, SUPERSEDED, LineItemLink, OutboxScore
from .outbox import add_row, can_deliver, mark_for_delivery


@dataclass(frozen=True)
class LearnerStatus:
    """One learner's grade passback for one resource link of the context."""

    instructor_id: int
    resource_link_pk: int
    user_id: str
    name: str
    # Of the newest score: "pending", "sent" or "failed" (with `error`).
    state: str
    score_given: float | None
    score_maximum: float
    activity_progress: str
    grading_progress: str
    attempts: int
    next_attempt_at: datetime | None
    error: str | None
    # The last score the platform accepted, and when.
    last_sent_score: float | None
    last_sent_at: datetime | None
    lineitem_url: str | None
    # Pending because the platform is deactivated in the tool (sent once it is activated).
    held: bool = False


def _links(s: Session, context_pk: int) -> list[int]:
    return list(s.scalars(select(ResourceLink.id).where(ResourceLink.context_pk == context_pk)))


def status(s: Session, context_pk: int) -> list[LearnerStatus]:
    """Every learner with a score in the context, by name."""
    links = _links(s, context_pk)
    if not links:
        return []
    target = (OutboxScore.resource_link_pk, OutboxScore.instructor_id)
    newest_ids = select(func.max(OutboxScore.id)).where(
        OutboxScore.resource_link_pk.in_(links), OutboxScore.state != SUPERSEDED
    ).group_by(*target)
    sent_ids = select(func.max(OutboxScore.id)).where(
        OutboxScore.resource_link_pk.in_(links), OutboxScore.state == SENT
    ).group_by(*target)
    newest = list(s.scalars(select(OutboxScore).where(OutboxScore.id.in_(newest_ids))))
    sent = {
        (r.resource_link_pk, r.instructor_id): r
        for r in s.scalars(select(OutboxScore).where(OutboxScore.id.in_(sent_ids)))
    }
    people = {
        i.id: i
        for i in s.scalars(
            select(Instructor).where(Instructor.id.in_({r.instructor_id for r in newest}))
        )
    }
    out = []
    for r in newest:
        inst = people[r.instructor_id]
        last = sent.get((r.resource_link_pk, r.instructor_id))
        out.append(
            LearnerStatus(
                instructor_id=r.instructor_id,
                resource_link_pk=r.resource_link_pk,
                user_id=inst.sub,
                name=inst.display_name or inst.sub,
                state=r.state,
                score_given=r.score_given,
                score_maximum=r.score_maximum,
                activity_progress=r.activity_progress,
                grading_progress=r.grading_progress,
                attempts=r.attempts,
                next_attempt_at=as_utc(r.next_attempt_at) if r.state == PENDING else None,
                error=r.last_error if r.state != SENT else None,
                last_sent_score=last.score_given if last else None,
                last_sent_at=as_utc(last.sent_at) if last and last.sent_at else None,
                lineitem_url=(last.lineitem_url if last else None) or r.lineitem_url,
                held=r.state == PENDING and r.last_error == HELD,
            )
        )
    out.sort(key=lambda x: (x.name.lower(), x.user_id, x.resource_link_pk))
    return out


def _resend(s: Session, links: list[int], instructor_id: int | None) -> int:
    """Queue the newest score of each learner again, with a new timestamp; does not commit."""
    if not links:
        return 0
    where = [OutboxScore.resource_link_pk.in_(links), OutboxScore.state != SUPERSEDED]
    if instructor_id is not None:
        where.append(OutboxScore.instructor_id == instructor_id)
    newest_ids = (
        select(func.max(OutboxScore.id))
        .where(*where)
        .group_by(OutboxScore.resource_link_pk, OutboxScore.instructor_id)
    )
    deliverable = {
        link.id
        for link in s.scalars(select(ResourceLink).where(ResourceLink.id.in_(links)))
        if can_deliver(link.ags_endpoint)
    }
    queued = 0
    now = utcnow()
    for row in s.scalars(select(OutboxScore).where(OutboxScore.id.in_(newest_ids))):
        if row.resource_link_pk not in deliverable:
            continue
        if row.state == PENDING:
            # Already queued: just make it due now instead of after its back-off.
            row.next_attempt_at = now
            mark_for_delivery(s, (row.resource_link_pk, row.instructor_id))
        else:
            add_row(
                s,
                OutboxScore(
                    instructor_id=row.instructor_id,
                    resource_link_pk=row.resource_link_pk,
                    score_given=row.score_given,
                    score_maximum=row.score_maximum,
                    activity_progress=row.activity_progress,
                    grading_progress=row.grading_progress,
                    comment=row.comment,
                    state=PENDING,
                ),
            )
        queued += 1
    return queued


def resend_learner(s: Session, *, context_pk: int, instructor_id: int) -> int:
    """Send one learner's current score again (all links of the context); caller commits."""
    return _resend(s, _links(s, context_pk), instructor_id)


def resend_context(s: Session, *, context_pk: int) -> int:
    """Send every learner's current score again, e.g. after the gradebook column was deleted
    and re-created: the cached line items are forgotten and found or created anew. Caller
    commits; returns the number of scores queued."""
    links = _links(s, context_pk)
    if links:
        s.execute(
            update(LineItemLink)
            .where(LineItemLink.resource_link_pk.in_(links))
            .values(lineitem_url=None, origin=None, resolved_at=None)
        )
    return _resend(s, links, None)

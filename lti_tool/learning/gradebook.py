"""What the LMS gradebook should show for a learner, handed to grade passback on change.

Rules (issue: interface with grade passback): first start → Started/Pending without a score;
progress without CECs → InProgress/Pending without a score (Canvas shows 0 as "needs grading");
CECs but not complete → InProgress/FullyGraded with the CECs; everything → Completed/FullyGraded.
A link placing a single module (ResourceLink.module_id) is scored out of that module's CECs.
Scores go to every link the learner has opened the course from, in the caller's transaction.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask_babel import format_decimal
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from ..identity.models import ResourceLink
from .models import LearnerLink
from .progress import CourseProgress


@dataclass(frozen=True)
class Grade:
    score_given: float | None
    score_maximum: float
    activity_progress: str
    grading_progress: str
    comment: str

    @property
    def key(self) -> tuple[str, str, str | None]:
        score = None if self.score_given is None else f"{self.score_given:g}"
        return self.activity_progress, self.grading_progress, score


def grade_for(progress: CourseProgress, module_id: str | None) -> Grade:
    course = progress.course
    mp = progress.module(module_id) if module_id else None
    if mp is not None:
        cecs = float(mp.module.cecs)
        if mp.credited:
            return Grade(cecs, cecs, "Completed", "FullyGraded",
                         _("Module passed: %(cecs)s SPIN® CECs earned.",
                           cecs=format_decimal(cecs)))
        if mp.has_progress:
            return Grade(None, cecs, "InProgress", "Pending", _("Module in progress."))
        return Grade(None, cecs, "Started", "Pending", _("Module started."))
    total = float(course.cecs)
    earned = min(progress.cecs_earned, total)
    if progress.complete:
        return Grade(earned, total, "Completed", "FullyGraded",
                     _("Course complete: %(earned)s of %(total)s SPIN® CECs earned.",
                       earned=format_decimal(earned), total=format_decimal(total)))
    if earned > 0:
        return Grade(earned, total, "InProgress", "FullyGraded",
                     _("%(earned)s of %(total)s SPIN® CECs earned so far.",
                       earned=format_decimal(earned), total=format_decimal(total)))
    if progress.has_progress:
        return Grade(None, total, "InProgress", "Pending", _("Course in progress."))
    return Grade(None, total, "Started", "Pending", _("Course started."))


def _enqueue(s: Session, instructor_id: int, link_pk: int, grade: Grade) -> None:
    from ..passback import enqueue_score

    enqueue_score(
        s,
        instructor_id=instructor_id,
        resource_link_pk=link_pk,
        score_given=grade.score_given,
        score_maximum=grade.score_maximum,
        activity_progress=grade.activity_progress,
        grading_progress=grade.grading_progress,
        comment=grade.comment,
    )


def remember_link(s: Session, instructor_id: int, resource_link_pk: int) -> None:
    """Insert the learner's link unless it exists (a concurrent first arrival may add it too)."""
    dialect = s.get_bind().dialect.name
    ins = pg_insert if dialect == "postgresql" else sqlite_insert
    s.execute(
        ins(LearnerLink)
        .values(instructor_id=instructor_id, resource_link_pk=resource_link_pk)
        .on_conflict_do_nothing()
    )


def _links(s: Session, instructor_id: int) -> list[tuple[LearnerLink, str | None]]:
    rows = s.execute(
        select(LearnerLink, ResourceLink.module_id)
        .join(ResourceLink, ResourceLink.id == LearnerLink.resource_link_pk)
        .where(LearnerLink.instructor_id == instructor_id)
        .order_by(LearnerLink.id)  # one lock order for concurrent requests of one learner
    ).all()
    return [(link, module_id) for link, module_id in rows]


def sync(
    s: Session,
    *,
    instructor_id: int,
    progress: CourseProgress,
    resource_link_pk: int | None,
) -> int:
    """Enqueue a score for each of the learner's links whose gradebook entry changes.

    Returns how many writes it made (0: the transaction is still read-only); never commits.
    The link is inserted only when it is not among the learner's links yet: on SQLite even an
    INSERT that does nothing takes the database's write lock, and every course page comes here.
    """
    rows = _links(s, instructor_id)
    written = 0
    if resource_link_pk is not None and all(
        link.resource_link_pk != resource_link_pk for link, _ in rows
    ):
        remember_link(s, instructor_id, resource_link_pk)
        written += 1
        rows = _links(s, instructor_id)
    for row, module_id in rows:
        mid = module_id if module_id and progress.course.module(module_id) else None
        grade = grade_for(progress, mid)
        if (row.activity_progress, row.grading_progress, row.score_given) == grade.key:
            continue
        _enqueue(s, instructor_id, row.resource_link_pk, grade)
        row.activity_progress, row.grading_progress, row.score_given = grade.key
        written += 1
    return written

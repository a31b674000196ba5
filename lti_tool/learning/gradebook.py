"""What the LMS gradebook should show for a learner, handed to grade passback on change.

Rules (issue: interface with grade passback): first start → Started/Pending without a score;
progress without CECs → InProgress/Pending without a score (Canvas shows 0 as "needs grading");
CECs but not complete → InProgress/FullyGraded with the CECs; everything → Completed/FullyGraded.
A link placing a single module (ResourceLink.module_id) is scored out of that module's CECs.
Scores go to every link the learner has opened the course from, in the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import bindparam, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from ..db import execute, table
from ..i18n import format_decimal
from ..i18n import gettext as _
from ..identity.models import ResourceLink
from .models import LearnerLink
from .progress import CourseProgress, LinkState


@dataclass(frozen=True)
class Grade:
    score_given: float | None
    score_maximum: float
    activity_progress: str
    grading_progress: str
    # Translated only when the score is sent: every page view computes the grade to compare.
    describe: Callable[[], str] = field(compare=False, repr=False)

    @property
    def comment(self) -> str:
        return self.describe()

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
                         lambda: _("Module passed: %(cecs)s SPIN® CECs earned.",
                                   cecs=format_decimal(cecs)))
        if mp.has_progress:
            return Grade(None, cecs, "InProgress", "Pending", lambda: _("Module in progress."))
        return Grade(None, cecs, "Started", "Pending", lambda: _("Module started."))
    total = float(course.cecs)
    earned = min(progress.cecs_earned, total)
    if progress.complete:
        return Grade(earned, total, "Completed", "FullyGraded",
                     lambda: _("Course complete: %(earned)s of %(total)s SPIN® CECs earned.",
                               earned=format_decimal(earned), total=format_decimal(total)))
    if earned > 0:
        return Grade(earned, total, "InProgress", "FullyGraded",
                     lambda: _("%(earned)s of %(total)s SPIN® CECs earned so far.",
                               earned=format_decimal(earned), total=format_decimal(total)))
    if progress.has_progress:
        return Grade(None, total, "InProgress", "Pending", lambda: _("Course in progress."))
    return Grade(None, total, "Started", "Pending", lambda: _("Course started."))


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


_LINK = table(LearnerLink)
_LINKS = (
    select(
        _LINK.c.id, _LINK.c.resource_link_pk, _LINK.c.activity_progress,
        _LINK.c.grading_progress, _LINK.c.score_given, table(ResourceLink).c.module_id,
    )
    .join(table(ResourceLink), table(ResourceLink).c.id == _LINK.c.resource_link_pk)
    .where(_LINK.c.instructor_id == bindparam("instructor_id"))
    .order_by(_LINK.c.id)  # one lock order for concurrent requests of one learner
)
_SET_GRADE = (
    update(_LINK)
    .where(_LINK.c.id == bindparam("link_id"))
    .values(activity_progress=bindparam("activity"), grading_progress=bindparam("grading"),
            score_given=bindparam("score"))
)
_REMEMBER = {
    name: ins(_LINK).values(instructor_id=bindparam("instructor_id"),
                            resource_link_pk=bindparam("link_pk")).on_conflict_do_nothing()
    for name, ins in (("postgresql", pg_insert), ("sqlite", sqlite_insert))
}


def remember_link(s: Session, instructor_id: int, resource_link_pk: int) -> None:
    """Insert the learner's link unless it exists (a concurrent first arrival may add it too)."""
    stmt = _REMEMBER["postgresql" if s.get_bind().dialect.name == "postgresql" else "sqlite"]
    execute(s, stmt, {"instructor_id": instructor_id, "link_pk": resource_link_pk})


def _links(s: Session, instructor_id: int) -> list[LinkState]:
    return [LinkState(*row) for row in execute(s, _LINKS, {"instructor_id": instructor_id})]


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
    rows = progress.links  # read with the progress, in this transaction
    written = 0
    if resource_link_pk is not None and all(
        row.resource_link_pk != resource_link_pk for row in rows
    ):
        remember_link(s, instructor_id, resource_link_pk)
        written += 1
        rows = _links(s, instructor_id)
    for row in rows:
        mid = row.module_id if row.module_id and progress.course.module(row.module_id) else None
        grade = grade_for(progress, mid)
        if (row.activity_progress, row.grading_progress, row.score_given) == grade.key:
            continue
        _enqueue(s, instructor_id, row.resource_link_pk, grade)
        activity, grading, score = grade.key
        execute(s, _SET_GRADE,
                {"link_id": row.id, "activity": activity, "grading": grading, "score": score})
        written += 1
    return written

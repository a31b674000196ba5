"""The learner's actions as transactions: open and finish lessons, start and submit quizzes.

Each action writes progress, any CEC award and the gradebook update in one transaction.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..admin import CourseSettings
from ..content import Course, Lesson, Module
from ..db import as_utc, utcnow
from ..identity.models import Instructor
from ..record import ledger
from . import gradebook, progress, quiz
from .models import LessonProgress, QuizAttempt


def load(
    s: Session, inst: Instructor, course: Course, settings: CourseSettings,
    now: datetime | None = None,
) -> progress.CourseProgress:
    now = now or utcnow()
    return progress.load(s, inst.id, course, inst.certification_date, now.date(), settings)


def award_if_earned(
    s: Session, inst: Instructor, course: Course, module: Module, now: datetime,
    attempt_id: int | None = None,
) -> bool:
    """Credit the module if its lessons are read and a quiz was passed in the current cycle."""
    done = set(
        s.scalars(
            select(LessonProgress.lesson_id).where(
                LessonProgress.instructor_id == inst.id,
                LessonProgress.course_id == course.id,
                LessonProgress.module_id == module.id,
                LessonProgress.completed_at.is_not(None),
            )
        )
    )
    if any(les.id not in done for les in module.lessons):
        return False
    win = ledger.window(inst.certification_date, now.date())
    passes = s.execute(
        select(QuizAttempt.id, QuizAttempt.submitted_at).where(
            QuizAttempt.instructor_id == inst.id,
            QuizAttempt.course_id == course.id,
            QuizAttempt.module_id == module.id,
            QuizAttempt.passed.is_(True),
        )
    ).all()
    in_cycle = [aid for aid, at in passes if at is not None and as_utc(at).date() in win]
    if not in_cycle:
        return False
    return ledger.award_module(
        s,
        instructor_id=inst.id,
        course_id=course.id,
        module_id=module.id,
        course_version=course.version,
        cecs=float(module.cecs),
        exam_date=inst.certification_date,
        now=now,
        attempt_id=attempt_id if attempt_id in in_cycle else in_cycle[-1],
    )


def _sync(
    s: Session, inst: Instructor, course: Course, settings: CourseSettings, now: datetime,
    link_pk: int | None, gradebook_on: bool,
) -> progress.CourseProgress:
    state = load(s, inst, course, settings, now)
    if gradebook_on:
        gradebook.sync(s, instructor_id=inst.id, progress=state, resource_link_pk=link_pk)
    return state


def arrive(
    s: Session, inst: Instructor, course: Course, settings: CourseSettings, *,
    link_pk: int | None, gradebook_on: bool,
) -> progress.CourseProgress:
    """A page view of the course: reports "Started" the first time the learner comes from a
    link (and catches the link up with progress made elsewhere).

    Read-only unless the gradebook changes (a new link, progress made elsewhere); a write is
    committed at once, so that SQLite's write lock is not held while the page renders.
    """
    state = load(s, inst, course, settings)
    if (
        gradebook_on
        and link_pk is not None
        and gradebook.sync(s, instructor_id=inst.id, progress=state, resource_link_pk=link_pk)
    ):
        s.commit()
    return state


def open_lesson(s: Session, inst: Instructor, course: Course, lesson: Lesson) -> None:
    progress.open_lesson(s, inst.id, course, lesson, utcnow())
    s.commit()


def finish_lesson(
    s: Session, inst: Instructor, course: Course, settings: CourseSettings, lesson: Lesson, *,
    link_pk: int | None, gradebook_on: bool,
) -> bool:
    now = utcnow()
    quiz.lock_learner(s, inst.id)
    changed = progress.complete_lesson(s, inst.id, course, lesson, now)
    if changed:
        module = course.module(lesson.module_id)
        if module is not None:
            award_if_earned(s, inst, course, module, now)
        _sync(s, inst, course, settings, now, link_pk, gradebook_on)
    s.commit()
    return changed


def submit_quiz(
    s: Session,
    inst: Instructor,
    course: Course,
    settings: CourseSettings,
    *,
    attempt_id: int,
    token: str,
    answers: dict[str, list[str]],
    secret: str,
    link_pk: int | None,
    gradebook_on: bool,
) -> tuple[QuizAttempt, bool]:
    """Grade, award, update the gradebook, commit. Returns the attempt and whether CECs were
    credited by this submission."""
    now = utcnow()
    attempt, graded = quiz.submit(
        s, instructor_id=inst.id, attempt_id=attempt_id, token=token, answers=answers,
        course=course, secret=secret, now=now,
    )
    awarded = False
    module = course.module(attempt.module_id)
    if graded.passed and module is not None:
        awarded = award_if_earned(s, inst, course, module, now, attempt_id=attempt.id)
    _sync(s, inst, course, settings, now, link_pk, gradebook_on)
    s.commit()
    return attempt, awarded

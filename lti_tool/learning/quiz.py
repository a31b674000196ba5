"""Quiz attempts: a fresh draw per attempt, graded on the server only, submitted exactly once."""

from __future__ import annotations

import hashlib
import hmac
import random
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..content import Choice, Course, Module, Question
from ..db import as_utc
from ..identity.models import Instructor
from .models import QuizAttempt
from .progress import ModuleProgress

_rng = random.SystemRandom()


class QuizError(Exception):
    status = 400


class Locked(QuizError):
    """The module's lessons are not all read yet."""

    status = 409


class CoolingDown(QuizError):
    status = 429

    def __init__(self, seconds_left: int) -> None:
        super().__init__(seconds_left)
        self.seconds_left = seconds_left


class NotFound(QuizError):
    """No such attempt for this learner (another learner's attempt looks the same)."""

    status = 404


class AlreadySubmitted(QuizError):
    status = 409

    def __init__(self, attempt_id: int) -> None:
        super().__init__(attempt_id)
        self.attempt_id = attempt_id


class BadToken(QuizError):
    status = 400


@dataclass(frozen=True)
class DrawnQuestion:
    number: int
    question: Question
    choices: tuple[Choice, ...]  # in the order this attempt shows them


def form_token(secret: str, attempt: QuizAttempt) -> str:
    msg = f"quiz-attempt:{attempt.id}:{attempt.nonce}".encode()
    return hmac.new(secret.encode(), msg, hashlib.sha256).hexdigest()


def draw(
    module: Module, per_attempt: int, previous: set[str]
) -> tuple[list[str], dict[str, list[str]]]:
    """Questions not in the previous attempt come first, so a retake is a fresh draw."""
    fresh = [q for q in module.questions if q.id not in previous]
    seen = [q for q in module.questions if q.id in previous]
    _rng.shuffle(fresh)
    _rng.shuffle(seen)
    chosen = (fresh + seen)[: min(per_attempt, len(module.questions))]
    _rng.shuffle(chosen)
    order = {q.id: _rng.sample([c.id for c in q.choices], len(q.choices)) for q in chosen}
    return [q.id for q in chosen], order


def start(
    s: Session,
    *,
    instructor_id: int,
    course: Course,
    progress: ModuleProgress,
    now: datetime,
    cooldown_seconds: int,
    pass_mark_percent: int,
    config_version: int,
) -> QuizAttempt:
    """The open attempt for this module, or a new one. Commits (creation races are settled by
    the one-open-attempt index).

    A new attempt keeps the pass mark and configuration version of the LMS context it starts
    under; an open attempt keeps its own, whatever the course admin changed since.
    """
    module = progress.module
    if not progress.quiz_unlocked:
        raise Locked()
    base = select(QuizAttempt).where(
        QuizAttempt.instructor_id == instructor_id,
        QuizAttempt.course_id == course.id,
        QuizAttempt.module_id == module.id,
    )
    open_attempt = s.scalars(base.where(QuizAttempt.submitted_at.is_(None))).first()
    if open_attempt is not None:
        if open_attempt.course_version == course.version:
            return open_attempt
        # Drawn from content that has changed since: close it ungraded.
        open_attempt.submitted_at = now
        s.flush()
    last = s.scalars(
        base.where(QuizAttempt.submitted_at.is_not(None)).order_by(QuizAttempt.submitted_at.desc())
    ).first()
    if last is not None and last.submitted_at is not None and cooldown_seconds > 0:
        ready = as_utc(last.submitted_at) + timedelta(seconds=cooldown_seconds)
        if ready > now:
            s.rollback()
            raise CoolingDown(max(1, int((ready - now).total_seconds() + 0.999)))
    question_ids, order = draw(
        module, course.questions_per_attempt, set(last.question_ids) if last else set()
    )
    attempt = QuizAttempt(
        instructor_id=instructor_id,
        course_id=course.id,
        module_id=module.id,
        course_version=course.version,
        pass_mark_percent=pass_mark_percent,
        config_version=config_version,
        question_ids=question_ids,
        choice_order=order,
        nonce=secrets.token_hex(16),
        started_at=now,
        total=len(question_ids),
    )
    s.add(attempt)
    try:
        s.commit()
    except IntegrityError:
        s.rollback()  # a concurrent "start" created the open attempt first
        existing = s.scalars(base.where(QuizAttempt.submitted_at.is_(None))).first()
        if existing is None:
            raise
        return existing
    return attempt


def get(s: Session, instructor_id: int, attempt_id: int) -> QuizAttempt:
    attempt = s.get(QuizAttempt, attempt_id)
    if attempt is None or attempt.instructor_id != instructor_id:
        raise NotFound()
    return attempt


def questions(course: Course, attempt: QuizAttempt) -> list[DrawnQuestion]:
    module = course.module(attempt.module_id)
    if module is None:
        return []
    by_id = {q.id: q for q in module.questions}
    out: list[DrawnQuestion] = []
    for qid in attempt.question_ids:
        q = by_id.get(qid)
        if q is None:
            continue  # removed from the pool since the draw
        choices = {c.id: c for c in q.choices}
        ordered = [choices[c] for c in attempt.choice_order.get(qid, []) if c in choices]
        ordered += [c for c in q.choices if c.id not in attempt.choice_order.get(qid, [])]
        out.append(DrawnQuestion(len(out) + 1, q, tuple(ordered)))
    return out


def unanswered(drawn: list[DrawnQuestion], answers: dict[str, list[str]]) -> list[DrawnQuestion]:
    return [d for d in drawn if not answers.get(d.question.id)]


def is_correct(question: Question, chosen: list[str]) -> bool:
    valid = {c.id for c in question.choices}
    picked = {c for c in chosen if c in valid}
    if question.type == "single" and len(picked) != 1:
        return False
    return picked == set(question.correct)


@dataclass(frozen=True)
class Graded:
    correct: int
    total: int
    passed: bool
    answers: dict[str, Any]


def pass_mark(course: Course, attempt: QuizAttempt) -> float:
    """The pass mark the attempt is graded with: its own, stored when it started."""
    if attempt.pass_mark_percent is None:
        return course.pass_mark  # started before attempts stored it
    return attempt.pass_mark_percent / 100


def grade(drawn: list[DrawnQuestion], answers: dict[str, list[str]], mark: float) -> Graded:
    record: dict[str, Any] = {}
    correct = 0
    for d in drawn:
        valid = {c.id for c in d.question.choices}
        chosen = [c for c in answers.get(d.question.id, []) if c in valid]
        ok = is_correct(d.question, chosen)
        correct += ok
        record[d.question.id] = {"chosen": chosen, "correct": ok}
    total = len(drawn)
    passed = total > 0 and correct / total + 1e-9 >= mark
    return Graded(correct, total, passed, record)


def lock_learner(s: Session, instructor_id: int) -> None:
    """Serialise one learner's grading transactions (PostgreSQL row lock; SQLite serialises
    writers anyway), so that totals computed after an award see every earlier award."""
    s.execute(select(Instructor.id).where(Instructor.id == instructor_id).with_for_update())


def submit(
    s: Session,
    *,
    instructor_id: int,
    attempt_id: int,
    token: str,
    answers: dict[str, list[str]],
    course: Course,
    secret: str,
    now: datetime,
) -> tuple[QuizAttempt, Graded]:
    """Grade and close an attempt in the caller's transaction (the caller commits)."""
    lock_learner(s, instructor_id)
    attempt = get(s, instructor_id, attempt_id)
    if attempt.submitted_at is not None:
        raise AlreadySubmitted(attempt.id)
    if not hmac.compare_digest(form_token(secret, attempt), token):
        raise BadToken()
    graded = grade(questions(course, attempt), answers, pass_mark(course, attempt))
    # Exactly one submission wins, however many arrive at once.
    won = s.execute(
        update(QuizAttempt)
        .where(QuizAttempt.id == attempt.id, QuizAttempt.submitted_at.is_(None))
        .values(
            submitted_at=now,
            answers=graded.answers,
            correct=graded.correct,
            total=graded.total,
            passed=graded.passed,
        )
        .returning(QuizAttempt.id)
        .execution_options(synchronize_session=False)
    ).scalar_one_or_none()
    if won is None:
        s.rollback()
        raise AlreadySubmitted(attempt.id)
    s.refresh(attempt)
    return attempt, graded

"""A learner's progress through the course: lessons read, quiz attempts, gradebook state."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from ..db import Base, utcnow


class LessonProgress(Base):
    """A lesson opened by an instructor, and when it was read to the end (issue: lessons)."""

    __tablename__ = "lesson_progress"
    __table_args__ = (
        UniqueConstraint(
            "instructor_id", "course_id", "module_id", "lesson_id", name="uq_lesson_progress_lesson"
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    instructor_id: Mapped[int] = mapped_column(
        ForeignKey("instructor.id", ondelete="CASCADE"), index=True
    )
    course_id: Mapped[str] = mapped_column(String(100))
    module_id: Mapped[str] = mapped_column(String(100))
    lesson_id: Mapped[str] = mapped_column(String(100))
    first_opened_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # The latest visit: "Continue" resumes at the most recently opened lesson.
    last_opened_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    completed_version: Mapped[str | None] = mapped_column(String(50), nullable=True)


class QuizAttempt(Base):
    """One quiz attempt, drawn and graded on the server only (issue: quizzes).

    The draw (question ids, choice order), the course version, and the LMS context's pass mark
    and configuration version are fixed when the attempt starts, so neither a content edit nor
    a course admin's change ever changes an attempt. The per-attempt one-time form token is
    derived from `nonce`; `submitted_at` is set exactly once, by a conditional UPDATE.
    """

    __tablename__ = "quiz_attempt"
    __table_args__ = (
        Index("ix_quiz_attempt_learner_module", "instructor_id", "course_id", "module_id"),
        # One open attempt per module: a second "start" returns it instead of a fresh draw.
        Index(
            "uq_quiz_attempt_one_open",
            "instructor_id",
            "course_id",
            "module_id",
            unique=True,
            sqlite_where=text("submitted_at IS NULL"),
            postgresql_where=text("submitted_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    instructor_id: Mapped[int] = mapped_column(
        ForeignKey("instructor.id", ondelete="CASCADE"), index=True
    )
    course_id: Mapped[str] = mapped_column(String(100))
    module_id: Mapped[str] = mapped_column(String(100))
    course_version: Mapped[str] = mapped_column(String(50))
    # The pass mark the attempt is graded with; None for attempts started before it was stored
    # (graded with the course definition's pass mark, as they always were).
    pass_mark_percent: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # admin CourseConfig.version at the start (0: the context's defaults applied).
    config_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    question_ids: Mapped[list[str]] = mapped_column(JSON)
    choice_order: Mapped[dict[str, list[str]]] = mapped_column(JSON)
    # The one-time form token is an HMAC of this nonce (never stored itself).
    nonce: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    submitted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    answers: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    correct: Mapped[int | None] = mapped_column(Integer, nullable=True)
    total: Mapped[int] = mapped_column(Integer)
    passed: Mapped[bool | None] = mapped_column(Boolean, nullable=True)


class LearnerLink(Base):
    """A resource link an instructor has opened the course from, and what its gradebook shows.

    The last values handed to grade passback let us enqueue a score only when it changes.
    """

    __tablename__ = "learner_link"
    __table_args__ = (
        UniqueConstraint("instructor_id", "resource_link_pk", name="uq_learner_link_link"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    instructor_id: Mapped[int] = mapped_column(
        ForeignKey("instructor.id", ondelete="CASCADE"), index=True
    )
    resource_link_pk: Mapped[int] = mapped_column(
        ForeignKey("resource_link.id", ondelete="CASCADE"), index=True
    )
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    activity_progress: Mapped[str | None] = mapped_column(String(20), nullable=True)
    grading_progress: Mapped[str | None] = mapped_column(String(20), nullable=True)
    score_given: Mapped[str | None] = mapped_column(String(20), nullable=True)

"""What course admins and the operator set up, and the audit log of who changed what.

The configuration models the tool-specific settings an LMS course admin makes for one LMS
context (LTI Core 1.3 §5.4.1 context claim); the audit log records every administrative change
(who, when, what), including the operator's activation of registrations and deployments
(LTI Core §3.1.3).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from ..db import Base, utcnow


class CourseConfig(Base):
    """A course admin's configuration of the course for one LMS context (LTI Core §5.4.1).

    One row per context, replaced as a whole on each save; `version` counts the saves so that a
    learner's attempt can record the configuration it was started under, and so that two admins
    saving at once cannot overwrite each other unseen. Module lists hold module ids of the
    course definition; the CECs per module always come from the definition.
    """

    __tablename__ = "admin_course_config"
    __table_args__ = (
        UniqueConstraint("context_pk", name="unique_config_per_context"),
        CheckConstraint("pass_mark_percent BETWEEN 50 AND 100", name="pass_mark_range"),
        CheckConstraint("cooldown_seconds >= 0", name="cooldown_not_negative"),
        CheckConstraint(
            "starts_on IS NULL OR ends_on IS NULL OR starts_on <= ends_on", name="dates_in_order"
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    context_pk: Mapped[int] = mapped_column(ForeignKey("lms_context.id", ondelete="CASCADE"))
    course_id: Mapped[str] = mapped_column(String(100))
    module_order: Mapped[list[str]] = mapped_column(JSON, default=list)
    offered: Mapped[list[str]] = mapped_column(JSON, default=list)
    required: Mapped[list[str]] = mapped_column(JSON, default=list)
    pass_mark_percent: Mapped[int] = mapped_column(Integer)
    cooldown_seconds: Mapped[int] = mapped_column(Integer)
    languages: Mapped[list[str]] = mapped_column(JSON, default=list)
    course_language: Mapped[str] = mapped_column(String(5))
    starts_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    ends_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    allow_assistants: Mapped[bool] = mapped_column(Boolean, default=False)
    version: Mapped[int] = mapped_column(Integer, default=1)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("instructor.id", ondelete="SET NULL"), nullable=True
    )


class AuditEntry(Base):
    """One administrative action: who did it, when, in which LMS context, and what changed.

    Rows are only ever added. `actor` keeps a readable name because the person's record may be
    deleted later; `changes` holds the action's details, e.g. {field: [old, new]}.
    """

    __tablename__ = "admin_audit"
    __table_args__ = (Index("ix_admin_audit_context_at", "context_pk", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    context_pk: Mapped[int | None] = mapped_column(
        ForeignKey("lms_context.id", ondelete="SET NULL"), nullable=True
    )
    actor_instructor_id: Mapped[int | None] = mapped_column(
        ForeignKey("instructor.id", ondelete="SET NULL"), nullable=True
    )
    actor: Mapped[str] = mapped_column(String(400))
    action: Mapped[str] = mapped_column(String(50))
    changes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

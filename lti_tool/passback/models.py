"""What the tool keeps to pass CECs back to the LMS gradebook (LTI AGS 2.0).

AGS 2.0 (https://www.imsglobal.org/spec/lti-ags/v2p0/): §3.2 line items, §3.4 score publish
service, and the LTI Security Framework 1.0 §4.1 for the access tokens the services need.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from ..db import Base, utcnow

PENDING, SENT, FAILED, SUPERSEDED = "pending", "sent", "failed", "superseded"
# `last_error` of a pending score kept back because its platform (registration or deployment)
# is deactivated in the tool; it is sent once an operator activates the platform again.
HELD = (
    "held: the platform's registration or deployment is deactivated in this tool; the score is "
    "sent once an operator activates it again"
)
STATES = (PENDING, SENT, FAILED, SUPERSEDED)


class OutboxScore(Base):
    """One score (AGS §3.4.4 score publish) to deliver, written with the award that caused it.

    The row is the local source of truth for what the gradebook should show: it is created in
    the same transaction as the progress or CEC award, and only its newest pending version per
    (resource link, instructor) is ever sent.
    """

    __tablename__ = "passback_score"
    __table_args__ = (
        CheckConstraint(
            "state IN ('pending', 'sent', 'failed', 'superseded')", name="known_state"
        ),
        Index("ix_passback_score_due", "state", "next_attempt_at"),
        Index("ix_passback_score_target", "resource_link_pk", "instructor_id", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    instructor_id: Mapped[int] = mapped_column(ForeignKey("instructor.id", ondelete="CASCADE"))
    resource_link_pk: Mapped[int] = mapped_column(
        ForeignKey("resource_link.id", ondelete="CASCADE")
    )
    score_given: Mapped[float | None] = mapped_column(Float, nullable=True)
    score_maximum: Mapped[float] = mapped_column(Float)
    activity_progress: Mapped[str] = mapped_column(String(20))
    grading_progress: Mapped[str] = mapped_column(String(20))
    comment: Mapped[str | None] = mapped_column(Text, nullable=True)
    # Microsecond precision: the basis of the AGS timestamp (§3.4.4 "timestamp").
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    state: Mapped[str] = mapped_column(String(12), default=PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # The timestamp put on the wire by the latest attempt; retries always use a later one.
    wire_timestamp: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    lineitem_url: Mapped[str | None] = mapped_column(String(1000), nullable=True)
    http_status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)


class PassbackTarget(Base):
    """One learner's result in one resource link's line item (AGS §3.4: result per user).

    Holds the last timestamp sent, because AGS §3.4 lets a platform silently ignore a score
    whose timestamp is not later than the one on record, and a lease so that only one process
    at a time sends for this learner (two in flight could arrive out of order).
    """

    __tablename__ = "passback_target"
    __table_args__ = (
        UniqueConstraint("resource_link_pk", "instructor_id", name="unique_target_per_learner"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    resource_link_pk: Mapped[int] = mapped_column(
        ForeignKey("resource_link.id", ondelete="CASCADE")
    )
    instructor_id: Mapped[int] = mapped_column(
        ForeignKey("instructor.id", ondelete="CASCADE"), index=True
    )
    last_timestamp: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    lease_owner: Mapped[str | None] = mapped_column(String(64), nullable=True)
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class LineItemLink(Base):
    """The gradebook column (AGS §3.2 line item) found or created for a resource link.

    Resolved lazily by the sender so that launches never wait for the platform.
    """

    __tablename__ = "passback_lineitem"
    __table_args__ = (UniqueConstraint("resource_link_pk", name="unique_lineitem_per_link"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    resource_link_pk: Mapped[int] = mapped_column(
        ForeignKey("resource_link.id", ondelete="CASCADE")
    )
    # None until resolved; the lease makes one process do the find-or-create (two would create
    # two gradebook columns).
    lineitem_url: Mapped[str | None] = mapped_column(String(1000), nullable=True)
    # "found" (by resourceLinkId and tag) or "created" by the tool.
    origin: Mapped[str | None] = mapped_column(String(10), nullable=True)
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    lease_owner: Mapped[str | None] = mapped_column(String(64), nullable=True)
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # The launch's `lineitem` once the platform said it no longer exists (the column was
    # deleted); launches keep naming it until the platform's own data changes.
    dead_claim_url: Mapped[str | None] = mapped_column(String(1000), nullable=True)


class AccessToken(Base):
    """A cached OAuth 2 access token for the platform's services (Security Framework §4.1).

    Shared by every process, keyed by registration and the sorted scope set; the refresh lease
    lets one process fetch a new token while the others wait for it.
    """

    __tablename__ = "passback_token"
    __table_args__ = (
        UniqueConstraint("registration_id", "scopes", name="unique_token_per_scope_set"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    registration_id: Mapped[int] = mapped_column(
        ForeignKey("lti_registration.id", ondelete="CASCADE")
    )
    scopes: Mapped[str] = mapped_column(String(1000))
    access_token: Mapped[str | None] = mapped_column(Text, nullable=True)  # sealed (sealing.py)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    lease_owner: Mapped[str | None] = mapped_column(String(64), nullable=True)
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

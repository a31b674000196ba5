"""The instructor's CEC record: the append-only ledger, renewals, certificates (domain §1.0, §4)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from ..db import Base, utcnow

# The ledger's cycle key when the exam date was not known at award time (cycle.Cycle.key otherwise).
UNKNOWN_CYCLE = "unknown"


class CecAward(Base):
    """One module's SPIN® CECs credited to an instructor (domain §1.0: 14 CECs per 2-year cycle).

    Append-only: rows are never updated (the migration installs a trigger that refuses UPDATE).
    The named unique constraint makes awards idempotent: a module is credited at most once per
    certification cycle, whatever the number of concurrent quiz submissions.
    """

    __tablename__ = "cec_award"
    __table_args__ = (
        UniqueConstraint(
            "instructor_id",
            "course_id",
            "module_id",
            "cycle_key",
            name="uq_cec_award_once_per_cycle",
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    instructor_id: Mapped[int] = mapped_column(
        ForeignKey("instructor.id", ondelete="CASCADE"), index=True
    )
    course_id: Mapped[str] = mapped_column(String(100))
    module_id: Mapped[str] = mapped_column(String(100))
    course_version: Mapped[str] = mapped_column(String(50))
    cecs: Mapped[Decimal] = mapped_column(Numeric(5, 2))
    cycle_key: Mapped[str] = mapped_column(String(10))
    # The quiz attempt that earned it (kept as a plain id: attempts are the learning package's).
    attempt_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    awarded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # The award's calendar day (UTC), which decides the cycle it counts in.
    awarded_on: Mapped[date] = mapped_column(Date)


class CertificationRenewal(Base):
    """The instructor's statement that they renewed the cycle ending on `cycle_expires_on`.

    Payment happens at Mad Dogg (domain §4: the tool only informs and links out); recording it
    starts the next 2-year cycle in the record.
    """

    __tablename__ = "certification_renewal"
    __table_args__ = (
        UniqueConstraint(
            "instructor_id", "cycle_expires_on", name="uq_certification_renewal_cycle"
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    instructor_id: Mapped[int] = mapped_column(
        ForeignKey("instructor.id", ondelete="CASCADE"), index=True
    )
    cycle_expires_on: Mapped[date] = mapped_column(Date)
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Certificate(Base):
    """A certificate of completion and its verification code (domain §4, §5: consent model).

    Issued only when the instructor asks for it; the code lets an employer confirm it without
    logging in until the instructor revokes it. Revoking is final for that code; a new request
    issues a new certificate with a new code.
    """

    __tablename__ = "certificate"
    __table_args__ = (
        UniqueConstraint("code", name="uq_certificate_code"),
        # At most one live certificate per course and cycle (concurrent requests cannot make two).
        Index(
            "uq_certificate_one_live",
            "instructor_id",
            "course_id",
            "cycle_key",
            unique=True,
            sqlite_where=text("revoked_at IS NULL"),
            postgresql_where=text("revoked_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    instructor_id: Mapped[int] = mapped_column(
        ForeignKey("instructor.id", ondelete="CASCADE"), index=True
    )
    course_id: Mapped[str] = mapped_column(String(100))
    cycle_key: Mapped[str] = mapped_column(String(10))
    code: Mapped[str] = mapped_column(String(32))
    holder_name: Mapped[str] = mapped_column(String(300))
    cecs: Mapped[Decimal] = mapped_column(Numeric(5, 2))
    course_version: Mapped[str] = mapped_column(String(50))
    completed_on: Mapped[date] = mapped_column(Date)
    certification_expires_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    issued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

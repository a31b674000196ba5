"""People and places the LMS tells us about in each launch (LTI Core 1.3 §5.3, §5.4)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from ..db import Base, utcnow


class Instructor(Base):
    """A Spinning® instructor as known to one platform: the `sub` claim under an issuer.

    LTI Core §5.3.6: `sub` is stable and unique per issuer, so (issuer, sub) is the person. The
    same human on two platforms is two records (tenants never share data).
    """

    __tablename__ = "instructor"
    __table_args__ = (UniqueConstraint("issuer", "sub", name="unique_sub_per_issuer"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    issuer: Mapped[str] = mapped_column(String(500))
    sub: Mapped[str] = mapped_column(String(255))
    name: Mapped[str | None] = mapped_column(String(300), nullable=True)
    given_name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    family_name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    email: Mapped[str | None] = mapped_column(String(320), nullable=True)
    # The LMS's locale (launch_presentation.locale) and the language the instructor picked.
    lms_locale: Mapped[str | None] = mapped_column(String(35), nullable=True)
    preferred_language: Mapped[str | None] = mapped_column(String(5), nullable=True)
    # Custom launch parameters (LTI Core §5.4.6) the platform may send.
    certification_date: Mapped[date | None] = mapped_column(Date, nullable=True)
    # The date as the platform last sent it. A date the instructor corrected on their record
    # page stays until the platform sends a different one (see identity.service).
    lms_certification_date: Mapped[date | None] = mapped_column(Date, nullable=True)
    spin_member: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_launch_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    @property
    def display_name(self) -> str:
        full = " ".join(p for p in (self.given_name, self.family_name) if p)
        return self.name or full or self.email or ""


class LmsContext(Base):
    """The course in the LMS the launch came from (LTI Core §5.4.1 context claim)."""

    __tablename__ = "lms_context"
    __table_args__ = (
        UniqueConstraint("deployment_id", "context_id", name="unique_context_per_deployment"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    deployment_id: Mapped[int] = mapped_column(
        ForeignKey("lti_deployment.id", ondelete="CASCADE"), index=True
    )
    context_id: Mapped[str] = mapped_column(String(255))
    title: Mapped[str | None] = mapped_column(String(500), nullable=True)
    label: Mapped[str | None] = mapped_column(String(255), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # The version of the course set-up saved for this context (admin.CourseConfig.version, 0
    # for none): every launch reads it with the context row, and a worker that has that
    # version's set-up in memory does not read the set-up again.
    settings_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class ResourceLink(Base):
    """A placement of the tool in an LMS course (LTI Core §5.3.5 resource_link claim).

    It also remembers the service endpoints the platform gave for it (AGS §3.1, NRPS §3.6.1).
    """

    __tablename__ = "resource_link"
    __table_args__ = (
        UniqueConstraint(
            "deployment_id", "resource_link_id", name="unique_resource_link_per_deployment"
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    deployment_id: Mapped[int] = mapped_column(
        ForeignKey("lti_deployment.id", ondelete="CASCADE"), index=True
    )
    context_pk: Mapped[int | None] = mapped_column(
        ForeignKey("lms_context.id", ondelete="SET NULL"), nullable=True
    )
    resource_link_id: Mapped[str] = mapped_column(String(255))
    title: Mapped[str | None] = mapped_column(String(500), nullable=True)
    # A module placed by deep linking (custom parameter `module`); None for the whole course.
    module_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    ags_endpoint: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    nrps_url: Mapped[str | None] = mapped_column(String(1000), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Membership(Base):
    """An instructor's roles in an LMS context, as of their latest launch (LTI Core §5.3.7)."""

    __tablename__ = "membership"
    __table_args__ = (
        UniqueConstraint("instructor_id", "context_pk", name="unique_membership_per_context"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    instructor_id: Mapped[int] = mapped_column(
        ForeignKey("instructor.id", ondelete="CASCADE"), index=True
    )
    context_pk: Mapped[int] = mapped_column(
        ForeignKey("lms_context.id", ondelete="CASCADE"), index=True
    )
    roles: Mapped[list[str]] = mapped_column(JSON, default=list)
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    last_launch_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

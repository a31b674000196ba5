"""The LTI concepts the tool stores, one table each.

Spec references: LTI Core 1.3 (https://www.imsglobal.org/spec/lti/v1p3/), the 1EdTech Security
Framework 1.0 (https://www.imsglobal.org/spec/security/v1p0/) and LTI Dynamic Registration 1.0
(https://www.imsglobal.org/spec/lti-dr/v1p0).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    select,
)
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from ..db import Base, utcnow


class Registration(Base):
    """A platform registration: one issuer and one client id (LTI Core §3.1.3, Security §4.1).

    One issuer may hold many client ids (Canvas issues one developer key per tool install), so the
    pair is the identity of a registration.
    """

    __tablename__ = "lti_registration"
    __table_args__ = (UniqueConstraint("issuer", "client_id", name="unique_client_id_per_issuer"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    issuer: Mapped[str] = mapped_column(String(500))
    client_id: Mapped[str] = mapped_column(String(500))
    auth_login_url: Mapped[str] = mapped_column(String(1000))
    auth_token_url: Mapped[str] = mapped_column(String(1000))
    # Brightspace signs tokens for an audience that differs from the token URL.
    auth_audience: Mapped[str | None] = mapped_column(String(1000), nullable=True)
    key_set_url: Mapped[str] = mapped_column(String(1000))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    # How the registration arrived: "cli", "json" or "dynamic".
    source: Mapped[str] = mapped_column(String(20), default="cli")
    # What dynamic registration told us (product family, scopes granted); for the operator.
    platform_info: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )

    deployments: Mapped[list[Deployment]] = relationship(
        back_populates="registration", cascade="all, delete-orphan", order_by="Deployment.id"
    )

    @classmethod
    def find(cls, s: Session, issuer: str, client_id: str | None) -> Registration | None:
        q = select(cls).where(cls.issuer == issuer)
        if client_id:
            return s.scalars(q.where(cls.client_id == client_id)).first()
        # Without a client id the issuer must be unambiguous (LTI Core §5.1.1: client_id is
        # optional in the login initiation).
        found = list(s.scalars(q.limit(2)))
        return found[0] if len(found) == 1 else None


class Deployment(Base):
    """A deployment of the tool within a registration (LTI Core §3.1.3, claim `deployment_id`).

    Launches from a deployment the tool has not seen create it inactive, so that an operator
    decides whether that part of the platform may use the tool.
    """

    __tablename__ = "lti_deployment"
    __table_args__ = (
        UniqueConstraint(
            "registration_id", "deployment_id", name="unique_deployment_id_per_registration"
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    registration_id: Mapped[int] = mapped_column(
        ForeignKey("lti_registration.id", ondelete="CASCADE"), index=True
    )
    deployment_id: Mapped[str] = mapped_column(String(500))
    is_active: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    registration: Mapped[Registration] = relationship(back_populates="deployments")


class ToolKey(Base):
    """A signing key of the tool, published in its JWK Set (Security Framework §6.3).

    A new key is published before it signs (`activates_at`), and a replaced key stays published
    until `retires_at`, because platforms cache the tool's key set for minutes.
    """

    __tablename__ = "lti_tool_key"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kid: Mapped[str] = mapped_column(String(100), unique=True)
    # Sealed with SECRET_KEY (lti_tool.sealing); rows from before migration 0008 may be plain.
    private_key_pem: Mapped[str] = mapped_column(Text)
    public_jwk: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    activates_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    retires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class RegistrationInvite(Base):
    """A one-time token that lets a dynamic registration (LTI DR §3.3) arrive already active."""

    __tablename__ = "lti_registration_invite"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    note: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    registration_id: Mapped[int | None] = mapped_column(
        ForeignKey("lti_registration.id", ondelete="SET NULL"), nullable=True
    )


class UsedNonce(Base):
    """An id_token nonce that has been accepted once (Security Framework §5.1.3 step 9).

    The primary key makes acceptance single-use on every database: a replayed id_token fails
    the insert. Rows older than the id_token lifetime are pruned.
    """

    __tablename__ = "lti_used_nonce"

    nonce: Mapped[str] = mapped_column(String(255), primary_key=True)
    used_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)

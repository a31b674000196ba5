"""The audit log: every administrative change, with who made it and when."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..identity.models import Instructor
from .models import AuditEntry

OPERATOR = "operator"


def actor_label(inst: Instructor | None) -> str:
    if inst is None:
        return OPERATOR
    name = inst.display_name
    return f"{name} ({inst.sub})" if name else inst.sub


def record(
    s: Session,
    *,
    action: str,
    changes: dict[str, Any] | None = None,
    context_pk: int | None = None,
    instructor: Instructor | None = None,
    actor: str | None = None,
) -> AuditEntry:
    """Add an entry in the caller's transaction (so it is stored exactly when the change is)."""
    entry = AuditEntry(
        context_pk=context_pk,
        actor_instructor_id=instructor.id if instructor is not None else None,
        actor=(actor or actor_label(instructor))[:400],
        action=action,
        changes=changes or {},
    )
    s.add(entry)
    return entry


def entries(s: Session, *, context_pk: int | None, limit: int = 200) -> list[AuditEntry]:
    """Newest first; `context_pk=None` lists the operator's (platform-wide) entries."""
    where = (
        AuditEntry.context_pk.is_(None)
        if context_pk is None
        else AuditEntry.context_pk == context_pk
    )
    return list(
        s.scalars(
            select(AuditEntry).where(where).order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
            .limit(limit)
        )
    )

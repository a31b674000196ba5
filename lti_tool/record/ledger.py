"""Writing and reading the CEC ledger. Awards are idempotent at the database (named constraint)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from . import cycle as cyc
from .models import UNKNOWN_CYCLE, CecAward, CertificationRenewal


@dataclass(frozen=True)
class Window:
    """The days whose CECs count today: the current cycle, or everything if no exam date."""

    cycle: cyc.Cycle | None

    def __contains__(self, day: date) -> bool:
        return self.cycle is None or day in self.cycle

    @property
    def key(self) -> str:
        return self.cycle.key if self.cycle else UNKNOWN_CYCLE


def window(exam_date: date | None, today: date) -> Window:
    return Window(cyc.cycle_on(exam_date, today) if exam_date else None)


def awards(s: Session, instructor_id: int, course_id: str | None = None) -> list[CecAward]:
    q = select(CecAward).where(CecAward.instructor_id == instructor_id)
    if course_id is not None:
        q = q.where(CecAward.course_id == course_id)
    return list(s.scalars(q.order_by(CecAward.awarded_at, CecAward.id)))


def in_window(rows: Iterable[CecAward], win: Window) -> list[CecAward]:
    return [a for a in rows if a.awarded_on in win]


def award_module(
    s: Session,
    *,
    instructor_id: int,
    course_id: str,
    module_id: str,
    course_version: str,
    cecs: float,
    exam_date: date | None,
    now: datetime,
    attempt_id: int | None = None,
) -> bool:
    """Credit a module once per cycle, in the caller's transaction. True if this call credited it.

    The read below avoids a second credit in the same cycle under another cycle key (e.g. awarded
    before the exam date was known); the insert's ON CONFLICT settles concurrent submissions.
    """
    today = now.date()
    win = window(exam_date, today)
    earlier = s.scalars(
        select(CecAward.awarded_on).where(
            CecAward.instructor_id == instructor_id,
            CecAward.course_id == course_id,
            CecAward.module_id == module_id,
        )
    ).all()
    if any(d in win for d in earlier):
        return False
    values = {
        "instructor_id": instructor_id,
        "course_id": course_id,
        "module_id": module_id,
        "course_version": course_version,
        "cecs": Decimal(str(cecs)),
        "cycle_key": win.key,
        "attempt_id": attempt_id,
        "awarded_at": now,
        "awarded_on": today,
    }
    keys = ["instructor_id", "course_id", "module_id", "cycle_key"]
    dialect = s.get_bind().dialect.name
    stmt: Any
    if dialect == "postgresql":
        stmt = pg_insert(CecAward).values(**values).on_conflict_do_nothing(
            constraint="uq_cec_award_once_per_cycle"
        )
    elif dialect == "sqlite":
        stmt = sqlite_insert(CecAward).values(**values).on_conflict_do_nothing(index_elements=keys)
    else:  # pragma: no cover - the tool supports PostgreSQL and SQLite only
        raise RuntimeError(f"unsupported database {dialect}")
    # RETURNING, not rowcount: the driver's rowcount is not reliable for ON CONFLICT DO NOTHING.
    return s.execute(stmt.returning(CecAward.id)).scalar_one_or_none() is not None


def renewed_keys(s: Session, instructor_id: int) -> set[str]:
    rows = s.scalars(
        select(CertificationRenewal.cycle_expires_on).where(
            CertificationRenewal.instructor_id == instructor_id
        )
    )
    return {d.isoformat() for d in rows}


def status(
    s: Session,
    *,
    instructor_id: int,
    exam_date: date | None,
    today: date,
    course_id: str,
    cecs_required: float,
    expiring_soon_days: int = 90,
) -> cyc.Status:
    rows = awards(s, instructor_id, course_id)
    return cyc.status(
        exam_date,
        today,
        [(a.awarded_on, float(a.cecs)) for a in rows],
        renewed_keys(s, instructor_id),
        cecs_required,
        expiring_soon_days,
    )

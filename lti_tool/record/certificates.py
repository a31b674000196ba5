"""Issuing, revoking and verifying certificates of completion (consent-based verification)."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .models import Certificate

# Crockford's base32: no I, L, O or U, so a code read aloud or typed is hard to get wrong.
_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_CODE_CHARS = 16  # 80 random bits: guessing a live code is hopeless


def new_code() -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(_CODE_CHARS))


def pretty(code: str) -> str:
    return "-".join(code[i : i + 4] for i in range(0, len(code), 4))


def normalise(raw: str) -> str | None:
    code = re.sub(r"[\s-]", "", raw or "").upper().translate(str.maketrans("ILO", "110"))
    if len(code) != _CODE_CHARS or any(ch not in _ALPHABET for ch in code):
        return None
    return code


@dataclass(frozen=True)
class Completion:
    """What a certificate states; computed from the ledger for the current cycle."""

    cycle_key: str
    cecs: Decimal
    course_version: str
    completed_on: date
    certification_expires_on: date | None


def live(s: Session, instructor_id: int, course_id: str, cycle_key: str) -> Certificate | None:
    return s.scalars(
        select(Certificate).where(
            Certificate.instructor_id == instructor_id,
            Certificate.course_id == course_id,
            Certificate.cycle_key == cycle_key,
            Certificate.revoked_at.is_(None),
        )
    ).first()


def history(s: Session, instructor_id: int) -> list[Certificate]:
    return list(
        s.scalars(
            select(Certificate)
            .where(Certificate.instructor_id == instructor_id)
            .order_by(Certificate.issued_at.desc(), Certificate.id.desc())
        )
    )


def issue(
    s: Session,
    *,
    instructor_id: int,
    course_id: str,
    holder_name: str,
    completion: Completion,
    now: datetime,
) -> Certificate:
    """The live certificate for this completion, issuing one if there is none. Commits."""
    existing = live(s, instructor_id, course_id, completion.cycle_key)
    if existing is not None:
        return existing
    cert = Certificate(
        instructor_id=instructor_id,
        course_id=course_id,
        cycle_key=completion.cycle_key,
        code=new_code(),
        holder_name=holder_name[:300],
        cecs=completion.cecs,
        course_version=completion.course_version,
        completed_on=completion.completed_on,
        certification_expires_on=completion.certification_expires_on,
        issued_at=now,
    )
    s.add(cert)
    try:
        s.commit()
    except IntegrityError:
        s.rollback()  # issued by a concurrent request
        existing = live(s, instructor_id, course_id, completion.cycle_key)
        if existing is None:
            raise
        return existing
    return cert


def revoke(s: Session, instructor_id: int, certificate_id: int, now: datetime) -> bool:
    """Withdraw consent: the code stops verifying at once. Commits."""
    revoked = s.execute(
        update(Certificate)
        .where(
            Certificate.id == certificate_id,
            Certificate.instructor_id == instructor_id,
            Certificate.revoked_at.is_(None),
        )
        .values(revoked_at=now)
        .returning(Certificate.id)
        .execution_options(synchronize_session=False)
    ).scalar_one_or_none()
    s.commit()
    return revoked is not None


def verify(s: Session, raw_code: str) -> Certificate | None:
    code = normalise(raw_code)
    if code is None:
        return None
    return s.scalars(
        select(Certificate).where(Certificate.code == code, Certificate.revoked_at.is_(None))
    ).first()

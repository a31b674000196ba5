"""Row leases taken with a conditional UPDATE: the same code is safe on PostgreSQL and SQLite.

A lease (owner, until) on a row lets one process at a time do a slow thing (an HTTP call) for
that row without holding a database lock meanwhile; if the process dies, the lease runs out.
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any

from sqlalchemy import CursorResult, or_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..db import utcnow


def new_owner() -> str:
    return secrets.token_hex(16)


def take(s: Session, model: Any, pk: int, owner: str, seconds: float, *where: Any) -> bool:
    """Take the lease on row `pk` if free or expired (or already ours); does not commit."""
    now = utcnow()
    stmt = (
        update(model)
        .where(
            model.id == pk,
            or_(model.lease_until.is_(None), model.lease_until < now, model.lease_owner == owner),
            *where,
        )
        .values(lease_owner=owner, lease_until=now + timedelta(seconds=seconds))
        .execution_options(synchronize_session=False)
    )
    result: CursorResult[Any] = s.execute(stmt)  # type: ignore[assignment]
    return result.rowcount == 1


def release(s: Session, model: Any, pk: int, owner: str, **values: Any) -> None:
    s.execute(
        update(model)
        .where(model.id == pk, model.lease_owner == owner)
        .values(lease_owner=None, lease_until=None, **values)
        .execution_options(synchronize_session=False)
    )


def insert_ignore(s: Session, model: Any, values: dict[str, Any], keys: list[str]) -> None:
    """INSERT unless a row with the same unique `keys` exists (a concurrent insert is fine)."""
    dialect = s.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        s.execute(pg_insert(model).values(**values).on_conflict_do_nothing(index_elements=keys))
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        s.execute(
            sqlite_insert(model).values(**values).on_conflict_do_nothing(index_elements=keys)
        )
    else:
        try:
            with s.begin_nested():
                s.add(model(**values))
        except IntegrityError:
            pass

"""Row leases taken with a conditional UPDATE: the same code is safe on PostgreSQL and SQLite.

A lease (owner, until) on a row lets one process at a time do a slow thing (an HTTP call) for
that row without holding a database lock meanwhile; if the process dies, the lease runs out.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from ..db import utcnow


def new_owner() -> str:
    return secrets.token_hex(16)


def _free(model: Any, owner: str) -> Any:
    now = utcnow()
    return or_(model.lease_until.is_(None), model.lease_until < now, model.lease_owner == owner)


def take(s: Session, model: Any, pk: int, owner: str, seconds: float, *where: Any) -> bool:
    """Take the lease on row `pk` if free or expired; does not commit."""
    return bool(take_many(s, model, [pk], owner, seconds, *where))


def take_many(
    s: Session, model: Any, pks: Sequence[int], owner: str, seconds: float, *where: Any
) -> set[int]:
    """Take the leases that are free among `pks`; returns the ones taken. Does not commit."""
    if not pks:
        return set()
    until = utcnow() + timedelta(seconds=seconds)
    s.execute(
        update(model)
        .where(model.id.in_(pks), _free(model, owner), *where)
        .values(lease_owner=owner, lease_until=until)
        .execution_options(synchronize_session=False)
    )
    return set(s.scalars(select(model.id).where(model.id.in_(pks), model.lease_owner == owner)))


def release(s: Session, model: Any, pks: Sequence[int], owner: str, **values: Any) -> None:
    if not pks:
        return
    s.execute(
        update(model)
        .where(model.id.in_(pks), model.lease_owner == owner)
        .values(lease_owner=None, lease_until=None, **values)
        .execution_options(synchronize_session=False)
    )


def insert_ignore(
    s: Session, model: Any, rows: list[dict[str, Any]], keys: list[str]
) -> None:
    """INSERT the rows whose unique `keys` are not taken yet (a concurrent insert is fine)."""
    if not rows:
        return
    dialect = s.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        s.execute(pg_insert(model).values(rows).on_conflict_do_nothing(index_elements=keys))
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        s.execute(sqlite_insert(model).values(rows).on_conflict_do_nothing(index_elements=keys))
    else:
        raise NotImplementedError(f"grade passback supports PostgreSQL and SQLite, not {dialect}")

"""Database engine, per-request sessions and schema migrations (Alembic)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from alembic import command
from alembic.config import Config as AlembicConfig
from flask import Flask, current_app, g
from flask.cli import AppGroup
from sqlalchemy import Engine, MetaData, Table, create_engine, event, text
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

MIGRATIONS = Path(__file__).parent / "migrations"

# Named constraints so that migrations are reproducible on every backend.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def utcnow() -> datetime:
    return datetime.now(UTC)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    # WAL lets readers and one writer work together (several gunicorn workers);
    # foreign keys are off by default in SQLite.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=10000")
    # Read the database file through a memory map: each worker process re-reads the pages
    # another process changed, and a mapped page costs no read() call or copy.
    cur.execute("PRAGMA mmap_size=268435456")
    cur.close()


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        from sqlalchemy.engine import make_url

        database = make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 10})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)


def engine() -> Engine:
    return current_app.extensions["lti_tool.engine"]


def session() -> Session:
    """The request's session; committed explicitly by the code that writes."""
    if "db_session" not in g:
        g.db_session = current_app.extensions["lti_tool.sessionmaker"]()
    return g.db_session


@contextlib.contextmanager
def standalone_session() -> Iterator[Session]:
    """A session outside a request (CLI, workers)."""
    s: Session = current_app.extensions["lti_tool.sessionmaker"]()
    try:
        yield s
    finally:
        s.close()


def _close_session(_exc: BaseException | None) -> None:
    s = g.pop("db_session", None)
    if s is not None:
        s.close()


def alembic_config(app: Flask) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", app.config["DATABASE_URL"].replace("%", "%%"))
    # For migrations that (re-)seal secrets in the database (lti_tool.sealing).
    from .sealing import app_secrets

    cfg.attributes["secret_keys"] = app_secrets(app)
    return cfg


def upgrade(app: Flask, revision: str = "heads") -> None:
    eng: Engine = app.extensions["lti_tool.engine"]
    with eng.begin() as conn:
        if eng.dialect.name == "postgresql":
            # Several workers may start at once; one migrates, the others wait for it.
            conn.execute(text("SELECT pg_advisory_xact_lock(7314001)"))
        cfg = alembic_config(app)
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def init_app(app: Flask) -> None:
    eng = make_engine(app.config["DATABASE_URL"])
    app.extensions["lti_tool.engine"] = eng
    app.extensions["lti_tool.sessionmaker"] = sessionmaker(bind=eng, expire_on_commit=False)
    app.teardown_appcontext(_close_session)
    app.cli.add_command(db_cli)
    if app.config.get("AUTO_MIGRATE"):
        upgrade(app)


@click.group("db", cls=AppGroup, help="Database schema commands.")
def db_cli() -> None:
    pass


@db_cli.command("upgrade", help="Create or upgrade the schema to the newest revision.")
@click.argument("revision", default="heads")
def upgrade_command(revision: str) -> None:
    upgrade(current_app._get_current_object(), revision)  # type: ignore[attr-defined]
    click.echo(f"Database at {revision}.")


@db_cli.command("current", help="Show the schema revision.")
def current_command() -> None:
    with engine().connect() as conn:
        cfg = alembic_config(current_app._get_current_object())  # type: ignore[attr-defined]
        cfg.attributes["connection"] = conn
        command.current(cfg)


def as_utc(dt: datetime) -> datetime:
    """SQLite hands back naive datetimes even for timezone-aware columns; they were UTC."""
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def table(model: type[Base]) -> Table:
    """The Core table of a mapped class, for statements that skip the ORM layer."""
    t = model.__table__
    assert isinstance(t, Table)
    return t


def execute(s: Session, statement: Any, params: dict[str, Any] | None = None) -> Any:
    """Run a Core statement on the session's connection, in its transaction.

    For the statements every launch and course page runs: through `Session.execute` an
    INSERT on a mapped class takes the ORM's bulk path and a SELECT of mapped columns the
    ORM's compile step, several times the cost of the statement itself (bench/launch).
    Statements built once at import keep their cache key, so they are not traversed again.
    """
    return s.connection().execute(statement, params or {})


def upsert(
    s: Session,
    model: type[Base],
    key: dict[str, Any],
    values: dict[str, Any],
    returning: tuple[str, ...] = ("id",),
    sticky: tuple[tuple[str, str], ...] = (),
) -> Any:
    """INSERT … ON CONFLICT (key) DO UPDATE SET values RETURNING …, in the caller's transaction.

    One statement instead of select-then-insert: no race between two launches of the same
    person, and one round trip (PostgreSQL and SQLite ≥ 3.35 both support it). The statement is
    built once per column set and reused with bound parameters: this runs on every launch.

    `sticky`: (column, witness) pairs; an existing row's column takes the new value only when
    the witness column's value changes (someone may have corrected the column since).
    """
    dialect = s.get_bind().dialect.name
    shape = (dialect, model, tuple(key), tuple(values), returning, sticky)
    stmt = _UPSERTS.get(shape)
    if stmt is None:
        from sqlalchemy import bindparam, case
        from sqlalchemy.dialects import postgresql, sqlite

        module: Any = postgresql if dialect == "postgresql" else sqlite
        t = table(model)
        columns = [*key, *values]
        insert = module.insert(t).values({c: bindparam(c) for c in columns})
        # With nothing to update, touch a key column so that RETURNING still yields the row.
        update = list(values) or [next(iter(key))]
        set_ = {c: insert.excluded[c] for c in update}
        for column, witness in sticky:
            set_[column] = case(
                (t.c[witness].is_distinct_from(insert.excluded[witness]), insert.excluded[column]),
                else_=t.c[column],
            )
        stmt = insert.on_conflict_do_update(index_elements=list(key), set_=set_).returning(
            *(t.c[name] for name in returning)
        )
        _UPSERTS[shape] = stmt
    return execute(s, stmt, {**key, **values}).one()


_UPSERTS: dict[tuple[Any, ...], Any] = {}

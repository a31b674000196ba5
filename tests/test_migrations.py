"""The Alembic migrations build exactly the schema the models declare (on SQLite and, with
TEST_DATABASE_URL, PostgreSQL): a model change without its migration fails here."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from lti_tool import db


def test_migrations_match_the_models(app):
    engine = app.extensions["lti_tool.engine"]
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, db.Base.metadata) == []

"""Alembic environment: runs on the connection the app hands over (see lti_tool.db.upgrade)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from lti_tool.admin import models as _admin  # noqa: F401
from lti_tool.db import Base
from lti_tool.identity import models as _identity  # noqa: F401
from lti_tool.learning import models as _learning  # noqa: F401
from lti_tool.lti import models as _lti  # noqa: F401
from lti_tool.passback import models as _passback  # noqa: F401
from lti_tool.record import models as _record  # noqa: F401

config = context.config
target_metadata = Base.metadata


def run() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, target_metadata=target_metadata,
                          render_as_batch=connection.dialect.name == "sqlite")
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(config.get_main_option("sqlalchemy.url") or "")
    with engine.begin() as conn:
        context.configure(connection=conn, target_metadata=target_metadata,
                          render_as_batch=conn.dialect.name == "sqlite")
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata,
                      literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    run()

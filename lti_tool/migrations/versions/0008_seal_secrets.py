"""lti, passback: seal the tool's private keys and the stored access tokens (lti_tool.sealing)

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-21

Data only. Values written before are plaintext; this seals them (and re-seals values sealed with
a SECRET_KEY_FALLBACKS key) with the instance's SECRET_KEY, which the app hands to Alembic
(`flask --app lti_tool db upgrade`, or the dev server's first run). Run by Alembic's own command
line there is no SECRET_KEY and nothing changes: plaintext stays readable, new values are
sealed, and `lti rotate-key` seals the keys it touches.
"""
from collections.abc import Callable

from alembic import op
import sqlalchemy as sa

from lti_tool.sealing import Unsealable, reseal, unseal


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

SECRETS = (("lti_tool_key", "private_key_pem"), ("passback_token", "access_token"))


def _secret_keys() -> list[str] | None:
    config = op.get_context().config
    return config.attributes.get("secret_keys") if config is not None else None


def _rewrite(change: Callable[[str], str | None]) -> None:
    conn = op.get_bind()
    for table, column in SECRETS:
        t = sa.table(table, sa.column("id", sa.Integer), sa.column(column, sa.Text))
        for pk, stored in conn.execute(sa.select(t.c.id, t.c[column])).all():
            new = change(stored) if stored else None
            if new is not None and new != stored:
                conn.execute(sa.update(t).where(t.c.id == pk).values({column: new}))


def upgrade() -> None:
    keys = _secret_keys()
    if keys:
        _rewrite(lambda stored: reseal(stored, keys))


def downgrade() -> None:
    keys = _secret_keys()
    if not keys:
        return

    def opened(stored: str) -> str | None:
        try:
            return unseal(stored, keys)
        except Unsealable:
            return None

    _rewrite(opened)

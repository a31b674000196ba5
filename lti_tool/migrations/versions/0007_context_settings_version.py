"""identity: the version of each context's course set-up, read by every launch

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-21
"""
from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('lms_context', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('settings_version', sa.Integer(), server_default='0', nullable=False)
        )
    # Contexts whose admins saved a set-up already: the version they saved.
    op.execute(
        "UPDATE lms_context SET settings_version = (SELECT c.version FROM admin_course_config c"
        " WHERE c.context_pk = lms_context.id)"
        " WHERE EXISTS (SELECT 1 FROM admin_course_config c WHERE c.context_pk = lms_context.id)"
    )


def downgrade() -> None:
    with op.batch_alter_table('lms_context', schema=None) as batch_op:
        batch_op.drop_column('settings_version')

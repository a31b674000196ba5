"""learning: the pass mark and course configuration version each quiz attempt started under

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22
"""
from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable: attempts started before this revision keep being graded as they were.
    with op.batch_alter_table('quiz_attempt', schema=None) as batch_op:
        batch_op.add_column(sa.Column('pass_mark_percent', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('config_version', sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('quiz_attempt', schema=None) as batch_op:
        batch_op.drop_column('config_version')
        batch_op.drop_column('pass_mark_percent')

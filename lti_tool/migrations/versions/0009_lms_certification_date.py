"""identity: the certification date as the platform last sent it

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-21

A date the instructor corrects on their record page stays until the platform sends a different
one. Existing rows start without it, so the next launch that sends a date applies it, as before.
"""
from alembic import op
import sqlalchemy as sa


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('instructor', schema=None) as batch_op:
        batch_op.add_column(sa.Column('lms_certification_date', sa.Date(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('instructor', schema=None) as batch_op:
        batch_op.drop_column('lms_certification_date')

"""admin: per-context course configuration and the audit log

Revision ID: 0004
Revises: 0001
Create Date: 2026-11-21 06:30:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'admin_course_config',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('context_pk', sa.Integer(), nullable=False),
        sa.Column('course_id', sa.String(length=100), nullable=False),
        sa.Column('module_order', sa.JSON(), nullable=False),
        sa.Column('offered', sa.JSON(), nullable=False),
        sa.Column('required', sa.JSON(), nullable=False),
        sa.Column('pass_mark_percent', sa.Integer(), nullable=False),
        sa.Column('cooldown_seconds', sa.Integer(), nullable=False),
        sa.Column('languages', sa.JSON(), nullable=False),
        sa.Column('course_language', sa.String(length=5), nullable=False),
        sa.Column('starts_on', sa.Date(), nullable=True),
        sa.Column('ends_on', sa.Date(), nullable=True),
        sa.Column('allow_assistants', sa.Boolean(), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_by_id', sa.Integer(), nullable=True),
        sa.CheckConstraint('pass_mark_percent BETWEEN 50 AND 100',
                           name=op.f('ck_admin_course_config_pass_mark_range')),
        sa.CheckConstraint('cooldown_seconds >= 0',
                           name=op.f('ck_admin_course_config_cooldown_not_negative')),
        sa.CheckConstraint('starts_on IS NULL OR ends_on IS NULL OR starts_on <= ends_on',
                           name=op.f('ck_admin_course_config_dates_in_order')),
        sa.ForeignKeyConstraint(['context_pk'], ['lms_context.id'],
                                name=op.f('fk_admin_course_config_context_pk_lms_context'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['updated_by_id'], ['instructor.id'],
                                name=op.f('fk_admin_course_config_updated_by_id_instructor'),
                                ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_admin_course_config')),
        sa.UniqueConstraint('context_pk', name='unique_config_per_context'),
    )
    op.create_table(
        'admin_audit',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('context_pk', sa.Integer(), nullable=True),
        sa.Column('actor_instructor_id', sa.Integer(), nullable=True),
        sa.Column('actor', sa.String(length=400), nullable=False),
        sa.Column('action', sa.String(length=50), nullable=False),
        sa.Column('changes', sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(['actor_instructor_id'], ['instructor.id'],
                                name=op.f('fk_admin_audit_actor_instructor_id_instructor'),
                                ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['context_pk'], ['lms_context.id'],
                                name=op.f('fk_admin_audit_context_pk_lms_context'),
                                ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_admin_audit')),
    )
    op.create_index('ix_admin_audit_context_at', 'admin_audit', ['context_pk', 'at'],
                    unique=False)


def downgrade() -> None:
    op.drop_index('ix_admin_audit_context_at', table_name='admin_audit')
    op.drop_table('admin_audit')
    op.drop_table('admin_course_config')

"""passback: score outbox, per-learner targets, line items per link, shared access tokens

Revision ID: 0003
Revises: 0001
Create Date: 2026-11-21 06:03:13.849022
"""
from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('passback_token',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('registration_id', sa.Integer(), nullable=False),
    sa.Column('scopes', sa.String(length=1000), nullable=False),
    sa.Column('access_token', sa.Text(), nullable=True),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('lease_owner', sa.String(length=64), nullable=True),
    sa.Column('lease_until', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['registration_id'], ['lti_registration.id'], name=op.f('fk_passback_token_registration_id_lti_registration'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_passback_token')),
    sa.UniqueConstraint('registration_id', 'scopes', name='unique_token_per_scope_set')
    )
    op.create_table('passback_lineitem',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('resource_link_pk', sa.Integer(), nullable=False),
    sa.Column('lineitem_url', sa.String(length=1000), nullable=True),
    sa.Column('origin', sa.String(length=10), nullable=True),
    sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('lease_owner', sa.String(length=64), nullable=True),
    sa.Column('lease_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('dead_claim_url', sa.String(length=1000), nullable=True),
    sa.ForeignKeyConstraint(['resource_link_pk'], ['resource_link.id'], name=op.f('fk_passback_lineitem_resource_link_pk_resource_link'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_passback_lineitem')),
    sa.UniqueConstraint('resource_link_pk', name='unique_lineitem_per_link')
    )
    op.create_table('passback_score',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('instructor_id', sa.Integer(), nullable=False),
    sa.Column('resource_link_pk', sa.Integer(), nullable=False),
    sa.Column('score_given', sa.Float(), nullable=True),
    sa.Column('score_maximum', sa.Float(), nullable=False),
    sa.Column('activity_progress', sa.String(length=20), nullable=False),
    sa.Column('grading_progress', sa.String(length=20), nullable=False),
    sa.Column('comment', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('state', sa.String(length=12), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_attempt_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('wire_timestamp', sa.DateTime(timezone=True), nullable=True),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('lineitem_url', sa.String(length=1000), nullable=True),
    sa.Column('http_status', sa.Integer(), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.CheckConstraint("state IN ('pending', 'sent', 'failed', 'superseded')", name=op.f('ck_passback_score_known_state')),
    sa.ForeignKeyConstraint(['instructor_id'], ['instructor.id'], name=op.f('fk_passback_score_instructor_id_instructor'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['resource_link_pk'], ['resource_link.id'], name=op.f('fk_passback_score_resource_link_pk_resource_link'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_passback_score'))
    )
    with op.batch_alter_table('passback_score', schema=None) as batch_op:
        batch_op.create_index('ix_passback_score_due', ['state', 'next_attempt_at'], unique=False)
        batch_op.create_index('ix_passback_score_target', ['resource_link_pk', 'instructor_id', 'id'], unique=False)

    op.create_table('passback_target',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('resource_link_pk', sa.Integer(), nullable=False),
    sa.Column('instructor_id', sa.Integer(), nullable=False),
    sa.Column('last_timestamp', sa.DateTime(timezone=True), nullable=True),
    sa.Column('lease_owner', sa.String(length=64), nullable=True),
    sa.Column('lease_until', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['instructor_id'], ['instructor.id'], name=op.f('fk_passback_target_instructor_id_instructor'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['resource_link_pk'], ['resource_link.id'], name=op.f('fk_passback_target_resource_link_pk_resource_link'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_passback_target')),
    sa.UniqueConstraint('resource_link_pk', 'instructor_id', name='unique_target_per_learner')
    )
    with op.batch_alter_table('passback_target', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_passback_target_instructor_id'), ['instructor_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('passback_target', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_passback_target_instructor_id'))

    op.drop_table('passback_target')
    with op.batch_alter_table('passback_score', schema=None) as batch_op:
        batch_op.drop_index('ix_passback_score_target')
        batch_op.drop_index('ix_passback_score_due')

    op.drop_table('passback_score')
    op.drop_table('passback_lineitem')
    op.drop_table('passback_token')

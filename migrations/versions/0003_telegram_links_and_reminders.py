"""telegram link codes, review reminders, buttons on outbox rows

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('link_attempt',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('sender_index', sa.String(length=64), nullable=False),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_link_attempt'))
    )
    with op.batch_alter_table('link_attempt', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_link_attempt_at'), ['at'], unique=False)
        batch_op.create_index(batch_op.f('ix_link_attempt_sender_index'), ['sender_index'], unique=False)

    op.create_table('link_code',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('child_id', sa.Integer(), nullable=False),
    sa.Column('channel', sa.String(length=20), nullable=False),
    sa.Column('code_index', sa.String(length=64), nullable=False),
    sa.Column('issued_by', sa.Integer(), nullable=True),
    sa.Column('issued_at', sa.DateTime(), nullable=False),
    sa.Column('expires_at', sa.DateTime(), nullable=False),
    sa.Column('used_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['child_id'], ['child.id'], name=op.f('fk_link_code_child_id_child')),
    sa.ForeignKeyConstraint(['issued_by'], ['staff_user.id'], name=op.f('fk_link_code_issued_by_staff_user')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_link_code')),
    sa.UniqueConstraint('code_index', name=op.f('uq_link_code_code_index'))
    )
    with op.batch_alter_table('link_code', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_link_code_child_id'), ['child_id'], unique=False)

    op.create_table('reminder_sent',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('child_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('key', sa.String(length=80), nullable=False),
    sa.Column('message_id', sa.Integer(), nullable=True),
    sa.Column('outcome', sa.String(length=20), nullable=False),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['child_id'], ['child.id'], name=op.f('fk_reminder_sent_child_id_child')),
    sa.ForeignKeyConstraint(['message_id'], ['message.id'], name=op.f('fk_reminder_sent_message_id_message')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reminder_sent')),
    sa.UniqueConstraint('child_id', 'kind', 'key', name=op.f('uq_reminder_sent_child_id_kind_key'))
    )
    with op.batch_alter_table('reminder_sent', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_reminder_sent_child_id'), ['child_id'], unique=False)

    with op.batch_alter_table('authority', schema=None) as batch_op:
        batch_op.add_column(sa.Column('reminder_days', sa.JSON(), nullable=False, server_default='[14, 7]'))

    with op.batch_alter_table('child', schema=None) as batch_op:
        batch_op.add_column(sa.Column('time_zone', sa.String(length=60), nullable=False, server_default='Europe/London'))

    with op.batch_alter_table('conversation_state', schema=None) as batch_op:
        batch_op.add_column(sa.Column('paused_at', sa.DateTime(), nullable=True))
        batch_op.create_index(batch_op.f('ix_conversation_state_paused_at'), ['paused_at'], unique=False)

    with op.batch_alter_table('outbox_message', schema=None) as batch_op:
        batch_op.add_column(sa.Column('buttons', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('address', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('confirms_opt_out', sa.Boolean(), nullable=False, server_default=sa.false()))



def downgrade():
    with op.batch_alter_table('outbox_message', schema=None) as batch_op:
        batch_op.drop_column('confirms_opt_out')
        batch_op.drop_column('address')
        batch_op.drop_column('buttons')

    with op.batch_alter_table('conversation_state', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_conversation_state_paused_at'))
        batch_op.drop_column('paused_at')

    with op.batch_alter_table('child', schema=None) as batch_op:
        batch_op.drop_column('time_zone')

    with op.batch_alter_table('authority', schema=None) as batch_op:
        batch_op.drop_column('reminder_days')

    with op.batch_alter_table('reminder_sent', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_reminder_sent_child_id'))

    op.drop_table('reminder_sent')
    with op.batch_alter_table('link_code', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_link_code_child_id'))

    op.drop_table('link_code')
    with op.batch_alter_table('link_attempt', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_link_attempt_sender_index'))
        batch_op.drop_index(batch_op.f('ix_link_attempt_at'))

    op.drop_table('link_attempt')

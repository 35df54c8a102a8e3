"""one index of a child's messages by direction and time, instead of one on child_id alone

The previous text read with every inbound message (the split-risk check) and the caseload's last
message from each child both ask for a child's messages one way since a time. With an index on
child_id alone, PostgreSQL combined it with the created_at index and so walked every message of
the last 15 minutes from every child. The new index starts with child_id, so it also serves
everything the old one did.

Revision ID: 0008
Revises: 0007

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade():
    op.create_index(
        'ix_message_child_id_direction_created_at',
        'message',
        ['child_id', 'direction', 'created_at'],
        unique=False,
    )
    op.drop_index('ix_message_child_id', table_name='message')


def downgrade():
    op.create_index('ix_message_child_id', 'message', ['child_id'], unique=False)
    op.drop_index('ix_message_child_id_direction_created_at', table_name='message')

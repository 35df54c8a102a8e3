"""fewer indexes to write with every message: none on created_at, sender_index only where set

Every message stored (two or three a child's text: theirs and the replies) went into five
B-trees. Two served no query: ``ix_message_created_at`` (a child's messages by time use the
index that starts with child_id; nothing reads all children's messages by time) and
``ix_message_sender_index`` over a column that is NULL for every message from a known child.
The first goes; the second now holds only the rows that have a sender index (messages from
senders linked to no child), so a child's messages never touch it.

Revision ID: 0009
Revises: 0008

"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

HAS_SENDER_INDEX = sa.text("sender_index IS NOT NULL")


def upgrade():
    op.drop_index('ix_message_created_at', table_name='message')
    op.drop_index('ix_message_sender_index', table_name='message')
    # On PostgreSQL the new index is built without blocking writes (a plain CREATE INDEX holds off
    # every new message while it reads the whole table); that cannot run in a transaction.
    with op.get_context().autocommit_block():
        op.create_index(
            'ix_message_sender_index',
            'message',
            ['sender_index'],
            unique=False,
            postgresql_where=HAS_SENDER_INDEX,
            sqlite_where=HAS_SENDER_INDEX,
            postgresql_concurrently=True,
        )


def downgrade():
    op.drop_index('ix_message_sender_index', table_name='message')
    op.create_index('ix_message_sender_index', 'message', ['sender_index'], unique=False)
    op.create_index('ix_message_created_at', 'message', ['created_at'], unique=False)

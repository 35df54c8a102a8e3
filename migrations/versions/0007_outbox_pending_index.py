"""a partial index of pending outbox rows, so the worker's claim does not walk every row ever sent

Revision ID: 0007
Revises: 0006

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

PENDING = sa.text("status = 'pending'")


def upgrade():
    op.create_index(
        'ix_outbox_message_pending_id',
        'outbox_message',
        ['id'],
        unique=False,
        postgresql_where=PENDING,
        sqlite_where=PENDING,
    )


def downgrade():
    op.drop_index('ix_outbox_message_pending_id', table_name='outbox_message')

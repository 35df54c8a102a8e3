"""a revision on each conversation state, so two messages from one child never both move it on

Revision ID: 0006
Revises: 0005

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('conversation_state', schema=None) as batch_op:
        batch_op.add_column(sa.Column('revision', sa.Integer(), server_default='1', nullable=False))


def downgrade():
    with op.batch_alter_table('conversation_state', schema=None) as batch_op:
        batch_op.drop_column('revision')

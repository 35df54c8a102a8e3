"""office hours for acknowledgements; who a concern is routed to

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("authority", schema=None) as batch_op:
        batch_op.add_column(sa.Column("office_days", sa.JSON(), nullable=False, server_default="[0, 1, 2, 3, 4]"))
        batch_op.add_column(sa.Column("office_opens_at", sa.String(length=5), nullable=False, server_default="09:00"))
        batch_op.add_column(sa.Column("office_closes_at", sa.String(length=5), nullable=False, server_default="17:00"))
    with op.batch_alter_table("concern", schema=None) as batch_op:
        batch_op.add_column(sa.Column("route", sa.String(length=20), nullable=False, server_default="iro"))


def downgrade():
    with op.batch_alter_table("concern", schema=None) as batch_op:
        batch_op.drop_column("route")
    with op.batch_alter_table("authority", schema=None) as batch_op:
        batch_op.drop_column("office_closes_at")
        batch_op.drop_column("office_opens_at")
        batch_op.drop_column("office_days")

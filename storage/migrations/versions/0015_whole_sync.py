"""a sync's end is the end of all its jobs: when it started, what it did so far

A sync that continues in later jobs keeps when its first job started and what its jobs
wrote so far, so that its end is reported once, for the whole sync.

Revision ID: 0015
Revises: 0014
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("specs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sync_started_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("sync_totals", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("specs", schema=None) as batch_op:
        batch_op.drop_column("sync_totals")
        batch_op.drop_column("sync_started_at")

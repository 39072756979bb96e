"""several attempts: how the winner is picked, and which attempt won

A spec task may say how one of its attempts is picked (`pick: first | manual`; None:
its profile's); the run of the attempt whose pull request merged is marked the winner,
for the per-agent counts of attempts won.

Revision ID: 0018
Revises: 0017
"""

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("spec_tasks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("pick", sa.String(length=16), nullable=True))
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("attempt_won", sa.Boolean(), nullable=False, server_default="0")
        )


def downgrade() -> None:
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.drop_column("attempt_won")
    with op.batch_alter_table("spec_tasks", schema=None) as batch_op:
        batch_op.drop_column("pick")

"""agent run stages: when the agent ended, and the commit of its work that was pushed

A retry after the agent's end resumes from these (pull request, comment) and
never runs the agent again.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("agent_ended_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("pushed_commit", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.drop_column("pushed_commit")
        batch_op.drop_column("agent_ended_at")

"""hosted presets: the workflow run a `hosted: workflow` task dispatched

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("workflow_run_id", sa.BigInteger(), nullable=True))
        batch_op.create_index("ix_tasks_workflow_run_id", ["workflow_run_id"])


def downgrade() -> None:
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.drop_index("ix_tasks_workflow_run_id")
        batch_op.drop_column("workflow_run_id")

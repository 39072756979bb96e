"""a fleet of agents: the files a task touches, tasks waiting for a slot, fresh branches

Spec tasks keep the files they touch (globs; none: unknown) and whether they may run
beside the spec's others; a task ready to run may wait (`waiting`) for a cap or for
an agent on the same files; a revision may resolve the merge of a base commit; a
task may be one of several attempts at its ticket.

Revision ID: 0014
Revises: 0013
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

BEFORE = ("queued", "running", "succeeded", "failed", "cancelled")
AFTER = (*BEFORE, "waiting")


def upgrade() -> None:
    with op.batch_alter_table("spec_tasks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("files", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("parallel", sa.Boolean(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("attempts", sa.Integer(), nullable=True))
    _task_statuses(BEFORE, AFTER)
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("merges_base", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("attempt_number", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.drop_column("attempt_number")
        batch_op.drop_column("merges_base")
    op.execute("UPDATE tasks SET status = 'queued' WHERE status = 'waiting'")
    _task_statuses(AFTER, BEFORE)
    with op.batch_alter_table("spec_tasks", schema=None) as batch_op:
        batch_op.drop_column("attempts")
        batch_op.drop_column("parallel")
        batch_op.drop_column("files")


def _task_statuses(before: tuple[str, ...], after: tuple[str, ...]) -> None:
    """The CHECK constraint of tasks.status, to allow `after`'s values."""
    with op.batch_alter_table("tasks", schema=None, recreate="always") as batch_op:
        batch_op.alter_column(
            "status",
            existing_type=_status(before),
            type_=_status(after),
            existing_nullable=False,
        )


def _status(values: tuple[str, ...]) -> sa.Enum:
    return sa.Enum(*values, name="taskstatus", native_enum=False, create_constraint=True, length=16)

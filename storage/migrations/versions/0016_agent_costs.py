"""what agents cost and deliver: each run's usage and its pull request's outcome; budgets

A run records its preset, model, wall time, exit reason, tokens, cache reads and cost;
its pull request's outcome (open, merged, closed) and when it merged. A run held back by
a budget (or its spec paused) says which; a spec keeps what `/budget` added to its caps,
and whether it is paused from its tracking issue.

Revision ID: 0016
Revises: 0015
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("preset", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("model", sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column("wall_seconds", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("exit_reason", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("input_tokens", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("output_tokens", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("cache_read_tokens", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("cost_usd", sa.Float(), nullable=True))
        batch_op.add_column(
            sa.Column("cost_estimated", sa.Boolean(), nullable=False, server_default="0")
        )
        batch_op.add_column(sa.Column("turns", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("pull_request_outcome", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("merged_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("budget_hold", sa.Text(), nullable=True))
    with op.batch_alter_table("specs", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("budget_extra_usd", sa.Float(), nullable=False, server_default="0")
        )
        batch_op.add_column(
            sa.Column("budget_extra_tokens", sa.BigInteger(), nullable=False, server_default="0")
        )
        batch_op.add_column(sa.Column("paused", sa.Boolean(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("specs", schema=None) as batch_op:
        batch_op.drop_column("paused")
        batch_op.drop_column("budget_extra_tokens")
        batch_op.drop_column("budget_extra_usd")
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        for column in (
            "budget_hold",
            "merged_at",
            "pull_request_outcome",
            "turns",
            "cost_estimated",
            "cost_usd",
            "cache_read_tokens",
            "output_tokens",
            "input_tokens",
            "exit_reason",
            "wall_seconds",
            "model",
            "preset",
        ):
            batch_op.drop_column(column)

"""planning runs: a spec's requirements, design and tasks by an agent, a pull request each

From an idea's issue, one phase per pull request.

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def _enum(name: str, *values: str) -> sa.Enum:
    return sa.Enum(*values, name=name, native_enum=False, create_constraint=True, length=16)


def upgrade() -> None:
    op.create_table(
        "planning_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("repository_id", sa.Integer(), nullable=False),
        sa.Column("issue_number", sa.Integer(), nullable=False),
        sa.Column("issue_node_id", sa.String(length=128), nullable=True),
        sa.Column("title", sa.String(length=512), nullable=False),
        sa.Column("idea", sa.Text(), nullable=False),
        sa.Column("asked_by", sa.String(length=255), nullable=False),
        sa.Column(
            "phase",
            _enum("specphase", "explore", "requirements", "design", "tasks"),
            nullable=False,
        ),
        sa.Column(
            "status",
            _enum(
                "planningstatus",
                "queued",
                "running",
                "asking",
                "opened",
                "merged",
                "failed",
                "cancelled",
            ),
            nullable=False,
        ),
        sa.Column("agent", sa.String(length=128), nullable=False),
        sa.Column("spec_format", sa.String(length=16), nullable=True),
        sa.Column("spec_path", sa.Text(), nullable=True),
        sa.Column("spec_key", sa.String(length=128), nullable=True),
        sa.Column("branch", sa.String(length=255), nullable=True),
        sa.Column("pull_request_number", sa.Integer(), nullable=True),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("review", sa.Text(), nullable=True),
        sa.Column("questions", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("log_tail", sa.Text(), nullable=True),
        sa.Column("summary", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["repository_id"],
            ["repositories.id"],
            name=op.f("fk_planning_runs_repository_id_repositories"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_planning_runs")),
    )
    with op.batch_alter_table("planning_runs", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_planning_runs_repository_id"), ["repository_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_planning_runs_issue_number"), ["issue_number"], unique=False
        )


def downgrade() -> None:
    op.drop_table("planning_runs")

"""people's words kept: what specbridge last wrote on an issue; tasks proposed on GitHub

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.add_column(sa.Column("written", sa.JSON(), nullable=True))
    op.create_table(
        "task_proposals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("repository_id", sa.Integer(), nullable=False),
        sa.Column("spec_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("task_key", sa.String(length=64), nullable=False),
        sa.Column("issue_number", sa.Integer(), nullable=True),
        sa.Column("issue_node_id", sa.String(length=128), nullable=True),
        sa.Column("branch", sa.String(length=255), nullable=False),
        sa.Column("pull_request_number", sa.Integer(), nullable=True),
        sa.Column("requested_by", sa.String(length=255), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["repository_id"],
            ["repositories.id"],
            name=op.f("fk_task_proposals_repository_id_repositories"),
        ),
        sa.ForeignKeyConstraint(
            ["spec_id"], ["specs.id"], name=op.f("fk_task_proposals_spec_id_specs")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_task_proposals")),
        sa.UniqueConstraint(
            "repository_id", "branch", name=op.f("uq_task_proposals_repository_id_branch")
        ),
    )
    with op.batch_alter_table("task_proposals", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_task_proposals_repository_id"), ["repository_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_task_proposals_spec_id"), ["spec_id"], unique=False)


def downgrade() -> None:
    op.drop_table("task_proposals")
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.drop_column("written")

"""GitHub's pace and content budget per installation, for processes without Redis

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "github_pace",
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("next_write_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_github_pace")),
    )
    op.create_table(
        "github_content_use",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_github_content_use")),
    )
    with op.batch_alter_table("github_content_use", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_github_content_use_key"), ["key"], unique=False)


def downgrade() -> None:
    op.drop_table("github_content_use")
    op.drop_table("github_pace")

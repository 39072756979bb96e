"""batched sync: group issues, creation mark, card status, paused syncs

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "issue_groups",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("spec_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("issue_number", sa.Integer(), nullable=False),
        sa.Column("issue_node_id", sa.String(length=128), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=True),
        sa.Column("closed", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["spec_id"], ["specs.id"], name=op.f("fk_issue_groups_spec_id_specs")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_issue_groups")),
        sa.UniqueConstraint("spec_id", "position", name=op.f("uq_issue_groups_spec_id_position")),
    )
    with op.batch_alter_table("issue_groups", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_issue_groups_spec_id"), ["spec_id"], unique=False)
    with op.batch_alter_table("specs", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("creation_started_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("resume_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("sync_note", sa.Text(), nullable=True))
    with op.batch_alter_table("spec_tasks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("changed_commit", sa.String(length=64), nullable=True))
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("status_set", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(sa.Column("group_id", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_tickets_group_id"), ["group_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_tickets_group_id_issue_groups"),
            "issue_groups",
            ["group_id"],
            ["id"],
            ondelete="SET NULL",
        )
    # Cards already on a board had their Status set when they were recorded.
    op.execute("UPDATE tickets SET status_set = project_item_id IS NOT NULL")


def downgrade() -> None:
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_tickets_group_id_issue_groups"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_tickets_group_id"))
        batch_op.drop_column("group_id")
        batch_op.drop_column("status_set")
    with op.batch_alter_table("spec_tasks", schema=None) as batch_op:
        batch_op.drop_column("changed_commit")
    with op.batch_alter_table("specs", schema=None) as batch_op:
        batch_op.drop_column("sync_note")
        batch_op.drop_column("resume_at")
        batch_op.drop_column("creation_started_at")
    op.drop_table("issue_groups")

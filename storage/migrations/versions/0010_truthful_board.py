"""the board tells the truth: why a ticket's run failed; fixes for failing checks; verdicts

Tickets remember why their last run failed; a revision may fix what the repository's
checks found; the checks' verdicts on agents' pull requests are kept, acted on once.

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.add_column(sa.Column("failure", sa.Text(), nullable=True))
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("fixes_checks", sa.Boolean(), nullable=False, server_default="0")
        )
    op.create_table(
        "check_verdicts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("pull_request_number", sa.Integer(), nullable=False),
        sa.Column("head_sha", sa.String(length=64), nullable=False),
        sa.Column("verdict", sa.String(length=16), nullable=False),
        sa.Column("checks", sa.JSON(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["tickets.id"], name=op.f("fk_check_verdicts_ticket_id_tickets")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_check_verdicts")),
        sa.UniqueConstraint(
            "ticket_id",
            "head_sha",
            "verdict",
            name=op.f("uq_check_verdicts_ticket_id_head_sha_verdict"),
        ),
    )
    with op.batch_alter_table("check_verdicts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_check_verdicts_ticket_id"), ["ticket_id"], unique=False
        )


def downgrade() -> None:
    op.drop_table("check_verdicts")
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.drop_column("fixes_checks")
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.drop_column("failure")

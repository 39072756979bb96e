"""a spec's path is text of any length

Git allows paths longer than the 1,024 characters the column held, and a spec
refused at such a path still has its findings recorded.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("specs", schema=None) as batch_op:
        batch_op.alter_column(
            "path", existing_type=sa.String(length=1024), type_=sa.Text(), existing_nullable=False
        )


def downgrade() -> None:
    with op.batch_alter_table("specs", schema=None) as batch_op:
        batch_op.alter_column(
            "path", existing_type=sa.Text(), type_=sa.String(length=1024), existing_nullable=False
        )

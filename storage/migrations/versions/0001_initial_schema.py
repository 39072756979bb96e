"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-24 14:19:53.384339
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "deliveries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("delivery_id", sa.String(length=64), nullable=False),
        sa.Column("event", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=True),
        sa.Column("installation_github_id", sa.BigInteger(), nullable=True),
        sa.Column("repository_full_name", sa.String(length=255), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "received",
                "queued",
                "processing",
                "done",
                "ignored",
                "failed",
                name="deliverystatus",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column(
            "received_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deliveries")),
        sa.UniqueConstraint("delivery_id", name=op.f("uq_deliveries_delivery_id")),
    )
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_deliveries_repository_full_name"), ["repository_full_name"], unique=False
        )

    op.create_table(
        "installations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("github_id", sa.BigInteger(), nullable=False),
        sa.Column("account_login", sa.String(length=255), nullable=False),
        sa.Column("account_type", sa.String(length=32), nullable=False),
        sa.Column("suspended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("removed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_installations")),
        sa.UniqueConstraint("github_id", name=op.f("uq_installations_github_id")),
    )
    op.create_table(
        "repositories",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("installation_id", sa.Integer(), nullable=True),
        sa.Column("github_id", sa.BigInteger(), nullable=True),
        sa.Column("full_name", sa.String(length=255), nullable=False),
        sa.Column("default_branch", sa.String(length=255), nullable=False),
        sa.Column("settings", sa.JSON(), nullable=False),
        sa.Column("settings_error", sa.Text(), nullable=True),
        sa.Column("removed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["installation_id"],
            ["installations.id"],
            name=op.f("fk_repositories_installation_id_installations"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_repositories")),
        sa.UniqueConstraint("full_name", name=op.f("uq_repositories_full_name")),
        sa.UniqueConstraint("github_id", name=op.f("uq_repositories_github_id")),
    )
    with op.batch_alter_table("repositories", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_repositories_installation_id"), ["installation_id"], unique=False
        )

    op.create_table(
        "command_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("repository_id", sa.Integer(), nullable=False),
        sa.Column("issue_number", sa.Integer(), nullable=False),
        sa.Column("comment_id", sa.BigInteger(), nullable=False),
        sa.Column("line", sa.Integer(), nullable=False),
        sa.Column("user_login", sa.String(length=255), nullable=False),
        sa.Column("command", sa.String(length=64), nullable=False),
        sa.Column("arguments", sa.Text(), nullable=False),
        sa.Column("allowed", sa.Boolean(), nullable=False),
        sa.Column("refusal_reason", sa.Text(), nullable=True),
        sa.Column("result", sa.Text(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["repository_id"],
            ["repositories.id"],
            name=op.f("fk_command_runs_repository_id_repositories"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_command_runs")),
        sa.UniqueConstraint("comment_id", "line", name=op.f("uq_command_runs_comment_id_line")),
    )
    with op.batch_alter_table("command_runs", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_command_runs_repository_id"), ["repository_id"], unique=False
        )

    op.create_table(
        "specs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("repository_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("path", sa.String(length=1024), nullable=False),
        sa.Column("title", sa.String(length=512), nullable=False),
        sa.Column(
            "phase",
            sa.Enum(
                "explore",
                "requirements",
                "design",
                "tasks",
                name="specphase",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=True,
        ),
        sa.Column(
            "status",
            sa.Enum(
                "draft",
                "planned",
                "executing",
                "completed",
                "cancelled",
                "invalid",
                name="specstatus",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("owner", sa.String(length=255), nullable=True),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("approval_required", sa.Boolean(), nullable=False),
        sa.Column("agent", sa.String(length=128), nullable=False),
        sa.Column("context", sa.Text(), nullable=False),
        sa.Column("design", sa.Text(), nullable=False),
        sa.Column("source_commit", sa.String(length=64), nullable=True),
        sa.Column("content_hash", sa.String(length=64), nullable=True),
        sa.Column("findings", sa.JSON(), nullable=False),
        sa.Column("findings_commit", sa.String(length=64), nullable=True),
        sa.Column("tracking_issue_number", sa.Integer(), nullable=True),
        sa.Column("tracking_issue_node_id", sa.String(length=128), nullable=True),
        sa.Column("tracking_issue_hash", sa.String(length=64), nullable=True),
        sa.Column("tracking_issue_closed", sa.Boolean(), nullable=False),
        sa.Column("tickets_total", sa.Integer(), nullable=False),
        sa.Column("tickets_closed", sa.Integer(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["repository_id"], ["repositories.id"], name=op.f("fk_specs_repository_id_repositories")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_specs")),
        sa.UniqueConstraint("repository_id", "key", name=op.f("uq_specs_repository_id_key")),
    )
    with op.batch_alter_table("specs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_specs_repository_id"), ["repository_id"], unique=False)

    op.create_table(
        "spec_requirements",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("spec_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("removed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["spec_id"], ["specs.id"], name=op.f("fk_spec_requirements_spec_id_specs")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_spec_requirements")),
        sa.UniqueConstraint("spec_id", "key", name=op.f("uq_spec_requirements_spec_id_key")),
    )
    with op.batch_alter_table("spec_requirements", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_spec_requirements_spec_id"), ["spec_id"], unique=False)

    op.create_table(
        "spec_tasks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("spec_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("title", sa.String(length=512), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("priority", sa.String(length=16), nullable=False),
        sa.Column("requirement_keys", sa.JSON(), nullable=False),
        sa.Column("depends_on", sa.JSON(), nullable=False),
        sa.Column("agent", sa.String(length=128), nullable=True),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("removed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["spec_id"], ["specs.id"], name=op.f("fk_spec_tasks_spec_id_specs")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_spec_tasks")),
        sa.UniqueConstraint("spec_id", "key", name=op.f("uq_spec_tasks_spec_id_key")),
    )
    with op.batch_alter_table("spec_tasks", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_spec_tasks_spec_id"), ["spec_id"], unique=False)

    op.create_table(
        "spec_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("spec_id", sa.Integer(), nullable=False),
        sa.Column("commit_sha", sa.String(length=64), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("tasks_added", sa.JSON(), nullable=False),
        sa.Column("tasks_removed", sa.JSON(), nullable=False),
        sa.Column("tasks_changed", sa.JSON(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["spec_id"], ["specs.id"], name=op.f("fk_spec_versions_spec_id_specs")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_spec_versions")),
        sa.UniqueConstraint(
            "spec_id", "commit_sha", name=op.f("uq_spec_versions_spec_id_commit_sha")
        ),
    )
    with op.batch_alter_table("spec_versions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_spec_versions_spec_id"), ["spec_id"], unique=False)

    op.create_table(
        "spec_acceptance_criteria",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("requirement_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("removed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["requirement_id"],
            ["spec_requirements.id"],
            name=op.f("fk_spec_acceptance_criteria_requirement_id_spec_requirements"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_spec_acceptance_criteria")),
        sa.UniqueConstraint(
            "requirement_id", "key", name=op.f("uq_spec_acceptance_criteria_requirement_id_key")
        ),
    )
    with op.batch_alter_table("spec_acceptance_criteria", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_spec_acceptance_criteria_requirement_id"),
            ["requirement_id"],
            unique=False,
        )

    op.create_table(
        "tickets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("repository_id", sa.Integer(), nullable=False),
        sa.Column("spec_id", sa.Integer(), nullable=True),
        sa.Column("spec_task_id", sa.Integer(), nullable=True),
        sa.Column("issue_number", sa.Integer(), nullable=False),
        sa.Column("issue_id", sa.BigInteger(), nullable=True),
        sa.Column("issue_node_id", sa.String(length=128), nullable=True),
        sa.Column("project_item_id", sa.String(length=128), nullable=True),
        sa.Column("parent_linked", sa.Boolean(), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=True),
        sa.Column(
            "phase",
            sa.Enum(
                "backlog",
                "analyzing",
                "building",
                "testing",
                "done",
                name="ticketphase",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column(
            "state",
            sa.Enum(
                "open",
                "closed",
                "deleted",
                "transferred",
                name="issuestate",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("state_reason", sa.String(length=32), nullable=True),
        sa.Column(
            "approval",
            sa.Enum(
                "not_required",
                "pending",
                "approved",
                name="approval",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("approved_by", sa.String(length=255), nullable=True),
        sa.Column("blocked", sa.Boolean(), nullable=False),
        sa.Column("blocked_reason", sa.Text(), nullable=True),
        sa.Column("agent_override", sa.String(length=128), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["repository_id"],
            ["repositories.id"],
            name=op.f("fk_tickets_repository_id_repositories"),
        ),
        sa.ForeignKeyConstraint(
            ["spec_id"], ["specs.id"], name=op.f("fk_tickets_spec_id_specs"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["spec_task_id"],
            ["spec_tasks.id"],
            name=op.f("fk_tickets_spec_task_id_spec_tasks"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tickets")),
        sa.UniqueConstraint(
            "repository_id", "issue_number", name=op.f("uq_tickets_repository_id_issue_number")
        ),
    )
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_tickets_repository_id"), ["repository_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_tickets_spec_id"), ["spec_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_tickets_spec_task_id"), ["spec_task_id"], unique=True)

    op.create_table(
        "tasks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "queued",
                "running",
                "succeeded",
                "failed",
                "cancelled",
                name="taskstatus",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("agent", sa.String(length=128), nullable=False),
        sa.Column("rq_job_id", sa.String(length=64), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column(
            "queued_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("branch", sa.String(length=255), nullable=True),
        sa.Column("pull_request_number", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("log_tail", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["tickets.id"], name=op.f("fk_tasks_ticket_id_tickets")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tasks")),
        sa.UniqueConstraint("rq_job_id", name=op.f("uq_tasks_rq_job_id")),
    )
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_tasks_ticket_id"), ["ticket_id"], unique=False)

    op.create_table(
        "ticket_dependencies",
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("depends_on_id", sa.Integer(), nullable=False),
        sa.Column("on_github", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["depends_on_id"],
            ["tickets.id"],
            name=op.f("fk_ticket_dependencies_depends_on_id_tickets"),
        ),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["tickets.id"], name=op.f("fk_ticket_dependencies_ticket_id_tickets")
        ),
        sa.PrimaryKeyConstraint("ticket_id", "depends_on_id", name=op.f("pk_ticket_dependencies")),
    )
    with op.batch_alter_table("ticket_dependencies", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_ticket_dependencies_depends_on_id"), ["depends_on_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("ticket_dependencies", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ticket_dependencies_depends_on_id"))

    op.drop_table("ticket_dependencies")
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_tasks_ticket_id"))

    op.drop_table("tasks")
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_tickets_spec_task_id"))
        batch_op.drop_index(batch_op.f("ix_tickets_spec_id"))
        batch_op.drop_index(batch_op.f("ix_tickets_repository_id"))

    op.drop_table("tickets")
    with op.batch_alter_table("spec_acceptance_criteria", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_spec_acceptance_criteria_requirement_id"))

    op.drop_table("spec_acceptance_criteria")
    with op.batch_alter_table("spec_versions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_spec_versions_spec_id"))

    op.drop_table("spec_versions")
    with op.batch_alter_table("spec_tasks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_spec_tasks_spec_id"))

    op.drop_table("spec_tasks")
    with op.batch_alter_table("spec_requirements", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_spec_requirements_spec_id"))

    op.drop_table("spec_requirements")
    with op.batch_alter_table("specs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_specs_repository_id"))

    op.drop_table("specs")
    with op.batch_alter_table("command_runs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_command_runs_repository_id"))

    op.drop_table("command_runs")
    with op.batch_alter_table("repositories", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_repositories_installation_id"))

    op.drop_table("repositories")
    op.drop_table("installations")
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_deliveries_repository_full_name"))

    op.drop_table("deliveries")

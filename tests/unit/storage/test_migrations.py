"""The shipped migrations create exactly the models' schema, both ways."""

from __future__ import annotations

import os
import subprocess
import sys

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from storage.db import get_engine
from storage.migrate import current_revision, downgrade, upgrade
from storage.models import Base

EVERY_ENTITY = {
    "installations",
    "repositories",
    "specs",
    "spec_versions",
    "spec_requirements",
    "spec_acceptance_criteria",
    "spec_tasks",
    "tickets",
    "ticket_dependencies",
    "tasks",
    "deliveries",
    "command_runs",
    "github_pace",
    "github_content_use",
    "issue_groups",
    "chore_runs",
    "task_proposals",
    "check_verdicts",
    "agent_user_tokens",
    "planning_runs",
}


def _tables(url: str) -> set[str]:
    return set(inspect(get_engine(url)).get_table_names()) - {"alembic_version"}


def test_upgrade_creates_every_entity(empty_database_url: str) -> None:
    upgrade(empty_database_url)
    assert _tables(empty_database_url) == EVERY_ENTITY
    assert current_revision(empty_database_url) is not None


def test_tickets_reference_specs_and_spec_tasks(empty_database_url: str) -> None:
    upgrade(empty_database_url)
    foreign_keys = inspect(get_engine(empty_database_url)).get_foreign_keys("tickets")
    by_column = {fk["constrained_columns"][0]: fk for fk in foreign_keys}
    assert by_column["spec_id"]["referred_table"] == "specs"
    assert by_column["spec_task_id"]["referred_table"] == "spec_tasks"
    assert by_column["spec_id"]["options"].get("ondelete", "").upper() == "SET NULL"


def test_migrated_schema_matches_the_models(empty_database_url: str) -> None:
    upgrade(empty_database_url)
    with get_engine(empty_database_url).connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


def test_upgrade_downgrade_upgrade(empty_database_url: str) -> None:
    upgrade(empty_database_url)
    downgrade(empty_database_url)
    assert _tables(empty_database_url) == set()
    upgrade(empty_database_url)
    assert _tables(empty_database_url) == EVERY_ENTITY


def test_concurrent_upgrades_on_a_fresh_database_all_succeed(empty_database_url: str) -> None:
    """Web, workers and a release step starting at once must not race the migrations."""
    environment = {**os.environ, "DATABASE_URL": empty_database_url}
    starts = [
        subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "db", "upgrade"],
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(3)
    ]
    outputs = [(process.wait(timeout=120), process.stdout.read()) for process in starts]  # type: ignore[union-attr]
    assert [status for status, _ in outputs] == [0, 0, 0], outputs
    assert _tables(empty_database_url) == EVERY_ENTITY

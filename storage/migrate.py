"""Alembic, driven from code: the migrations ship inside this package so an
installed wheel can migrate without an alembic.ini.

Migrating is serialized: several processes starting at once (web, workers,
a release step) wait for each other instead of racing to create the same
tables. PostgreSQL does it with an advisory lock, SQLite with a file lock.
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, text
from sqlalchemy.engine import make_url

from storage.db import get_engine

# Any constant shared by every specbridge process; "specbridge" in ASCII.
ADVISORY_LOCK_KEY = 0x73706563627269


def alembic_config(database_url: str, connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", "storage:migrations")
    # Percent signs in passwords would otherwise be read as interpolation.
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    config.attributes["connection"] = connection
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    with get_engine(database_url).connect() as connection, _migrating(connection):
        command.upgrade(alembic_config(database_url, connection), revision)


def downgrade(database_url: str, revision: str = "base") -> None:
    with get_engine(database_url).connect() as connection, _migrating(connection):
        command.downgrade(alembic_config(database_url, connection), revision)


def current_revision(database_url: str) -> str | None:
    with get_engine(database_url).connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


@contextmanager
def _migrating(connection: Connection) -> Iterator[None]:
    """Hold the migration lock for as long as the block runs."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": ADVISORY_LOCK_KEY})
        connection.commit()  # the lock belongs to the session, not to this transaction
        try:
            yield
        finally:
            connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": ADVISORY_LOCK_KEY})
            connection.commit()
        return
    database = make_url(str(connection.engine.url)).database
    if not database or database == ":memory:":
        yield
        return
    with open(Path(f"{database}.migrate-lock"), "a") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)

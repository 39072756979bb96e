from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

# Importing fakehub finds GitHub's published descriptions, or fetches them once,
# before any test module reads them: when they cannot be had, this conftest fails
# to load with one error saying what to do, instead of every test failing.
import fakehub.fixtures  # noqa: F401
from storage.db import new_session, session_scope
from storage.migrate import upgrade
from storage.models import Base
from tests.databases import create_empty_database, drop_database

# Holding a database transaction open across a call to GitHub is an error in
# tests (a warning in production): see bot/github/connection.py.
os.environ["SPECBRIDGE_CHECK_TRANSACTIONS"] = "1"


@pytest.fixture(autouse=True)
def _logging_as_it_was() -> Iterator[None]:
    """A command under test that sets up logging (serve, worker) leaves no handler behind."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture
def empty_database_url(tmp_path: Path) -> Iterator[str]:
    """A new database with no tables, dropped afterwards."""
    url = create_empty_database(tmp_path)
    yield url
    drop_database(url)


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One migrated database for the whole run (PostgreSQL when DATABASE_URL is set)."""
    url = create_empty_database(tmp_path_factory.mktemp("db"))
    upgrade(url)
    yield url
    drop_database(url)


@pytest.fixture
def db(database_url: str) -> Iterator[str]:
    """The shared migrated database, emptied after the test."""
    yield database_url
    with session_scope(database_url) as session:
        for table in reversed(Base.metadata.sorted_tables):
            session.execute(table.delete())


@pytest.fixture
def session(db: str) -> Iterator[Session]:
    """A session on the shared database, as the bot makes them, rolled back after the test."""
    with new_session(db) as session:
        yield session
        session.rollback()

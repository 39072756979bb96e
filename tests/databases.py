"""Fresh, empty databases for tests: PostgreSQL when DATABASE_URL is set, SQLite files otherwise."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from bot.settings import load_settings


def configured_database_url() -> str | None:
    """The PostgreSQL server the run was pointed at, normalised to our driver."""
    if not os.environ.get("DATABASE_URL"):
        return None
    return load_settings({"DATABASE_URL": os.environ["DATABASE_URL"]}).database_url


def create_empty_database(tmp_dir: Path) -> str:
    server_url = configured_database_url()
    if server_url is None or server_url.startswith("sqlite"):
        return f"sqlite:///{tmp_dir / f'specbridge-{uuid.uuid4().hex[:8]}.db'}"
    name = f"specbridge_test_{uuid.uuid4().hex[:12]}"
    with _admin_connection(server_url) as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


def drop_database(database_url: str) -> None:
    url = make_url(database_url)
    if url.get_backend_name() != "postgresql":
        return
    from storage.db import get_engine

    get_engine(database_url).dispose()
    with _admin_connection(database_url) as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)'))


def _admin_connection(server_url: str):  # type: ignore[no-untyped-def]
    # CREATE/DROP DATABASE cannot run inside a transaction.
    admin_url = make_url(server_url).set(database="postgres")
    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    return engine.connect()

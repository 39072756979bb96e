"""Engines and sessions. The only place that knows how to connect."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.orm import Session, sessionmaker

from storage.sqlite_turns import connection_class

# Per engine (a process has two on PostgreSQL: sessions, and single statements on the
# webhook's hot path): connections kept open, and how many more it opens while busy
# (closed once returned). Set from DATABASE_POOL_SIZE and DATABASE_MAX_OVERFLOW
# (bot/settings.py); SQLAlchemy's defaults otherwise.
_pool = {"pool_size": 5, "max_overflow": 10}


def configure_pool(size: int, overflow: int) -> None:
    """The pool of the PostgreSQL engines this process creates from now on."""
    _pool.update(pool_size=size, max_overflow=overflow)


def pool_limits() -> tuple[int, int]:
    """Connections an engine keeps open, and the most it opens at once."""
    return _pool["pool_size"], _pool["pool_size"] + _pool["max_overflow"]


def connections_note(database_url: str, processes: int) -> str | None:
    """What `processes` processes of a command hold on PostgreSQL, for its start line."""
    if database_url.startswith("sqlite"):
        return None
    kept, most = pool_limits()
    return (
        f"database: {processes} process(es), each with up to {kept} connections kept open "
        f"per engine (2 engines) and {most} at most while busy: at most "
        f"{processes * 2 * most} in all (DATABASE_POOL_SIZE, DATABASE_MAX_OVERFLOW)"
    )


@cache
def get_engine(database_url: str) -> Engine:
    if database_url.startswith("sqlite"):
        factory = connection_class(make_url(database_url).database or ":memory:")
        engine = create_engine(database_url, connect_args={"timeout": 30, "factory": factory})
        event.listen(engine, "connect", _sqlite_pragmas)
    else:
        engine = create_engine(database_url, pool_pre_ping=True, **_pool)
    event.listen(engine, "begin", _began)
    event.listen(engine, "commit", _ended)
    event.listen(engine, "rollback", _ended)
    _engines.append(engine)
    return engine


STATEMENT_CONNECT_SECONDS = 4


@cache
def statement_engine(database_url: str) -> Engine:
    """For single statements on a hot path (storing a webhook delivery): each one
    commits by itself, in one round trip, on a connection that is not pinged first.

    A connection that died in the pool fails its statement with a disconnect
    error instead of being found by a ping; the caller runs the statement again.
    """
    if database_url.startswith("sqlite"):
        return get_engine(database_url).execution_options(isolation_level="AUTOCOMMIT")
    # A database that does not answer fails the statement in seconds (the caller then
    # spools the delivery), well inside the 10 s GitHub waits for an answer.
    engine = create_engine(
        database_url,
        isolation_level="AUTOCOMMIT",
        pool_recycle=300,
        pool_timeout=STATEMENT_CONNECT_SECONDS,
        **_pool,
        connect_args={"connect_timeout": STATEMENT_CONNECT_SECONDS},
    )
    _engines.append(engine)
    return engine


_engines: list[Engine] = []
_transactions = threading.local()


def _began(connection) -> None:  # type: ignore[no-untyped-def]
    _transactions.__dict__.setdefault("open", set()).add(id(connection))


def _ended(connection) -> None:  # type: ignore[no-untyped-def]
    _transactions.__dict__.setdefault("open", set()).discard(id(connection))


def transaction_open() -> bool:
    """Whether this thread holds a database transaction open right now."""
    return bool(_transactions.__dict__.get("open"))


@event.listens_for(Session, "after_commit")
def _session_committed(_session: Session) -> None:
    _transactions.commits = getattr(_transactions, "commits", 0) + 1


def orm_commits() -> int:
    """How many ORM sessions this thread has committed: a write to GitHub whose answer
    was recorded is followed by one (bot/github/pacing.py)."""
    return getattr(_transactions, "commits", 0)


def _forget_inherited_connections() -> None:
    # gunicorn and RQ fork: a child must open its own connections, never
    # share its parent's (see SQLAlchemy's "Using Connection Pools with Multiprocessing").
    for engine in _engines:
        engine.dispose(close=False)


os.register_at_fork(after_in_child=_forget_inherited_connections)


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
    # SQLite ignores foreign keys unless asked; WAL lets the web process
    # read while the embedded queue writes.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.close()


@cache
def _session_factory(database_url: str) -> sessionmaker[Session]:
    return sessionmaker(get_engine(database_url), expire_on_commit=False)


def new_session(database_url: str) -> Session:
    """A session whose objects stay readable after a commit (no reload, no new transaction)."""
    return _session_factory(database_url)()


@contextmanager
def session_scope(database_url: str) -> Iterator[Session]:
    """A session committed on success and rolled back on any error."""
    session = new_session(database_url)
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()

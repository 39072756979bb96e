"""SQLite writers of one process take turns (storage/sqlite_turns.py).

SQLite's busy timeout is 0 in these tests: a writer that met SQLite's own lock
would fail at once with "database is locked", so a write that succeeds while
another connection's transaction is open waited for its turn, not for SQLite.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from storage.sqlite_turns import _turn, connection_class


def connect(path: Path) -> sqlite3.Connection:
    connection = sqlite3.connect(
        path, timeout=0, factory=connection_class(str(path)), check_same_thread=False
    )
    connection.execute("PRAGMA journal_mode=WAL")
    return connection


@pytest.fixture
def database(tmp_path: Path) -> Path:
    path = tmp_path / "turns.db"
    with connect(path) as connection:
        connection.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    return path


def test_a_writer_waits_for_the_open_transaction_instead_of_failing(database: Path) -> None:
    first, second = connect(database), connect(database)
    first.execute("INSERT INTO t (v) VALUES ('first')")  # a transaction is open now
    outcome: list[object] = []

    def write() -> None:
        try:
            second.execute("INSERT INTO t (v) VALUES ('second')")
            second.commit()
            outcome.append("written")
        except sqlite3.OperationalError as error:
            outcome.append(error)

    writer = threading.Thread(target=write)
    writer.start()
    writer.join(0.5)
    assert writer.is_alive() and not outcome  # waiting for its turn, not refused
    first.commit()
    writer.join(5)
    assert outcome == ["written"]
    rows = connect(database).execute("SELECT v FROM t ORDER BY id").fetchall()
    assert rows == [("first",), ("second",)]


def test_without_turns_the_same_write_is_refused(database: Path) -> None:
    # The behaviour the turns replace: SQLite's lock, met with no time to wait.
    first = sqlite3.connect(database, timeout=0)
    second = sqlite3.connect(database, timeout=0)
    first.execute("INSERT INTO t (v) VALUES ('first')")
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        second.execute("INSERT INTO t (v) VALUES ('second')")


def test_readers_never_wait_for_a_writer(database: Path) -> None:
    writer, reader = connect(database), connect(database)
    writer.execute("INSERT INTO t (v) VALUES ('uncommitted')")
    assert reader.execute("SELECT count(*) FROM t").fetchone() == (0,)
    writer.rollback()


def test_a_statement_returning_rows_keeps_its_turn_until_its_cursor_closes(
    database: Path,
) -> None:
    connection = connect(database)
    connection.isolation_level = None  # autocommit, as the webhook's single INSERT
    cursor = connection.cursor()
    cursor.execute("INSERT INTO t (v) VALUES ('x') RETURNING id")
    assert not _turn(str(database)).acquire(blocking=False)
    assert cursor.fetchone() == (1,)
    cursor.close()
    assert _turn(str(database)).acquire(blocking=False)
    _turn(str(database)).release()


def test_a_thread_writing_on_two_connections_meets_sqlite_not_itself(
    database: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Its first transaction cannot end while it waits: waiting for its own turn
    # would hang; it meets SQLite's lock and fails at once, as it did before turns.
    monkeypatch.setattr("storage.sqlite_turns.WAIT_SECONDS", 3600)
    outcome: list[object] = []

    def write_twice() -> None:
        first, second = connect(database), connect(database)
        first.execute("INSERT INTO t (v) VALUES ('first')")
        try:
            second.execute("INSERT INTO t (v) VALUES ('second')")
        except sqlite3.OperationalError as error:
            outcome.append(str(error))
        first.rollback()
        second.execute("INSERT INTO t (v) VALUES ('after')")  # the turn was handed on
        second.commit()
        outcome.append("written after")

    thread = threading.Thread(target=write_twice, daemon=True)
    thread.start()
    thread.join(10)
    assert outcome == ["database is locked", "written after"]


def test_a_failed_write_hands_the_turn_on(database: Path) -> None:
    connection = connect(database)
    with pytest.raises(sqlite3.OperationalError):
        connection.execute("INSERT INTO missing (v) VALUES ('x')")
    assert _turn(str(database)).acquire(blocking=False)
    _turn(str(database)).release()


def test_a_forked_child_does_not_inherit_a_turn_held_by_its_parent(database: Path) -> None:
    holder = connect(database)
    holder.execute("INSERT INTO t (v) VALUES ('parent')")  # the parent holds the turn
    pid = os.fork()
    if pid == 0:  # the child: a turn of its own, free
        os._exit(0 if _turn(str(database)).acquire(blocking=False) else 1)
    _, status = os.waitpid(pid, 0)
    holder.rollback()
    assert os.waitstatus_to_exitcode(status) == 0


def test_sqlalchemy_sessions_take_turns_through_the_engine(database: Path) -> None:
    engine = create_engine(
        f"sqlite:///{database}",
        connect_args={"timeout": 0, "factory": connection_class(str(database))},
    )
    done = threading.Barrier(5)
    failures: list[Exception] = []

    def write(n: int) -> None:
        done.wait()
        try:
            for k in range(20):
                with engine.begin() as connection:
                    connection.execute(text("INSERT INTO t (v) VALUES (:v)"), {"v": f"{n}-{k}"})
                    connection.execute(text("SELECT count(*) FROM t")).scalar()
        except Exception as error:
            failures.append(error)

    writers = [threading.Thread(target=write, args=(n,)) for n in range(5)]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join()
    assert failures == []
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM t")).scalar() == 100

"""SQLite writers of one process take turns on a lock of ours.

SQLite lets one connection write at a time. Another one that wants to write
polls for SQLite's lock with sleeps growing from 1 to 100 ms (its busy handler),
so while the embedded queue's jobs write steadily, a webhook's single INSERT
waited up to a second for a lock that was free most of that time. Writers of one
process queue here instead, and each is woken the moment the one before it ends
its transaction.

The turn is a courtesy, never what makes writes safe: SQLite's own lock still
does that, for other processes (a `specbridge sync` beside the server) and for
a writer that waited here too long. A thread that already holds the turn on one
connection and writes on another does not wait for itself.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from functools import cache
from typing import Any

# Statements that only read take no turn; any other one may write.
_READ_ONLY = ("select", "pragma", "explain")
# After that long, write anyway and let SQLite's own lock decide.
WAIT_SECONDS = 30.0

_turns: dict[str, threading.Lock] = {}
_owners: dict[str, int] = {}
_registry = threading.Lock()


def _turn(database: str) -> threading.Lock:
    with _registry:
        return _turns.setdefault(database, threading.Lock())


@cache
def connection_class(database: str) -> type[sqlite3.Connection]:
    """The `factory` for sqlite3.connect: connections to `database` that take turns writing."""
    return type("TurnTakingConnection", (TurnTakingConnection,), {"database": database})


class TurnTakingConnection(sqlite3.Connection):
    database: str
    _holding = False

    def cursor(self, factory: Any = None) -> sqlite3.Cursor:  # type: ignore[override]
        return super().cursor(factory or TurnTakingCursor)

    # sqlite3's own shortcuts make a plain cursor, not one through `cursor()`.
    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
        return self.cursor().execute(sql, parameters)

    def executemany(self, sql: str, parameters: Any, /) -> sqlite3.Cursor:
        return self.cursor().executemany(sql, parameters)

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            self.end_turn()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self.end_turn()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self.end_turn(closed=True)

    def take_turn(self, sql: str) -> None:
        if self._holding or sql.lstrip()[:7].lower().startswith(_READ_ONLY):
            return
        me = threading.get_ident()
        if _owners.get(self.database) == me:
            return  # this thread's other connection writes: waiting would wait for itself
        if _turn(self.database).acquire(timeout=WAIT_SECONDS):
            _owners[self.database] = me
            self._holding = True

    def end_turn(self, closed: bool = False) -> None:
        """Hand the turn on once no transaction of this connection is open."""
        if self._holding and (closed or not self.in_transaction):
            self._holding = False
            _owners.pop(self.database, None)
            _turn(self.database).release()


class TurnTakingCursor(sqlite3.Cursor):
    connection: TurnTakingConnection

    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
        self.connection.take_turn(sql)
        try:
            return super().execute(sql, parameters)
        finally:
            self._statement_over()

    def executemany(self, sql: str, parameters: Any, /) -> sqlite3.Cursor:
        self.connection.take_turn(sql)
        try:
            return super().executemany(sql, parameters)
        finally:
            self._statement_over()

    def close(self) -> None:
        super().close()
        self.connection.end_turn()

    def _statement_over(self) -> None:
        # A statement returning rows (INSERT … RETURNING) keeps SQLite's lock until
        # its rows are read: its turn ends when the cursor is closed.
        if self.description is None:
            self.connection.end_turn()


def _new_turns_in_child() -> None:
    # A turn held by another thread of the parent would never be handed on here.
    _turns.clear()
    _owners.clear()


os.register_at_fork(after_in_child=_new_turns_in_child)

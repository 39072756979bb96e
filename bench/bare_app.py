"""The baselines for bench_webhook.py.

`app` answers 202 and does nothing. `durable` first stores the body in one
committed INSERT into the database BENCH_DATABASE_URL names (PostgreSQL, or a
SQLite file as the embedded defaults keep it): the least a webhook can do that
stores a delivery before it answers.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from typing import Any

from flask import Flask, request

app = Flask("bare")


@app.post("/webhook")
def webhook() -> tuple[str, int]:
    return "", 202


@app.get("/")
def index() -> str:
    return "ok"


durable = Flask("durable")
_local = threading.local()
TABLE = "bench_floor_deliveries"
CREATE = f"CREATE TABLE IF NOT EXISTS {TABLE} (delivery_id VARCHAR(64) PRIMARY KEY, payload TEXT)"
INSERT = f"INSERT INTO {TABLE} VALUES (%s, %s) ON CONFLICT DO NOTHING"


def _connection() -> Any:
    """One connection per thread, committing each statement."""
    if not hasattr(_local, "connection"):
        url = os.environ["BENCH_DATABASE_URL"]
        if url.startswith("sqlite"):
            connection = sqlite3.connect(url.split("///", 1)[1], isolation_level=None, timeout=30)
            connection.execute("PRAGMA journal_mode=WAL")
        else:
            import psycopg

            connection = psycopg.connect(url.replace("+psycopg", ""), autocommit=True)
        connection.execute(CREATE)
        _local.connection = connection
    return _local.connection


@durable.post("/webhook")
def store_then_answer() -> tuple[str, int]:
    connection = _connection()
    values = (request.headers["X-GitHub-Delivery"], request.get_data(as_text=True))
    if isinstance(connection, sqlite3.Connection):
        connection.execute(INSERT.replace("%s", "?"), values)
    else:
        connection.execute(INSERT, values)
    return "", 202


@durable.get("/")
def durable_index() -> str:
    return "ok"

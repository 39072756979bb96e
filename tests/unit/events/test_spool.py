"""The database away is no delivery lost: a verified delivery it cannot store is
spooled and answered 202, and moved into the outbox once the database is back."""

from __future__ import annotations

import base64
import dataclasses
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from sqlalchemy.exc import OperationalError

from bot.events import deliveries, maintenance, spool
from bot.events.spool import drain_spool, spooled
from bot.queue import redis_connection
from bot.settings import Settings, get_settings, load_settings
from bot.web.metrics import render_metrics
from storage.models import DeliveryStatus
from tests.support import WEBHOOK_SECRET, github_payload, signature
from tests.unit.conftest import HeldJob, post_webhook, run_queued_jobs, stored_deliveries

INSTALLATION = github_payload("installation", "created.payload.json")
INSTALLATION["repositories"] = []  # no repository to sync: these tests reach no GitHub


class Database:
    """Switches storing deliveries off, as PostgreSQL going away does."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.away = False
        insert = deliveries._insert_once

        def insert_once(database_url: str, values: dict[str, object]) -> int | None:
            if self.away:
                raise OperationalError(
                    "INSERT INTO deliveries", {}, Exception("connection refused")
                )
            return insert(database_url, values)

        monkeypatch.setattr(deliveries, "_insert_once", insert_once)


@pytest.fixture
def spool_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SPECBRIDGE_SPOOL_DIR", str(tmp_path / "spool"))
    return tmp_path / "spool"


@pytest.fixture
def spooling(
    spool_dir: Path, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[FlaskClient, Database]]:
    yield client, Database(monkeypatch)


def test_a_delivery_the_database_cannot_store_is_spooled_then_processed(
    spooling: tuple[FlaskClient, Database], db: str
) -> None:
    client, database = spooling
    database.away = True

    response = post_webhook(client, "installation", INSTALLATION, "while-away")

    assert (response.status_code, response.json) == (
        202,
        {"delivery": "while-away", "status": "spooled"},
    )
    settings = get_settings()
    assert stored_deliveries(db) == []
    assert spooled(settings) == 1

    assert drain_spool(settings) == 0  # still away: it stays spooled
    assert spooled(settings) == 1

    assert b"specbridge_spooled_deliveries 1.0" in render_metrics(settings)

    database.away = False
    assert drain_spool(settings) == 1
    assert spooled(settings) == 0
    assert b"specbridge_spooled_deliveries 0.0" in render_metrics(settings)
    run_queued_jobs(db)
    [delivery] = stored_deliveries(db)
    assert (delivery.delivery_id, delivery.event, delivery.status) == (
        "while-away",
        "installation",
        DeliveryStatus.DONE,
    )
    assert delivery.payload == INSTALLATION


def test_draining_stores_each_delivery_once(
    spooling: tuple[FlaskClient, Database], db: str
) -> None:
    """GitHub (or a person) sent it again while the database was away, and once
    more after it came back: one row, processed once."""
    client, database = spooling
    database.away = True
    for _ in range(2):
        assert post_webhook(client, "installation", INSTALLATION, "twice").status_code == 202
    database.away = False
    assert post_webhook(client, "installation", INSTALLATION, "twice").status_code == 202
    run_queued_jobs(db)

    assert drain_spool(get_settings()) == 0  # the outbox had it already
    run_queued_jobs(db)
    [delivery] = stored_deliveries(db)
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.DONE, 1)
    assert spooled(get_settings()) == 0


def test_without_database_or_spool_github_is_answered_503(
    spooling: tuple[FlaskClient, Database], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, database = spooling
    database.away = True

    def broken(*_args: object) -> None:
        raise OSError("No space left on device")

    class DeadRedis:
        def rpush(self, *_args: object) -> None:
            raise spool.RedisError("Connection refused")

    monkeypatch.setattr(spool, "_append", broken)
    monkeypatch.setattr(spool, "redis_connection", lambda _url: DeadRedis())

    response = post_webhook(client, "installation", INSTALLATION, "nowhere")

    assert response.status_code == 503
    assert "could not be spooled" in response.json["error"]


def test_an_unsigned_delivery_is_refused_not_spooled(
    spooling: tuple[FlaskClient, Database],
) -> None:
    """Only a verified delivery gets in, the database away or not."""
    client, database = spooling
    database.away = True
    body = json.dumps(INSTALLATION).encode()
    response = client.post(
        "/webhook",
        data=body,
        headers={"X-GitHub-Event": "installation", "X-GitHub-Delivery": "forged"},
        content_type="application/json",
    )
    assert response.status_code == 401
    assert spooled(get_settings()) == 0


def test_the_chores_drain_the_spool_first() -> None:
    assert maintenance.CHORES[0] is drain_spool
    assert drain_spool not in maintenance.GITHUB_CHORES  # GitHub slow must not hold it up
    assert (drain_spool,) == maintenance.WEB_CHORES


# -- the file, without Redis -----------------------------------------------------------


@pytest.fixture
def file_settings(db: str, spool_dir: Path, held_jobs: list[HeldJob]) -> Settings:
    """Without Redis, whatever the run's mode: the spool is a file; queued jobs are held."""
    return load_settings(
        {
            "DATABASE_URL": db,
            "SPECBRIDGE_SPOOL_DIR": str(spool_dir),
            "GITHUB_WEBHOOK_SECRET": WEBHOOK_SECRET,
        }
    )


def _spool(settings: Settings, delivery_id: str, payload: dict[str, object]) -> bool:
    """As the webhook spools a delivery GitHub signed."""
    body = json.dumps(payload).encode()
    return spool.spool_delivery(settings, delivery_id, "installation", body, signature(body))


def test_the_file_spool_is_beside_the_sqlite_database_by_default(tmp_path: Path) -> None:
    settings = load_settings({"DATABASE_URL": f"sqlite:///{tmp_path}/data/specbridge.db"})
    assert settings.spool_directory == tmp_path / "data"
    assert load_settings({"SPECBRIDGE_SPOOL_DIR": "/var/spool/sb"}).spool_directory == Path(
        "/var/spool/sb"
    )


def test_a_file_drain_cut_short_is_taken_up_again(
    file_settings: Settings, spool_dir: Path, db: str, held_jobs: list[HeldJob]
) -> None:
    for n in (1, 2):
        assert _spool(file_settings, f"d-{n}", INSTALLATION)
    # A drainer died after renaming the file and storing the first entry; then
    # another delivery was spooled.
    (spool_dir / spool.SPOOL_FILE).rename(spool_dir / spool.DRAINING_FILE)
    deliveries.store_spooled(file_settings, "d-1", "installation", INSTALLATION)
    assert _spool(file_settings, "d-3", INSTALLATION)
    assert spooled(file_settings) == 3

    assert drain_spool(file_settings) == 2

    assert sorted(d.delivery_id for d in stored_deliveries(db)) == ["d-1", "d-2", "d-3"]
    assert [job.job_id for job in held_jobs] == [
        f"delivery-{d.id}" for d in sorted(stored_deliveries(db), key=lambda d: d.id)
    ]
    assert spooled(file_settings) == 0
    assert not (spool_dir / spool.DRAINING_FILE).exists()


def test_a_line_cut_short_is_dropped_and_one_that_cannot_be_stored_set_aside(
    file_settings: Settings, spool_dir: Path, db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _spool(file_settings, "good", INSTALLATION)
    assert _spool(file_settings, "refused", INSTALLATION)
    with (spool_dir / spool.SPOOL_FILE).open("ab") as file:
        file.write(b'{"delivery_id": "cut", "ev')  # the writer died mid-line
    store = deliveries.store_spooled

    def refusing(settings: Settings, delivery_id: str, *args: object) -> bool:
        if delivery_id == "refused":
            raise ValueError("the database refuses it for good")
        return store(settings, delivery_id, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(spool, "store_spooled", refusing)

    assert drain_spool(file_settings) == 1

    assert [d.delivery_id for d in stored_deliveries(db)] == ["good"]
    rejected = (spool_dir / spool.REJECTED_FILE).read_bytes()
    assert b'"refused"' in rejected and b'"cut"' not in rejected
    assert spooled(file_settings) == 0
    assert drain_spool(file_settings) == 0


def test_one_drainer_at_a_time(file_settings: Settings, spool_dir: Path, db: str) -> None:
    assert _spool(file_settings, "d-1", INSTALLATION)
    with spool._flock(spool_dir / spool.DRAIN_LOCK):
        assert drain_spool(file_settings) == 0  # another process is draining
    assert drain_spool(file_settings) == 1


# -- what was not spooled by the webhook ---------------------------------------------

APPROVE = github_payload("issue_comment", "created.payload.json")
APPROVE["comment"].update(body="/approve", author_association="OWNER")
SIGNED = json.dumps(APPROVE).encode()
FORGERIES = {
    "no signature": {"body": SIGNED, "signature": ""},
    "a signature of another body": {"body": SIGNED, "signature": signature(b"{}")},
    "signed with another secret": {"body": SIGNED, "signature": signature(SIGNED, "guess")},
    "a body changed after signing": {
        "body": SIGNED.replace(b'"OWNER"', b'"MEMBER"'),
        "signature": signature(SIGNED),
    },
}


def _entry(forgery: dict[str, object]) -> bytes:
    entry = {
        "delivery_id": "forged",
        "event": "issue_comment",
        "body": base64.b64encode(forgery["body"]).decode(),  # type: ignore[arg-type]
        "signature": forgery["signature"],
        "at": 0,
    }
    return json.dumps(entry).encode()


# As spools of older versions (and what anyone could write) had it: a payload, no signature.
UNSIGNED = json.dumps({"delivery_id": "forged", "event": "issue_comment", "payload": APPROVE})


@pytest.mark.parametrize("line", [*map(_entry, FORGERIES.values()), UNSIGNED.encode()])
def test_an_entry_written_into_the_spool_file_that_does_not_verify_is_dropped(
    file_settings: Settings, spool_dir: Path, db: str, caplog: pytest.LogCaptureFixture, line: bytes
) -> None:
    """One line appended to the file, a comment `/approve` by an OWNER: it runs nothing."""
    spool_dir.mkdir(parents=True, exist_ok=True)
    (spool_dir / spool.SPOOL_FILE).write_bytes(line + b"\n")

    assert drain_spool(file_settings) == 0

    assert stored_deliveries(db) == []
    assert spooled(file_settings) == 0
    assert not (spool_dir / spool.REJECTED_FILE).exists()  # dropped, not kept
    assert "dropped" in caplog.text


@pytest.mark.parametrize("line", [*map(_entry, FORGERIES.values()), UNSIGNED.encode()])
def test_an_entry_pushed_to_the_redis_spool_that_does_not_verify_is_dropped(
    db: str, caplog: pytest.LogCaptureFixture, line: bytes
) -> None:
    if not os.environ.get("REDIS_URL"):
        pytest.skip("the spool is a Redis list only with REDIS_URL")
    settings = load_settings(
        {
            "DATABASE_URL": db,
            "REDIS_URL": os.environ["REDIS_URL"],
            "GITHUB_WEBHOOK_SECRET": WEBHOOK_SECRET,
        }
    )
    connection = redis_connection(settings.redis_url or "")
    connection.flushdb()
    connection.rpush(spool.SPOOL_KEY, line)

    assert drain_spool(settings) == 0

    assert stored_deliveries(db) == []
    assert connection.llen(spool.SPOOL_KEY) == connection.llen(spool.REJECTED_KEY) == 0
    assert "dropped" in caplog.text


def test_the_spool_is_left_to_a_process_that_can_check_it(file_settings: Settings, db: str) -> None:
    """A worker started without GITHUB_WEBHOOK_SECRET would drop every entry: it drains none."""
    assert _spool(file_settings, "kept", INSTALLATION)
    without_secret = dataclasses.replace(file_settings, github_webhook_secret=None)

    assert drain_spool(without_secret) == 0
    assert spooled(file_settings) == 1
    assert drain_spool(file_settings) == 1
    assert [d.delivery_id for d in stored_deliveries(db)] == ["kept"]

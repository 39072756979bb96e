"""The spool: where a verified delivery waits while the database cannot store it.

GitHub does not send a delivery again by itself, so a webhook answered 500
because PostgreSQL was away is lost. Instead the web process appends it here
and answers 202: to a Redis list when REDIS_URL is set, else to a file of
JSON lines (`specbridge-spool.jsonl` in SPECBRIDGE_SPOOL_DIR, by default
beside the SQLite database), written with one `write` and fsynced before the
answer. Only when the spool cannot take it either does GitHub get a 503.

`drain_spool` moves what waits into the outbox once the database answers: a
periodic chore in every worker and in `serve`, and the first thing each does
at start. Moving is idempotent by delivery id (GitHub's X-GitHub-Delivery), so
two drainers at once, or a drain cut short and started again, store nothing
twice. An entry that cannot be stored for any reason but the database being
away is set aside (`...rejected`) and logged, never retried forever.

Whoever can write to the spool file or the Redis list could add an entry, so an
entry is the body GitHub sent, byte for byte, with its `X-Hub-Signature-256`,
and the signature is checked again when it is drained: one that does not match
(or an entry of another shape) is dropped and logged. A process without
GITHUB_WEBHOOK_SECRET cannot check it and leaves the spool to one that can.
GitHub signs the body only: the event name and delivery id kept beside it are
believed as the webhook's own headers are.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import fcntl
import json
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path

from redis.exceptions import RedisError

from bot.events.deliveries import DATABASE_AWAY, store_spooled
from bot.queue import redis_connection
from bot.settings import Settings
from bot.signatures import signature_matches

log = logging.getLogger(__name__)

SPOOL_KEY = "specbridge:deliveries:spooled"
REJECTED_KEY = "specbridge:deliveries:spool-rejected"
SPOOL_FILE = "specbridge-spool.jsonl"
DRAINING_FILE = "specbridge-spool.draining.jsonl"
REJECTED_FILE = "specbridge-spool.rejected.jsonl"
# Held while appending and while the spool file is renamed for draining.
APPEND_LOCK = ".specbridge-spool.lock"
# Held by the one drainer of a folder at a time.
DRAIN_LOCK = ".specbridge-spool.drain.lock"
DRAIN_BATCH = 100


def spool_delivery(
    settings: Settings, delivery_id: str, event: str, body: bytes, signature: str
) -> bool:
    """Keep a verified delivery (its body as GitHub sent it, and its signature) until the
    database can store it; False when even that fails."""
    entry = json.dumps(
        {
            "delivery_id": delivery_id,
            "event": event,
            "body": base64.b64encode(body).decode(),
            "signature": signature,
            "at": time.time(),
        },
        separators=(",", ":"),
    )
    try:
        if settings.redis_url is not None:
            redis_connection(settings.redis_url).rpush(SPOOL_KEY, entry)
        else:
            _append(settings.spool_directory, entry.encode() + b"\n")
    except (RedisError, OSError):
        log.exception("could not spool delivery %s either", delivery_id)
        return False
    log.info("delivery %s (%s) spooled until the database is back", delivery_id, event)
    return True


def spooled(settings: Settings) -> int:
    """How many entries wait in the spool (a file's lines, the draining one's included)."""
    if settings.redis_url is not None:
        return int(redis_connection(settings.redis_url).llen(SPOOL_KEY))
    directory = settings.spool_directory
    return sum(_count_lines(directory / name) for name in (DRAINING_FILE, SPOOL_FILE))


def drain_spool(settings: Settings) -> int:
    """Move spooled deliveries into the outbox; returns how many were new to it.

    Stops at the first entry the database cannot take (it is still away): what
    is left is drained by the next round.
    """
    if not settings.github_webhook_secret:
        return 0  # its entries cannot be checked here: left to a process that can
    moved = _drain_redis(settings) if settings.redis_url is not None else _drain_file(settings)
    if moved:
        log.info("moved %d spooled deliveries into the outbox", moved)
    return moved


def _store(settings: Settings, raw: bytes) -> bool:
    """Store one entry in the outbox; False when it was known there, or dropped."""
    entry = _verified(settings, raw)
    if entry is None:
        return False
    delivery_id, event, body = entry
    return store_spooled(settings, delivery_id, event, json.loads(body))


def _verified(settings: Settings, raw: bytes) -> tuple[str, str, bytes] | None:
    """The entry's delivery id, event and body when its signature matches; else None,
    logged: nobody but GitHub, through the webhook, wrote it."""
    assert settings.github_webhook_secret
    try:
        entry = json.loads(raw)
        body = base64.b64decode(entry["body"], validate=True)
        delivery_id, event, signature = entry["delivery_id"], entry["event"], entry["signature"]
        if not all(isinstance(v, str) for v in (delivery_id, event, signature)):
            raise TypeError("not text")
    except (ValueError, KeyError, TypeError, binascii.Error):
        log.warning("dropped a spooled entry that is not one the webhook wrote: %.200r", raw)
        return None
    if not signature_matches(settings.github_webhook_secret, body, signature):
        log.warning(
            "dropped spooled delivery %s (%s): its body does not match its signature",
            delivery_id,
            event,
            extra={"delivery": delivery_id, "event": event, "outcome": "refused"},
        )
        return None
    return delivery_id, event, body


# -- Redis ---------------------------------------------------------------------------


def _drain_redis(settings: Settings) -> int:
    assert settings.redis_url is not None
    connection = redis_connection(settings.redis_url)
    moved = 0
    while entries := connection.lrange(SPOOL_KEY, 0, DRAIN_BATCH - 1):
        for raw in entries:
            try:
                moved += _store(settings, raw)
            except DATABASE_AWAY:
                log.info("the database is still away: %d deliveries stay spooled", len(entries))
                return moved
            except Exception:
                log.exception("a spooled delivery cannot be stored; set aside in %s", REJECTED_KEY)
                connection.rpush(REJECTED_KEY, raw)
            # Another drainer may have removed it first: then this removes nothing.
            connection.lrem(SPOOL_KEY, 1, raw)
    return moved


# -- a file --------------------------------------------------------------------------


def _append(directory: Path, line: bytes) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / SPOOL_FILE
    with _flock(directory / APPEND_LOCK):
        created = not path.exists()
        descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            view = memoryview(line)
            while view:
                view = view[os.write(descriptor, view) :]
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        if created:
            _fsync_directory(directory)


def _drain_file(settings: Settings) -> int:
    directory = settings.spool_directory
    spool, draining = directory / SPOOL_FILE, directory / DRAINING_FILE
    if not spool.exists() and not draining.exists():
        return 0  # the usual case: nothing to do, not even a lock
    moved = 0
    with _flock(directory / DRAIN_LOCK, wait=False) as held:
        if not held:
            return 0  # another drainer is at it
        while True:
            if not draining.exists():
                # Renamed under the writers' lock: no append can land in it afterwards.
                with _flock(directory / APPEND_LOCK):
                    if not spool.exists():
                        return moved
                    os.rename(spool, draining)
                    _fsync_directory(directory)
            # A drain cut short reads the file again from its start: entries already
            # moved are known to the outbox by then and stored no second time.
            with draining.open("rb") as lines:
                for raw in lines:
                    if not raw.endswith(b"\n"):
                        log.warning("a spooled delivery was cut short while written; dropped")
                        continue
                    try:
                        moved += _store(settings, raw)
                    except DATABASE_AWAY:
                        log.info("the database is still away: deliveries stay spooled")
                        return moved
                    except Exception:
                        log.exception("a spooled delivery cannot be stored; set aside")
                        _append_rejected(directory, raw)
            draining.unlink()


def _append_rejected(directory: Path, raw: bytes) -> None:
    with (directory / REJECTED_FILE).open("ab") as rejected:
        rejected.write(raw)


@contextlib.contextmanager
def _flock(path: Path, wait: bool = True) -> Iterator[bool]:
    """An exclusive lock on a file: across processes, and across threads of one."""
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(descriptor)  # closing releases the lock


def _fsync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _count_lines(path: Path) -> int:
    try:
        with path.open("rb") as lines:
            return sum(1 for _ in lines)
    except FileNotFoundError:
        return 0

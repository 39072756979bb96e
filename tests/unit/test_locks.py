"""A spec's lock stays held for as long as its holder works, and only then."""

from __future__ import annotations

import os
import threading
import time

import pytest

from bot import locks
from bot.locks import LockBusy, LockLost, exclusive
from bot.queue import redis_connection
from bot.settings import load_settings


@pytest.fixture
def settings():  # type: ignore[no-untyped-def]
    settings = load_settings({"REDIS_URL": os.environ.get("REDIS_URL", "")})
    if settings.redis_url:
        redis_connection(settings.redis_url).delete("specbridge:lock:spec:acme/rocket:login")
    return settings


def _try_to_take(settings, results: list[str]) -> None:  # type: ignore[no-untyped-def]
    try:
        with exclusive(settings, "spec:acme/rocket:login", wait=0.2):
            results.append("taken")
    except LockBusy:
        results.append("busy")


def test_a_lock_held_longer_than_its_lease_stays_held(settings, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(locks, "LEASE_SECONDS", 1)
    results: list[str] = []
    with exclusive(settings, "spec:acme/rocket:login") as lease:
        time.sleep(2.5)  # more than two leases: only renewal keeps it
        other = threading.Thread(target=_try_to_take, args=(settings, results))
        other.start()
        other.join()
        lease.check()
    assert results == ["busy"]
    _try_to_take(settings, results)
    assert results == ["busy", "taken"]


def test_a_lease_lost_while_held_stops_the_holder(settings, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    if not settings.redis_url:
        pytest.skip("a lease is only lost when Redis loses it (REDIS_URL is not set)")
    monkeypatch.setattr(locks, "LEASE_SECONDS", 1)
    with exclusive(settings, "spec:acme/rocket:login") as lease:
        # As after a Redis restart: the key is gone, so is the lease.
        redis_connection(settings.redis_url).delete("specbridge:lock:spec:acme/rocket:login")
        time.sleep(1)
        with pytest.raises(LockLost):
            lease.check()


def test_the_lock_is_reentrant_within_a_thread(settings) -> None:  # type: ignore[no-untyped-def]
    name = "spec:acme/rocket:login"
    with exclusive(settings, name) as outer, exclusive(settings, name, wait=0) as inner:
        assert inner is outer

"""GitHub's pace is the installation's, shared by every process: writes spaced,
content within 80 a minute and 500 an hour (here scaled down)."""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import replace

import pytest

from bot.github.pacing import BudgetExhausted, Pacer, leaving_room
from bot.settings import Settings, load_settings


@pytest.fixture(params=["database", "redis"])
def settings(request: pytest.FixtureRequest, db: str) -> Settings:
    environ = {"DATABASE_URL": db, "GITHUB_WRITE_INTERVAL": "0.2"}
    if request.param == "redis":
        if not os.environ.get("REDIS_URL"):
            pytest.skip("the Redis budget needs REDIS_URL")
        environ["REDIS_URL"] = os.environ["REDIS_URL"]
    # 3 new items per second, 5 per 30 seconds.
    return load_settings({**environ, "GITHUB_CONTENT_LIMITS": "3/1,5/30"})


def _two_processes(settings: Settings) -> tuple[Pacer, Pacer]:
    key = f"installation-{uuid.uuid4().hex}"
    return Pacer(settings, key), Pacer(settings, key)


def _room(pacer: Pacer) -> int:
    """New items that could be created now without waiting for a window."""
    return min(left for _, left in pacer.snapshot())


def test_writes_of_every_process_are_spaced(settings: Settings) -> None:
    one, other = _two_processes(settings)
    started = time.monotonic()
    for pacer in (one, other, one, other):
        pacer.before_write()
    # Four writes at 0.2 s intervals, whichever process sends them.
    assert time.monotonic() - started >= 0.6


def test_content_waits_for_room_in_the_minute_window(settings: Settings) -> None:
    one, other = _two_processes(settings)
    # Measured from before the first items were made: a lower bound however slow this
    # process is meanwhile (on a busy machine, beside other tests).
    first_made = time.monotonic()
    one.before_write(content=3)
    assert _room(other) == 0
    other.before_write(content=1)
    waited = time.monotonic() - first_made
    assert waited >= 0.95  # until the first window's items aged out (its 1 s)
    assert _room(one) == 1  # the 30 s window holds 4 of 5


def test_room_within_counts_what_the_windows_free_meanwhile(settings: Settings) -> None:
    one, other = _two_processes(settings)
    reservation = one.before_write(content=3)
    one.counted(reservation)
    assert (_room(other), other.room_within(0.5)) == (0, 0)  # the 1 s window is full
    assert other.room_within(1.1) == 2  # then the 30 s window's 5 hold the 3
    assert other.most_at_once() == 3


def test_a_spent_hourly_budget_pauses_instead_of_waiting(settings: Settings) -> None:
    one, other = _two_processes(settings)
    one.before_write(content=3)
    time.sleep(1.05)
    one.before_write(content=2)
    with pytest.raises(BudgetExhausted) as spent:
        other.before_write(content=1)
    assert spent.value.window.limit == 5
    assert 25 < spent.value.resume_at - time.time() <= 30
    assert [left for _, left in one.snapshot()] == [1, 0]


def test_items_count_from_when_github_answered_not_from_their_slot(settings: Settings) -> None:
    """At the window's edge: a create that took 0.6 s counts from its answer, as GitHub's
    count does, so the window opens 0.6 s later than its slot would say."""
    one, other = _two_processes(settings)
    reservation = one.before_write(content=3)
    time.sleep(0.6)  # GitHub makes the three items while the request is under way
    one.counted(reservation)
    time.sleep(0.5)  # 1.1 s after the slot, 0.5 s after GitHub counted them
    assert _room(other) == 0
    started = time.monotonic()
    other.before_write(content=1)
    assert time.monotonic() - started >= 0.4  # until 1 s after the answer


def test_bulk_work_stops_only_where_every_write_is_recorded(settings: Settings) -> None:
    """In `yielding`, a write waited for by interactive work gives way, unless the write
    before it has no database commit after it (its answer is not recorded yet)."""
    from bot.github.pacing import GaveWay, Yielding, yielding
    from storage.db import session_scope

    one, _ = _two_processes(settings)
    policy = Yielding(wanted=lambda: True)
    with yielding(policy):
        one.counted(one.before_write())  # the first write of a job always goes
        one.counted(one.before_write())  # no commit since the last write: it goes too
        with session_scope(settings.database_url):
            pass  # the answer recorded
        with pytest.raises(GaveWay):
            one.before_write()
        assert policy.gave_way


def test_bulk_work_pauses_instead_of_sleeping_through_the_minute_window(
    settings: Settings,
) -> None:
    from bot.github.pacing import Yielding, yielding

    one, other = _two_processes(settings)
    one.before_write(content=3)  # the 1 s window is full
    with yielding(Yielding(max_wait=0.1)), pytest.raises(BudgetExhausted) as spent:
        other.before_write(content=1)
    assert spent.value.window.seconds == 1
    started = time.monotonic()
    other.before_write(content=1)  # outside bulk work it waits in place, as before
    assert time.monotonic() - started >= 0.3


def test_bulk_work_waiting_for_room_gives_way_when_interactive_work_comes(
    settings: Settings,
) -> None:
    from bot.github.pacing import GaveWay, Yielding, yielding
    from storage.db import session_scope

    _, other = _two_processes(settings)
    wanted = {"now": False}
    policy = Yielding(max_wait=5, wanted=lambda: wanted["now"])
    with yielding(policy):
        other.counted(other.before_write(content=3))  # the job's first write: the window full
        with session_scope(settings.database_url):
            pass  # and recorded: the job has got something done
        timer = __import__("threading").Timer(0.3, wanted.update, [{"now": True}])
        timer.start()
        started = time.monotonic()
        with pytest.raises(GaveWay) as gave:
            other.before_write(content=1)  # waits for room, until interactive work comes
    assert time.monotonic() - started < 0.7  # not the whole wait for room
    assert gave.value.resume_at > time.time()  # it goes on when room comes


def test_bulk_work_gives_way_only_once_something_it_did_is_recorded(settings: Settings) -> None:
    """A job whose writes are not recorded yet does not give way however often asked:
    stopping then would have its continuation start the same step again, for ever."""
    from bot.github.pacing import GaveWay, Yielding, yielding
    from storage.db import session_scope

    one, _ = _two_processes(settings)
    with yielding(Yielding(wanted=lambda: True)):
        for _ in range(3):  # one step's chunks, recorded only at its end
            one.counted(one.before_write())
        with session_scope(settings.database_url):
            pass
        with pytest.raises(GaveWay):
            one.before_write()


def test_a_big_creation_leaves_room_in_each_window_to_the_others(settings: Settings) -> None:
    # 16 a minute and 40 an hour: an eighth of the minute is 2
    one, other = _two_processes(replace(settings, github_content_limits=((16, 60.0), (40, 3600.0))))
    with leaving_room(2):
        one.before_write(content=14)
        # 14 of the minute's 16 made: the 2 left are the others'
        assert (one.most_at_once(), one.room_within(0)) == (14, 0)
    assert _room(other) == 2
    other.before_write(content=2)  # a small spec's issues, or an agent's pull request
    assert _room(other) == 0

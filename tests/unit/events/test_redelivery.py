"""Events GitHub failed to deliver (the web process down, a 5xx) are asked for
again through GitHub's record of the App's deliveries: once, oldest first, and
never those the outbox has, that succeeded on a redelivery, or that were refused."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlparse

import pytest
import responses

from bot.events import chore_runs
from bot.events.chore_runs import read_mark
from bot.events.deliveries import store_delivery
from bot.events.redelivery import CHORE, redeliver_missed, redeliver_when_due
from bot.settings import Settings, load_settings
from tests.support import MOCK_API
from tests.unit.github.test_hook_deliveries import KEY, LIST, hook_delivery, page


@pytest.fixture(autouse=True)
def _a_process_just_started() -> Iterator[None]:
    chore_runs.forget_start()
    yield
    chore_runs.forget_start()


@pytest.fixture
def settings(db: str) -> Settings:
    return load_settings(
        {
            "DATABASE_URL": db,
            "GITHUB_API_URL": MOCK_API,
            "GITHUB_APP_ID": "4242",
            "GITHUB_PRIVATE_KEY": KEY,
        }
    )


def redelivered() -> list[int]:
    return [
        int(urlparse(c.request.url).path.split("/")[-2])
        for c in responses.calls
        if c.request.method == "POST"
    ]


def answer_redeliveries(*ids: int, status: int = 202) -> None:
    for delivery_id in ids:
        responses.post(f"{LIST}/{delivery_id}/attempts", json={}, status=status)


@responses.activate
def test_failed_events_the_outbox_lacks_are_redelivered_oldest_first(settings: Settings) -> None:
    store_delivery(settings, "stored-anyway", "push", {})  # GitHub timed out; we had stored it
    responses.get(
        LIST,
        **page(
            [
                hook_delivery(9, "recovered", 202, redelivery=True),
                hook_delivery(8, "lost", 502),
                hook_delivery(7, "stored-anyway", 0),
            ],
            6,
        ),
    )
    responses.get(
        LIST,
        **page(
            [
                hook_delivery(6, "recovered", 500),
                hook_delivery(5, "forged", 401),  # refused on purpose: refused again
                hook_delivery(4, "timed-out", 0),
                hook_delivery(3, "throttled", 429),
            ]
        ),
    )
    answer_redeliveries(3, 4, 8)

    assert redeliver_missed(settings) == 3

    assert redelivered() == [3, 4, 8]
    assert read_mark(settings, CHORE) == 9


@responses.activate
def test_the_next_round_reads_what_is_newer_and_asks_again_for_a_failed_redelivery(
    settings: Settings,
) -> None:
    responses.get(LIST, **page([hook_delivery(8, "lost", 502)]))
    answer_redeliveries(8)
    assert redeliver_missed(settings) == 1

    responses.replace(
        responses.GET,
        LIST,
        **page(
            [
                hook_delivery(11, "other", 200),
                hook_delivery(10, "lost", 503, redelivery=True),  # the web process is still down
                hook_delivery(8, "lost", 502),
            ],
            7,
        ),
    )
    answer_redeliveries(10)
    assert redeliver_missed(settings) == 1

    assert redelivered() == [8, 10]
    assert read_mark(settings, CHORE) == 11
    assert len([c for c in responses.calls if c.request.method == "GET"]) == 2  # no page 2


@responses.activate
def test_the_mark_stays_below_an_event_github_could_not_redeliver_yet(settings: Settings) -> None:
    responses.get(
        LIST,
        **page([hook_delivery(6, "later", 500), hook_delivery(5, "gone", 500)]),
    )
    answer_redeliveries(5, status=422)  # too old: GitHub will not, ever
    answer_redeliveries(6, status=502)  # GitHub had a moment: ask again next round

    assert redeliver_missed(settings) == 0

    assert read_mark(settings, CHORE) == 5


@responses.activate
def test_one_process_reads_github_per_interval(settings: Settings) -> None:
    responses.get(LIST, **page([]))

    redeliver_when_due(settings)  # at start
    redeliver_when_due(settings)  # seconds later, same process
    chore_runs.forget_start()
    redeliver_when_due(settings)  # another process starting

    assert len(responses.calls) == 1


@responses.activate
def test_with_a_token_instead_of_an_app_nothing_is_read(db: str) -> None:
    token = load_settings({"DATABASE_URL": db, "GITHUB_API_URL": MOCK_API, "GITHUB_TOKEN": "t"})
    assert redeliver_when_due(token) == 0
    assert len(responses.calls) == 0


@responses.activate
def test_switched_off_nothing_is_read(db: str) -> None:
    off = load_settings(
        {
            "DATABASE_URL": db,
            "GITHUB_API_URL": MOCK_API,
            "GITHUB_APP_ID": "4242",
            "GITHUB_PRIVATE_KEY": KEY,
            "SPECBRIDGE_REDELIVER_SECONDS": "0",
        }
    )
    assert redeliver_when_due(off) == 0
    assert len(responses.calls) == 0

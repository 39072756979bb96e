"""The content budget: each created item counts when the double creates it, in
sliding windows of a minute and an hour."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from fakehub import FakeHub

SCALE = 0.05  # a "minute" lasts 3 s


@pytest.fixture
def hub(tmp_path: Any) -> Iterator[FakeHub]:
    hub = FakeHub(None, "", tmp_path / "hub")
    hub.start()
    requests.post(
        f"{hub.url}/_admin/repos", json={"owner": "acme", "name": "rocket"}, timeout=30
    ).raise_for_status()
    yield hub
    hub.stop()


def create_issues(hub: FakeHub, count: int, token: str = "t") -> requests.Response:
    repository = hub.state.repo("acme", "rocket").node_id
    aliases = "\n".join(
        f'm{n}: createIssue(input: {{repositoryId: "{repository}", title: "T{n}"}})'
        " { issue { number } }"
        for n in range(count)
    )
    return requests.post(
        f"{hub.url}/graphql",
        json={"query": f"mutation {{\n{aliases}\n}}"},
        headers={"Authorization": f"bearer {token}"},
        timeout=30,
    )


def rest_issue(hub: FakeHub, token: str = "t") -> requests.Response:
    return requests.post(
        f"{hub.url}/repos/acme/rocket/issues",
        json={"title": "REST"},
        headers={"Authorization": f"token {token}"},
        timeout=30,
    )


def test_each_creation_in_one_request_counts_when_it_is_made(hub: FakeHub) -> None:
    hub.limits.update({"content_per_minute": 4})
    before = time.time()

    answer = create_issues(hub, 10).json()

    after = time.time()
    made = [alias for alias, value in answer["data"].items() if value is not None]
    assert made == ["m0", "m1", "m2", "m3"]  # processed in order: the first four fit
    refused = {e["path"][0]: (e["type"], e["message"]) for e in answer["errors"]}
    assert refused == {f"m{n}": ("FORBIDDEN", "was submitted too quickly") for n in range(4, 10)}
    assert hub.budgets.created["t"] == 4
    assert hub.budgets.refused == 6
    minute = hub.budgets._window("t", "content-minute", 60)
    stamps = [stamp for stamp, _ in minute.used]
    assert len(stamps) == 4 and stamps == sorted(stamps)
    assert before <= stamps[0] and stamps[-1] <= after

    spent = rest_issue(hub)  # the next request finds nothing left: 403 before it runs
    assert spent.status_code == 403
    assert int(spent.headers["Retry-After"]) >= 1


def test_the_minute_slides_with_each_creation(hub: FakeHub) -> None:
    hub.limits.update({"content_per_minute": 2, "time_scale": SCALE})
    window = 60 * SCALE
    first = time.time()
    assert rest_issue(hub).status_code == 201
    time.sleep(window / 2)
    second = time.time()
    assert rest_issue(hub).status_code == 201
    assert rest_issue(hub).status_code == 403

    # The first creation leaves the window a minute after it was made; the second stays.
    time.sleep(max(0.0, first + window - time.time()) + 0.1)
    assert time.time() < second + window
    assert rest_issue(hub).status_code == 201
    assert rest_issue(hub).status_code == 403
    assert hub.budgets.created["t"] == 3


def test_each_token_has_its_own_budget(hub: FakeHub) -> None:
    hub.limits.update({"content_per_minute": 1})
    assert rest_issue(hub, "one").status_code == 201
    assert rest_issue(hub, "one").status_code == 403
    assert rest_issue(hub, "two").status_code == 201

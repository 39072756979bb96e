"""The App's webhook deliveries: read and redelivered with the App's JWT, pages
followed by the `Link` header's cursor, every request one GitHub describes."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl, urlparse

import jsonschema
import pytest
import responses

from bot.github.auth import GitHubAuthError
from bot.github.hook_deliveries import hook_deliveries, next_cursor, redeliver
from bot.settings import Settings, load_settings
from fakehub.apps import new_private_key
from fakehub.openapi import github_rest
from tests.support import MOCK_API

LIST = f"{MOCK_API}/app/hook/deliveries"


def app_settings() -> Settings:
    return load_settings(
        {"GITHUB_API_URL": MOCK_API, "GITHUB_APP_ID": "4242", "GITHUB_PRIVATE_KEY": KEY}
    )


KEY = new_private_key()


def hook_delivery(id: int, guid: str, status_code: int, redelivery: bool = False) -> dict[str, Any]:
    """One item as GitHub lists it (checked against its `hook-delivery-item` schema)."""
    item = {
        "id": id,
        "guid": guid,
        "delivered_at": "2026-12-02T10:00:00Z",
        "redelivery": redelivery,
        "duration": 0.2,
        "status": "OK" if status_code < 300 else "Internal Server Error",
        "status_code": status_code,
        "event": "push",
        "action": None,
        "installation_id": 7,
        "repository_id": 9,
        "throttled_at": None,
    }
    rest = github_rest()
    schema = rest.json_schema(json.dumps(rest.spec["components"]["schemas"]["hook-delivery-item"]))
    jsonschema.validate(item, schema)
    return item


def page(items: list[dict[str, Any]], next_id: int | None = None) -> dict[str, Any]:
    headers = {}
    if next_id is not None:
        headers["Link"] = f'<{LIST}?per_page=100&cursor=v1_{next_id}>; rel="next"'
    return {"json": items, "headers": headers}


def assert_as_github_describes(calls: Any) -> None:
    """Each request is an operation of GitHub's REST description, sent with a JWT."""
    for call in calls:
        url = urlparse(call.request.url)
        path = url.path.removeprefix("/api/v3")
        query = dict(parse_qsl(url.query))
        assert github_rest().check(call.request.method, path, query, None) is None
        scheme, _, token = call.request.headers["Authorization"].partition(" ")
        assert scheme == "Bearer" and token.count(".") == 2  # a JWT, not a token


@responses.activate
def test_deliveries_are_read_newest_first_page_by_page() -> None:
    responses.get(LIST, **page([hook_delivery(9, "a", 202), hook_delivery(8, "b", 502)], 7))
    responses.get(LIST, **page([hook_delivery(7, "c", 0)]))

    attempts = list(hook_deliveries(app_settings()))

    assert [(a.id, a.guid, a.status_code, a.succeeded) for a in attempts] == [
        (9, "a", 202, True),
        (8, "b", 502, False),
        (7, "c", 0, False),
    ]
    first, second = (dict(parse_qsl(urlparse(c.request.url).query)) for c in responses.calls)
    assert first == {"per_page": "100"}
    assert second == {"per_page": "100", "cursor": "v1_7"}
    assert_as_github_describes(responses.calls)


@responses.activate
def test_reading_stops_at_the_mark_without_the_next_page() -> None:
    responses.get(LIST, **page([hook_delivery(12, "x", 500), hook_delivery(11, "y", 200)], 10))

    attempts = list(hook_deliveries(app_settings(), after=11))

    assert [a.id for a in attempts] == [12]
    assert len(responses.calls) == 1


@responses.activate
def test_redeliver_posts_an_attempt() -> None:
    responses.post(f"{LIST}/8/attempts", json={}, status=202)

    redeliver(app_settings(), 8)

    assert len(responses.calls) == 1
    assert_as_github_describes(responses.calls)


def test_only_an_app_has_a_jwt() -> None:
    settings = load_settings({"GITHUB_API_URL": MOCK_API, "GITHUB_TOKEN": "t"})
    with pytest.raises(GitHubAuthError):
        list(hook_deliveries(settings))


@pytest.mark.parametrize(
    ("link", "cursor"),
    [
        (None, None),
        (f'<{LIST}?per_page=100&cursor=v1_41>; rel="next"', "v1_41"),
        (f'<{LIST}?cursor=v1_9&per_page=2>; rel="next", <{LIST}?per_page=2>; rel="first"', "v1_9"),
        (f'<{LIST}?per_page=2>; rel="first"', None),
    ],
)
def test_next_cursor(link: str | None, cursor: str | None) -> None:
    assert next_cursor(link) == cursor

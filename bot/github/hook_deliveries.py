"""The App's webhook deliveries as GitHub records them, read and redelivered with
the App's JWT (https://docs.github.com/rest/apps/webhooks).

GitHub records every attempt to deliver an event (its `guid` is the
X-GitHub-Delivery header; a redelivery is a new attempt with the same guid)
and keeps them for a few days, but never redelivers one by itself. What to do
with them is decided in bot/events/redelivery.py.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any
from urllib.parse import parse_qs, urlparse

from github import GithubException

from bot.counters import count_github_request
from bot.github.auth import app_requester
from bot.settings import Settings

PER_PAGE = 100  # GitHub's most
_NEXT = re.compile(r'<([^>]*)>\s*;\s*rel="next"')


@dataclass(frozen=True)
class HookDelivery:
    """One attempt to deliver an event to the App's webhook."""

    id: int
    guid: str
    status_code: int
    redelivery: bool
    event: str
    action: str | None
    delivered_at: str

    @property
    def succeeded(self) -> bool:
        return 200 <= self.status_code < 300


def hook_deliveries(
    settings: Settings, after: int | None = None, max_pages: int = 50
) -> Iterator[HookDelivery]:
    """The attempts newest first, down to (not including) the attempt `after`,
    following the `Link` header's cursor; at most `max_pages` pages of 100."""
    requester = app_requester(settings)
    parameters: dict[str, Any] = {"per_page": PER_PAGE}
    for _ in range(max_pages):
        headers, page = _counted(
            settings,
            "rest_read",
            partial(requester.requestJsonAndCheck, "GET", "/app/hook/deliveries", parameters),
        )
        for item in page:
            if after is not None and item["id"] <= after:
                return
            yield HookDelivery(
                id=item["id"],
                guid=item["guid"],
                status_code=item.get("status_code") or 0,
                redelivery=bool(item.get("redelivery")),
                event=item.get("event") or "",
                action=item.get("action"),
                delivered_at=item.get("delivered_at") or "",
            )
        cursor = next_cursor(headers.get("link"))
        if cursor is None:
            return
        parameters = {"per_page": PER_PAGE, "cursor": cursor}


def redeliver(settings: Settings, delivery_id: int) -> None:
    """Ask GitHub to send the attempt's event again (same guid); GitHub answers 202.

    Sent once: after a 5xx the caller asks again in its next round."""
    requester = app_requester(settings, once=True)
    path = f"/app/hook/deliveries/{delivery_id}/attempts"
    _counted(settings, "rest_write", partial(requester.requestJsonAndCheck, "POST", path))


def next_cursor(link: str | None) -> str | None:
    """The cursor of the `Link` header's rel="next" page, if there is one."""
    if not link:
        return None
    for part in link.split(","):
        if url := _NEXT.search(part):
            cursors = parse_qs(urlparse(url.group(1)).query).get("cursor")
            if cursors:
                return cursors[0]
    return None


def _counted(settings: Settings, kind: str, send: Any) -> Any:
    try:
        answer = send()
    except GithubException as error:
        count_github_request(settings, kind, str(error.status))
        raise
    except Exception:
        count_github_request(settings, kind, "error")
        raise
    count_github_request(settings, kind, "200" if kind == "rest_read" else "202")
    return answer

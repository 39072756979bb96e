"""What people are told when a board cannot do what they ask of it: settings naming a
column the board lacks get a commit comment, a reply never says a card moved when it
stayed, and a card moved to start work that cannot start yet gets a comment why."""

from __future__ import annotations

from typing import Any

import requests

from fakehub import FakeHub
from tests.support import SPECBRIDGE_COLUMNS
from tests.unit.conftest import run_queued_jobs

REPO = "acme/board"
SETTINGS = "project: {owner: acme, number: 1}\nstatus: {done: Shipped}\n"
SPEC = """\
id: login
title: Login
phase: tasks
tasks:
  - {id: TSK-1, title: Store tokens}
  - {id: TSK-2, title: Email the link, depends_on: [TSK-1]}
"""


def _admin(hub: FakeHub, path: str, **body: Any) -> Any:
    response = requests.post(f"{hub.url}/_admin/{path}", json=body, timeout=30)
    response.raise_for_status()
    return response.json()


def _settle(hub: FakeHub, db: str) -> None:
    """Every webhook delivered and what it queued run (twice: a reply's own echo)."""
    for _ in range(2):
        _admin(hub, "wait")
        run_queued_jobs(db)


def _issue(hub: FakeHub, title: str) -> int:
    issues = hub.state.repo("acme", "board").issues
    return next(n for n, issue in issues.items() if issue.title.startswith(title))


def _comments(hub: FakeHub, number: int) -> list[str]:
    state = requests.get(f"{hub.url}/_admin/state", timeout=30).json()
    repo = next(r for r in state["repositories"] if r["full_name"] == REPO)
    return [c["body"] for c in repo["comments"].get(str(number), [])]


def _synced(hub: FakeHub, db: str, settings: str) -> str:
    """acme/board with a Backlog…Done board and octocat its admin, then the settings and
    the spec merged; the merge's commit."""
    _admin(
        hub,
        "repos",
        owner="acme",
        name="board",
        files={"README.md": "board\n"},
        project={"number": 1},
        status_options=SPECBRIDGE_COLUMNS,
        collaborators={"octocat": "admin"},
    )
    _settle(hub, db)
    push = _admin(
        hub,
        f"repos/{REPO}/commits",
        files={".github/specbridge.yml": settings, "specs/login.yaml": SPEC},
    )
    _settle(hub, db)
    return str(push["sha"])


def test_settings_naming_a_column_the_board_lacks_are_said_and_replies_say_it(
    bot_and_hub: FakeHub, db: str
) -> None:
    hub = bot_and_hub
    merged = _synced(hub, db, SETTINGS)  # the board has no Shipped

    # The settings changed: what the board lacks is said on the commit, as for a bad spec.
    said = [c["body"] for c in hub.state.repo("acme", "board").commit_comments]
    assert [c["commit_id"] for c in hub.state.repo("acme", "board").commit_comments] == [merged]
    assert "the board acme/1" in said[0]
    assert "no Status option 'Shipped' for done" in said[0]

    # /phase done: the issue closes, and the reply does not claim the card moved.
    first = _issue(hub, "TSK-1")
    _admin(hub, f"repos/{REPO}/issues/{first}/comments", user="octocat", body="/phase done")
    _settle(hub, db)
    reply = _comments(hub, first)[-1]
    assert "Moved to" not in reply
    assert "The ticket is in done: the issue is closed as completed." in reply
    assert "Its card stays where it is: the board has no Status option 'Shipped'" in reply
    assert hub.state.repo("acme", "board").issues[first].state == "closed"


def test_a_card_moved_to_start_work_that_must_wait_says_what_it_waits_for(
    bot_and_hub: FakeHub, db: str
) -> None:
    """The example of docs/getting-started.md: a card moved to Building whose task depends
    on another."""
    hub = bot_and_hub
    _synced(hub, db, "project: {owner: acme, number: 1}\n")
    assert hub.state.repo("acme", "board").commit_comments == []  # a board that fits

    first, second = _issue(hub, "TSK-1"), _issue(hub, "TSK-2")
    _admin(hub, f"orgs/acme/projects/1/items/{second}/status", status="Building", user="octocat")
    _settle(hub, db)

    [waits] = _comments(hub, second)
    assert waits.startswith("@octocat moved this card to Building, and nothing starts yet: ")
    assert f"it depends on #{first}, not closed as completed yet" in waits

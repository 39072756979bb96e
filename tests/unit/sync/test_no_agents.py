"""With no agent profiles at all, tasks get issues and nothing else: the tracking issue
says so, once, so nobody waits for an agent that will never come."""

from __future__ import annotations

from bot.settings import get_settings
from fakehub import FakeHub
from tests.unit.steer.test_board_words import REPO, SPEC, _admin, _comments, _issue, _settle

SAID = "No agent works these tasks: this specbridge has no agent profiles"


def _merged(hub: FakeHub, db: str, spec: str) -> None:
    _admin(hub, f"repos/{REPO}/commits", files={"specs/login.yaml": spec})
    _settle(hub, db)


def _repository(hub: FakeHub, db: str) -> None:
    _admin(hub, "repos", owner="acme", name="board", files={"README.md": "board\n"})
    _settle(hub, db)


def test_a_new_tracking_issue_says_once_that_no_agent_works_its_tasks(
    bot_and_hub: FakeHub, db: str
) -> None:
    hub = bot_and_hub
    assert get_settings().agents_file is None
    _repository(hub, db)
    _merged(hub, db, SPEC)
    tracking = _issue(hub, "Spec: Login")
    [said] = _comments(hub, tracking)
    assert said.startswith(SAID) and "`/retry`" in said

    _merged(hub, db, SPEC.replace("Store tokens", "Store the tokens"))  # synced again
    assert len(_comments(hub, tracking)) == 1


def test_a_spec_people_work_gets_no_such_word(bot_and_hub: FakeHub, db: str) -> None:
    hub = bot_and_hub
    _repository(hub, db)
    _merged(hub, db, SPEC.replace("phase: tasks", "phase: tasks\nagent: manual"))
    assert _comments(hub, _issue(hub, "Spec: Login")) == []

"""A sync killed between creating an issue and recording it never duplicates the issue."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.repo_config import RepoConfig
from bot.repositories import record_repository
from bot.settings import Settings
from bot.sync import _TicketSync, sync_spec
from fakehub import FakeHub
from specs.load import load_spec
from storage.db import session_scope
from storage.models import Ticket
from tests.integration.conftest import github_side, new_repository

SPEC = """\
id: crashy
title: Crashy
phase: tasks
tasks:
  - {id: TSK-1, title: One}
  - {id: TSK-2, title: Two, depends_on: [TSK-1]}
  - {id: TSK-3, title: Three}
"""


class Killed(BaseException):
    """Stands for the process dying: nothing after it runs, no handler catches it."""


def test_a_killed_sync_retried_makes_one_issue_per_task(
    hub: FakeHub, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    full_name = new_repository(hub, "crashy")
    spec, _ = load_spec(SPEC, "specs/crashy.yaml")
    assert spec is not None
    config = RepoConfig(project_owner="acme", project_number=1)
    record = _TicketSync._record_ticket
    created = []

    def die_after_the_second_issue(self, task, issue):  # type: ignore[no-untyped-def]
        created.append(issue.number)
        if len(created) == 2:
            raise Killed  # the issue exists on GitHub; its row is never committed
        return record(self, task, issue)

    monkeypatch.setattr(_TicketSync, "_record_ticket", die_after_the_second_issue)
    with pytest.raises(Killed), session_scope(settings.database_url) as session:
        _sync(session, settings, full_name, spec, config)
    monkeypatch.setattr(_TicketSync, "_record_ticket", record)

    with session_scope(settings.database_url) as session:
        _sync(session, settings, full_name, spec, config)
        tickets = session.scalars(select(Ticket)).all()
        assert len(tickets) == 3

    issues = hub.state.repos[full_name].issues.values()
    titles = sorted(i.title for i in issues)
    assert titles == ["Spec: Crashy", "TSK-1: One", "TSK-2: Two", "TSK-3: Three"]
    assert sorted(t.issue_number for t in tickets) == sorted(
        i.number for i in issues if i.title.startswith("TSK")
    )
    project = hub.state.projects[("acme", 1)]
    on_board = [
        i
        for i in project.items.values()
        if hub.state.issue_by_node(i["content"]).repo.full_name == full_name
    ]
    assert len(on_board) == 3


def _sync(session: Session, settings: Settings, full_name: str, spec, config: RepoConfig) -> None:  # type: ignore[no-untyped-def]
    repository = record_repository(session, {"full_name": full_name, "default_branch": "main"})
    sync_spec(
        session,
        settings,
        github_side(settings, full_name, config),
        repository,
        spec,
        "c0ffee",
        hashlib.sha256(SPEC.encode()).hexdigest(),
    )

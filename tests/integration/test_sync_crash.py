"""Every task becomes exactly one issue, whatever happens between GitHub creating
an issue and specbridge recording it."""

from __future__ import annotations

import hashlib
from dataclasses import replace

import pytest
import requests
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.repo_config import RepoConfig
from bot.repositories import record_repository
from bot.settings import Settings
from bot.sync import sync_spec, writer
from bot.sync.writer import SpecWriter
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
  - {id: TSK-4, title: Four}
  - {id: TSK-5, title: Five, depends_on: [TSK-4]}
"""


class Killed(BaseException):
    """Stands for the process dying: nothing after it runs, no handler catches it."""


def test_a_sync_killed_before_recording_what_github_created_makes_one_issue_per_task(
    hub: FakeHub, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    full_name = new_repository(hub, "crashy")
    record = SpecWriter._record_ticket
    calls = []

    def die_while_recording(self, task, issue, *args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(issue.number)
        if len(calls) == 2:
            raise Killed  # the issues exist on GitHub; their rows are never committed
        return record(self, task, issue, *args, **kwargs)

    monkeypatch.setattr(SpecWriter, "_record_ticket", die_while_recording)
    with pytest.raises(Killed), session_scope(settings.database_url) as session:
        _sync(session, settings, full_name)
    monkeypatch.setattr(SpecWriter, "_record_ticket", record)

    with session_scope(settings.database_url) as session:
        _sync(session, settings, full_name)
    _assert_one_issue_per_task(hub, settings, full_name)


def test_a_sync_killed_with_its_parent_full_resumes_without_linking_twice(
    hub: FakeHub, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """100 tickets fill the tracking issue; those created but never recorded are found
    again, and their links, which GitHub already has, are read back, not sent again.
    (GitHub's minute, for 101 new issues past its 80 a minute, lasts 0.6 s here.)"""
    settings = replace(settings, github_content_limits=((80, 0.6), (500, 36.0)))
    monkeypatch.setattr(hub.limits, "time_scale", 0.01)
    full_name = new_repository(hub, "full")
    text = "id: full\ntitle: Full\nphase: tasks\ntasks:\n" + "".join(
        f"  - {{id: T-{n}, title: Task {n}}}\n" for n in range(1, 101)
    )
    record = SpecWriter._record_ticket
    calls = []

    def die_near_the_end(self, task, issue, *args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(issue.number)
        if len(calls) == 90:
            raise Killed  # 100 issues exist under the tracking issue; 11 have no row
        return record(self, task, issue, *args, **kwargs)

    monkeypatch.setattr(SpecWriter, "_record_ticket", die_near_the_end)
    with pytest.raises(Killed), session_scope(settings.database_url) as session:
        _sync(session, settings, full_name, text)
    monkeypatch.setattr(SpecWriter, "_record_ticket", record)

    with session_scope(settings.database_url) as session:
        _sync(session, settings, full_name, text)  # raised SyncIncomplete: link refused
        recorded = session.scalars(select(Ticket).where(Ticket.spec.has(key="full"))).all()
        assert len(recorded) == 100 and all(t.parent_linked for t in recorded)
    issues = hub.state.repos[full_name].issues.values()
    tracking = next(i for i in issues if i.title == "Spec: Full")
    assert sorted(tracking.sub_issues) == sorted(t.issue_number for t in recorded)
    assert len(issues) == 101


def test_a_batch_github_partly_refuses_ends_with_every_ticket_created_once(
    hub: FakeHub, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """GitHub runs a batch's creations in order and stops those past its content budget."""
    full_name = new_repository(hub, "refused")
    monkeypatch.setattr(writer, "HOLD_OFF_SECONDS", 1)
    # Three new items a "minute" of 0.6 s: the tracking issue and two tickets, then refusals.
    limits = {"content_per_minute": 3, "time_scale": 0.01}
    requests.post(f"{hub.url}/_admin/limits", json=limits, timeout=30).raise_for_status()
    refused_before = hub.budgets.refused
    try:
        with session_scope(settings.database_url) as session:
            _sync(session, settings, full_name)
    finally:
        requests.post(
            f"{hub.url}/_admin/limits", json={"content_per_minute": 80, "time_scale": 1}, timeout=30
        ).raise_for_status()
    assert hub.budgets.refused > refused_before  # GitHub did refuse part of a batch
    _assert_one_issue_per_task(hub, settings, full_name)


def _assert_one_issue_per_task(hub: FakeHub, settings: Settings, full_name: str) -> None:
    with session_scope(settings.database_url) as session:
        tickets = session.scalars(select(Ticket)).all()
        recorded = sorted(t.issue_number for t in tickets if t.repository.full_name == full_name)
    issues = hub.state.repos[full_name].issues.values()
    titles = sorted(i.title for i in issues)
    assert titles == [
        "Spec: Crashy",
        "TSK-1: One",
        "TSK-2: Two",
        "TSK-3: Three",
        "TSK-4: Four",
        "TSK-5: Five",
    ]
    assert recorded == sorted(i.number for i in issues if i.title.startswith("TSK"))
    tracking = next(i for i in issues if i.title == "Spec: Crashy")
    assert sorted(tracking.sub_issues) == recorded
    project = hub.state.projects[("acme", 1)]
    on_board = [
        i
        for i in project.items.values()
        if hub.state.issue_by_node(i["content"]).repo.full_name == full_name
    ]
    assert len(on_board) == 5
    assert all(project.status_name(i["status"]) == "Backlog" for i in on_board)


def _sync(session: Session, settings: Settings, full_name: str, text: str = SPEC) -> None:
    spec, _ = load_spec(text, f"specs/{full_name.split('/')[1]}.yaml")
    assert spec is not None
    config = RepoConfig(project_owner="acme", project_number=1)
    repository = record_repository(session, {"full_name": full_name, "default_branch": "main"})
    sync_spec(
        session,
        settings,
        github_side(settings, full_name, config),
        repository,
        spec,
        "c0ffee",
        hashlib.sha256(text.encode()).hexdigest(),
    )

"""A board owned by a user sends no webhooks: `specbridge reconcile` applies its moves."""

from __future__ import annotations

import hashlib

import requests
from sqlalchemy import select

from bot.repo_config import RepoConfig
from bot.repositories import record_repository
from bot.settings import Settings
from bot.steer.reconcile import reconcile
from bot.sync import sync_spec
from fakehub import FakeHub
from specs.load import load_spec
from storage.db import session_scope
from storage.models import Approval, Ticket, TicketPhase
from tests.integration.conftest import github_side
from tests.support import SPECBRIDGE_COLUMNS

SPEC = """\
id: solo
title: Solo
phase: tasks
approval: required
tasks:
  - {id: T-1, title: One}
  - {id: T-2, title: Two}
"""


def test_reconcile_applies_card_moves_from_a_user_board(hub: FakeHub, settings: Settings) -> None:
    requests.post(
        f"{hub.url}/_admin/repos",
        json={
            "owner": "octocat",
            "name": "solo",
            "owner_type": "User",
            "project": {"number": 2},
            "status_options": SPECBRIDGE_COLUMNS,
        },
        timeout=30,
    ).raise_for_status()
    config = RepoConfig(project_owner="octocat", project_number=2)
    spec, _ = load_spec(SPEC, "specs/solo.yaml")
    assert spec is not None
    with session_scope(settings.database_url) as session:
        repository = record_repository(
            session, {"full_name": "octocat/solo", "default_branch": "main"}
        )
        repository.settings = config.as_dict()
        sync_spec(
            session,
            settings,
            github_side(settings, "octocat/solo", config),
            repository,
            spec,
            "c1",
            hashlib.sha256(SPEC.encode()).hexdigest(),
        )
        numbers = sorted(t.issue_number for t in session.scalars(select(Ticket)))

    assert reconcile(settings, "octocat/solo") == []  # every card where its ticket says
    for number, column in zip(numbers, ["Building", "Done"], strict=True):
        requests.post(
            f"{hub.url}/_admin/orgs/octocat/projects/2/items/{number}/status",
            json={"status": column, "user": "octocat"},
            timeout=30,
        ).raise_for_status()
    # The hub is shared by the tests in this process: only this board's items count.
    solo_issues = {issue.node_id for issue in hub.state.repos["octocat/solo"].issues.values()}
    assert not [
        d
        for d in hub.webhooks.deliveries
        if d["event"] == "projects_v2_item"
        and d["payload"]["projects_v2_item"]["content_node_id"] in solo_issues
    ]  # GitHub sends no webhook for a user's board

    changes = reconcile(settings, "octocat/solo")

    assert len(changes) == 2
    with session_scope(settings.database_url) as session:
        tickets = {t.issue_number: t for t in session.scalars(select(Ticket))}
        building, done = tickets[numbers[0]], tickets[numbers[1]]
        assert (building.phase, building.approval, building.approved_by) == (
            TicketPhase.BUILDING,
            Approval.APPROVED,
            "board",
        )
        assert done.phase is TicketPhase.DONE
    assert hub.state.repos["octocat/solo"].issues[numbers[1]].state == "closed"
    assert reconcile(settings, "octocat/solo") == []

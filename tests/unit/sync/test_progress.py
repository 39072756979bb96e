"""Phase changes queue one rewrite of the tracking issue, seconds later, for a burst."""

from __future__ import annotations

from sqlalchemy.orm import Session

import bot.sync.progress  # noqa: F401 - registers its hook, as every job-running process does
from bot.hooks import ticket_changed
from bot.settings import Settings
from bot.sync import render
from bot.sync.render import file_commit
from storage.models import Repository, Spec, SpecTask, SpecVersion, Ticket, TicketDependency
from tests.unit.conftest import HeldJob


def test_a_ticket_changed_anywhere_queues_one_refresh_of_its_tracking_issue(
    session: Session, handler_settings: Settings, held_jobs: list[HeldJob]
) -> None:
    """What an agent run (a stage below sync) calls through bot.hooks when it moves a card."""
    repository = Repository(full_name="acme/web")
    spec = Spec(repository=repository, key="login", path="specs/login.yaml", title="Login")
    tickets = [Ticket(repository=repository, spec=spec, issue_number=n) for n in (1, 2)]
    loose = Ticket(repository=repository, issue_number=3)  # no spec: nothing to refresh
    session.add_all([*tickets, loose])
    session.commit()

    for ticket in (*tickets, *tickets, loose):
        ticket_changed(handler_settings, ticket)

    assert [(job.name, job.args, job.job_id) for job in held_jobs] == [
        ("refresh_tracking", (spec.id,), f"tracking-{spec.id}")
    ]


def test_the_tracking_issue_links_the_commit_where_the_file_last_changed(
    session: Session,
) -> None:
    spec = Spec(
        repository=Repository(full_name="acme/web"),
        key="login",
        path="specs/login.yaml",
        title="Login",
        source_commit="c3",  # synced last at c3, which left the file as c2 made it
        content_hash="h2",
    )
    spec.versions = [
        SpecVersion(commit_sha="c1", content_hash="h1"),
        SpecVersion(commit_sha="c2", content_hash="h2"),
    ]
    session.add(spec)
    session.commit()
    assert file_commit(spec) == "c2"
    spec.versions.append(SpecVersion(commit_sha="c4", content_hash="h1"))
    spec.content_hash = "h1"  # reverted to the first content at c4
    assert file_commit(spec) == "c4"


def test_the_graph_names_each_task_by_title_safely(session: Session) -> None:
    repository = Repository(full_name="acme/web")
    spec = Spec(repository=repository, key="login", path="specs/login.yaml", title="Login")
    titles = ['Say "hi" to @octocat', "Render <b>bold</b> `code`", "A" * 60]
    tickets = [
        Ticket(
            repository=repository,
            spec=spec,
            spec_task=SpecTask(spec=spec, key=f"T-{n}", title=title, position=n),
            issue_number=10 + n,
        )
        for n, title in enumerate(titles, start=1)
    ]
    session.add_all(tickets)
    session.flush()
    session.add(TicketDependency(ticket_id=tickets[1].id, depends_on_id=tickets[0].id))
    session.flush()
    session.refresh(tickets[1])

    lines = render._graph(tickets)

    nodes = [line for line in lines if ":::" in line]
    assert nodes[0] == '  t11["#11 T-1: Say #quot;hi#quot; to @&#8203;octocat"]:::backlog'
    assert nodes[1] == "  t12[\"#12 T-2: Render #lt;b#gt;bold#lt;/b#gt; 'code'\"]:::backlog"
    assert nodes[2].startswith('  t13["#13 T-3: ' + "A" * 39 + '…"]')
    assert "  t11 --> t12" in lines

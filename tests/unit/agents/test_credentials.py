"""A repository synced by hand as the App records the installation it was read with, and
an agent job that cannot authenticate fails once, saying why, instead of dying in its
run and being retried as a worker that stopped responding."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.agents.hosted import dispatch_task
from bot.agents.run import run_task
from bot.cli import main
from bot.settings import get_settings
from fakehub import FakeHub
from fakehub.apps import new_private_key
from storage.db import session_scope
from storage.models import Installation, Repository, Task, TaskStatus, Ticket, TicketPhase
from tests.support import REPO_ROOT

SPEC = (REPO_ROOT / "specs/examples/passwordless-login.yaml").read_text()


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[FakeHub]:
    double = FakeHub(state_dir=tmp_path / "hub")
    double.start()
    yield double
    double.stop()


@pytest.fixture
def as_the_app(db: str, hub: FakeHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The process's settings: the App (no token), the double, the test's database."""
    monkeypatch.chdir(tmp_path)  # no .env of the developer's
    for name in ("REDIS_URL", "GITHUB_TOKEN", "SPECBRIDGE_AGENTS"):
        monkeypatch.delenv(name, raising=False)
    environ = {
        "DATABASE_URL": db,
        "GITHUB_API_URL": hub.url,
        "GITHUB_APP_ID": "4242",
        "GITHUB_PRIVATE_KEY": new_private_key(),
        "GITHUB_WRITE_INTERVAL": "0",
    }
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    yield db
    get_settings.cache_clear()


def _task_on(database_url: str, full_name: str, installation: Installation | None = None) -> int:
    with session_scope(database_url) as session:
        repository = Repository(full_name=full_name, installation=installation)
        ticket = Ticket(repository=repository, issue_number=2, phase=TicketPhase.BACKLOG)
        task = Task(ticket=ticket, agent="default", status=TaskStatus.QUEUED)
        session.add(task)
        session.commit()
        return task.id


def _task(database_url: str, task_id: int) -> tuple[TaskStatus, int, str | None]:
    with session_scope(database_url) as session:
        task = session.get_one(Task, task_id)
        return task.status, task.attempts, task.error


def test_a_sync_by_hand_records_the_installation_it_read_the_repository_with(
    as_the_app: str, hub: FakeHub, capsys: pytest.CaptureFixture[str]
) -> None:
    hub.create_repo({"owner": "acme", "name": "rocket", "files": {"specs/login.yaml": SPEC}})

    assert main(["sync", "--repo", "acme/rocket"]) == 0, capsys.readouterr().err

    with session_scope(as_the_app) as session:
        repository = session.scalars(select(Repository)).one()
        assert repository.installation is not None
        installed = hub.state.repo("acme", "rocket").installation_id
        assert repository.installation.github_id == installed
        assert repository.installation.account_login == "acme"


@pytest.mark.parametrize("job", [run_task, dispatch_task], ids=["local", "hosted"])
def test_a_job_on_a_repository_the_app_is_not_installed_on_fails_once_saying_so(
    as_the_app: str,
    hub: FakeHub,
    job,
    caplog: pytest.LogCaptureFixture,  # type: ignore[no-untyped-def]
) -> None:
    hub.create_repo({"owner": "acme", "name": "gone", "installed": False})
    task_id = _task_on(as_the_app, "acme/gone")

    job(task_id)  # no traceback, nothing for the queue to retry

    status, attempts, error = _task(as_the_app, task_id)
    assert (status, attempts) == (TaskStatus.FAILED, 1)
    assert error == "the App is not installed on acme/gone: no installation to authenticate with"
    assert f"agent task {task_id} for acme/gone#2 failed before it started" in caplog.text


def test_a_job_finds_the_installation_a_repository_was_recorded_without(
    as_the_app: str, hub: FakeHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows from before the sync by hand stored it: the job looks it up and goes on."""
    hub.create_repo({"owner": "acme", "name": "rocket"})
    task_id = _task_on(as_the_app, "acme/rocket")
    went_on = []
    monkeypatch.setattr("bot.agents.run._Run.execute", lambda run: went_on.append(run.installation))

    run_task(task_id)

    assert went_on == [hub.state.repo("acme", "rocket").installation_id]
    with session_scope(as_the_app) as session:
        repository = session.scalars(select(Repository)).one()
        assert repository.installation is not None
        assert repository.installation.account_login == "acme"

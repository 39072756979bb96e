from __future__ import annotations

import pytest

from bot import __version__
from bot.cli import main
from storage.migrate import current_revision


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"specbridge {__version__}"


def test_db_upgrade_then_current(
    empty_database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", empty_database_url)
    from bot.settings import get_settings

    get_settings.cache_clear()
    try:
        assert main(["db", "current"]) == 0
        assert "empty" in capsys.readouterr().out
        assert main(["db", "upgrade"]) == 0
        revision = current_revision(empty_database_url)
        assert revision is not None and revision in capsys.readouterr().out
    finally:
        get_settings.cache_clear()


def test_malformed_setting_is_one_line_and_exit_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("REDIS_URL", "nonsense")
    from bot.settings import get_settings

    get_settings.cache_clear()
    try:
        assert main(["db", "current"]) == 2
        assert capsys.readouterr().err.startswith("specbridge: REDIS_URL")
    finally:
        get_settings.cache_clear()


def test_tasks_table_lists_tasks_with_their_ticket(
    db: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from datetime import UTC, datetime, timedelta

    from bot.settings import get_settings
    from storage.db import session_scope
    from storage.models import Repository, Task, TaskStatus, Ticket

    started = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
    with session_scope(db) as session:
        ticket = Ticket(repository=Repository(full_name="acme/rocket"), issue_number=7)
        session.add_all(
            [
                Task(
                    ticket=ticket,
                    agent="default",
                    status=TaskStatus.SUCCEEDED,
                    attempts=1,
                    started_at=started,
                    finished_at=started + timedelta(seconds=42),
                    pull_request_number=12,
                ),
                Task(
                    ticket=ticket,
                    agent="default",
                    status=TaskStatus.FAILED,
                    attempts=2,
                    error="the command exited with status 4",
                ),
            ]
        )
    monkeypatch.setenv("DATABASE_URL", db)
    get_settings.cache_clear()
    try:
        assert main(["tasks", "--status", "succeeded"]) == 0
        lines = capsys.readouterr().out.splitlines()
        assert lines[0].split() == [
            "TASK",
            "REPOSITORY",
            "ISSUE",
            "AGENT",
            "STATUS",
            "ATTEMPTS",
            "QUEUED",
            "RAN",
            "FOR",
            "RESULT",
        ]
        assert len(lines) == 2
        assert lines[1].split()[1:6] == ["acme/rocket", "#7", "default", "succeeded", "1"]
        assert lines[1].split()[-2:] == ["42s", "#12"]
        assert main(["tasks", "--repo", "acme/other"]) == 0
        assert capsys.readouterr().out.strip() == "no tasks"
    finally:
        get_settings.cache_clear()

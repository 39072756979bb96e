from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot import __version__
from bot.agents.profiles import NO_AGENTS
from bot.cli import main
from fakehub import FakeHub
from fakehub.apps import new_private_key
from storage.migrate import current_revision
from tests.support import REPO_ROOT


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
            "SPEC",
            "KEY",
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
        assert lines[1].split()[1:8] == ["acme/rocket", "-", "-", "#7", "default", "succeeded", "1"]
        assert lines[1].split()[-2:] == ["42s", "#12"]
        assert main(["tasks", "--repo", "acme/other"]) == 0
        assert capsys.readouterr().out.strip() == "no tasks"
        assert main(["tasks", "--json", "--status", "failed"]) == 0
        [failed] = json.loads(capsys.readouterr().out)
        assert failed["status"] == "failed"
        assert failed["issue"] == 7
        assert failed["error"] == "the command exited with status 4"
    finally:
        get_settings.cache_clear()


# -- expected problems: one line on stderr, exit status 2, no traceback ------------------


def _run(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    args: list[str],
    **env: str,
) -> tuple[int, str, str]:
    """The command's exit status, stdout and stderr."""
    from bot.settings import get_settings

    monkeypatch.chdir(tmp_path)  # no .env of the developer's
    for name in ("DATABASE_URL", "REDIS_URL", "GITHUB_TOKEN", "GITHUB_API_URL", "GITHUB_APP_ID"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    try:
        try:
            code = main(args)
        except SystemExit as exit_:  # argparse's usage errors
            code = int(exit_.code or 0)
    finally:
        get_settings.cache_clear()
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _one_line(err: str) -> str:
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    return err.strip()


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[FakeHub]:
    double = FakeHub(state_dir=tmp_path / "hub")
    double.start()
    yield double
    double.stop()


def test_unreachable_database(monkeypatch, capsys, tmp_path) -> None:  # type: ignore[no-untyped-def]
    code, _, err = _run(
        monkeypatch,
        capsys,
        tmp_path,
        ["tasks"],
        DATABASE_URL="postgresql://postgres@127.0.0.1:1/nowhere",
    )
    assert code == 2
    assert _one_line(err).startswith("specbridge: cannot reach the database at postgresql")


def test_serve_on_an_unreachable_database(monkeypatch, capsys, tmp_path) -> None:  # type: ignore[no-untyped-def]
    code, _, err = _run(
        monkeypatch,
        capsys,
        tmp_path,
        ["serve"],
        DATABASE_URL="postgresql://postgres@127.0.0.1:1/nowhere",
    )
    assert code == 2
    assert _one_line(err).startswith("specbridge: cannot reach the database at postgresql")


def test_unmigrated_database_says_run_db_upgrade(  # type: ignore[no-untyped-def]
    empty_database_url: str, monkeypatch, capsys, tmp_path
) -> None:
    for args in (["tasks"], ["sync", "--repo", "acme/rocket"], ["reconcile"]):
        code, _, err = _run(monkeypatch, capsys, tmp_path, args, DATABASE_URL=empty_database_url)
        assert code == 2
        # PostgreSQL: an empty database; SQLite: no file yet (and none is made).
        assert "run `specbridge db upgrade`" in _one_line(err)


@pytest.mark.parametrize(
    "args",
    [
        ["tasks"],
        ["sync", "--repo", "acme/rocket"],
        ["reconcile"],
        ["worker"],
        ["plan", "specs/", "--repo", "acme/rocket"],
        ["db", "current"],
    ],
)
def test_a_command_without_database_url_leaves_no_database_file_behind(  # type: ignore[no-untyped-def]
    monkeypatch, capsys, tmp_path, args
) -> None:
    """It refuses (or says the database is empty) without making ./specbridge.db to say so."""
    (tmp_path / "specs").mkdir()
    code, out, err = _run(monkeypatch, capsys, tmp_path, args)
    assert (code, out.strip()) == (0, "empty (run `specbridge db upgrade`)") or (
        code == 2 and _one_line(err)
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["specs"]


def test_unreachable_redis(db: str, monkeypatch, capsys, tmp_path) -> None:  # type: ignore[no-untyped-def]
    code, _, err = _run(
        monkeypatch,
        capsys,
        tmp_path,
        ["worker"],
        DATABASE_URL=db,
        REDIS_URL="redis://127.0.0.1:1/9",
    )
    assert code == 2
    assert _one_line(err).startswith("specbridge: cannot reach Redis at redis://127.0.0.1:1/9")


def test_bad_private_key(monkeypatch, capsys, tmp_path) -> None:  # type: ignore[no-untyped-def]
    broken = "-----BEGIN RSA PRIVATE KEY-----\nnot a key\n-----END RSA PRIVATE KEY-----\n"
    code, _, err = _run(
        monkeypatch,
        capsys,
        tmp_path,
        ["sync", "--repo", "acme/rocket"],
        GITHUB_APP_ID="42",
        GITHUB_PRIVATE_KEY=broken,
    )
    assert code == 2
    assert _one_line(err).startswith("specbridge: GITHUB_PRIVATE_KEY is not a PEM private key")


def test_malformed_repo(monkeypatch, capsys, tmp_path) -> None:  # type: ignore[no-untyped-def]
    code, _, err = _run(monkeypatch, capsys, tmp_path, ["sync", "--repo", "rocket"])
    assert code == 2
    assert "'rocket' is not OWNER/NAME" in _one_line(err)


def test_unreachable_github(db: str, monkeypatch, capsys, tmp_path) -> None:  # type: ignore[no-untyped-def]
    code, _, err = _run(
        monkeypatch,
        capsys,
        tmp_path,
        ["sync", "--repo", "acme/rocket"],
        DATABASE_URL=db,
        GITHUB_TOKEN="t",
        GITHUB_API_URL="http://127.0.0.1:1",
    )
    assert code == 2
    assert _one_line(err).startswith("specbridge: cannot reach GitHub at http://127.0.0.1:1")


@pytest.mark.parametrize("slug", ["specbridge", None], ids=["slug set", "slug asked of GitHub"])
def test_repository_the_app_is_not_installed_on(  # type: ignore[no-untyped-def]
    db: str, hub: FakeHub, monkeypatch, capsys, tmp_path, slug
) -> None:
    """The link to install it: with GITHUB_APP_SLUG, or GitHub's own word for the slug
    (it said /apps/APP, a placeholder, before)."""
    monkeypatch.delenv("GITHUB_APP_SLUG", raising=False)
    code, _, err = _run(
        monkeypatch,
        capsys,
        tmp_path,
        ["sync", "--repo", "acme/rocket"],
        DATABASE_URL=db,
        GITHUB_API_URL=hub.url,
        GITHUB_APP_ID="42",
        GITHUB_PRIVATE_KEY=new_private_key(),
        **({"GITHUB_APP_SLUG": slug} if slug else {}),
    )
    assert code == 2
    assert _one_line(err) == (
        "specbridge: the App is not installed on acme/rocket, or there is no such repository: "
        f"install it from {hub.url}/apps/specbridge"
    )


def test_sync_reads_folders_recursively_and_ends_with_counts_and_links(  # type: ignore[no-untyped-def]
    db: str, hub: FakeHub, monkeypatch, capsys, tmp_path
) -> None:
    spec = (REPO_ROOT / "specs/examples/passwordless-login.yaml").read_text()
    hub.create_repo(
        {
            "owner": "acme",
            "name": "rocket",
            "files": {"specs/auth/passwordless-login.yaml": spec, "specs/broken.yaml": "id: [\n"},
        }
    )
    monkeypatch.setenv("SPECBRIDGE_CHECK_TRANSACTIONS", "1")
    code, out, err = _run(
        monkeypatch,
        capsys,
        tmp_path,
        ["sync", "--repo", "acme/rocket"],
        DATABASE_URL=db,
        GITHUB_API_URL=hub.url,
        GITHUB_TOKEN="t",
        GITHUB_WRITE_INTERVAL="0",
    )
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("reading specs/, .kiro/specs/ in acme/rocket at ")
    assert "specs/auth/passwordless-login.yaml" in lines[1]
    assert "synced specs/auth/passwordless-login.yaml" in lines
    assert "0 paused" in lines[-2] and "1 synced" in lines[-2] and "1 invalid" in lines[-2]
    tracking = hub.state.repo("acme", "rocket").issues
    number = next(n for n, i in tracking.items() if "passwordless" in i.title.lower())
    assert lines[-1] == f"passwordless-login: {hub.url}/acme/rocket/issues/{number}"


def test_refused_credentials_are_one_line() -> None:
    from github import BadCredentialsException

    from bot.cli import expected_problem

    refused = BadCredentialsException(401, {"message": "Bad credentials"}, {})
    assert expected_problem(refused) == (
        "GitHub refused the credentials (401): check GITHUB_APP_ID and the private key, "
        "or GITHUB_TOKEN"
    )
    assert expected_problem(ZeroDivisionError()) is None  # a bug keeps its traceback


# -- where serve listens: one line, not a traceback or gunicorn's retries ---------------


def _serve_alone(tmp_path: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    """`specbridge serve` as a person runs it, on an SQLite file of its own (migrated first,
    so its first lines are the migration's)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "SPECBRIDGE_"))}
    env.pop("REDIS_URL", None)
    env.update(DATABASE_URL=f"sqlite:///{tmp_path / 'serve.db'}", PYTHONPATH=str(REPO_ROOT))
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", "serve", *arguments],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_serve_on_a_port_out_of_range_is_a_usage_line(tmp_path: Path) -> None:
    done = _serve_alone(tmp_path, "--port", "99999")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "specbridge serve: argument --port: '99999' is not a TCP port (1-65535) "
        "(see `specbridge serve --help`)"
    ]


def test_serve_on_a_malformed_host_or_a_taken_port_says_so_in_one_line(tmp_path: Path) -> None:
    bad_host = _serve_alone(tmp_path, "--host", "not a host!", "--port", "8931")
    assert bad_host.returncode == 2
    [line] = _not_migrations(bad_host.stderr)
    assert line.startswith("specbridge: cannot listen on not a host!:8931: 'not a host!' is no")

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        in_use = _serve_alone(tmp_path, "--port", str(port))
    assert in_use.returncode == 2
    assert _not_migrations(in_use.stderr) == [
        f"specbridge: cannot listen on 127.0.0.1:{port}: Address already in use"
    ]


def _not_migrations(stderr: str) -> list[str]:
    """What serve said, less the migration's lines and its start-up note that it has no
    agent profiles (it is given none)."""
    return [
        line
        for line in stderr.splitlines()
        if " INFO alembic." not in line and NO_AGENTS not in line
    ]

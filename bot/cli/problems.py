"""What a command may run into that is not a bug: a setting, the database,
Redis, GitHub, a repository the App cannot reach. Each is one line on stderr
and exit status 2 (see `bot.cli.main`); only a bug shows a traceback."""

from __future__ import annotations

import argparse
import functools
import os
import re
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlparse

from bot.errors import CommandError
from bot.settings import Settings, SettingsError, get_settings

REPO_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}$")


UPGRADE_HINT = "run `specbridge db upgrade`"


def repo_name(value: str) -> str:
    """argparse type for OWNER/NAME."""
    if not REPO_NAME.match(value):
        raise argparse.ArgumentTypeError(f"{value!r} is not OWNER/NAME, such as acme/rocket")
    return value


def expected_problem(error: BaseException) -> str | None:
    """The one line for an expected problem; None for a bug (shown with its traceback)."""
    from github import GithubException
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError
    from requests import RequestException
    from sqlalchemy.exc import DBAPIError

    from bot.github.auth import GitHubAuthError

    if isinstance(error, CommandError | SettingsError | GitHubAuthError):
        return str(error)
    if isinstance(error, DBAPIError):
        return _database_problem(error)
    if isinstance(error, RedisConnectionError | RedisTimeoutError):
        return f"cannot reach Redis at {_redis_url()}: {first_line(error)}"
    if isinstance(error, GithubException):
        return _github_problem(error)
    if isinstance(error, RequestException):
        return f"cannot reach GitHub at {get_settings().github_api_url}: {first_line(error)}"
    return None


def _database_problem(error: BaseException) -> str:
    text = first_line(getattr(error, "orig", None) or error)
    if re.search(r"no such table|relation .* does not exist|UndefinedTable", text, re.I):
        return f"the database has no specbridge tables: {UPGRADE_HINT}"
    return f"cannot reach the database at {database_url()}: {text}"


def _github_problem(error: BaseException) -> str:
    status = getattr(error, "status", None)
    data = getattr(error, "data", None)
    message = data.get("message") if isinstance(data, dict) else None
    if status == 401:
        return (
            "GitHub refused the credentials (401): check GITHUB_APP_ID and the private key, "
            "or GITHUB_TOKEN"
        )
    return f"GitHub answered {status}: {message or first_line(error)}"


def first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


def database_url() -> str:
    from sqlalchemy.engine import make_url

    return make_url(get_settings().database_url).render_as_string(hide_password=True)


def _redis_url() -> str:
    url = urlparse(get_settings().redis_url or "")
    if url.password:
        url = url._replace(netloc=f"***@{url.hostname}:{url.port or 6379}")
    return url.geturl()


def read_settings() -> Settings:
    return get_settings()


def migrated_settings() -> Settings:
    """Settings for a command that reads the database: it must be reachable and migrated."""
    from alembic.script import ScriptDirectory

    from storage.migrate import alembic_config, current_revision

    settings = read_settings()
    if missing_sqlite_file(settings.database_url):
        # SQLite makes the file it is asked to open: refused first, none is left behind.
        raise CommandError(
            f"there is no database at {database_url()} yet (no such file): {UPGRADE_HINT}, "
            "or point DATABASE_URL at yours"
        )
    current = current_revision(settings.database_url)
    head = ScriptDirectory.from_config(alembic_config(settings.database_url)).get_current_head()
    if current is None:
        raise CommandError(f"the database at {database_url()} is empty: {UPGRADE_HINT}")
    if current != head:
        raise CommandError(
            f"the database is at revision {current}, this specbridge needs {head}: {UPGRADE_HINT}"
        )
    return settings


def missing_sqlite_file(url: str) -> bool:
    """Whether the URL names an SQLite file that does not exist (yet)."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return False
    return not Path(parsed.database).exists()


def require_redis(settings: Settings) -> None:
    from bot.queue import redis_connection

    if settings.redis_url is not None:
        redis_connection(settings.redis_url).ping()


def require_github(settings: Settings) -> None:
    """Fail in seconds, not after the client's retries, when GitHub's host does not answer."""
    url = urlparse(settings.github_api_url)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        socket.create_connection((url.hostname, port), timeout=5).close()
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise CommandError(f"cannot reach GitHub at {settings.github_api_url}: {reason}") from None


def quiet_on_closed_pipe(
    run: Callable[[argparse.Namespace], int],
) -> Callable[[argparse.Namespace], int]:
    """Output read by a command that stops early (`| head`) ends without a traceback."""

    @functools.wraps(run)
    def quietly(args: argparse.Namespace) -> int:
        try:
            status = run(args)
            sys.stdout.flush()
            return status
        except BrokenPipeError:
            # Python would fail again flushing stdout at exit: point it at nothing.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 141  # as a shell reports a command ended by SIGPIPE

    return quietly

"""Environment → one settings object, read once.

Every variable is named in docs/reference/settings.md. The process environment is
read over a `.env` file in the working directory (what `specbridge setup`
writes, read with python-dotenv as compose reads it): a variable set in the
environment wins. A malformed value raises
SettingsError with a one-line message naming the variable, so `specbridge`
can print it and exit instead of failing later in a worker.
"""

from __future__ import annotations

import os
import pwd
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from urllib.parse import urlparse

from cryptography.fernet import Fernet
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from dotenv import dotenv_values
from dotenv.parser import Original, parse_stream
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from storage.db import configure_pool

DEFAULT_DATABASE_URL = "sqlite:///specbridge.db"
DEFAULT_GITHUB_API_URL = "https://api.github.com"
LOG_FORMATS = ("text", "json")
DEFAULT_PORT = 8000
ENV_FILE = ".env"


class SettingsError(ValueError):
    """A setting from the environment is missing or malformed."""


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    redis_url: str | None = None
    github_api_url: str = DEFAULT_GITHUB_API_URL
    github_app_id: int | None = None
    github_private_key: str | None = None
    github_webhook_secret: str | None = None
    github_token: str | None = None
    # The App's slug: events its bot account (`<slug>[bot]`) caused are not acted on twice.
    github_app_slug: str | None = None
    agents_file: Path | None = None
    # A person's token that may assign issues to GitHub's Copilot coding agent
    # (GitHub takes that only from a user token, never from an App's). Not in repr.
    agent_user_token: str | None = field(default=None, repr=False)
    # The account agents run as when the bot runs as root, so they cannot read
    # the bot's memory, environment or files (unset: "nobody").
    agent_user: str | None = None
    # GitHub asks integrators to leave a second between content-creating
    # requests; a GitHub Enterprise Server (or a test double) may not need it.
    github_write_interval: float = 1.0
    # GitHub's content budget per installation: (items, seconds) windows.
    github_content_limits: tuple[tuple[int, float], ...] = ((80, 60.0), (500, 3600.0))
    # A running agent task writes a heartbeat this often; one silent for six
    # beats has lost its worker and is queued again.
    task_heartbeat_seconds: float = 5.0
    # "text" (one readable line per record) or "json" (one JSON object per line).
    log_format: str = "text"
    # Finished deliveries older than this are pruned by the periodic chores (0: kept forever).
    delivery_retention_days: int = 30
    # Opens the status page at / (unset: the page is off).
    status_token: str | None = None
    # Where `specbridge serve` listens when --port is not given (PORT, as platforms set it).
    port: int = DEFAULT_PORT
    # Proxies in front of `serve` whose X-Forwarded-* headers are believed (0: none).
    proxy_hops: int = 0
    # Where a delivery waits when the database cannot store it and there is no
    # Redis (unset: beside the SQLite database, or the working directory).
    spool_dir: Path | None = None
    # A delivery being processed is held this long past its worker's last beat
    # (renewed every third of it); a dead worker's delivery runs again after it.
    delivery_lease_seconds: float = 40.0
    # How often GitHub's record of the App's webhook deliveries is read for
    # failed ones to redeliver (0: never). As an App only.
    redeliver_seconds: float = 300.0
    # How often each repository's default branch head is compared with the one
    # whose spec files were synced last (0: never).
    head_check_seconds: float = 900.0
    # Tasks' progress goes back into spec files once for the changes of this many seconds.
    write_back_seconds: float = 60.0
    # The App's OAuth client (its settings page, "Client ID" and a client secret): a person
    # authorizes the App with them (`specbridge setup --agent-user`), and their token is renewed.
    github_client_id: str | None = None
    github_client_secret: str | None = field(default=None, repr=False)
    # The key the stored person's token is encrypted with (Fernet; `specbridge setup` makes one).
    secret_key: str | None = field(default=None, repr=False)
    # Agent runs one installation may have at once (0: no cap): SPECBRIDGE_MAX_PARALLEL.
    max_parallel_per_installation: int = 0
    # PostgreSQL connections each engine of a process keeps open, and how many more it
    # opens while busy (closed once returned); docs/performance.md counts them.
    database_pool_size: int = 5
    database_max_overflow: int = 10

    @property
    def embedded_queue(self) -> bool:
        """Without Redis, jobs run inside the serving process."""
        return self.redis_url is None

    @property
    def spool_directory(self) -> Path:
        """SPECBRIDGE_SPOOL_DIR, else the SQLite database's folder, else the working directory."""
        if self.spool_dir is not None:
            return self.spool_dir
        url = make_url(self.database_url)
        if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
            return Path(url.database).resolve().parent
        return Path.cwd()

    @property
    def github_web_url(self) -> str:
        """Where people see what the API serves: github.com, an Enterprise Server, or a double."""
        return web_url_for(self.github_api_url)

    @property
    def uses_app_auth(self) -> bool:
        return self.github_app_id is not None and self.github_private_key is not None


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Settings from environ; without one, from `.env` overlaid by the process environment."""
    env = {**read_env_file(Path(ENV_FILE)), **os.environ} if environ is None else environ
    settings = Settings(
        database_url=_database_url(env.get("DATABASE_URL") or DEFAULT_DATABASE_URL),
        redis_url=_redis_url(env.get("REDIS_URL") or None),
        github_api_url=_http_url(
            "GITHUB_API_URL", env.get("GITHUB_API_URL") or DEFAULT_GITHUB_API_URL
        ),
        github_app_id=_app_id(env.get("GITHUB_APP_ID") or None),
        github_private_key=_private_key(env),
        github_webhook_secret=env.get("GITHUB_WEBHOOK_SECRET") or None,
        github_token=env.get("GITHUB_TOKEN") or None,
        github_app_slug=env.get("GITHUB_APP_SLUG") or None,
        agents_file=_existing_file("SPECBRIDGE_AGENTS", env.get("SPECBRIDGE_AGENTS") or None),
        agent_user_token=env.get("SPECBRIDGE_AGENT_USER_TOKEN") or None,
        agent_user=_account("SPECBRIDGE_AGENT_USER", env.get("SPECBRIDGE_AGENT_USER") or None),
        github_write_interval=_seconds(
            "GITHUB_WRITE_INTERVAL", env.get("GITHUB_WRITE_INTERVAL") or "1.0"
        ),
        github_content_limits=_content_limits(env.get("GITHUB_CONTENT_LIMITS") or "80/60,500/3600"),
        task_heartbeat_seconds=_seconds(
            "SPECBRIDGE_HEARTBEAT_SECONDS", env.get("SPECBRIDGE_HEARTBEAT_SECONDS") or "5"
        ),
        log_format=_log_format(env.get("SPECBRIDGE_LOG_FORMAT") or "text"),
        delivery_retention_days=_count(
            "SPECBRIDGE_DELIVERY_RETENTION_DAYS",
            env.get("SPECBRIDGE_DELIVERY_RETENTION_DAYS") or "30",
        ),
        status_token=env.get("SPECBRIDGE_STATUS_TOKEN") or None,
        port=_port(env.get("PORT") or str(DEFAULT_PORT)),
        proxy_hops=_count("SPECBRIDGE_PROXY_HOPS", env.get("SPECBRIDGE_PROXY_HOPS") or "0"),
        spool_dir=Path(env["SPECBRIDGE_SPOOL_DIR"]) if env.get("SPECBRIDGE_SPOOL_DIR") else None,
        delivery_lease_seconds=_positive_seconds(
            "SPECBRIDGE_DELIVERY_LEASE_SECONDS",
            env.get("SPECBRIDGE_DELIVERY_LEASE_SECONDS") or "40",
        ),
        redeliver_seconds=_seconds(
            "SPECBRIDGE_REDELIVER_SECONDS", env.get("SPECBRIDGE_REDELIVER_SECONDS") or "300"
        ),
        head_check_seconds=_seconds(
            "SPECBRIDGE_HEAD_CHECK_SECONDS", env.get("SPECBRIDGE_HEAD_CHECK_SECONDS") or "900"
        ),
        write_back_seconds=_seconds(
            "SPECBRIDGE_WRITE_BACK_SECONDS", env.get("SPECBRIDGE_WRITE_BACK_SECONDS") or "60"
        ),
        github_client_id=env.get("GITHUB_CLIENT_ID") or None,
        github_client_secret=env.get("GITHUB_CLIENT_SECRET") or None,
        secret_key=_secret_key(env.get("SPECBRIDGE_SECRET_KEY") or None),
        max_parallel_per_installation=_count(
            "SPECBRIDGE_MAX_PARALLEL", env.get("SPECBRIDGE_MAX_PARALLEL") or "0"
        ),
        database_pool_size=_pool_size(env.get("DATABASE_POOL_SIZE") or "5"),
        database_max_overflow=_count(
            "DATABASE_MAX_OVERFLOW", env.get("DATABASE_MAX_OVERFLOW") or "10"
        ),
    )
    # The engines this process creates use them (storage/db.py).
    configure_pool(settings.database_pool_size, settings.database_max_overflow)
    return settings


def _pool_size(value: str) -> int:
    size = _count("DATABASE_POOL_SIZE", value)
    if size == 0:
        raise SettingsError("DATABASE_POOL_SIZE must be 1 or more (0 would keep none open)")
    return size


def web_url_for(api_url: str) -> str:
    """https://api.github.com → https://github.com; https://ghe.example/api/v3 → https://ghe.example."""
    if api_url == DEFAULT_GITHUB_API_URL:
        return "https://github.com"
    return api_url.removesuffix("/api/v3")


def api_url_for(web_url: str) -> str:
    """The other way: https://github.com → its API; an Enterprise Server's is under /api/v3."""
    web_url = web_url.rstrip("/")
    if urlparse(web_url).netloc == "github.com":
        return DEFAULT_GITHUB_API_URL
    return f"{web_url}/api/v3"


@cache
def get_settings() -> Settings:
    """The process-wide settings; tests build their own with load_settings()."""
    return load_settings()


def _database_url(value: str) -> str:
    try:
        url = make_url(value)
    except ArgumentError:
        raise SettingsError(
            f"DATABASE_URL is not a database URL: {value!r} "
            "(expected e.g. sqlite:///specbridge.db or postgresql://user@host/db)"
        ) from None
    # SQLAlchemy's default PostgreSQL driver is psycopg2; we ship psycopg 3.
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    return url.render_as_string(hide_password=False)


def _redis_url(value: str | None) -> str | None:
    if value is None:
        return None
    if urlparse(value).scheme not in ("redis", "rediss", "unix"):
        raise SettingsError(
            f"REDIS_URL is not a Redis URL: {value!r} (expected e.g. redis://127.0.0.1:6379/0)"
        )
    return value


def _http_url(name: str, value: str) -> str:
    parsed = urlparse(value)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise SettingsError(f"{name} is not an http(s) URL: {value!r}")
    return value.rstrip("/")


def _app_id(value: str | None) -> int | None:
    if value is None:
        return None
    if not value.strip().isdigit():
        raise SettingsError(f"GITHUB_APP_ID must be a number, got {value!r}")
    return int(value)


def _private_key(env: Mapping[str, str]) -> str | None:
    key = env.get("GITHUB_PRIVATE_KEY") or None
    path = env.get("GITHUB_PRIVATE_KEY_PATH") or None
    if key is None and path is not None:
        key_file = _existing_file("GITHUB_PRIVATE_KEY_PATH", path)
        key = key_file.read_text() if key_file else None
    if key is None:
        return None
    try:
        load_pem_private_key(key.encode(), password=None)
    except (ValueError, TypeError):
        name = "GITHUB_PRIVATE_KEY" if env.get("GITHUB_PRIVATE_KEY") else "GITHUB_PRIVATE_KEY_PATH"
        raise SettingsError(
            f"{name} is not a PEM private key without a passphrase "
            "(the .pem file GitHub gives for the App)"
        ) from None
    return key


def _secret_key(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        Fernet(value.encode())
    except ValueError:
        raise SettingsError(
            "SPECBRIDGE_SECRET_KEY is not a key specbridge made (32 bytes, url-safe base64): "
            "remove it and run `specbridge setup --agent-user` to make one"
        ) from None
    return value


def _port(value: str) -> int:
    port = _count("PORT", value)
    if not 0 < port < 65536:
        raise SettingsError(f"PORT must be a TCP port (1-65535), got {value!r}")
    return port


def _count(name: str, value: str) -> int:
    if not value.strip().isdigit():
        raise SettingsError(f"{name} must be a whole number, got {value!r}")
    return int(value)


def _seconds(name: str, value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1
    if seconds < 0:
        raise SettingsError(f"{name} must be a number of seconds, got {value!r}")
    return seconds


def _positive_seconds(name: str, value: str) -> float:
    seconds = _seconds(name, value)
    if seconds == 0:
        raise SettingsError(f"{name} must be more than 0 seconds, got {value!r}")
    return seconds


def _log_format(value: str) -> str:
    if value.strip().lower() not in LOG_FORMATS:
        raise SettingsError(f"SPECBRIDGE_LOG_FORMAT must be text or json, got {value!r}")
    return value.strip().lower()


def _content_limits(value: str) -> tuple[tuple[int, float], ...]:
    """ "80/60,500/3600": at most 80 new items a minute and 500 an hour; "none": no budget."""
    if value.strip().lower() == "none":
        return ()
    windows = []
    for part in value.split(","):
        count, _, seconds = part.strip().partition("/")
        try:
            window = (int(count), float(seconds))
        except ValueError:
            window = (0, 0.0)
        if window[0] <= 0 or window[1] <= 0:
            raise SettingsError(
                f"GITHUB_CONTENT_LIMITS must be ITEMS/SECONDS[,...] such as 80/60,500/3600, "
                f"got {value!r}"
            )
        windows.append(window)
    return tuple(windows)


def _account(name: str, value: str | None) -> str | None:
    if value is None:
        return None
    try:
        pwd.getpwnam(value)
    except KeyError:
        raise SettingsError(f"{name} names no account on this machine: {value!r}") from None
    return value


def _existing_file(name: str, value: str | None) -> Path | None:
    if value is None:
        return None
    path = Path(value)
    if not path.is_file():
        raise SettingsError(f"{name} names a file that does not exist: {value}")
    return path


def read_env_file(path: Path) -> dict[str, str]:
    """A `.env` file as python-dotenv reads it (and docker compose's env_file): absent, nothing.

    KEY=VALUE lines, `export ` allowed; double-quoted values may span lines (a PEM
    key pasted as it is) and take \\n escapes; single-quoted values are literal;
    `${NAME}` is expanded in unquoted and double-quoted values, as compose does.
    A line that does not read as a setting is refused, naming it, rather than skipped.
    """
    if not path.is_file():
        return {}
    literal = {}
    with path.open(encoding="utf-8") as stream:
        for binding in parse_stream(stream):
            if binding.error:
                raise SettingsError(_env_line_problem(path, binding.original))
            if binding.key and _SINGLE_QUOTED.match(binding.original.string):
                literal[binding.key] = binding.value  # python-dotenv would expand it; compose not
    values = {**dotenv_values(path, interpolate=True), **literal}
    return {key: value for key, value in values.items() if value is not None}


_SINGLE_QUOTED = re.compile(r"\s*(?:#[^\n]*\n\s*)*(?:export\s+)?[\w.]+\s*=\s*'")


def _env_line_problem(path: Path, original: Original) -> str:
    opened = re.match(r"\s*(?:export\s+)?[\w.]+\s*=\s*([\"'])", original.string)
    if opened:
        return f"{path}:{original.line}: the value's {opened[1]} quote is not closed"
    return f"{path}:{original.line} is not a KEY=VALUE line"

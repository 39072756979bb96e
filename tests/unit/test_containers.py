"""The container files: compose.yaml's shape (and `docker compose config` where Docker has
compose), the Dockerfile's build where an engine runs."""

from __future__ import annotations

import shutil
import subprocess

import pytest
import yaml

from tests.support import REPO_ROOT

COMPOSE = REPO_ROOT / "compose.yaml"


def _docker(*args: str) -> subprocess.CompletedProcess[str] | None:
    if shutil.which("docker") is None:
        return None
    return subprocess.run(
        ["docker", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=600
    )


def test_compose_runs_migrations_once_before_web_and_worker() -> None:
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    assert set(services) == {"migrate", "web", "worker", "db", "redis"}
    assert services["migrate"]["command"] == ["db", "upgrade"]
    assert services["migrate"]["depends_on"]["db"]["condition"] == "service_healthy"
    for name in ("web", "worker"):
        after = services[name]["depends_on"]
        assert after["migrate"]["condition"] == "service_completed_successfully"
        assert after["redis"]["condition"] == "service_healthy"
        environment = services[name]["environment"]
        assert environment["DATABASE_URL"].startswith(
            "postgresql://specbridge:${POSTGRES_PASSWORD:?"
        )
        assert environment["REDIS_URL"].startswith("redis://:${REDIS_PASSWORD:?")
    assert services["web"]["command"][:1] == ["serve"]
    assert "0.0.0.0" in services["web"]["command"]
    assert services["worker"]["command"] == ["worker"]


def test_postgresql_and_redis_need_the_passwords_from_env() -> None:
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    assert services["db"]["environment"]["POSTGRES_PASSWORD"].startswith("${POSTGRES_PASSWORD:?")
    redis = services["redis"]["command"]
    assert redis[redis.index("--requirepass") + 1].startswith("${REDIS_PASSWORD:?")


def test_compose_config_accepts_the_file() -> None:
    version = _docker("compose", "version")
    if version is None or version.returncode != 0:
        pytest.skip("docker compose is not installed")
    result = _docker("compose", "-f", str(COMPOSE), "config", "--quiet")
    assert result is not None and result.returncode == 0, result and result.stderr


def test_image_builds_and_runs_as_another_user_than_root() -> None:
    info = _docker("info")
    if info is None or info.returncode != 0:
        pytest.skip("no Docker engine")
    build = _docker("build", "--quiet", "--tag", "specbridge:test", ".")
    assert build is not None and build.returncode == 0, build and build.stderr
    whoami = _docker("run", "--rm", "--entrypoint", "id", "specbridge:test", "-u")
    assert whoami is not None and whoami.stdout.strip() != "0"
    git = _docker("run", "--rm", "--entrypoint", "git", "specbridge:test", "--version")
    assert git is not None and git.returncode == 0

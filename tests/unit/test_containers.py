"""The container files: compose.yaml's shape (and `docker compose config` where Docker has
compose), the Dockerfile's build where an engine runs."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.cli import main
from bot.settings import load_settings, read_env_file
from tests.support import REPO_ROOT

COMPOSE = REPO_ROOT / "compose.yaml"
DOCKERFILE = REPO_ROOT / "Dockerfile"
AGENTS_IN_WORKER = "/etc/specbridge/agents/agents.yaml"


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


# -- compose as `docker compose` reads it, for the parts specbridge relies on -------------

_VARIABLE = re.compile(r"\$\{(\w+)(?:(:?[-?])([^}]*))?\}")


def interpolate(value: str, variables: dict[str, str]) -> str:
    """${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?error}, ${NAME?error}."""

    def one(match: re.Match[str]) -> str:
        name, operator, argument = match[1], match[2], match[3] or ""
        present = name in variables
        empty = not variables.get(name)
        if operator in (":?", "?") and (not present or (operator == ":?" and empty)):
            raise ValueError(f"{name}: {argument}")
        if operator in (":-", "-") and (not present or (operator == ":-" and empty)):
            return argument
        return variables.get(name, "")

    return _VARIABLE.sub(one, value)


def service(name: str, dotenv: dict[str, str]) -> dict[str, Any]:
    """A service of compose.yaml with its environment as the container gets it: env_file's
    variables, then `environment` (which wins), interpolated from .env."""
    definition = yaml.safe_load(COMPOSE.read_text())["services"][name]
    environment = dict(dotenv) if definition.get("env_file") else {}
    for key, value in (definition.get("environment") or {}).items():
        environment[key] = interpolate(str(value), dotenv)
    volumes = [interpolate(v, dotenv) for v in definition.get("volumes") or []]
    return {**definition, "environment": environment, "volumes": volumes}


@pytest.fixture
def dotenv_with_agents(tmp_path: Path) -> dict[str, str]:
    """What `specbridge setup` writes, and the line for agents in docs/operating/deployment.md."""
    env = tmp_path / ".env"
    env.write_text(
        'GITHUB_APP_ID=7\nGITHUB_WEBHOOK_SECRET="s"\nPOSTGRES_PASSWORD=pg\nREDIS_PASSWORD=rd\n'
        f"SPECBRIDGE_AGENTS={AGENTS_IN_WORKER}\nSPECBRIDGE_AGENTS_DIR={tmp_path / 'agents'}\n"
    )
    (tmp_path / "agents").mkdir()
    (tmp_path / "agents" / "agents.yaml").write_text("default:\n  command: make\n")
    return read_env_file(env)


def test_with_agents_configured_migrate_and_web_start_and_the_worker_has_the_file(
    dotenv_with_agents: dict[str, str],
) -> None:
    """SPECBRIDGE_AGENTS in .env names a file inside the worker: migrate and web, which do
    not have it, are told no file, and start (the settings load as their CLI loads them)."""
    for name in ("migrate", "web"):
        environment = service(name, dotenv_with_agents)["environment"]
        assert environment["SPECBRIDGE_AGENTS"] == ""
        settings = load_settings(environment)  # raised "names a file that does not exist"
        assert settings.agents_file is None and settings.redis_url

    worker = service("worker", dotenv_with_agents)
    assert worker["environment"]["SPECBRIDGE_AGENTS"] == AGENTS_IN_WORKER
    [mount] = worker["volumes"]
    source, target, mode = mount.split(":")
    assert AGENTS_IN_WORKER.startswith(target + "/") and mode == "ro"
    # The worker's file, seen through its mount, is the one on the host.
    on_host = AGENTS_IN_WORKER.replace(target, source)
    settings = load_settings({**worker["environment"], "SPECBRIDGE_AGENTS": on_host})
    assert settings.agents_file == Path(on_host)


def test_compose_needs_the_passwords_setup_writes(dotenv_with_agents: dict[str, str]) -> None:
    without = {k: v for k, v in dotenv_with_agents.items() if k != "POSTGRES_PASSWORD"}
    with pytest.raises(ValueError, match="run specbridge setup"):
        service("web", without)


def test_the_worker_can_start_a_sandbox_and_has_a_healthcheck() -> None:
    worker = yaml.safe_load(COMPOSE.read_text())["services"]["worker"]
    # bwrap's user namespaces, mounts and /proc: what Docker's defaults refuse.
    assert {"seccomp=unconfined", "apparmor=unconfined", "systempaths=unconfined"} <= set(
        worker["security_opt"]
    )
    test = worker["healthcheck"]["test"]
    assert test[0] == "CMD" and test[1:] == ["specbridge", "worker", "--alive"]
    web = yaml.safe_load(COMPOSE.read_text())["services"]["web"]
    assert "security_opt" not in web  # the web process runs no agent


def test_the_worker_healthcheck_finds_a_live_worker_of_this_host(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import os

    from rq import Worker

    from bot.queue import EVENTS, redis_connection, rq_queue
    from bot.settings import get_settings

    redis_url = os.environ.get("REDIS_URL")
    if not redis_url:
        pytest.skip("needs REDIS_URL")
    get_settings.cache_clear()
    connection = redis_connection(redis_url)
    for stale in Worker.all(connection=connection):
        stale.register_death()
    assert main(["worker", "--alive"]) == 1
    worker = Worker([rq_queue(redis_url, EVENTS)], connection=connection)
    worker.register_birth()  # this process, on this host: alive
    try:
        assert main(["worker", "--alive"]) == 0
    finally:
        worker.register_death()
    assert main(["worker", "--alive"]) == 1


# -- the image --------------------------------------------------------------------------


def _instructions() -> list[str]:
    """The Dockerfile's instructions, continuation lines joined."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    return [line.strip() for line in text.splitlines() if line.strip() and line[0] != "#"]


def test_the_image_installs_the_pinned_versions_and_caches_them_apart_from_the_code() -> None:
    lines = _instructions()
    dependencies = next(i for i, line in enumerate(lines) if "-r requirements.txt" in line)
    assert "-c constraints.txt" in lines[dependencies]
    first_source = next(i for i, line in enumerate(lines) if line.startswith("COPY bot"))
    assert dependencies < first_source  # a code change does not rebuild the dependencies
    final = lines[[i for i, line in enumerate(lines) if line.startswith("FROM")][-1] :]
    install = next(line for line in final if "pip install" in line)
    assert "-c /tmp/constraints.txt" in install and "--no-index" in install
    assert not any("fakehub" in line for line in lines if line.startswith("COPY"))


def test_the_image_has_an_init_the_sandbox_and_git_and_is_not_root() -> None:
    lines = _instructions()
    packages = next(line for line in lines if "apt-get install" in line).split()
    assert {"git", "bubblewrap", "tini", "ca-certificates"} <= set(packages)
    assert next(line for line in lines if line.startswith("ENTRYPOINT")) == (
        'ENTRYPOINT ["tini", "--", "specbridge"]'
    )
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users and users[-1] not in ("root", "0")


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

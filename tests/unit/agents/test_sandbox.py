"""The sandbox, proved by a hostile agent (probe.py): what it reaches without one, and with one."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import bot
from bot.agents import sandbox
from bot.agents.sandbox import Limits, Policy, SandboxError
from tests.unit.agents.servers import http_server

# As root, agents run as another account (as bot/agents/isolation.py has it).
AGENT = (65534, 65534) if os.geteuid() == 0 else None
PYTHON = sandbox.SYSTEM_PYTHON
PROBE = Path(__file__).with_name("probe.py")
GIT = {
    "GIT_AUTHOR_NAME": "agent",
    "GIT_AUTHOR_EMAIL": "agent@example.com",
    "GIT_COMMITTER_NAME": "agent",
    "GIT_COMMITTER_EMAIL": "agent@example.com",
}
LIMITS = Limits(timeout=60, memory=1 << 30, processes=256)

needs_bubblewrap = pytest.mark.skipif(
    not sandbox.bubblewrap_works(AGENT), reason="bubblewrap cannot run here"
)


@dataclass
class Task:
    root: Path

    @property
    def clone(self) -> Path:
        return self.root / "repo"

    @property
    def context(self) -> Path:
        return self.root / "context"

    def env(self) -> dict[str, str]:
        return {
            "PATH": "/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "HOME": str(self.root),
            **GIT,
            "SPECBRIDGE_TASK_FILE": str(self.context / "task.md"),
        }

    def run(
        self, *args: str, limits: Limits = LIMITS, network: tuple[str, ...] = ()
    ) -> sandbox.Outcome:
        return sandbox.run(
            [PYTHON, "-I", "probe.py", *args],
            workspace=self.clone,
            context=self.context,
            env=self.env(),
            limits=limits,
            policy=Policy(network=network),
            account=AGENT,
        )


@pytest.fixture
def base() -> Iterator[Path]:
    """A folder the agents' account can enter (pytest's tmp_path is root's alone)."""
    folder = Path(tempfile.mkdtemp(prefix="specbridge-sandbox-test-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def task(base: Path) -> Task:
    return make_task(base, "task")


def make_task(base: Path, name: str) -> Task:
    """A workspace as bot/agents/workspace.py makes one: a clone and its context, the agent's."""
    task = Task(base / name)
    task.clone.mkdir(parents=True)
    task.context.mkdir()
    (task.context / "task.md").write_text("# T1: probe\n")
    git(task.clone, "init", "--quiet")
    (task.clone / "README.md").write_text("hello\n")
    git(task.clone, "add", "README.md")
    git(task.clone, "commit", "--quiet", "-m", "first")
    shutil.copy(PROBE, task.clone / "probe.py")
    task.root.chmod(0o700)
    give(task.root)
    return task


def git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, env={**GIT, "PATH": "/usr/bin:/bin"})


def give(path: Path) -> None:
    """Hand `path` to the agents' account (Workspace.hand_over)."""
    if AGENT is None:
        return
    for item in [path, *path.rglob("*")]:
        os.lchown(item, *AGENT)


@dataclass
class World:
    """What a hostile agent should not reach, around its task."""

    secret: str
    targets: list[str]
    allowed: str  # the model double's host:port, on the agent's list


@pytest.fixture
def world(base: Path, task: Task) -> Iterator[World]:
    secret = uuid.uuid4().hex
    # The bot's working directory, readable to all (as deployments often leave it).
    bot_dir = base / "bot"
    bot_dir.mkdir(mode=0o755)
    with sqlite3.connect(bot_dir / "bot.sqlite") as db:
        db.execute("CREATE TABLE settings (value TEXT)")
        db.execute("INSERT INTO settings VALUES (?)", (secret,))
    (bot_dir / ".env").write_text(f"GITHUB_TOKEN={secret}\n")
    # A home whose git configuration has a credential helper and stored credentials.
    home = base / "home"
    home.mkdir(mode=0o755)
    (home / ".gitconfig").write_text("[credential]\n\thelper = store\n")
    (home / ".git-credentials").write_text(f"https://x:{secret}@github.com\n")
    for item in [*bot_dir.iterdir(), *home.iterdir()]:
        item.chmod(0o644)
    # Another task's workspace, handed to the same account, and a remote it could push to.
    other = make_task(base, "other-task")
    (other.clone / "secret.txt").write_text(secret)
    give(other.root)
    remote = base / "remote.git"
    git(base, "init", "--quiet", "--bare", str(remote))
    give(remote)
    # Another agent's process (same account) and the bot's, with the secret in their environment.
    decoys = [
        subprocess.Popen(["sleep", "120"], env={"SPECBRIDGE_SECRET": secret}, **_as(AGENT)),
        subprocess.Popen(["sleep", "120"], env={"SPECBRIDGE_SECRET": secret}),
    ]
    with (
        _killing(decoys),
        http_server("github") as github,
        http_server("elsewhere") as elsewhere,
        http_server("model") as model,
    ):
        allowed = f"127.0.0.1:{model}"
        targets = ["127.0.0.1:5432", "127.0.0.1:6379", f"127.0.0.1:{github}"]
        targets += [f"127.0.0.1:{elsewhere}", allowed]
        files = [bot_dir / "bot.sqlite", bot_dir / ".env", home / ".gitconfig"]
        files += [home / ".git-credentials", other.clone / "secret.txt", other.root]
        files += [Path.home() / ".gitconfig", Path("/etc/gitconfig"), Path("/etc/shadow")]
        files += [Path(bot.__file__).parent.parent, Path(sys.prefix)]  # code, virtualenv
        config = {
            "secret": secret,
            "files": [str(f) for f in files],
            "targets": targets,
            "fetch": f"http://{allowed}/probe",
            "remote": str(remote),
        }
        (task.clone / "probe-config.json").write_text(json.dumps(config))
        give(task.clone)
        yield World(secret, targets, allowed)


@contextmanager
def _killing(processes: list[subprocess.Popen[bytes]]) -> Iterator[None]:
    try:
        yield
    finally:
        for process in processes:
            process.kill()
            process.wait()


def _as(account: tuple[int, int] | None) -> dict[str, object]:
    return {} if account is None else {"user": account[0], "group": account[1]}


def findings(task: Task) -> dict[str, Any]:
    """What the probe found (printed: `pytest -s` shows it)."""
    text = (task.clone / "probe-findings.json").read_text()
    print(text)
    return json.loads(text)


def test_without_a_sandbox_the_probe_reaches_everything(task: Task, world: World) -> None:
    """`sandbox: none` (supervise.py, as the agents' account: how every agent ran before
    sandboxes): the probe sees this much."""
    command = f"{PYTHON} -I probe.py survey probe-config.json"
    result = sandbox.run(
        command,
        workspace=task.clone,
        context=None,
        env=task.env(),
        limits=Limits(60),
        policy=Policy(backend="none"),
        account=AGENT,
    )
    assert result.exit_code == 0, result.output
    found = findings(task)
    assert found["secrets"]  # another agent's environment
    assert any(path.endswith("other-task/repo/secret.txt") for path in found["read"])
    assert any(path.endswith(".git-credentials") for path in found["read"])
    assert set(world.targets[2:]) <= set(found["reached_directly"])  # github, elsewhere, model
    assert found["pushed"] is True


@needs_bubblewrap
def test_in_the_sandbox_the_probe_reaches_only_its_list(
    task: Task, world: World, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, "bot.agents.egress"):
        outcome = task.run("survey", "probe-config.json", network=(world.allowed,))
    assert outcome.exit_code == 0, outcome.output
    found = findings(task)
    assert found["secrets"] == []
    assert found["read"] == []
    assert found["credential_helpers"] == []
    assert found["reached_directly"] == []
    assert found["reached_by_proxy"] == [world.allowed]
    assert found["fetched"] == "model /probe"
    assert found["pushed"] is False
    assert found["processes_visible"] < 10  # its own only
    for refused in world.targets[:-1]:
        assert f"egress refused: {refused}" in caplog.text


@needs_bubblewrap
def test_with_no_network_the_probe_reaches_nothing(task: Task, world: World) -> None:
    outcome = task.run("survey", "probe-config.json")
    assert outcome.exit_code == 0, outcome.output
    found = findings(task)
    assert found["reached_directly"] == found["reached_by_proxy"] == []
    assert found["fetched"].startswith("failed")


@needs_bubblewrap
def test_a_fork_bomb_ends_the_run_at_the_process_limit(task: Task) -> None:
    started = time.monotonic()
    outcome = task.run("fork-bomb", limits=Limits(timeout=60, processes=64))
    assert (outcome.reason, outcome.hit_limit) == ("processes", True), outcome.output
    assert outcome.exit_code != 0
    assert time.monotonic() - started < 15
    assert not running("probe.py", under=task.clone)


@needs_bubblewrap
@pytest.mark.parametrize("processes", [1, 4])
def test_a_memory_hog_ends_the_run_at_the_memory_limit(task: Task, processes: int) -> None:
    """One process, or four each under the limit (768 MB of 1 GB), all together over it."""
    outcome = task.run("memory-hog", str(processes), limits=Limits(timeout=60, memory=1 << 30))
    assert (outcome.reason, outcome.hit_limit) == ("memory", True), outcome.output
    assert outcome.exit_code != 0
    assert not running("probe.py", under=task.clone)


@needs_bubblewrap
def test_a_process_is_refused_address_space_past_its_limit(task: Task) -> None:
    """RLIMIT_AS: past it, a process's allocations fail, and it ends on its own."""
    outcome = task.run("memory-hog", limits=Limits(timeout=60, address_space=512 << 20))
    assert (outcome.reason, outcome.exit_code) == ("exit", 1)
    assert "MemoryError" in outcome.output
    assert not running("probe.py", under=task.clone)


@needs_bubblewrap
def test_a_timeout_ends_the_whole_sandbox(task: Task) -> None:
    started = time.monotonic()
    outcome = sandbox.run(
        "sleep 977 & sleep 978",
        workspace=task.clone,
        context=None,
        env=task.env(),
        limits=Limits(timeout=1),
        account=AGENT,
    )
    assert (outcome.reason, outcome.hit_limit) == ("timeout", True)
    assert time.monotonic() - started < 10
    assert not running("sleep 977") and not running("sleep 978")


@needs_bubblewrap
def test_a_stop_ends_the_run(task: Task) -> None:
    outcome = sandbox.run(
        "sleep 976",
        workspace=task.clone,
        context=None,
        env=task.env(),
        limits=Limits(timeout=60),
        account=AGENT,
        should_stop=lambda: True,
    )
    assert (outcome.reason, outcome.hit_limit) == ("stopped", False)
    assert not running("sleep 976")


@needs_bubblewrap
def test_the_sandbox_dies_with_its_worker(task: Task) -> None:
    code = (
        "import sys; from pathlib import Path; from bot.agents import sandbox\n"
        f"sandbox.run('sleep 975', workspace=Path({str(task.clone)!r}), context=None,"
        f" env={{'PATH': '/usr/bin:/bin'}}, limits=sandbox.Limits(60), account={AGENT!r})"
    )
    worker = subprocess.Popen([sys.executable, "-c", code], env={**os.environ})
    assert wait_for(lambda: running("sleep 975"))
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    assert wait_for(lambda: not running("sleep 975"))


def test_none_runs_the_command_as_before(task: Task) -> None:
    outcome = sandbox.run(
        "id -u; pwd",
        workspace=task.clone,
        context=None,
        env=task.env(),
        limits=Limits(timeout=30),
        policy=Policy(backend="none"),
        account=AGENT,
    )
    assert (outcome.exit_code, outcome.reason) == (0, "exit")
    assert outcome.output.split() == [str(AGENT[0] if AGENT else os.getuid()), str(task.clone)]


def test_no_sandbox_means_no_agent_unless_the_profile_says_none(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sandbox, "bubblewrap_works", lambda account=None: False)
    with pytest.raises(SandboxError, match="sandbox: none"):
        sandbox.choose_backend(None)
    assert sandbox.choose_backend("none") == "none"


def test_the_sandbox_shows_no_configuration_of_git_npm_or_the_bot(tmp_path: Path) -> None:
    argv = sandbox.bubblewrap_argv("true", tmp_path / "repo", tmp_path / "context")
    shown = {argv[i + 2] for i, arg in enumerate(argv) if arg.endswith("bind-try")}
    assert "/etc/passwd" in shown and "/etc/ssl" in shown
    assert not {"/etc/gitconfig", "/etc/npmrc", "/etc/specbridge", "/etc/shadow"} & shown
    assert not any(str(Path(bot.__file__).parent) in arg for arg in argv)
    assert argv[-4:] == ["--", "/bin/sh", "-c", "true"]


def test_container_argv(tmp_path: Path) -> None:
    argv = sandbox.container_argv(
        "podman",
        ["agent", "--task", "t.md"],
        workspace=tmp_path / "repo",
        context=tmp_path / "context",
        env_names=["PATH", "API_KEY"],
        limits=Limits(timeout=60, memory=2 << 30, processes=100, cpus=1.5),
        policy=Policy(image="agents:1", read_only=("/opt/agent",)),
        account=(1000, 1000),
    )
    line = " ".join(argv)
    assert argv[:3] == ["podman", "run", "--rm"]
    assert "--network none" in line and "--read-only" in line
    assert f"--memory {2 << 30}" in line and "--pids-limit 100" in line and "--cpus 1.5" in line
    assert f"--volume {tmp_path}/repo:{tmp_path}/repo --workdir {tmp_path}/repo" in line
    assert f"--volume {tmp_path}/context:{tmp_path}/context:ro" in line
    assert "--volume /opt/agent:/opt/agent:ro" in line and "--user 1000:1000" in line
    assert "--env API_KEY" in line  # by name: its value is not in the process list
    assert argv[-4:] == ["agents:1", "agent", "--task", "t.md"]


def test_container_argv_with_a_network_list_binds_the_proxy(tmp_path: Path) -> None:
    argv = sandbox.container_argv(
        "docker",
        "agent",
        workspace=tmp_path,
        context=None,
        env_names=[],
        limits=Limits(timeout=60),
        policy=Policy(image="agents:1", network=("api.example.com:443",)),
        proxy_socket=tmp_path / "egress.sock",
    )
    line = " ".join(argv)
    assert f"--volume {tmp_path}/egress.sock:{sandbox.PROXY_SOCKET}" in line
    assert "--env HTTPS_PROXY" in line and "--network none" in line


def test_profiles_name_the_sandbox_and_its_limits() -> None:
    data = {
        "sandbox": "bubblewrap",
        "network": ["api.anthropic.com:443", "127.0.0.1:8080"],
        "read_only": ["/opt/claude"],
        "memory": "2G",
        "address_space": "12G",
        "processes": 256,
    }
    policy = Policy.from_profile(data)
    assert policy.network == ("api.anthropic.com:443", "127.0.0.1:8080")
    assert policy.read_only == ("/opt/claude",)
    limits = Limits.from_profile(600, data)
    assert (limits.memory, limits.address_space) == (2 << 30, 12 << 30)
    assert (limits.processes, limits.timeout) == (256, 600)
    assert Policy.from_profile({"network": "none"}).network == ()


@pytest.mark.parametrize(
    "data",
    [
        {"sandbox": "chroot"},
        {"network": "anywhere"},
        {"network": ["example.com"]},
        {"read_only": ["relative/path"]},
    ],
)
def test_profiles_with_a_wrong_sandbox_are_refused(data: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        Policy.from_profile(data)


@pytest.mark.parametrize(("size", "parsed"), [("512M", 512 << 20), ("2G", 2 << 30), (1024, 1024)])
def test_sizes(size: object, parsed: int) -> None:
    assert sandbox.parse_size(size) == parsed


def running(text: str, under: Path | None = None) -> bool:
    """Whether any process on this machine has `text` in its command line; with `under`,
    only one working in that folder (this test's clone: other tests, beside this one in
    other processes, run probes of their own)."""
    needle = text.replace(" ", "\0").encode()
    for pid in os.listdir("/proc"):
        try:
            if not pid.isdigit() or needle not in Path(f"/proc/{pid}/cmdline").read_bytes():
                continue
            if under is None or Path(os.readlink(f"/proc/{pid}/cwd")).is_relative_to(under):
                return True
        except OSError:
            pass
    return False


def wait_for(condition: object, seconds: float = 10) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.1)
    return False

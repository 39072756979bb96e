"""The real coding agents' CLIs, run by their presets, in the sandbox.

Claude Code and Codex end to end: a spec merged on the GitHub double opens an
issue, a worker runs the CLI (installed from npm at the pinned version) in
bubblewrap, as `nobody` when the tests run as root, its only way out the
egress proxy to the model double, which scripts it to write a file and end
with a final message; the profile's test passes; the pull request "Closes #N"
adds the file, and it and the issue's comment quote the final message.

Gemini CLI and aider: each preset's exact command line, in the sandbox, with
a fake key, gets past its own argument parsing and fails on the credential
(a model API on loopback that answers 401) or on the network (the preset's
real API host, which the egress proxy refuses here).

The npm CLIs are skipped only when npm is not on PATH; one that will not
install fails. aider installs from PyPI into a virtual environment of
/usr/bin/python3 (fakehub/agent_clis.py).
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import tempfile
import textwrap
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from sqlalchemy import select

from bot.agents import sandbox
from bot.agents.presets import PRESETS, model_error
from bot.agents.profiles import AgentProfile, parse_profiles
from fakehub.agent_clis import agent_cli, install_root, readable_copy
from fakehub.model import ModelDouble
from storage.db import session_scope
from storage.models import Task, TaskStatus
from tests.e2e.conftest import StartStack
from tests.e2e.harness import Stack

pytestmark = [pytest.mark.e2e, pytest.mark.heavy]  # 1.6 GB of agent CLIs on the first run
needs_npm = pytest.mark.skipif(shutil.which("npm") is None, reason="npm installs the agents' CLIs")

REPO = "acme/rocket"
CONFIG = "project:\n  owner: acme\n  number: 1\n"
FINAL = "Created hello.txt with a greeting.\nNothing else changed."
KEYS = {
    "ANTHROPIC_API_KEY": "sk-ant-model-double",
    "OPENAI_API_KEY": "sk-model-double",
    "GEMINI_API_KEY": "gemini-model-double",
}
MODELS = {"claude-code": "claude-sonnet-4-5", "codex": "gpt-5.5"}
CODEX_PRICE = {"input": 1.25, "output": 10.0}


@pytest.fixture(scope="module")
def readable() -> Iterator[Path]:
    """A folder every account can enter, for the CLIs' installs: agents run as
    `nobody` under root, and a cache under /root (0700) is closed to them."""
    folder = Path(tempfile.mkdtemp(prefix="specbridge-clis-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def installed(cli: str, readable: Path) -> tuple[Path, Path]:
    """The CLI's program and install folder, where the agents' account can read them."""
    program = readable_copy(agent_cli(cli), readable)
    return program, install_root(program)


def profile(cli: str, readable: Path, **extra: Any) -> dict[str, Any]:
    """A profile by preset, with the CLI's install shown read-only and on PATH."""
    program, root = installed(cli, readable)
    env = {"PATH": f"{program.parent}:/usr/bin:/bin", **extra.pop("env", {})}
    return {"preset": cli, "read_only": [str(root)], "env": env, "timeout": 300, **extra}


# -- Claude Code and Codex, end to end --------------------------------------------------------


def agent_profile(cli: str, readable: Path, model_url: str) -> dict[str, Any]:
    address = model_url.removeprefix("http://")
    if cli == "claude-code":
        # https://code.claude.com/docs/en/env-vars: ANTHROPIC_BASE_URL
        extra: dict[str, Any] = {"env": {"ANTHROPIC_BASE_URL": model_url}, "max_turns": 10}
        extra["env_from"] = ["ANTHROPIC_API_KEY"]
    else:
        # https://developers.openai.com/codex/config-reference: model_providers.<id>
        provider = (
            f'{{name="model double", base_url="{model_url}/v1", '
            'env_key="OPENAI_API_KEY", wire_api="responses"}'
        )
        extra = {
            "args": ["-c", "model_provider=double", "-c", f"model_providers.double={provider}"],
            "price": CODEX_PRICE,  # Codex says its tokens, not their cost
        }
        extra["env_from"] = ["OPENAI_API_KEY"]
    return profile(
        cli,
        readable,
        model=MODELS[cli],
        network=[address],
        test=f'test "$(cat hello.txt)" = "hi from {cli}"',
        **extra,
    )


@pytest.fixture
def model() -> Iterator[ModelDouble]:
    double = ModelDouble()
    double.start()
    yield double
    double.stop()


@needs_npm
@pytest.mark.parametrize("cli", ["claude-code", "codex"])
def test_the_real_cli_works_a_task_into_a_pull_request(
    cli: str,
    start_stack: StartStack,
    tmp_path: Path,
    workspaces: Path,
    readable: Path,
    model: ModelDouble,
) -> None:
    profiles = tmp_path / "agents.yaml"
    profiles.write_text(yaml.safe_dump({cli: agent_profile(cli, readable, model.url)}))
    model.set_script(
        [{"write_file": {"path": "hello.txt", "content": f"hi from {cli}\n"}}, {"text": FINAL}]
    )
    stack = start_stack(SPECBRIDGE_AGENTS=str(profiles), TMPDIR=str(workspaces), **KEYS)
    stack.create_repo({"README.md": "rocket\n", ".github/specbridge.yml": CONFIG})

    stack.commit(
        REPO,
        {
            "specs/hello.yaml": textwrap.dedent(f"""\
            title: Hello
            phase: tasks
            agent: {cli}
            tasks:
              - id: T-1
                title: Say hello
                description: Create hello.txt containing one line, hi from {cli}.
            """)
        },
    )
    stack.settle(timeout=240)

    [issue] = [i for i in stack.issues(REPO) if i["title"].startswith("T-1")]
    assert task_outcome(stack) == (TaskStatus.SUCCEEDED, None), stack.logs()
    [pull] = stack.repo_state(REPO)["pull_requests"]
    assert pull["head"]["ref"] == "specbridge/hello/T-1"
    assert pull["body"].startswith(f"Closes #{issue['number']}")
    assert quoted(FINAL) in pull["body"]
    assert changed_files(stack, pull["head"]["sha"]) == {"hello.txt": "added"}
    assert file_on(stack, pull["head"]["ref"], "hello.txt") == f"hi from {cli}\n"
    comment = stack.comments(REPO, issue["number"])[-1]["body"]
    assert f"#{pull['number']}" in comment and quoted(FINAL) in comment
    if cli == "claude-code":
        assert "The agent's summary (2 turns, $" in comment  # its own count and cost
    run = recorded_run(stack)  # what the run cost, as its CLI said it
    assert (run.preset, run.model, run.exit_reason) == (cli, MODELS[cli], "completed")
    assert run.input_tokens and run.input_tokens > 0
    assert run.output_tokens and run.output_tokens > 0
    if cli == "claude-code":
        assert run.cost_usd and run.cost_usd > 0 and not run.cost_estimated
    else:
        priced = run.input_tokens * 1.25 + run.output_tokens * 10.0
        assert run.cost_usd == pytest.approx(priced / 1e6, abs=1e-6) and run.cost_estimated

    # The CLI reached the model double, through the egress proxy, with the key
    # given to the worker, the model of the profile and the task's prompt.
    assert model.mismatches == [] and model.turns_left == 0
    first = model.requests[0]
    if cli == "claude-code":
        assert first["path"] == "/v1/messages"
        assert first["headers"]["x-api-key"] == KEYS["ANTHROPIC_API_KEY"]
        prompt = json.dumps(first["body"]["messages"])
    else:
        assert first["path"] == "/v1/responses"
        assert first["headers"]["authorization"] == f"Bearer {KEYS['OPENAI_API_KEY']}"
        prompt = json.dumps(first["body"]["input"])
    assert first["body"]["model"] == MODELS[cli]
    assert f"hi from {cli}" in prompt and "T-1" in prompt
    assert stack.mismatches() == []
    # Nothing else was reached for: the egress proxy logs each refusal.
    runners = stack.job_runners()
    assert not [n for n in runners if "egress refused" in (tmp_path / f"{n}.log").read_text()]
    assert list(workspaces.glob("specbridge-task-*")) == []


def task_outcome(stack: Stack) -> tuple[TaskStatus, str | None]:
    with session_scope(stack.database_url) as session:
        task = session.scalars(select(Task)).one()
        return task.status, task.error


def recorded_run(stack: Stack) -> Task:
    with session_scope(stack.database_url) as session:
        task = session.scalars(select(Task)).one()
        session.expunge(task)
        return task


def quoted(text: str) -> str:
    return "\n".join(f"> {line}" for line in text.splitlines())


def changed_files(stack: Stack, head: str) -> dict[str, str]:
    """What the commit changes from main, as the double's REST compare says."""
    response = requests.get(f"{stack.hub}/repos/{REPO}/compare/main...{head}", timeout=30)
    response.raise_for_status()
    return {f["filename"]: f["status"] for f in response.json()["files"]}


def file_on(stack: Stack, branch: str, path: str) -> str:
    import base64

    response = requests.get(
        f"{stack.hub}/repos/{REPO}/contents/{path}", params={"ref": branch}, timeout=30
    )
    response.raise_for_status()
    return base64.b64decode(response.json()["content"]).decode()


# -- Gemini CLI and aider: the preset's command line, failing on the key or the network -------


class RefusingModelApi:
    """A model API on loopback that refuses every key, as Google's and OpenAI's do."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                outer.requests.append(
                    {"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()}}
                )
                body = json.dumps(refusal(self.path)).encode()
                self.send_response(401)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.address = f"127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def refusal(path: str) -> dict[str, Any]:
    """An unknown key's error, as each API words it."""
    if path.startswith("/v1beta/"):  # Google's Gemini API
        return {
            "error": {
                "code": 401,
                "message": "API key not valid. Please pass a valid API key.",
                "status": "UNAUTHENTICATED",
            }
        }
    return {  # OpenAI's
        "error": {
            "message": "Incorrect API key provided: sk-mo****uble.",
            "type": "invalid_request_error",
            "param": None,
            "code": "invalid_api_key",
        }
    }


@pytest.fixture
def refusing() -> Iterator[RefusingModelApi]:
    api = RefusingModelApi()
    yield api
    api.stop()


def agent_account() -> tuple[int, int] | None:
    if os.geteuid() != 0:
        return None
    account = pwd.getpwnam("nobody")
    return account.pw_uid, account.pw_gid


def new_workspace(readable: Path) -> Path:
    return Path(tempfile.mkdtemp(prefix="specbridge-task-", dir=readable))


def run_as_a_worker(
    agent: AgentProfile, root: Path, files: dict[str, str] | None = None
) -> tuple[sandbox.Outcome, Path]:
    """The profile's command in its sandbox, with the environment bot/agents/run.py
    gives it, in a clone (root/repo) of a repository of `files`; the outcome and the clone."""
    checkout, context = root / "repo", root / "context"
    context.mkdir()
    subprocess.run(["git", "init", "--quiet", str(checkout)], check=True)
    for path, text in {"README.md": "rocket\n", **(files or {})}.items():
        (checkout / path).parent.mkdir(parents=True, exist_ok=True)
        (checkout / path).write_text(text)
    git = ["git", "-C", str(checkout), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "--quiet", "-m", "first"], check=True)
    # What the preset's CLI writes and specbridge never commits (Workspace.ignore).
    ignored = PRESETS[agent.preset].ignore if agent.preset else ()
    with (checkout / ".git" / "info" / "exclude").open("a") as exclude:
        exclude.writelines(f"{pattern}\n" for pattern in ignored)
    (context / "task.md").write_text("Create hello.txt containing one line: hi.\n")
    account = agent_account()
    if account is not None:
        for path in [root, *root.rglob("*")]:
            os.lchown(path, *account)
    env = {
        "PATH": "/usr/bin:/bin",
        "LANG": "C.UTF-8",
        **agent.environment(KEYS),
        "HOME": str(root),
        "TMPDIR": str(root),
        "SPECBRIDGE_TASK_FILE": str(context / "task.md"),
        "SPECBRIDGE_TASK_JSON": str(context / "task.json"),
        "SPECBRIDGE_ISSUE": "2",
    }
    assert agent.command is not None
    outcome = sandbox.run(
        agent.command,
        workspace=checkout,
        context=context,
        env=env,
        limits=agent.limits,
        policy=agent.policy,
        account=account,
    )
    return outcome, checkout


def parsed(name: str, data: dict[str, Any], folder: Path) -> AgentProfile:
    path = folder / "agents.yaml"
    path.write_text(yaml.safe_dump({name: data}))
    return parse_profiles(path)[name]


USAGE_WORDS = ("unknown option", "unknown argument", "unrecognized argument", "usage:", "Usage:")


@needs_npm
def test_gemini_runs_as_its_preset_says_and_fails_on_the_credential(
    readable: Path, refusing: RefusingModelApi, tmp_path: Path
) -> None:
    # GOOGLE_GEMINI_BASE_URL (docs/reference/configuration.md) alone picks the
    # "gateway" auth type, which 0.61.0 refuses headless ("Invalid auth method
    # selected."); user settings pick the API key. A repository's settings cannot,
    # the sandbox's user namespace shows root's system settings as nobody's (which
    # Gemini CLI skips as insecure), and it writes to its GEMINI_CLI_HOME: one in
    # the clone's .git, which git does not see.
    root = new_workspace(readable)
    home = root / "repo" / ".git" / "gemini-home"
    settings = {"security": {"auth": {"selectedType": "gemini-api-key"}}}
    data = profile(
        "gemini",
        readable,
        model="gemini-2.5-pro",
        network=[refusing.address],
        env={"GOOGLE_GEMINI_BASE_URL": f"http://{refusing.address}", "GEMINI_CLI_HOME": str(home)},
    )

    outcome, checkout = run_as_a_worker(
        parsed("gemini", data, tmp_path),
        root,
        {".git/gemini-home/.gemini/settings.json": json.dumps(settings)},
    )

    output = outcome.output
    assert outcome.reason == "exit" and outcome.exit_code != 0, output
    assert not any(word in output for word in USAGE_WORDS), output
    assert "overridden" not in output, output  # the approval mode stays yolo: --skip-trust
    assert "API key not valid" in output, output
    assert '"code": 401' in output, output  # in its JSON error object
    # Through the egress proxy, the only way out of the sandbox.
    [request] = refusing.requests[:1]
    assert request["path"].startswith("/v1beta/models/gemini-2.5-pro:")
    assert request["headers"]["x-goog-api-key"] == KEYS["GEMINI_API_KEY"]
    assert git_status(checkout) == ""


def test_aider_runs_as_its_preset_says_and_fails_on_the_credential(
    readable: Path, refusing: RefusingModelApi, tmp_path: Path
) -> None:
    # aider reads the key its model needs (https://aider.chat/docs/config/api-keys.html),
    # and OPENAI_API_BASE for an OpenAI-compatible API (/docs/llms/openai-compat.html).
    data = profile(
        "aider",
        readable,
        model="gpt-4o",
        env_from=["OPENAI_API_KEY"],
        network=[refusing.address],
        env={"OPENAI_API_BASE": f"http://{refusing.address}/v1"},
    )

    outcome, checkout = run_as_a_worker(parsed("aider", data, tmp_path), new_workspace(readable))

    output = outcome.output
    assert outcome.reason == "exit", output  # aider exits 0 all the same
    assert not any(word in output for word in USAGE_WORDS), output
    assert "Main model: gpt-4o" in output, output
    said = " ".join(output.split())  # aider wraps its lines
    assert "AuthenticationError" in said and "Incorrect API key provided" in said, output
    # Which specbridge says, rather than "finished without changing any file" alone.
    refused = model_error("aider", output)
    assert refused is not None and "Incorrect API key provided" in refused, output
    request = refusing.requests[0]
    assert request["path"] == "/v1/chat/completions"
    assert request["headers"]["authorization"] == f"Bearer {KEYS['OPENAI_API_KEY']}"
    # Its chat history and tags cache stay out of what specbridge would commit.
    assert git_status(checkout) == ""


def git_status(checkout: Path) -> str:
    done = subprocess.run(
        ["git", "-C", str(checkout), "-c", f"safe.directory={checkout}", "status", "--porcelain"],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout

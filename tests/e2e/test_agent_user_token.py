"""A person's token that renews itself, end to end against the double: `specbridge setup
--agent-user` runs GitHub's device flow (the test enters the code as the person), the
token is kept encrypted, Copilot is assigned with it; the token expires mid-spec and is
renewed, the next dispatch succeeding; the person revokes the App's grant, and the next
dispatches stop with one comment per issue saying how to authorize again."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import requests
from sqlalchemy import select

from bot.github.user_token import known_user_tokens
from bot.settings import load_settings, read_env_file
from fakehub.oauth import ACCESS_SECONDS, CLIENT_ID, CLIENT_SECRET
from storage.db import session_scope
from storage.models import AgentUserToken, Task, TaskStatus, Ticket
from tests.e2e.conftest import StartStack
from tests.e2e.harness import Stack, wait_until

pytestmark = pytest.mark.e2e

REPO = "acme/rocket"
PROFILES = "copilot:\n  github: {assign: copilot, base: main}\n  timeout: 600\n"
SPEC = textwrap.dedent("""\
    title: Rocket
    phase: tasks
    agent: copilot
    tasks:
      - {id: T-1, title: Fly}
      - {id: T-2, title: Land, depends_on: [T-1]}
      - {id: T-3, title: Refuel, depends_on: [T-2]}
      - {id: T-4, title: Repaint, depends_on: [T-2]}
    """)


def _authorize(stack: Stack, person: str) -> str:
    """`specbridge setup --agent-user`, the person entering the code it prints."""
    setup = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "setup", "--agent-user"],
        cwd=stack.workdir,
        env=stack.environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert setup.stdout is not None
    said = ""
    for line in setup.stdout:
        said += line
        code = re.search(r"enter the code ([A-Z]{4}-[A-Z]{4})", line)
        if code:
            assert f"{stack.hub}/login/device" in line
            stack.admin("POST", "device/approve", user_code=code[1], user=person)
            break
    said += setup.stdout.read()
    assert setup.wait(timeout=60) == 0, said
    return said


def _tasks(stack: Stack, key: str) -> list[TaskStatus]:
    number = _number(stack, key)
    with session_scope(stack.database_url) as session:
        query = select(Task.status).join(Task.ticket).where(Ticket.issue_number == number)
        return list(session.scalars(query.order_by(Task.id)))


def _number(stack: Stack, key: str) -> int:
    return next(i["number"] for i in stack.issues(REPO) if i["title"].startswith(f"{key}:"))


def _copilot_finishes(stack: Stack, number: int) -> None:
    branch = f"copilot/fix-{number}"
    stack.admin(
        "POST", f"repos/{REPO}/commits", branch=branch, files={f"{number}.txt": "done\n"},
        user="Copilot",
    )  # fmt: skip
    pull = stack.admin(
        "POST", f"repos/{REPO}/pulls", head=branch, base="main", title=f"Fix #{number}",
        body=f"Fixes #{number}", user="Copilot",
    )  # fmt: skip
    stack.admin("POST", f"repos/{REPO}/pulls/{pull['number']}/merge", user="maintainer")


def _refreshes(stack: Stack) -> int:
    return sum(r["path"] == "/login/oauth/access_token" for r in stack.state()["requests"])


@pytest.mark.heavy  # a minute of token lifetimes going by; always run by .ci/run
def test_a_persons_token_is_authorized_renewed_and_its_loss_stops_dispatch(
    start_stack: StartStack, tmp_path: Path
) -> None:
    profiles = tmp_path / "agents.yaml"
    profiles.write_text(PROFILES)
    stack = start_stack(
        SPECBRIDGE_AGENTS=str(profiles),
        GITHUB_CLIENT_ID=CLIENT_ID,
        GITHUB_CLIENT_SECRET=CLIENT_SECRET,
    )
    stack.create_repo(
        {".github/specbridge.yml": "project: {owner: acme, number: 1}\n"},
        collaborators={"maintainer": "write"},
        copilot=True,
    )

    # The operator authorizes the App as the maintainer; the key is made and kept in .env.
    said = _authorize(stack, "maintainer")
    assert "made SPECBRIDGE_SECRET_KEY" in said and "authorized" in said
    key = read_env_file(stack.workdir / ".env")["SPECBRIDGE_SECRET_KEY"]
    settings = load_settings({"DATABASE_URL": stack.database_url, "SPECBRIDGE_SECRET_KEY": key})
    [token, _refresh_token] = known_user_tokens(settings)
    with session_scope(stack.database_url) as session:
        row = session.scalars(select(AgentUserToken)).one()
        assert token not in row.access_token  # encrypted at rest
    for name in {*stack.job_runners(), "serve"}:  # they read the new key from .env
        stack.kill(name)
        stack.restart(name)

    stack.commit(REPO, {"specs/rocket.yaml": SPEC})
    stack.settle()
    first = _number(stack, "T-1")
    assert _tasks(stack, "T-1") == [TaskStatus.RUNNING]
    assert stack.issue(REPO, first)["assignees"] == ["Copilot"]
    assert "warnings" not in requests.get(f"{stack.bot}/readyz", timeout=10).json()

    # Eight hours later the token has expired: the next dispatch renews it, once.
    stack.admin("POST", "clock", advance=ACCESS_SECONDS + 60)
    stack.reset_requests()
    _copilot_finishes(stack, first)
    stack.settle()
    second = _number(stack, "T-2")
    assert stack.issue(REPO, second)["assignees"] == ["Copilot"]
    assert _tasks(stack, "T-2")[-1] is TaskStatus.RUNNING
    assert _refreshes(stack) == 1
    assert token not in known_user_tokens(settings)

    # The maintainer revokes the App's grant: both dispatches it unblocks stop.
    [renewed, _] = known_user_tokens(settings)
    revoked = requests.delete(
        f"{stack.hub}/applications/{CLIENT_ID}/grant",
        json={"access_token": renewed},
        auth=(CLIENT_ID, CLIENT_SECRET),
        timeout=10,
    )
    assert revoked.status_code == 204
    _copilot_finishes(stack, second)
    stack.settle()
    for key_ in ("T-3", "T-4"):
        number = _number(stack, key_)
        assert _tasks(stack, key_) == [TaskStatus.FAILED]
        assert stack.issue(REPO, number)["assignees"] == []
        told = [
            c["body"] for c in stack.comments(REPO, number) if "setup --agent-user" in c["body"]
        ]
        assert len(told) == 1, said
    warning = requests.get(f"{stack.bot}/readyz", timeout=10).json()["warnings"]
    assert "specbridge setup --agent-user" in warning["agent_user_token"]

    # Authorized again, /retry hands the issue over.
    _authorize(stack, "maintainer")
    wait_until(
        lambda: "warnings" not in requests.get(f"{stack.bot}/readyz", timeout=10).json(),
        30,
        "the warning to go",
    )
    third = _number(stack, "T-3")
    stack.admin(
        "POST", f"repos/{REPO}/issues/{third}/comments", user="maintainer", body="/retry",
        author_association="COLLABORATOR",
    )  # fmt: skip
    stack.settle()
    assert stack.issue(REPO, third)["assignees"] == ["Copilot"]
    assert stack.mismatches() == []

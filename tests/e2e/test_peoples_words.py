"""People's words kept, and tasks proposed from GitHub, end to end against the double:
a note under a ticket's generated part survives a spec change, an edit inside it is
quoted before it is rewritten, a label and a title a person set stay, an unchanged
re-sync writes nothing; an issue added under the tracking issue becomes a pull request adding
the task, and merging it makes that issue the ticket (no second issue)."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.e2e.harness import Stack, wait_until

pytestmark = pytest.mark.e2e

REPO = "acme/rocket"
CONFIG = "project:\n  owner: acme\n  number: 1\n"
PATH = "specs/launch.yaml"
SPEC = """\
id: launch
title: Launch
phase: tasks
tasks:
  - id: TSK-1
    title: Fuel the rocket
    description: Fill the tanks.
  - id: TSK-2
    title: Count down
    description: From ten.
"""


def tickets(stack: Stack) -> dict[str, dict[str, Any]]:
    issues = stack.issues(REPO)
    return {i["title"].split(":", 1)[0]: i for i in issues if i["title"].startswith("TSK-")}


def file_at(stack: Stack, path: str, ref: str) -> str:
    response = requests.get(
        f"{stack.hub}/repos/{REPO}/contents/{path}",
        params={"ref": ref},
        headers={"Authorization": "token t"},
        timeout=30,
    )
    response.raise_for_status()
    return base64.b64decode(response.json()["content"]).decode()


def edit(stack: Stack, number: int, **fields: str) -> None:
    stack.admin("POST", f"repos/{REPO}/issues/{number}/edit", user="mona", **fields)


def test_peoples_words_stay_and_an_issue_added_under_the_spec_becomes_its_task(
    stack: Stack,
) -> None:
    stack.create_repo({"README.md": "rocket\n", ".github/specbridge.yml": CONFIG})
    stack.commit(REPO, {PATH: SPEC}, "Plan the launch")
    stack.settle()
    first = tickets(stack)
    fuel, count = first["TSK-1"]["number"], first["TSK-2"]["number"]
    tracking = stack.issue_titled(REPO, "Spec: Launch")["number"]

    # People at work on the issues: a note under TSK-1's generated part and a label on
    # it; an edit inside TSK-2's generated part.
    note = "\n\n**mona:** the pad is booked until Friday, fuel on Saturday."
    edit(stack, fuel, body=first["TSK-1"]["body"] + note)
    token = stack.admin("POST", "tokens", user="mona")["token"]
    requests.post(
        f"{stack.hub}/repos/{REPO}/issues/{fuel}/labels",
        json={"labels": ["needs-pad"]},
        headers={"Authorization": f"token {token}"},
        timeout=30,
    ).raise_for_status()
    edited = first["TSK-2"]["body"].replace("From ten.", "From ten, slowly. Ask ground first.")
    edit(stack, count, body=edited, title="TSK-2: Count down (hold at T-10)")
    stack.settle()

    # The spec changes both tasks.
    stack.reset_requests()
    changed = SPEC.replace("Fill the tanks.", "Fill the tanks with LOX, then RP-1.")
    changed = changed.replace("From ten.", "From twenty.")
    stack.commit(REPO, {PATH: changed}, "Detail the launch")
    stack.settle()
    now = tickets(stack)
    assert "Fill the tanks with LOX, then RP-1." in now["TSK-1"]["body"]
    assert now["TSK-1"]["body"].endswith(note)  # the note survived
    assert "needs-pad" in now["TSK-1"]["labels"]  # the label stayed
    assert "specbridge" in now["TSK-1"]["labels"]
    assert "From twenty." in now["TSK-2"]["body"]
    assert now["TSK-2"]["title"] == "TSK-2: Count down (hold at T-10)"  # the spec kept it
    assert "Ask ground first." not in now["TSK-2"]["body"]
    [quote] = [c for c in stack.comments(REPO, count) if "Ask ground first." in c["body"]]
    assert "> From ten, slowly. Ask ground first." in quote["body"]
    assert not any("Ask ground first." in c["body"] for c in stack.comments(REPO, fuel))
    # The quote was posted before the part was rewritten: the edits that quote nobody
    # first, then the quote, then the quoted issue's rewrite.
    mutations = [m for r in stack.state()["requests"] for m in r.get("mutations") or []]
    assert mutations[mutations.index("addComment") :][:2] == ["addComment", "updateIssue"]

    # The same spec again (a comment added): nothing read, nothing written.
    stack.reset_requests()
    stack.commit(REPO, {PATH: "# the launch\n" + changed}, "A comment")
    stack.settle()
    assert stack.writes() == []

    # The spec renames TSK-2: now the spec's title wins over the person's.
    renamed = changed.replace("title: Count down", "title: Count down from twenty")
    stack.commit(REPO, {PATH: renamed}, "Rename the countdown")
    stack.settle()
    assert stack.issue(REPO, count)["title"] == "TSK-2: Count down from twenty"

    # A person adds an issue of theirs under the tracking issue: a pull request adds
    # the task to the spec file.
    issue = stack.admin(
        "POST",
        f"repos/{REPO}/issues",
        user="mona",
        title="Check the weather",
        body="Winds above 20 knots scrub the launch.",
    )
    before = {i["number"] for i in stack.issues(REPO)}
    stack.admin(
        "POST",
        f"repos/{REPO}/issues/{tracking}/sub_issues",
        user="mona",
        sub_issue_number=issue["number"],
    )
    stack.settle()
    branch = f"specbridge/add-task/launch/issue-{issue['number']}"
    [pull] = [p for p in stack.repo_state(REPO)["pull_requests"] if p["head"]["ref"] == branch]
    assert pull["base"]["ref"] == "main" and f"#{issue['number']}" in pull["body"]
    proposed = file_at(stack, PATH, branch)
    assert proposed.endswith(
        '  - id: TSK-3\n    title: "Check the weather"\n'
        f'    description: "Proposed in #{issue["number"]}."\n'
    )
    said = stack.comments(REPO, issue["number"])
    assert any(f"#{pull['number']}" in c["body"] and "TSK-3" in c["body"] for c in said)

    # Merged: that issue is the task's ticket, written as one; no issue is opened.
    stack.admin("POST", f"repos/{REPO}/pulls/{pull['number']}/merge", user="mona")
    stack.settle()
    assert {i["number"] for i in stack.issues(REPO)} == before
    adopted = stack.issue(REPO, issue["number"])
    assert adopted["title"] == "TSK-3: Check the weather"
    assert adopted["body"].startswith("Winds above 20 knots scrub the launch.\n\n")
    assert "<!-- specbridge: spec=launch task=TSK-3 -->" in adopted["body"]
    assert adopted["parent"] == tracking and adopted["state"] == "open"
    assert "specbridge" in adopted["labels"]
    wait_until(lambda: stack.board(REPO).get(issue["number"]) == "Backlog", 30, "its card")
    assert stack.mismatches() == []


HERE = Path(__file__).parent.parent / "unit/specs/fixtures"
FEATURE = "specs/001-photo-albums/"
KIRO = ".kiro/specs/user-authentication/"


def test_tasks_proposed_on_native_specs_are_written_as_the_tools_write_them(
    stack: Stack,
) -> None:
    files = {FEATURE + p.name: p.read_text() for p in (HERE / "spec-kit" / FEATURE).iterdir()}
    files |= {KIRO + p.name: p.read_text() for p in (HERE / "kiro" / KIRO).iterdir()}
    stack.create_repo({"README.md": "rocket\n", ".github/specbridge.yml": CONFIG})
    stack.commit(REPO, files, "Plan albums and sign-in")
    stack.settle()
    albums = stack.issue_titled(REPO, "Spec: Photo albums")["number"]
    auth = stack.issue_titled(REPO, "Spec: User authentication")["number"]
    wire = next(i for i in stack.issues(REPO) if i["title"].startswith("TASK-4:"))

    # /add-task on the spec-kit feature's tracking issue, by its owner.
    stack.admin(
        "POST",
        f"repos/{REPO}/issues/{albums}/comments",
        user="mona",
        body="/add-task Export an album as a zip",
        author_association="OWNER",
    )
    # Kiro's TASK-4 taken out of its tracking issue by a person.
    stack.admin(
        "DELETE",
        f"repos/{REPO}/issues/{auth}/sub_issues",
        user="mona",
        sub_issue_number=wire["number"],
    )
    stack.settle()
    pulls = {p["head"]["ref"]: p for p in stack.repo_state(REPO)["pull_requests"]}
    add = pulls["specbridge/add-task/001-photo-albums/T016"]
    remove = pulls["specbridge/remove-task/user-authentication/TASK-4"]
    tasks_md = file_at(stack, FEATURE + "tasks.md", add["head"]["ref"])
    assert "- [ ] T015 Run quickstart.md validation\n- [ ] T016 Export an album as a zip\n" in (
        tasks_md
    )
    kiro_md = file_at(stack, KIRO + "tasks.md", remove["head"]["ref"])
    assert "4. Wire the sign-up" not in kiro_md and "- [ ] 3.2 Sign out everywhere" in kiro_md
    assert any(f"#{add['number']}" in c["body"] for c in stack.comments(REPO, albums))
    assert any(f"#{remove['number']}" in c["body"] for c in stack.comments(REPO, wire["number"]))

    # Merged: T016 gets its issue; TASK-4's issue closes as not planned.
    before = len(stack.issues(REPO))
    stack.admin("POST", f"repos/{REPO}/pulls/{add['number']}/merge", user="mona")
    stack.settle()
    stack.admin("POST", f"repos/{REPO}/pulls/{remove['number']}/merge", user="mona")
    stack.settle()
    issues = stack.issues(REPO)
    assert len(issues) == before + 1
    assert [i["title"] for i in issues[before:]] == ["T016: Export an album as a zip"]
    gone = stack.issue(REPO, wire["number"])
    assert (gone["state"], gone["state_reason"]) == ("closed", "not_planned")
    assert stack.mismatches() == []

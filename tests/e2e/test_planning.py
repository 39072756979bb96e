"""From an idea to tasks, end to end on the double, with a `command:` planner (a small
script that writes each phase of a YAML spec, and asks when the idea names no colour):
`/specify` on an issue → a question on the issue → an answer and `/specify continue` →
the requirements pull request → merged → `/plan` → the design pull request → merged →
`/tasks` → the tasks pull request → merged → one issue per task on the board, under the
idea's issue, now the spec's tracking issue. A reader's `/specify` is refused, and a
reader's words never reach the planner."""

from __future__ import annotations

import base64
import textwrap
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import select

from storage.db import session_scope
from storage.models import PlanningRun, PlanningStatus, Spec
from tests.e2e.conftest import StartStack
from tests.e2e.harness import Stack

pytestmark = pytest.mark.e2e

REPO = "acme/rocket"
SPEC = "specs/launch-button.yaml"
PEOPLE = {"mona": "write", "reader": "read"}
CONFIG = "project: {owner: acme, number: 1}\nplanner: planner\n"
INSTRUCTIONS = "Keep every spec short: one screen.\n"

# The planner: asks which colour until someone said one; then writes the spec at the
# phase it is asked for, with what it was told as YAML comments (so the test reads it).
PLANNER = textwrap.dedent("""\
    import os, pathlib, re
    phase = os.environ["SPECBRIDGE_PHASE"]
    path = pathlib.Path(os.environ["SPECBRIDGE_SPEC_PATH"])
    task = pathlib.Path(os.environ["SPECBRIDGE_TASK_FILE"]).read_text()
    if "blue" not in task.lower():
        pathlib.Path(os.environ["SPECBRIDGE_QUESTIONS"]).write_text(
            "Which colour should the button be?\\n")
        print("I have a question.")
        raise SystemExit
    title = re.search("\\u201c(.+)\\u201d", task)[1]
    spec = f"id: {path.stem}\\ntitle: {title}\\nphase: {phase}\\nagent: manual\\n"
    spec += "context: |\\n  The rocket has no launch button today.\\n"
    spec += "requirements:\\n  - id: REQ-1\\n"
    spec += "    text: WHEN a person presses the blue button THE SYSTEM SHALL launch\\n"
    spec += "    acceptance:\\n      - id: AC-1\\n        text: The rocket leaves the pad\\n"
    if phase != "requirements":
        spec += "design: |\\n  One blue button, one handler.\\n"
    if phase == "tasks":
        spec += "tasks:\\n  - {id: TSK-1, title: Add the button, requirements: [REQ-1]}\\n"
        spec += "  - {id: TSK-2, title: Wire the launch, depends_on: [TSK-1]}\\n"
    told = [line for line in task.splitlines() if "NEEDS CLARIFICATION" not in line]
    spec += "".join(f"# {line}\\n" for line in told)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(spec)
    print(f"Wrote the {phase} of {path.stem}.")
    """)


def _profiles(tmp_path: Path) -> Path:
    profiles = tmp_path / "agents.yaml"
    script = textwrap.indent(PLANNER, "    ")
    profiles.write_text(
        "planner:\n  command: |\n    python3 - <<'PY'\n"
        f"{script}    PY\n  timeout: 60\n  max_revisions: 2\n"
    )
    return profiles


def _say(stack: Stack, number: int, user: str, body: str) -> None:
    association = "COLLABORATOR" if user in PEOPLE else "NONE"
    path = f"repos/{REPO}/issues/{number}/comments"
    stack.admin("POST", path, user=user, body=body, author_association=association)


def _file_at(stack: Stack, path: str, ref: str) -> str:
    response = requests.get(
        f"{stack.hub}/repos/{REPO}/contents/{path}", params={"ref": ref}, timeout=30
    )
    response.raise_for_status()
    return base64.b64decode(response.json()["content"]).decode()


def _open_pull(stack: Stack, title: str) -> dict[str, Any]:
    pulls = stack.repo_state(REPO)["pull_requests"]
    [pull] = [p for p in pulls if p["title"] == title and p["state"] == "open"]
    return pull


def _merge(stack: Stack, number: int) -> None:
    stack.admin("POST", f"repos/{REPO}/pulls/{number}/merge", user="mona")
    stack.settle()


def _last_said(stack: Stack, number: int) -> str:
    return stack.comments(REPO, number)[-1]["body"]


def _runs(stack: Stack) -> list[tuple[str, PlanningStatus]]:
    with session_scope(stack.database_url) as session:
        rows = session.execute(
            select(PlanningRun.phase, PlanningRun.status).order_by(PlanningRun.id)
        )
        return [(phase.value, status) for phase, status in rows]


def test_an_idea_becomes_requirements_design_and_tasks_one_merge_at_a_time(
    start_stack: StartStack, tmp_path: Path, workspaces: Path
) -> None:
    stack = start_stack(SPECBRIDGE_AGENTS=str(_profiles(tmp_path)), TMPDIR=str(workspaces))
    stack.create_repo(
        {"README.md": "rocket\n", "AGENTS.md": INSTRUCTIONS, ".github/specbridge.yml": CONFIG},
        collaborators=PEOPLE,
    )
    idea = stack.admin(
        "POST",
        f"repos/{REPO}/issues",
        user="mona",
        title="Launch button",
        body="The countdown is manual today; people want one button.",
    )["number"]
    stack.settle()

    # On an issue that is not specbridge's, only /specify is heard.
    _say(stack, idea, "mona", "/approve\n/lgtm")
    stack.settle()
    assert stack.comments(REPO, idea)[-1]["body"] == "/approve\n/lgtm"

    # A reader's /specify is refused, with a reply; their words stay out of the prompt.
    _say(stack, idea, "reader", "/specify make it green")
    stack.settle()
    assert "needs write access" in _last_said(stack, idea)
    assert _runs(stack) == []
    _say(stack, idea, "reader", "Make it red, the reader says.")

    # 1. /specify by a writer: the planner asks which colour, on the issue.
    _say(stack, idea, "mona", "/specify a launch button, because counting down by hand is slow")
    stack.settle()
    asked = _last_said(stack, idea)
    assert "The planner has questions before it writes the requirements" in asked
    assert "- Which colour should the button be?" in asked
    assert "`/specify continue`" in asked
    assert _runs(stack) == [("requirements", PlanningStatus.ASKING)]
    assert stack.repo_state(REPO)["pull_requests"] == []
    _say(stack, idea, "mona", "/status")
    stack.settle()
    assert "Planning phase **requirements**" in _last_said(stack, idea)
    assert "asked questions" in _last_said(stack, idea)

    # 2. The answer, then /specify continue: the requirements pull request.
    _say(stack, idea, "mona", "Blue, please.")
    _say(stack, idea, "mona", "/specify continue")
    stack.settle()
    pull = _open_pull(stack, "Spec: Launch button — requirements")
    assert pull["head"]["ref"] == f"specbridge/plan/{idea}-requirements"
    assert f"#{idea}" in pull["body"]
    written = _file_at(stack, SPEC, pull["head"]["ref"])
    assert "phase: requirements" in written and "REQ-1" in written
    assert "Blue, please." in written  # the writer's answer reached the planner
    assert "the reader says" not in written  # the reader's words did not
    assert "/specify continue" not in written  # nor commands
    assert INSTRUCTIONS.strip() in written  # the repository's instructions did
    assert "counting down by hand is slow" in written  # the idea as /specify said it
    said = _last_said(stack, idea)
    assert f"#{pull['number']}" in said and "merge it and this issue becomes" in said

    # 3. Merged: the idea's issue is the spec's tracking issue; /plan starts the design.
    _merge(stack, pull["number"])
    assert "`/plan` here starts the design" in _last_said(stack, idea)
    assert stack.board_history(REPO, idea) == ["Analyzing"]  # the idea's card, while planned
    with session_scope(stack.database_url) as session:
        spec = session.scalars(select(Spec)).one()
        assert (spec.path, spec.phase.value, spec.tracking_issue_number) == (
            SPEC,
            "requirements",
            idea,
        )
    _say(stack, idea, "mona", "/tasks")
    stack.settle()
    refused = _last_said(stack, idea)
    assert "Nothing runs: the tasks follow the design" in refused
    assert "phase `requirements`" in refused
    _say(stack, idea, "mona", "/plan")
    stack.settle()
    pull = _open_pull(stack, "Spec: Launch button — design")
    written = _file_at(stack, SPEC, pull["head"]["ref"])
    assert "phase: design" in written and "One blue button" in written
    assert "Written before: `specs/launch-button.yaml`" in written  # the requirements

    # 4. Merged: /tasks starts the tasks; merged, one issue per task under the idea's.
    _merge(stack, pull["number"])
    assert "`/tasks` here starts the tasks" in _last_said(stack, idea)
    _say(stack, idea, "mona", "/tasks")
    stack.settle()
    pull = _open_pull(stack, "Spec: Launch button — tasks")
    assert "phase: tasks" in _file_at(stack, SPEC, pull["head"]["ref"])
    _merge(stack, pull["number"])

    issues = {i["title"]: i for i in stack.issues(REPO)}
    assert {"TSK-1: Add the button", "TSK-2: Wire the launch"} <= set(issues)
    tracking = stack.issue(REPO, idea)
    assert tracking["title"] == "Spec: Launch button"
    board = stack.board(REPO)
    tickets = [
        issues["TSK-1: Add the button"]["number"],
        issues["TSK-2: Wire the launch"]["number"],
    ]
    assert all(board.get(n) == "Backlog" for n in tickets)
    assert sorted(tracking["sub_issues"]) == sorted(tickets)
    assert stack.board_history(REPO, idea) == ["Analyzing", "Building"]
    merged = _last_said(stack, idea)
    assert "each task gets its own issue now" in merged
    assert "> The countdown is manual today; people want one button." in merged  # kept
    assert [phase for phase, _ in _runs(stack)] == [
        "requirements",
        "requirements",
        "design",
        "tasks",
    ]
    assert [status for _, status in _runs(stack)][1:] == [PlanningStatus.MERGED] * 3
    assert list(workspaces.glob("specbridge-task-*")) == []
    assert stack.mismatches() == []


# A spec-kit planner: each phase's file of the feature folder, and what it was told.
KIT_PLANNER = textwrap.dedent("""\
    import os, pathlib, re
    phase = os.environ["SPECBRIDGE_PHASE"]
    folder = pathlib.Path(os.environ["SPECBRIDGE_SPEC_PATH"])
    task = pathlib.Path(os.environ["SPECBRIDGE_TASK_FILE"]).read_text()
    title = re.search("\\u201c(.+)\\u201d", task)[1]
    files = {
        "requirements": ("spec.md", f"# Feature Specification: {title}\\n\\n"
            "## Requirements\\n\\n### Functional Requirements\\n\\n"
            "- **FR-001**: System MUST launch the rocket when the button is pressed\\n"),
        "design": ("plan.md", f"# Implementation Plan: {title}\\n\\n## Summary\\n\\n"
            "One button, one handler.\\n"),
        "tasks": ("tasks.md", f"# Tasks: {title}\\n\\n## Phase 1: Setup\\n\\n"
            "- [ ] T001 Add the button in src/button.py\\n"
            "- [ ] T002 Wire the launch in src/launch.py\\n"),
    }
    name, text = files[phase]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text)
    (folder / f"prompt-{phase}.txt").write_text(task)
    print(f"Wrote {name}.")
    """)
KIT_CONFIG = (
    "project: {owner: acme, number: 1}\nformats: [spec-kit]\nplanner: planner\nphases: auto\n"
)
FEATURE = "specs/001-launch-button/"


def _label(stack: Stack, number: int, user: str, remove: bool = False) -> None:
    """A person labels the issue `specbridge: idea` (or takes the label off)."""
    token = stack.admin("POST", "tokens", user=user)["token"]
    labels = f"{stack.hub}/repos/{REPO}/issues/{number}/labels"
    response = requests.request(
        "DELETE" if remove else "POST",
        f"{labels}/specbridge: idea" if remove else labels,
        json=None if remove else {"labels": ["specbridge: idea"]},
        headers={"Authorization": f"token {token}"},
        timeout=30,
    )
    response.raise_for_status()
    stack.settle()


def test_a_labelled_idea_is_planned_in_spec_kit_phase_after_phase_and_revised_on_request(
    start_stack: StartStack, tmp_path: Path, workspaces: Path
) -> None:
    profiles = tmp_path / "agents.yaml"
    script = textwrap.indent(KIT_PLANNER, "    ")
    profiles.write_text(
        "planner:\n  command: |\n    python3 - <<'PY'\n"
        f"{script}    PY\n  timeout: 60\n  max_revisions: 2\n"
    )
    stack = start_stack(SPECBRIDGE_AGENTS=str(profiles), TMPDIR=str(workspaces))
    stack.create_repo(
        {"README.md": "rocket\n", ".github/specbridge.yml": KIT_CONFIG}, collaborators=PEOPLE
    )
    idea = stack.admin(
        "POST", f"repos/{REPO}/issues", user="mona", title="Launch button", body="In blue."
    )["number"]
    stack.settle()

    # The label by a reader starts nothing; by a writer, the requirements.
    _label(stack, idea, "reader")
    assert "planning it needs write access" in _last_said(stack, idea)
    assert _runs(stack) == []
    _label(stack, idea, "mona", remove=True)
    _label(stack, idea, "mona")
    pull = _open_pull(stack, "Spec: Launch button — requirements")
    branch = pull["head"]["ref"]
    assert "FR-001" in _file_at(stack, FEATURE + "spec.md", branch)
    first = _file_at(stack, FEATURE + "prompt-requirements.txt", branch)
    assert "spec-kit's spec template" in first and "In blue." in first

    # /revise on the pull request, then a review that requests changes: one revision
    # each, on the same branch; a third is past max_revisions.
    _say(stack, pull["number"], "mona", "/revise Name the colour in FR-001.")
    stack.settle()
    told = _file_at(stack, FEATURE + "prompt-requirements.txt", branch)
    assert "Name the colour in FR-001." in told
    assert "(revision 1 of 2)" in _last_said(stack, idea)
    stack.admin(
        "POST",
        f"repos/{REPO}/pulls/{pull['number']}/reviews",
        user="mona",
        event="REQUEST_CHANGES",
        body="Say who may press it.",
    )
    stack.settle()
    assert "Say who may press it." in _file_at(stack, FEATURE + "prompt-requirements.txt", branch)
    _say(stack, pull["number"], "mona", "/revise once more")
    stack.settle()
    assert "`max_revisions: 2`" in _last_said(stack, pull["number"])
    assert [p["number"] for p in stack.repo_state(REPO)["pull_requests"]] == [pull["number"]]

    # Merged: with `phases: auto` the design and then the tasks follow by themselves.
    _merge(stack, pull["number"])
    pull = _open_pull(stack, "Spec: Launch button — design")
    assert "One button" in _file_at(stack, FEATURE + "plan.md", pull["head"]["ref"])
    told = _file_at(stack, FEATURE + "prompt-design.txt", pull["head"]["ref"])
    assert f"Written before: `{FEATURE}spec.md`" in told and "FR-001" in told
    _merge(stack, pull["number"])
    pull = _open_pull(stack, "Spec: Launch button — tasks")
    _merge(stack, pull["number"])
    titles = {i["title"]: i["number"] for i in stack.issues(REPO)}
    assert {"T001: Add the button in src/button.py", "T002: Wire the launch in src/launch.py"} <= (
        set(titles)
    )
    assert stack.issue(REPO, idea)["title"] == "Spec: Launch button"
    assert stack.mismatches() == []


# A Kiro planner that names the spec's folder itself, and, told to, also edits the README.
KIRO_PLANNER = textwrap.dedent("""\
    import os, pathlib
    task = pathlib.Path(os.environ["SPECBRIDGE_TASK_FILE"]).read_text()
    folder = pathlib.Path(".kiro/specs/night-theme")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "requirements.md").write_text(
        "# Requirements Document\\n\\n## Introduction\\n\\nA dark theme.\\n\\n"
        "## Requirements\\n\\n### Requirement 1\\n\\n**User Story:** As a night worker, "
        "I want a dark theme, so that my eyes rest.\\n\\n#### Acceptance Criteria\\n\\n"
        "1. WHEN a person picks the dark theme THEN the system SHALL show every page dark\\n")
    if "TOUCH THE README" in task:
        pathlib.Path("README.md").write_text("rewritten by the planner\\n")
    """)


def test_the_planner_may_name_its_new_spec_but_writes_nothing_outside_it(
    start_stack: StartStack, tmp_path: Path, workspaces: Path
) -> None:
    profiles = tmp_path / "agents.yaml"
    script = textwrap.indent(KIRO_PLANNER, "    ")
    profiles.write_text(
        f"planner:\n  command: |\n    python3 - <<'PY'\n{script}    PY\n  timeout: 60\n"
    )
    stack = start_stack(SPECBRIDGE_AGENTS=str(profiles), TMPDIR=str(workspaces))
    # No `planner:`: the operator's profile named planner plans.
    config = "project: {owner: acme, number: 1}\nformats: [kiro]\n"
    stack.create_repo(
        {"README.md": "rocket\n", ".github/specbridge.yml": config}, collaborators=PEOPLE
    )
    idea = stack.admin(
        "POST",
        f"repos/{REPO}/issues",
        user="mona",
        title="Dark mode",
        body="At night. TOUCH THE README too.",
    )["number"]
    stack.settle()

    # Asked to touch the README too: refused whole, nothing pushed, said on the issue.
    _say(stack, idea, "mona", "/specify a dark theme, for people who work at night")
    stack.settle()
    failed = _last_said(stack, idea)
    assert "The planner's run for the requirements failed" in failed
    assert "`README.md`" in failed and "nothing is committed" in failed
    assert stack.repo_state(REPO)["pull_requests"] == []
    assert _runs(stack) == [("requirements", PlanningStatus.FAILED)]

    # Its own folder for a new spec is taken: `.kiro/specs/night-theme/`.
    stack.admin("POST", f"repos/{REPO}/issues/{idea}/edit", user="mona", body="At night.")
    _say(stack, idea, "mona", "/specify continue")
    stack.settle()
    pull = _open_pull(stack, "Spec: Dark mode — requirements")
    assert "Requirement 1" in _file_at(
        stack, ".kiro/specs/night-theme/requirements.md", pull["head"]["ref"]
    )
    assert _file_at(stack, "README.md", pull["head"]["ref"]) == "rocket\n"
    _merge(stack, pull["number"])
    with session_scope(stack.database_url) as session:
        spec = session.scalars(select(Spec)).one()
        assert (spec.path, spec.tracking_issue_number) == (".kiro/specs/night-theme/", idea)

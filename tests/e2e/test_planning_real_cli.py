"""The real Claude Code CLI as the planner, in the sandbox, against the model double:
`/specify` on an issue → Claude Code asks a question (its questions file) → the answer
and `/specify continue` → Claude Code writes the requirements → the pull request
"Spec: … — requirements" holds exactly the spec's file; the prompt it was given
carries the idea, the answer and the repository's instructions."""

from __future__ import annotations

import json
import shutil
import textwrap
from pathlib import Path

import pytest
import yaml
from sqlalchemy import select

from fakehub.model import ModelDouble
from storage.db import session_scope
from storage.models import PlanningRun, PlanningStatus
from tests.e2e.conftest import StartStack
from tests.e2e.harness import Stack
from tests.e2e.test_real_agents import (  # noqa: F401 (fixtures)
    KEYS,
    MODELS,
    changed_files,
    file_on,
    model,
    profile,
    readable,
)

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.heavy,  # the Claude Code CLI, installed from npm
    pytest.mark.skipif(shutil.which("npm") is None, reason="npm installs the agents' CLIs"),
]

REPO = "acme/rocket"
SPEC = "specs/launch-button.yaml"
CONFIG = "project: {owner: acme, number: 1}\nplanner: claude\n"
INSTRUCTIONS = "Requirements in EARS, one screen at most.\n"
QUESTION = "Which colour should the button be?"
REQUIREMENTS = textwrap.dedent("""\
    id: launch-button
    title: Launch button
    phase: requirements
    context: |
      The countdown is manual today.
    requirements:
      - id: REQ-1
        text: WHEN a person presses the blue button THE SYSTEM SHALL launch the rocket
        acceptance:
          - id: AC-1
            text: The rocket leaves the pad within a second
    """)
FINAL = "Wrote the requirements of the launch button: one EARS requirement."


def _say(stack: Stack, number: int, body: str) -> None:
    path = f"repos/{REPO}/issues/{number}/comments"
    stack.admin("POST", path, user="mona", body=body, author_association="COLLABORATOR")
    stack.settle(timeout=240)


def test_claude_code_plans_an_idea_asks_first_then_writes_the_requirements(
    start_stack: StartStack,
    tmp_path: Path,
    workspaces: Path,
    readable: Path,  # noqa: F811
    model: ModelDouble,  # noqa: F811
) -> None:
    address = model.url.removeprefix("http://")
    planner = profile(
        "claude-code",
        readable,
        model=MODELS["claude-code"],
        network=[address],
        max_turns=10,
        env={"ANTHROPIC_BASE_URL": model.url},
        env_from=["ANTHROPIC_API_KEY"],
    )
    profiles = tmp_path / "agents.yaml"
    profiles.write_text(yaml.safe_dump({"claude": planner}))
    model.set_script(
        [
            {"write_file": {"path": ".specbridge-questions.md", "content": f"{QUESTION}\n"}},
            {"text": "I need to know the colour first."},
            {"write_file": {"path": SPEC, "content": REQUIREMENTS}},
            {"text": FINAL},
        ]
    )
    stack = start_stack(SPECBRIDGE_AGENTS=str(profiles), TMPDIR=str(workspaces), **KEYS)
    stack.create_repo(
        {"README.md": "rocket\n", "AGENTS.md": INSTRUCTIONS, ".github/specbridge.yml": CONFIG},
        collaborators={"mona": "write"},
    )
    idea = stack.admin(
        "POST", f"repos/{REPO}/issues", user="mona", title="Launch button", body="One button."
    )["number"]
    stack.settle()

    _say(stack, idea, "/specify a launch button, because counting down by hand is slow")
    asked = stack.comments(REPO, idea)[-1]["body"]
    assert f"- {QUESTION}" in asked and "`/specify continue`" in asked, stack.logs()

    _say(stack, idea, "Blue.")
    _say(stack, idea, "/specify continue")
    with session_scope(stack.database_url) as session:
        runs = session.scalars(select(PlanningRun).order_by(PlanningRun.id)).all()
        assert [r.status for r in runs] == [PlanningStatus.ASKING, PlanningStatus.OPENED], (
            stack.logs()
        )
    [pull] = stack.repo_state(REPO)["pull_requests"]
    assert pull["title"] == "Spec: Launch button — requirements"
    assert changed_files(stack, pull["head"]["sha"]) == {SPEC: "added"}
    assert file_on(stack, pull["head"]["ref"], SPEC) == REQUIREMENTS
    said = stack.comments(REPO, idea)[-1]["body"]
    assert f"#{pull['number']}" in said and FINAL in said  # the planner's own summary

    # Claude Code reached the model double with the planner's prompt: the second run's
    # carries the idea, the answer, its question and the repository's instructions.
    assert model.mismatches == [] and model.turns_left == 0
    second = json.dumps(model.requests[2]["body"]["messages"])
    for told in ("counting down by hand is slow", "Blue.", QUESTION, INSTRUCTIONS.strip()):
        assert json.dumps(told)[1:-1] in second
    assert list(workspaces.glob("specbridge-task-*")) == []
    assert stack.mismatches() == []

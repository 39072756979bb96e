"""The prompt every agent gets: what the task serves, what it builds on, what done
means, the repository's own instructions, and a review's words on a revision."""

from __future__ import annotations

from pathlib import Path

from bot.agents.prompt import build_prompt, read_instructions
from storage.models import (
    IssueState,
    Spec,
    SpecAcceptanceCriterion,
    SpecRequirement,
    SpecTask,
    Task,
    TaskStatus,
    Ticket,
    TicketDependency,
)

URL = "https://github.com/acme/rocket/issues/3"


def _tickets() -> Ticket:
    spec = Spec(key="login", context="Sessions live in Redis.", design="A tokens table.")
    requirement = SpecRequirement(
        key="REQ-1", text="WHEN a user asks THE SYSTEM SHALL email a link", spec=spec
    )
    SpecAcceptanceCriterion(
        key="AC-1", text="The link expires in 15 minutes", requirement=requirement
    )
    SpecRequirement(key="REQ-2", text="Unrelated", spec=spec)
    first = Ticket(
        issue_number=2,
        spec=spec,
        spec_task=SpecTask(key="T-1", title="Store tokens", spec=spec),
        state=IssueState.CLOSED,
        state_reason="completed",
    )
    first.tasks = [Task(id=1, status=TaskStatus.SUCCEEDED, pull_request_number=7)]
    second = Ticket(
        issue_number=3,
        spec=spec,
        spec_task=SpecTask(
            key="T-2",
            title="Email the link",
            description="Use the mailer.",
            requirement_keys=["REQ-1"],
            spec=spec,
        ),
    )
    second.dependencies = [TicketDependency(depends_on=first)]
    return second


def test_the_prompt_carries_the_task_its_requirements_and_what_it_builds_on() -> None:
    prompt = build_prompt(_tickets(), URL, "pytest -q", {})
    text = prompt.markdown
    assert text.startswith("# T-2: Email the link\n\nUse the mailer.")
    assert URL in text
    assert "### REQ-1: WHEN a user asks THE SYSTEM SHALL email a link" in text
    assert "- [ ] AC-1: The link expires in 15 minutes" in text
    assert "Unrelated" not in text  # a requirement the task does not serve
    assert "Sessions live in Redis." in text and "A tokens table." in text
    assert "- #2 T-1: Store tokens, merged in pull request #7" in text
    assert "specbridge runs `pytest -q` after you" in text
    assert ".github/workflows/" in text
    assert prompt.data["depends_on"] == [
        {"issue": 2, "task": "T-1", "title": "Store tokens", "pull_request": 7}
    ]


def test_the_repositorys_instructions_and_a_review_are_added(tmp_path: Path) -> None:
    (tmp_path / "AGENTS.md").write_text("Run make lint.")
    (tmp_path / ".github").mkdir()
    (tmp_path / ".github" / "copilot-instructions.md").write_text("Prefer small functions.")
    instructions = read_instructions(tmp_path)
    assert list(instructions) == ["AGENTS.md", ".github/copilot-instructions.md"]
    text = build_prompt(
        _tickets(), URL, None, instructions, "src/mail.py:12: retry on 4xx"
    ).markdown
    assert "## The repository's instructions (AGENTS.md)\n\nRun make lint." in text
    assert "Prefer small functions." in text
    assert text.rstrip().endswith("src/mail.py:12: retry on 4xx")

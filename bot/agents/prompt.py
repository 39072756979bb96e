"""What an agent is told: one prompt, the same for every preset, and the file
`$SPECBRIDGE_TASK_FILE` for `command:` profiles (with `$SPECBRIDGE_TASK_JSON`).

It carries the task, the requirements it serves with their acceptance
criteria, the spec's context and design, the issue, the tasks it depends on
with their merged pull requests, what "done" means, the repository's own
instructions for agents, and, on a revision, what the reviewers asked.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.agents.tree import read_text
from storage.models import Task, TaskStatus, Ticket

# The repository's instructions for agents, where the common tools keep them.
INSTRUCTION_FILES = ("AGENTS.md", "CLAUDE.md", ".github/copilot-instructions.md")
MAX_INSTRUCTION_CHARS = 20_000


@dataclass
class Prompt:
    markdown: str
    data: dict[str, Any] = field(default_factory=dict)


def build_prompt(
    ticket: Ticket,
    issue_url: str,
    test_command: str | None,
    instructions: dict[str, str],
    review: str | None = None,
    fixes_checks: bool = False,
    hosted: bool = False,
) -> Prompt:
    """The prompt for one run on `ticket`; `instructions`: path → text, from the clone;
    `review`: what a revision is asked (a review's words, a `/revise`, or, `fixes_checks`,
    what the repository's failing checks report); `hosted`: for an agent GitHub runs, which
    opens its own pull request."""
    data = _data(ticket, issue_url, test_command, review)
    sections = [
        f"# {data['task']}: {data['title']}",
        data["description"],
        f"This is issue {issue_url} of the spec `{data['spec']}`.",
        *_requirements(data["requirements"]),
        _section("Context", data["context"]),
        _section("Design", data["design"]),
        *_dependencies(data["depends_on"]),
        _hosted_done(ticket.issue_number) if hosted else _done(test_command),
        *(
            _section(f"The repository's instructions ({path})", text)
            for path, text in instructions.items()
        ),
        _section(
            "What the repository's checks report (this run fixes your pull request)"
            if fixes_checks
            else "What the review asks (this run revises your pull request)",
            review or "",
        ),
    ]
    return Prompt("\n\n".join(s for s in sections if s).strip() + "\n", data)


def read_instructions(checkout: Path) -> dict[str, str]:
    """The repository's agent instructions present in the clone, each cut to a size: only
    regular files, reached without following a link (an earlier agent pushed this branch)."""
    found = {}
    for name in INSTRUCTION_FILES:
        text = read_text(checkout, name, MAX_INSTRUCTION_CHARS * 4)
        if text is not None:
            found[name] = text[:MAX_INSTRUCTION_CHARS]
    return found


def merged_pull_request(ticket: Ticket) -> int | None:
    """The pull request an agent opened for the ticket, once its issue closed as completed."""
    done = [t for t in ticket.tasks if t.status is TaskStatus.SUCCEEDED and t.pull_request_number]
    if not done or ticket.state_reason != "completed":
        return None
    return max(done, key=_newest).pull_request_number


def _newest(task: Task) -> int:
    return task.id


def _data(
    ticket: Ticket, issue_url: str, test_command: str | None, review: str | None
) -> dict[str, Any]:
    task, spec = ticket.spec_task, ticket.spec
    requirements = []
    if spec is not None and task is not None:
        for requirement in spec.requirements:
            if requirement.key in task.requirement_keys and requirement.removed_at is None:
                criteria = [c for c in requirement.acceptance_criteria if c.removed_at is None]
                requirements.append(
                    {
                        "id": requirement.key,
                        "text": requirement.text,
                        "acceptance": [{"id": c.key, "text": c.text} for c in criteria],
                    }
                )
    return {
        "issue": ticket.issue_number,
        "issue_url": issue_url,
        "spec": spec.key if spec else None,
        "task": task.key if task else f"#{ticket.issue_number}",
        "title": task.title if task else "",
        "description": (task.description if task else "") or "",
        "requirements": requirements,
        "context": (spec.context if spec else "") or "",
        "design": (spec.design if spec else "") or "",
        "depends_on": [
            {
                "issue": d.depends_on.issue_number,
                "task": d.depends_on.spec_task.key if d.depends_on.spec_task else None,
                "title": d.depends_on.spec_task.title if d.depends_on.spec_task else "",
                "pull_request": merged_pull_request(d.depends_on),
            }
            for d in ticket.dependencies
        ],
        "test": test_command,
        "review": review,
    }


def _section(heading: str, text: str) -> str:
    return f"## {heading}\n\n{text.strip()}" if text and text.strip() else ""


def _requirements(requirements: list[dict[str, Any]]) -> list[str]:
    if not requirements:
        return []
    lines = ["## Requirements this task serves"]
    for requirement in requirements:
        lines += ["", f"### {requirement['id']}: {requirement['text']}"]
        if requirement["acceptance"]:
            lines += ["", "Acceptance criteria:"]
            lines += [f"- [ ] {c['id']}: {c['text']}" for c in requirement["acceptance"]]
    return ["\n".join(lines)]


def _dependencies(depends_on: list[dict[str, Any]]) -> list[str]:
    if not depends_on:
        return []
    lines = ["## Done before this task, which it builds on"]
    for dependency in depends_on:
        merged = (
            f", merged in pull request #{dependency['pull_request']}"
            if dependency["pull_request"]
            else ""
        )
        lines.append(
            f"- #{dependency['issue']} {dependency['task'] or ''}: {dependency['title']}{merged}"
        )
    return ["\n".join(lines)]


def _hosted_done(issue: int) -> str:
    return "\n".join(
        [
            "## Done means",
            "",
            "- One pull request for this issue, its description naming it with a closing "
            f"keyword (`Fixes #{issue}`): specbridge follows that pull request.",
            "- Do not change anything under `.github/workflows/`.",
        ]
    )


def _done(test_command: str | None) -> str:
    lines = [
        "## Done means",
        "",
        "- The change is made in this working tree. Do not commit, push or open a pull "
        "request: specbridge does, once you finish.",
        "- Do not change anything under `.github/workflows/`.",
    ]
    if test_command:
        lines.append(f"- The tests pass: specbridge runs `{test_command}` after you.")
    lines.append("- End with a short summary of what you changed and why.")
    return "\n".join(lines)

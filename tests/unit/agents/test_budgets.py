"""Budgets that stop spending: a spec's cap and a profile's cap for the day hold a run
back before it starts (a condition of the fleet's admission pass), with one comment;
raising the cap lets it go on."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
import responses
from sqlalchemy.orm import Session

from bot.agents.budget_release import release_budget_holds
from bot.agents.fleet import waits_for
from bot.agents.scheduler import start_waiting
from bot.github import RepositoryGateway, github_client
from bot.repo_config import parse_repo_config
from bot.settings import Settings, load_settings
from bot.steer.commands.budget import raise_budget
from bot.steer.commands.registry import CommandError, Context
from bot.steer.steering import Steering
from storage.models import Repository, Spec, SpecStatus, SpecTask, Task, TaskStatus, Ticket
from tests.support import MOCK_API
from tests.unit.conftest import HeldJob

FULL_NAME = "acme/rocket"
COMMENTS = f"{MOCK_API}/repos/{FULL_NAME}/issues/3/comments"


@pytest.fixture
def settings(db: str, tmp_path: Path, held_jobs: list[HeldJob]) -> Settings:
    agents = tmp_path / "agents.yaml"
    agents.write_text("house:\n  command: make\n  budget: {usd: 10}\n")
    return load_settings(
        {
            "DATABASE_URL": db,
            "GITHUB_TOKEN": "t",
            "GITHUB_API_URL": MOCK_API,
            "GITHUB_WRITE_INTERVAL": "0",
            "SPECBRIDGE_AGENTS": str(agents),
        }
    )


def a_spec(session: Session, budget: dict | None) -> Spec:  # type: ignore[type-arg]
    config, error = parse_repo_config(json.dumps({"budget": budget}).encode())
    assert error is None
    repository = Repository(full_name=FULL_NAME, settings=config.as_dict())
    spec = Spec(
        repository=repository,
        key="rocket",
        path="specs/rocket.yaml",
        title="Rocket",
        phase="tasks",
        status=SpecStatus.PLANNED,
    )
    session.add_all([repository, spec])
    session.commit()
    return spec


def a_run(session: Session, spec: Spec, issue: int, **done: object) -> Task:
    # files of its own: runs of one spec may go side by side (bot/agents/admission.py)
    spec_task = SpecTask(spec=spec, key=f"T{issue}", title="t", position=issue, files=[f"{issue}"])
    ticket = Ticket(repository=spec.repository, spec=spec, spec_task=spec_task, issue_number=issue)
    status = TaskStatus.SUCCEEDED if done else TaskStatus.WAITING
    if done:  # its agent ended when the run did
        done.setdefault("agent_ended_at", done.get("finished_at") or datetime.now(UTC))
    task = Task(ticket=ticket, agent="house", status=status, **done)
    session.add_all([ticket, task])
    session.commit()
    return task


def held_by_budget(session: Session, settings: Settings, task: Task) -> bool:
    """Run a pass of the fleet: whether the waiting task stays waiting."""
    start_waiting(session, settings)
    session.refresh(task)
    return task.status is TaskStatus.WAITING


@responses.activate
def test_the_run_past_the_specs_cap_waits_with_one_comment(
    session: Session, settings: Settings
) -> None:
    spec = a_spec(session, {"usd": 2})
    a_run(session, spec, 1, cost_usd=1.0, finished_at=datetime.now(UTC))
    a_run(session, spec, 2, cost_usd=1.0, finished_at=datetime.now(UTC))
    waiting = a_run(session, spec, 3)
    comment = responses.post(COMMENTS, json={"id": 1}, status=201)

    assert held_by_budget(session, settings, waiting)
    assert held_by_budget(session, settings, waiting)  # another pass: not told twice

    session.refresh(waiting)
    assert waiting.status is TaskStatus.WAITING  # it takes no slot
    assert waiting.budget_hold == "the spec `rocket`: $2.00 of $2.00"
    assert comment.call_count == 1
    said = json.loads(comment.calls[0].request.body)["body"]
    assert "`budget:` in `.github/specbridge.yml`" in said
    assert "`/budget rocket +N`" in said


def test_under_the_cap_the_run_starts(session: Session, settings: Settings) -> None:
    spec = a_spec(session, {"usd": 2, "specs": {"rocket": {"usd": 5, "tokens": 10_000}}})
    a_run(session, spec, 1, cost_usd=3.0, input_tokens=4000, output_tokens=1000)

    assert not held_by_budget(session, settings, a_run(session, spec, 3))


@responses.activate
def test_a_token_cap_holds_too(session: Session, settings: Settings) -> None:
    spec = a_spec(session, {"tokens": 5000})
    a_run(session, spec, 1, input_tokens=4000, output_tokens=1000)
    responses.post(COMMENTS, json={"id": 1}, status=201)

    waiting = a_run(session, spec, 3)
    assert held_by_budget(session, settings, waiting)
    assert "5,000 of 5,000 tokens" in (waiting.budget_hold or "")


@responses.activate
def test_the_profiles_cap_for_the_day_counts_every_repository(
    session: Session, settings: Settings
) -> None:
    spec = a_spec(session, None)
    other = Spec(repository=Repository(full_name="acme/other"), key="o", path="o", title="O")
    session.add(other)
    a_run(session, other, 7, cost_usd=6.0, finished_at=datetime.now(UTC))
    a_run(session, spec, 1, cost_usd=4.0, finished_at=datetime.now(UTC))
    yesterday = datetime(2020, 1, 1, tzinfo=UTC)
    a_run(session, spec, 2, cost_usd=100.0, finished_at=yesterday)  # another day
    comment = responses.post(COMMENTS, json={"id": 1}, status=201)

    waiting = a_run(session, spec, 3)
    assert held_by_budget(session, settings, waiting)
    assert waiting.budget_hold == "the agent profile `house` today: $10.00 of $10.00"
    assert "tomorrow" in json.loads(comment.calls[0].request.body)["body"]


@responses.activate
def test_settings_raising_the_cap_let_the_task_go_on(
    session: Session, settings: Settings, held_jobs: list[HeldJob]
) -> None:
    spec = a_spec(session, {"usd": 1})
    a_run(session, spec, 1, cost_usd=1.5)
    responses.post(COMMENTS, json={"id": 1}, status=201)
    waiting = a_run(session, spec, 3)
    assert held_by_budget(session, settings, waiting)
    assert release_budget_holds(settings) == 0  # nothing changed: still held

    config, _ = parse_repo_config(b"budget: {usd: 5}\n")
    spec.repository.settings = config.as_dict()
    session.commit()

    assert release_budget_holds(settings) == 1
    session.refresh(waiting)
    assert (waiting.status, waiting.budget_hold) == (TaskStatus.QUEUED, None)
    assert [job.args for job in held_jobs if job.name == "run_task"] == [(waiting.id,)]


def command_context(session: Session, settings: Settings, spec: Spec, user: str) -> Context:
    repo = RepositoryGateway(github_client(settings, None), FULL_NAME)
    steering = Steering(session, settings, repo, None)  # type: ignore[arg-type]
    return Context(session, steering, repo, spec.repository, 3, user, spec=spec)


def permission(user: str, role: str) -> None:
    responses.get(
        f"{MOCK_API}/repos/{FULL_NAME}/collaborators/{user}/permission",
        json={"permission": role, "role_name": role, "user": {"login": user}},
    )


@responses.activate
def test_budget_by_a_maintainer_raises_the_cap_and_the_task_goes_on(
    session: Session, settings: Settings, held_jobs: list[HeldJob]
) -> None:
    spec = a_spec(session, {"usd": 2})
    a_run(session, spec, 1, cost_usd=2.0)
    responses.post(COMMENTS, json={"id": 1}, status=201)
    waiting = a_run(session, spec, 3)
    assert held_by_budget(session, settings, waiting)
    permission("mona", "admin")

    said = raise_budget(command_context(session, settings, spec, "mona"), "rocket +$3")

    assert said == (
        "Added $3.00 to the budget of the spec `rocket`: its cap is now $5.00 (spent: $2.00). "
        "1 waiting task(s) go on."
    )
    session.refresh(waiting)
    assert waiting.budget_hold is None
    assert [job.args for job in held_jobs if job.name == "run_task"] == [(waiting.id,)]


@responses.activate
def test_budget_by_a_writer_changes_nothing(session: Session, settings: Settings) -> None:
    spec = a_spec(session, {"usd": 2})
    permission("octocat", "write")

    said = raise_budget(command_context(session, settings, spec, "octocat"), "rocket +300")

    assert "needs admin access" in said and "@octocat has write access" in said
    session.refresh(spec)
    assert spec.budget_extra_usd == 0


@responses.activate
@pytest.mark.parametrize(
    ("args", "said"),
    [
        ("rocket 3", "Say `/budget <spec> \\+N`"),
        ("nope +3", "No spec `nope`"),
        ("rocket +3 tokens", "no tokens cap to raise"),
    ],
)
def test_budget_says_what_it_needs(
    session: Session, settings: Settings, args: str, said: str
) -> None:
    spec = a_spec(session, {"usd": 2})
    permission("mona", "admin")

    with pytest.raises(CommandError, match=said):
        raise_budget(command_context(session, settings, spec, "mona"), args)


@pytest.mark.parametrize(
    "text",
    [b"budget: 5\n", b"budget: {usd: -1}\n", b"budget: {dollars: 3}\n", b"budget: {specs: [a]}\n"],
)
def test_a_budget_that_does_not_fit_is_reported(text: bytes) -> None:
    config, error = parse_repo_config(text)

    assert error is not None and "budget" in error
    assert config.budget == {}


@responses.activate
def test_with_several_workers_a_run_going_counts_as_an_average_run(
    session: Session, settings: Settings, held_jobs: list[HeldJob]
) -> None:
    spec = a_spec(session, {"usd": 2})
    a_run(session, spec, 1, cost_usd=1.0, finished_at=datetime.now(UTC))
    going = a_run(session, spec, 2)
    going.status = TaskStatus.RUNNING
    session.commit()
    responses.post(COMMENTS, json={"id": 1}, status=201)

    waiting = a_run(session, spec, 3)
    assert held_by_budget(session, settings, waiting)
    assert (
        waiting.budget_hold == "the spec `rocket`: $1.00 (about $2.00 and 1 run(s) going) of $2.00"
    )

    going.status, going.cost_usd = TaskStatus.SUCCEEDED, 0.5  # cheaper than the average
    session.commit()
    assert release_budget_holds(settings) == 1


@responses.activate
def test_runs_starting_together_under_a_cap_wait_for_the_first_to_say_what_it_costs(
    session: Session, settings: Settings, held_jobs: list[HeldJob]
) -> None:
    spec = a_spec(session, {"usd": 2})
    first = a_run(session, spec, 1)
    first.status = TaskStatus.RUNNING
    session.commit()
    comment = responses.post(COMMENTS, json={"id": 1}, status=201)

    second = a_run(session, spec, 2)
    assert held_by_budget(session, settings, second)  # silently, for seconds
    assert comment.call_count == 0

    first.status, first.cost_usd, first.agent_ended_at = (
        TaskStatus.SUCCEEDED,
        1.5,
        datetime.now(UTC),
    )
    session.commit()
    assert release_budget_holds(settings) == 1
    session.refresh(second)
    assert second.status is TaskStatus.QUEUED  # $1.50 of $2.00: it started


@responses.activate
def test_of_runs_admitted_in_one_pass_under_a_cap_only_the_first_starts(
    session: Session, settings: Settings, held_jobs: list[HeldJob]
) -> None:
    spec = a_spec(session, {"usd": 2})
    first, second = a_run(session, spec, 1), a_run(session, spec, 2)
    comment = responses.post(COMMENTS, json={"id": 1}, status=201)

    started = start_waiting(session, settings)

    assert started == [first]
    session.refresh(second)
    assert second.status is TaskStatus.WAITING and comment.call_count == 0  # silently
    assert "what a run costs is not known yet" in waits_for(session, settings, second)


@responses.activate
def test_a_run_held_by_a_budget_gives_its_slot_to_another_spec(
    session: Session, settings: Settings, held_jobs: list[HeldJob]
) -> None:
    spec = a_spec(session, {"usd": 2, "specs": {"other": {"usd": 5}}})
    config, _ = parse_repo_config(b"max_parallel: 1\nbudget: {usd: 2, specs: {other: {usd: 5}}}\n")
    spec.repository.settings = config.as_dict()
    other = Spec(repository=spec.repository, key="other", path="o", title="O")
    session.add(other)
    a_run(session, spec, 1, cost_usd=2.0, finished_at=datetime.now(UTC))
    responses.post(COMMENTS, json={"id": 1}, status=201)
    held, free = a_run(session, spec, 3), a_run(session, other, 4)

    assert start_waiting(session, settings) == [free]
    session.refresh(held)
    assert held.status is TaskStatus.WAITING
    assert waits_for(session, settings, held) == "a budget: the spec `rocket`: $2.00 of $2.00"

"""What agents cost and delivered, the same numbers in `specbridge report`, `/metrics`
and the status page's table."""

from __future__ import annotations

import base64
import csv
import io
import json
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.cli import main
from bot.settings import get_settings, load_settings
from bot.web.app import create_app
from storage.db import session_scope
from storage.models import Repository, Task, TaskStatus, Ticket

NOW = datetime.now(UTC)


def seed(db: str) -> None:
    """`house` (model m1): #1's first run opened #10, a revision of it, merged 5 hours after
    #1 was ready; #2's run failed; #3's run opened #11, closed unmerged. `claude` (sonnet):
    #4's run opened #12, still open. A run of another repository, and one long ago."""
    with session_scope(db) as session:
        rocket, other = Repository(full_name="acme/rocket"), Repository(full_name="acme/other")
        one, two, three, four = (Ticket(repository=rocket, issue_number=n) for n in (1, 2, 3, 4))
        ready = NOW - timedelta(hours=6)
        merged = {"pull_request_outcome": "merged", "merged_at": ready + timedelta(hours=5)}
        session.add_all(
            [
                run(one, "house", "m1", 1.0, 1000, 100, queued_at=ready, pr=10, **merged),
                run(one, "house", "m1", 0.5, 500, 50, pr=10, revision=1, **merged),
                run(two, "house", "m1", 0.25, 200, 20, status=TaskStatus.FAILED),
                run(three, "house", "m1", 0.25, 300, 30, pr=11, pull_request_outcome="closed"),
                run(four, "claude", "sonnet", 2.0, 4000, 400, pr=12, pull_request_outcome="open"),
                run(Ticket(repository=other, issue_number=1), "house", "m1", 9.0, 1, 1),
                run(
                    Ticket(repository=rocket, issue_number=9),
                    "house",
                    "m1",
                    100.0,
                    1,
                    1,
                    queued_at=NOW - timedelta(days=30),
                ),
            ]
        )


def run(
    ticket: Ticket,
    agent: str,
    model: str,
    cost: float,
    tokens_in: int,
    tokens_out: int,
    status: TaskStatus = TaskStatus.SUCCEEDED,
    pr: int | None = None,
    **more: object,
) -> Task:
    return Task(
        ticket=ticket,
        agent=agent,
        model=model,
        status=status,
        cost_usd=cost,
        input_tokens=tokens_in,
        output_tokens=tokens_out,
        pull_request_number=pr,
        started_at=NOW,
        **more,
    )


@pytest.fixture
def report(db: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):  # type: ignore[no-untyped-def]
    seed(db)
    monkeypatch.setenv("DATABASE_URL", db)
    get_settings.cache_clear()

    def ask(*args: str) -> str:
        assert main(["report", *args]) == 0
        return capsys.readouterr().out

    yield ask
    get_settings.cache_clear()


def test_report_per_profile_and_model(report) -> None:  # type: ignore[no-untyped-def]
    house, claude = sorted(
        json.loads(report("--repo", "acme/rocket", "--format", "json")),
        key=lambda r: r["profile"],
        reverse=True,
    )

    assert house == {
        "profile": "house",
        "model": "m1",
        "runs": 4,
        "succeeded": 3,
        "success_rate": 0.75,
        "merged": 1,
        "closed_unmerged": 1,
        "open": 0,
        "input_tokens": 2000,
        "output_tokens": 200,
        "cache_read_tokens": 0,
        "cost_usd": 2.0,
        "revisions_per_merged": 1.0,
        "median_hours_to_merge": 5.0,
        "cost_per_merged_usd": 2.0,
        "attempts_run": 0,
        "attempts_won": 0,
    }
    assert (claude["profile"], claude["open"], claude["merged"]) == ("claude", 1, 0)
    assert claude["cost_per_merged_usd"] is None


def test_report_window_repository_and_formats(report) -> None:  # type: ignore[no-untyped-def]
    everything = json.loads(report("--since", "60d", "--format", "json"))
    assert sum(r["cost_usd"] for r in everything) == pytest.approx(2.0 + 2.0 + 9.0 + 100.0)

    rows = list(csv.DictReader(io.StringIO(report("--format", "csv", "--repo", "acme/rocket"))))
    assert [(r["profile"], r["cost_usd"]) for r in rows] == [("claude", "2.0"), ("house", "2.0")]

    table = report("--repo", "acme/rocket").splitlines()
    assert table[0].split()[:3] == ["PROFILE", "MODEL", "RUNS"]
    assert table[-1] == "5 runs, $4.00 in all"


def test_report_refuses_a_window_it_cannot_read(report) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SystemExit):
        report("--since", "a week")


def test_metrics_count_tokens_cost_and_pull_requests(db: str) -> None:
    seed(db)
    settings = load_settings({"DATABASE_URL": db, "GITHUB_TOKEN": "t"})

    text = create_app(settings).test_client().get("/metrics").get_data(as_text=True)

    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    tokens = "specbridge_agent_tokens_total"
    assert samples[tokens, (("direction", "input"), ("profile", "house"))] == 2002
    assert samples[tokens, (("direction", "output"), ("profile", "claude"))] == 400
    assert samples["specbridge_agent_cost_usd_total", (("profile", "house"),)] == 111.0
    pulls = "specbridge_agent_pull_requests"
    assert samples[pulls, (("outcome", "merged"), ("profile", "house"))] == 1  # one for two runs
    assert samples[pulls, (("outcome", "closed"), ("profile", "house"))] == 1
    assert samples[pulls, (("outcome", "open"), ("profile", "claude"))] == 1


def seed_attempts(db: str) -> None:
    """#7 tried twice: `house`'s attempt 1 (#20, revised once) merged and won; `claude`'s
    attempt 2 (#21) closed."""
    with session_scope(db) as session:
        ticket = Ticket(repository=Repository(full_name="acme/rocket"), issue_number=7)
        won = {"attempt_won": True, "pull_request_outcome": "merged"}
        session.add_all(
            [
                run(ticket, "house", "m1", 1.0, 10, 1, pr=20, attempt_number=1, **won),
                run(ticket, "house", "m1", 0.5, 10, 1, pr=20, revision=1, **won),
                run(ticket, "claude", "sonnet", 2.0, 10, 1, pr=21, attempt_number=2),
            ]
        )


def test_attempts_run_and_won_per_agent_in_the_report_metrics_and_status_page(
    db: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    seed_attempts(db)
    monkeypatch.setenv("DATABASE_URL", db)
    get_settings.cache_clear()
    assert main(["report", "--format", "json"]) == 0
    rows = {r["profile"]: r for r in json.loads(capsys.readouterr().out)}
    assert (rows["house"]["attempts_run"], rows["house"]["attempts_won"]) == (1, 1)
    assert (rows["claude"]["attempts_run"], rows["claude"]["attempts_won"]) == (1, 0)
    assert main(["report"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert "ATTEMPTS" in table[0] and "WON" in table[0]
    get_settings.cache_clear()

    settings = load_settings({"DATABASE_URL": db, "GITHUB_TOKEN": "t"})
    text = create_app(settings).test_client().get("/metrics").get_data(as_text=True)
    samples = {
        tuple(sorted(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "specbridge_agent_attempts"
    }
    assert samples[(("profile", "house"), ("result", "won"))] == 1
    assert samples[(("profile", "house"), ("result", "run"))] == 1
    assert samples[(("profile", "claude"), ("result", "won"))] == 0

    settings = load_settings({"DATABASE_URL": db, "SPECBRIDGE_STATUS_TOKEN": "s3cret"})
    auth = {"Authorization": f"Basic {base64.b64encode(b'ops:s3cret').decode()}"}
    page = create_app(settings).test_client().get("/?part=live", headers=auth).get_data(True)
    assert "attempts won / run" in page
    assert '<td class="num" data-value="1">1 / 1</td>' in page.split('data-profile="house"')[1]


def test_the_status_page_shows_the_agents_table(db: str) -> None:
    seed(db)
    settings = load_settings({"DATABASE_URL": db, "SPECBRIDGE_STATUS_TOKEN": "s3cret"})
    auth = base64.b64encode(b"ops:s3cret").decode()

    page = (
        create_app(settings)
        .test_client()
        .get("/?part=live", headers={"Authorization": f"Basic {auth}"})
        .get_data(as_text=True)
    )

    assert 'table class="sortable" id="agent-outcomes"' in page
    assert 'data-profile="house" data-model="m1"' in page
    row = page.split('data-profile="house"')[1].split("</tr>")[0]
    assert 'data-value="11.0">11.00</td>' in row  # both repositories, the last 7 days

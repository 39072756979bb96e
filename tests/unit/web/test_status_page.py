"""The operator's status page at /: who may see it, and what it shows (also in Chromium)."""

from __future__ import annotations

import base64
import shutil
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from bot.settings import Settings, load_settings
from bot.web.app import create_app
from storage.db import session_scope
from storage.models import (
    Delivery,
    DeliveryStatus,
    IssueState,
    Repository,
    Spec,
    SpecPhase,
    SpecStatus,
    SpecTask,
    Task,
    TaskStatus,
    Ticket,
    TicketPhase,
)

TOKEN = "let-me-see"
FAILURE = "agent exited with status 2: tests failed"
# Debian's name first (.ci/run installs it), then what other systems call it.
BROWSERS = ("chromium", "chromium-browser", "google-chrome")


@dataclass
class Row:
    attrs: dict[str, str | None]
    text: str = ""
    cells: list[str] = field(default_factory=list)
    progress: dict[str, str | None] = field(default_factory=dict)


class _Rows(HTMLParser):
    """The table rows of a page: attributes, text, cells, and the attributes of a <progress>."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[Row] = []
        self._row: Row | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "tr":
            self._row = Row(dict(attrs))
            self.rows.append(self._row)
        elif tag == "td" and self._row is not None:
            self._row.cells.append("")
        elif tag == "progress" and self._row is not None:
            self._row.progress = dict(attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag == "tr":
            self._row = None

    def handle_data(self, data: str) -> None:
        if self._row is not None:
            self._row.text += data
            if self._row.cells:
                self._row.cells[-1] += data.strip()


def rows_of(html: str) -> list[Row]:
    parser = _Rows()
    parser.feed(html)
    return parser.rows


@pytest.fixture
def settings(db: str) -> Settings:
    return load_settings(
        {"DATABASE_URL": db, "SPECBRIDGE_STATUS_TOKEN": TOKEN, "GITHUB_TOKEN": "status-page-test"}
    )


def seed(database_url: str) -> None:
    """acme/web: spec `login`, 3 of 5 tickets closed; one agent task running, one failed."""
    with session_scope(database_url) as session:
        repository = Repository(full_name="acme/web")
        spec = Spec(
            repository=repository,
            key="login",
            path="specs/login.yaml",
            title="Passwordless login",
            phase=SpecPhase.TASKS,
            status=SpecStatus.EXECUTING,
            tickets_total=5,
            tickets_closed=3,
        )
        phases = [TicketPhase.DONE] * 3 + [TicketPhase.BUILDING, TicketPhase.BACKLOG]
        tickets = []
        for number, phase in enumerate(phases, start=1):
            task = SpecTask(spec=spec, key=f"TSK-{number}", title=f"Task {number}", position=number)
            state = IssueState.CLOSED if phase is TicketPhase.DONE else IssueState.OPEN
            tickets.append(
                Ticket(
                    repository=repository,
                    spec=spec,
                    spec_task=task,
                    issue_number=10 + number,
                    phase=phase,
                    state=state,
                )
            )
        session.add_all(tickets)
        session.add_all(
            [
                Task(ticket=tickets[3], agent="default", status=TaskStatus.RUNNING, attempts=1),
                Task(
                    ticket=tickets[4],
                    agent="default",
                    status=TaskStatus.FAILED,
                    attempts=2,
                    error=f"{FAILURE}\nlong log follows",
                ),
                Delivery(
                    delivery_id="delivery-ok",
                    event="push",
                    payload={},
                    repository_full_name="acme/web",
                    status=DeliveryStatus.DONE,
                ),
                Delivery(
                    delivery_id="delivery-bad",
                    event="issues",
                    action="closed",
                    payload={},
                    repository_full_name="acme/web",
                    status=DeliveryStatus.FAILED,
                    error="RuntimeError: boom",
                ),
            ]
        )


def assert_shows_the_seeded_state(html: str) -> None:
    rows = rows_of(html)
    [spec] = [r for r in rows if r.attrs.get("data-spec") == "acme/web:login"]
    assert (spec.progress["value"], spec.progress["max"]) == ("3", "5")
    assert "3 of 5 closed (60%)" in spec.text
    [failed] = [r for r in rows if r.attrs.get("class") == "task" and "failed" in r.text]
    assert FAILURE in failed.text and "#15" in failed.text and "login/TSK-5" in failed.text
    assert "long log follows" not in html
    [running] = [r for r in rows if r.attrs.get("class") == "task" and "running" in r.text]
    assert "#14" in running.text
    [bad_delivery] = [r for r in rows if "delivery-bad" in r.text]
    assert "issues.closed" in bad_delivery.text and "failed" in bad_delivery.text
    budget = [r.cells[1:] for r in rows if r.cells[:1] and r.cells[0].startswith("token-")]
    assert budget == [["60s", "80", "80"], ["3600s", "500", "500"]]


# -- access -------------------------------------------------------------------------------


def test_without_a_token_the_page_is_off_and_says_how_to_turn_it_on(db: str) -> None:
    response = create_app(load_settings({"DATABASE_URL": db})).test_client().get("/")
    assert response.status_code == 404
    assert "SPECBRIDGE_STATUS_TOKEN" in response.get_data(as_text=True)


def test_a_wrong_or_missing_token_is_refused(settings: Settings) -> None:
    client = create_app(settings).test_client()
    assert client.get("/").status_code == 401
    assert client.get("/?token=guess").status_code == 401
    wrong = base64.b64encode(b"ops:guess").decode()
    assert client.get("/", headers={"Authorization": f"Basic {wrong}"}).status_code == 401


def test_the_token_once_sets_a_cookie_and_leaves_the_address(settings: Settings) -> None:
    seed(settings.database_url)
    client = create_app(settings).test_client()

    opened = client.get(f"/?token={TOKEN}")
    assert opened.status_code == 303
    assert opened.headers["Location"] == "/"
    cookie = opened.headers["Set-Cookie"]
    assert TOKEN not in cookie and "HttpOnly" in cookie

    page = client.get("/")
    assert page.status_code == 200
    assert_shows_the_seeded_state(page.get_data(as_text=True))


def test_basic_auth_with_the_token_as_password_shows_the_page(settings: Settings) -> None:
    seed(settings.database_url)
    credentials = base64.b64encode(f"ops:{TOKEN}".encode()).decode()
    page = (
        create_app(settings)
        .test_client()
        .get("/", headers={"Authorization": f"Basic {credentials}"})
    )
    assert page.status_code == 200
    assert_shows_the_seeded_state(page.get_data(as_text=True))


def test_tickets_are_counted_by_phase(settings: Settings) -> None:
    seed(settings.database_url)
    credentials = base64.b64encode(f"ops:{TOKEN}".encode()).decode()
    html = (
        create_app(settings)
        .test_client()
        .get("/", headers={"Authorization": f"Basic {credentials}"})
    )
    [row] = [r for r in rows_of(html.get_data(as_text=True)) if r.cells[:1] == ["acme/web"]]
    # backlog, analyzing, building, testing, done
    assert row.cells[1:] == ["1", "0", "1", "0", "3"]


def test_an_empty_installation_renders(settings: Settings) -> None:
    credentials = base64.b64encode(f"ops:{TOKEN}".encode()).decode()
    page = (
        create_app(settings)
        .test_client()
        .get("/", headers={"Authorization": f"Basic {credentials}"})
    )
    assert page.status_code == 200
    assert "No spec has been synced yet." in page.get_data(as_text=True)


# -- in a browser -------------------------------------------------------------------------


@pytest.fixture
def served(settings: Settings) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, create_app(settings), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.port}"
    server.shutdown()
    thread.join(timeout=10)


def chromium(profile: Path, *arguments: str) -> str:
    """Headless Chromium with a profile of its own (a fresh directory each call)."""
    browser = next(filter(None, map(shutil.which, BROWSERS)), None)
    if browser is None:
        pytest.skip("chromium is not installed (apt-get install -y chromium; .ci/run does)")
    command = [
        browser,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={profile}",
        *arguments,
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)
    return done.stdout


def test_chromium_renders_the_seeded_progress_and_failed_task(
    settings: Settings, served: str, tmp_path: Path
) -> None:
    seed(settings.database_url)
    screenshot = tmp_path / "status-page.png"

    page = f"{served}/?token={TOKEN}"
    dom = chromium(tmp_path / "dom-profile", "--dump-dom", page)
    chromium(
        tmp_path / "shot-profile", f"--screenshot={screenshot}", "--window-size=1280,1400", page
    )

    assert_shows_the_seeded_state(dom)
    assert screenshot.stat().st_size > 10_000  # kept under the pytest tmp dir for a look

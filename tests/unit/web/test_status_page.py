"""The operator's status page at /: who may see it, and what it shows (also in Chromium)."""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import pytest
from sqlalchemy import select
from werkzeug.serving import make_server

from bot.events.deliveries import OWN_EVENT
from bot.queue import redis_connection
from bot.settings import Settings, load_settings
from bot.web.app import create_app
from bot.web.status_page import RECENT_DELIVERIES
from fakehub.apps import new_private_key
from storage.db import session_scope
from storage.models import (
    Delivery,
    DeliveryStatus,
    Installation,
    IssueState,
    Repository,
    Spec,
    SpecPhase,
    SpecStatus,
    SpecTask,
    Task,
    TaskStatus,
    Ticket,
    TicketDependency,
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


@dataclass
class Element:
    tag: str
    attrs: dict[str, str | None]
    text: str = ""
    children: list[Element] = field(default_factory=list)

    def find(self, tag: str | None = None, **attrs: str) -> list[Element]:
        """Descendants with this tag and these attributes (class matches one of its words)."""
        found = []
        for child in self.children:
            if (tag is None or child.tag == tag) and all(
                value in (child.attrs.get(name.rstrip("_")) or "").split()
                if name.rstrip("_") == "class"
                else child.attrs.get(name.replace("_", "-")) == value
                for name, value in attrs.items()
            ):
                found.append(child)
            found += child.find(tag, **attrs)
        return found

    def links(self) -> dict[str, str]:
        """Link text → href."""
        return {a.text.strip(): a.attrs.get("href") or "" for a in self.find("a")}


_VOID = {"meta", "input", "br", "img", "link", "hr", "path", "rect"}


class _Tree(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.root = Element("root", {})
        self._open = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, dict(attrs))
        self._open[-1].children.append(element)
        if tag not in _VOID:
            self._open.append(element)

    def handle_endtag(self, tag: str) -> None:
        for index in range(len(self._open) - 1, 0, -1):
            if self._open[index].tag == tag:
                del self._open[index:]
                return

    def handle_data(self, data: str) -> None:
        for element in self._open:
            element.text += data


def tree_of(html: str) -> Element:
    parser = _Tree()
    parser.feed(html)
    return parser.root


WEB = "https://github.com"
SLUG = "specbridge-acme"


@pytest.fixture
def settings(db: str) -> Settings:
    return load_settings(
        {
            "DATABASE_URL": db,
            "SPECBRIDGE_STATUS_TOKEN": TOKEN,
            "GITHUB_TOKEN": "status-page-test",
            "GITHUB_APP_SLUG": SLUG,
        }
    )


def seed(database_url: str) -> None:
    """acme/web: spec `login` (tracking issue #10), 3 of 5 tickets closed, TSK-2 after TSK-1
    and TSK-4 after TSK-2 and TSK-3; one agent task running (on its pull request #21), one
    failed and one queued; a file that never validated, then removed; deliveries, two of
    them caused by specbridge's own writes."""
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
            tracking_issue_number=10,
            source_commit="abc123",
        )
        broken = Spec(
            repository=repository,
            key="broken",
            path="specs/broken.yaml",
            title="specs/broken.yaml",
            status=SpecStatus.CANCELLED,
            findings=[{"line": 3, "column": 8, "message": "'tasks' must be a list"}],
            findings_commit="def456",
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
                    state_reason="completed" if state is IssueState.CLOSED else None,
                )
            )
        session.add_all([*tickets, broken])
        session.flush()
        session.add_all(
            [
                TicketDependency(ticket_id=tickets[1].id, depends_on_id=tickets[0].id),
                TicketDependency(ticket_id=tickets[3].id, depends_on_id=tickets[1].id),
                TicketDependency(ticket_id=tickets[3].id, depends_on_id=tickets[2].id),
            ]
        )
        session.add_all(
            [
                Task(
                    ticket=tickets[3],
                    agent="default",
                    status=TaskStatus.RUNNING,
                    attempts=1,
                    pull_request_number=21,
                ),
                Task(
                    ticket=tickets[4],
                    agent="default",
                    status=TaskStatus.FAILED,
                    attempts=2,
                    error=f"{FAILURE}\nlong log follows",
                ),
                Task(ticket=tickets[4], agent="careful", status=TaskStatus.QUEUED),
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
                *(
                    Delivery(
                        delivery_id=f"delivery-own-{n}",
                        event="issues",
                        action="opened",
                        payload={},
                        repository_full_name="acme/web",
                        status=DeliveryStatus.IGNORED,
                        error=OWN_EVENT,
                    )
                    for n in (1, 2)
                ),
            ]
        )


def assert_shows_the_seeded_state(html: str) -> None:
    rows = rows_of(html)
    page = tree_of(html)
    [spec] = [r for r in rows if r.attrs.get("data-spec") == "acme/web:login"]
    assert (spec.progress["value"], spec.progress["max"]) == ("3", "5")
    assert "3 of 5 closed (60%)" in spec.text
    [spec_row] = page.find("tr", data_spec="acme/web:login")
    assert spec_row.links()["#10"] == f"{WEB}/acme/web/issues/10"  # the tracking issue
    assert spec_row.links()["login"] == f"{WEB}/acme/web/blob/abc123/specs/login.yaml"
    # A file that never validated is said so, not "cancelled", with its first finding.
    [broken] = page.find("tr", data_spec="acme/web:broken")
    assert "invalid, file removed" in broken.text and "cancelled" not in broken.text
    assert "line 3: 'tasks' must be a list" in broken.text

    [failed] = page.find("table", id="tasks-failed")[0].find("tr", class_="task")
    assert FAILURE in failed.text and "login/TSK-5" in failed.text
    assert failed.links()["#15"] == f"{WEB}/acme/web/issues/15"
    assert "long log follows" not in html
    [running] = page.find("table", id="tasks-running")[0].find("tr", class_="task")
    assert running.links()["#14"] == f"{WEB}/acme/web/issues/14"
    assert running.links()["#21"] == f"{WEB}/acme/web/pull/21"  # its pull request
    [queued] = page.find("table", id="tasks-queued")[0].find("tr", class_="task")
    assert "careful" in queued.text and "queued" in queued.text
    assert queued.links()["#15"] == f"{WEB}/acme/web/issues/15"

    [bad_delivery] = page.find("tr", data_delivery="delivery-bad")
    assert "issues.closed" in bad_delivery.text and "failed" in bad_delivery.text
    assert "RuntimeError: boom" in bad_delivery.text
    assert bad_delivery.links()["delivery-bad"] == f"{WEB}/settings/apps/{SLUG}/advanced"
    assert bad_delivery.links()["acme/web"] == f"{WEB}/acme/web"
    # specbridge's own echoes are left out (asked for, they are listed: see below).
    assert page.find("tr", class_="own") == []
    assert "2 caused by specbridge itself left out" in html

    # The budget and the queues, at the top.
    budget = {
        card.attrs["data-window"]: " ".join(card.find("b")[0].text.split())
        for card in page.find("div", class_="budget")
    }
    assert budget == {"60": "80 of 80", "3600": "500 of 500"}
    queues = {
        card.attrs["data-queue"]: card
        for card in page.find("div", class_="card")
        if card.attrs.get("data-queue")
    }
    assert set(queues) == {"interactive", "events", "agents"}
    assert html.index('id="summary"') < html.index("<h2>Specs</h2>")

    # The spec's graph, drawn on the server: each task a link to its issue, coloured by phase.
    [svg] = page.find("svg", class_="task-graph")
    nodes = {n.attrs["data-issue"]: n.attrs["data-style"] for n in svg.find("g", class_="node")}
    assert nodes == {"11": "done", "12": "done", "13": "done", "14": "building", "15": "backlog"}
    hrefs = sorted(a.attrs["href"] or "" for a in svg.find("a"))
    assert hrefs == [f"{WEB}/acme/web/issues/{n}" for n in range(11, 16)]
    assert len(svg.find("g", class_="edges")[0].children) == 2 * 3  # a curve and a head each


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
    # backlog, analyzing, building, testing, done, failed
    assert row.cells[1:] == ["1", "0", "1", "0", "3", "0"]


def test_a_ticket_whose_last_run_failed_shows_failed_in_the_counts_and_the_graph(
    settings: Settings,
) -> None:
    seed(settings.database_url)
    with session_scope(settings.database_url) as session:
        ticket = session.scalars(select(Ticket).where(Ticket.issue_number == 15)).one()
        ticket.failure = "claude: not found (the command exited with status 127)"
    credentials = base64.b64encode(f"ops:{TOKEN}".encode()).decode()
    html = (
        create_app(settings)
        .test_client()
        .get("/", headers={"Authorization": f"Basic {credentials}"})
        .get_data(as_text=True)
    )
    [row] = [r for r in rows_of(html) if r.cells[:1] == ["acme/web"]]
    assert row.cells[1:] == ["0", "0", "1", "0", "3", "1"]  # out of backlog, into failed
    [svg] = tree_of(html).find("svg", class_="task-graph")
    nodes = {n.attrs["data-issue"]: n.attrs["data-style"] for n in svg.find("g", class_="node")}
    assert nodes["15"] == "failed" and nodes["14"] == "building"
    assert "#15 TSK-5 ✗ failed" in html


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


def artifacts(tmp_path: Path) -> Path:
    """Where CI keeps what a test leaves for people to look at: $SPECBRIDGE_ARTIFACTS, else
    the test's own temporary folder."""
    folder = Path(os.environ.get("SPECBRIDGE_ARTIFACTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def test_chromium_renders_the_page_and_refreshes_it_in_place(
    settings: Settings, served: str, tmp_path: Path
) -> None:
    """Links, a queued task, the graph; after a few seconds the live part was fetched again
    and swapped in without a reload, and it still shows the same; a screenshot is kept."""
    seed(settings.database_url)
    screenshot = artifacts(tmp_path) / "status-page.png"

    page = f"{served}/?token={TOKEN}"
    # Virtual time runs the page's timers: 12 s of it is two refreshes or more at 5 s.
    dom = chromium(tmp_path / "dom-profile", "--virtual-time-budget=12000", "--dump-dom", page)
    chromium(
        tmp_path / "shot-profile",
        f"--screenshot={screenshot}",
        "--window-size=1280,1700",
        "--virtual-time-budget=2000",
        page,
    )

    assert_shows_the_seeded_state(dom)
    [live] = tree_of(dom).find("div", id="live")
    assert int(live.attrs["data-refreshes"] or 0) >= 2
    assert screenshot.stat().st_size > 10_000


def test_the_live_part_alone_is_what_the_page_fetches_and_it_is_current(
    settings: Settings,
) -> None:
    seed(settings.database_url)
    credentials = base64.b64encode(f"ops:{TOKEN}".encode()).decode()
    client = create_app(settings).test_client()
    auth = {"Authorization": f"Basic {credentials}"}
    assert client.get("/?part=live").status_code == 401  # it keeps the page's token

    with session_scope(settings.database_url) as session:
        ticket = session.scalars(select(Ticket).where(Ticket.issue_number == 13)).one()
        session.add(Task(ticket=ticket, agent="default", status=TaskStatus.QUEUED))
    live = client.get("/?part=live", headers=auth)

    assert live.status_code == 200 and live.headers["Cache-Control"] == "no-store"
    html = live.get_data(as_text=True)
    assert "<html" not in html and "<script" not in html  # the part, not the page
    queued = tree_of(html).find("table", id="tasks-queued")[0].find("tr", class_="task")
    assert sorted(row.links()["#13" if "#13" in row.text else "#15"] for row in queued) == [
        f"{WEB}/acme/web/issues/13",
        f"{WEB}/acme/web/issues/15",
    ]


def test_recent_deliveries_are_the_last_that_matter_after_a_sync_s_echoes(
    settings: Settings,
) -> None:
    """A sync's echoes of specbridge's own writes are more than the table holds: the table
    still lists the deliveries people caused, and says how many echoes it left out."""
    with session_scope(settings.database_url) as session:
        session.add_all(
            Delivery(
                delivery_id=f"person-{n}",
                event="issue_comment",
                action="created",
                payload={},
                status=DeliveryStatus.DONE,
            )
            for n in range(3)
        )
        session.flush()
        session.add_all(
            Delivery(
                delivery_id=f"echo-{n}",
                event="issues",
                action="opened",
                payload={},
                status=DeliveryStatus.IGNORED,
                error=OWN_EVENT,
            )
            for n in range(RECENT_DELIVERIES + 10)
        )
    client = create_app(settings).test_client()
    client.get(f"/?token={TOKEN}")

    page = tree_of(client.get("/?part=live").get_data(as_text=True))
    listed = [row.attrs["data-delivery"] for row in page.find("tr", class_="delivery")]
    assert listed == ["person-2", "person-1", "person-0"]
    assert f"({RECENT_DELIVERIES + 10} caused by specbridge itself left out)" in page.text

    # "show deliveries specbridge caused": the last ones of all, the echoes marked.
    asked = tree_of(client.get("/?part=live&own=1").get_data(as_text=True))
    own = asked.find("tr", class_="own")
    assert len(own) == RECENT_DELIVERIES
    assert all("caused by specbridge itself" in row.text for row in own)


def test_the_budget_tiles_name_the_installation_s_account(db: str) -> None:
    """Not `installation-41`: the account people know, with its installation's number."""
    settings = load_settings(
        {
            "DATABASE_URL": db,
            "SPECBRIDGE_STATUS_TOKEN": TOKEN,
            "GITHUB_APP_ID": "4242",
            "GITHUB_PRIVATE_KEY": new_private_key(),
        }
    )
    if settings.redis_url:
        redis_connection(settings.redis_url).flushdb()
    with session_scope(db) as session:
        session.add(Installation(github_id=41, account_login="acme"))
    client = create_app(settings).test_client()
    client.get(f"/?token={TOKEN}")

    page = tree_of(client.get("/?part=live").get_data(as_text=True))

    tiles = page.find("div", class_="budget")
    assert [" ".join(t.text.split()).endswith("acme (installation 41)") for t in tiles] == [
        True,
        True,
    ]  # the minute's and the hour's

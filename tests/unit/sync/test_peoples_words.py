"""People's words kept: a ticket's issue is rewritten only in the part specbridge owns.

The sync reads the issues it is about to update (one GraphQL `nodes` request), keeps
text around the generated part, a title a person changed and labels it did not add,
and quotes a person's edit inside the generated part before rewriting it. Every
GraphQL document is checked against GitHub's published schema
(shared/github-fixtures/graphql) and answered by a small fake of GitHub."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import responses
from graphql import FieldNode, OperationDefinitionNode, parse, validate
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.github import BoardGateway, RepositoryGateway, github_client
from bot.repo_config import RepoConfig
from bot.settings import Settings, load_settings
from bot.sync import render
from bot.sync.github_side import GitHubSide
from bot.sync.writer import SpecWriter
from fakehub.graphql_api import github_schema
from storage.models import (
    Repository,
    Spec,
    SpecPhase,
    SpecStatus,
    SpecTask,
    TaskProposal,
    Ticket,
)
from tests.support import MOCK_API, MOCK_GRAPHQL

REPO = "acme/rocket"


class FakeGraphQL:
    """GitHub's GraphQL endpoint for one repository's issues, as `responses` callback."""

    def __init__(self) -> None:
        self.issues: dict[str, dict[str, Any]] = {}
        self.labels = {"specbridge": "L_1", "priority: medium": "L_2", "priority: high": "L_3"}
        self.sent: list[tuple[str, str, dict[str, Any]]] = []  # (kind, field, input)
        self.refuse: set[str] = set()  # mutation names answered with an error

    def issue(self, node_id: str, title: str, body: str, labels: list[str]) -> None:
        for name in labels:
            self.labels.setdefault(name, f"L_{len(self.labels) + 1}")
        self.issues[node_id] = {"title": title, "body": body, "labels": list(labels)}

    def __call__(self, request: Any) -> tuple[int, dict[str, str], str]:
        payload = json.loads(request.body)
        document = parse(payload["query"])
        assert validate(github_schema(), document) == [], payload["query"]
        variables = payload.get("variables") or {}
        operation = next(d for d in document.definitions if isinstance(d, OperationDefinitionNode))
        data: dict[str, Any] = {}
        errors = []
        for selection in operation.selection_set.selections:
            assert isinstance(selection, FieldNode)
            alias = selection.alias.value if selection.alias else selection.name.value
            name = selection.name.value
            self.sent.append((operation.operation.value, name, variables.get(alias) or variables))
            if name in self.refuse:
                data[alias] = None
                errors.append({"path": [alias], "message": "refused", "type": "FORBIDDEN"})
            else:
                data[alias] = self._answer(name, selection, variables, alias)
        body: dict[str, Any] = {"data": data}
        if errors:
            body["errors"] = errors
        return 200, {}, json.dumps(body)

    def _answer(self, name: str, field: FieldNode, variables: dict[str, Any], alias: str) -> Any:
        if name == "nodes":
            return [self._node(i) for i in variables["ids"]]
        if name == "repository":
            found: dict[str, Any] = {"id": "R_1"}
            for inner in field.selection_set.selections if field.selection_set else []:
                if isinstance(inner, FieldNode) and inner.name.value == "label":
                    wanted = variables[inner.arguments[0].value.name.value]  # type: ignore[attr-defined]
                    key = inner.alias.value if inner.alias else "label"
                    if wanted in self.labels:
                        found[key] = {"id": self.labels[wanted], "name": wanted}
            return found
        given = variables[alias]
        if name == "createLabel":
            self.labels[given["name"]] = f"L_{len(self.labels) + 1}"
            return {"label": {"id": self.labels[given["name"]], "name": given["name"]}}
        if name == "updateIssue":
            issue = self.issues[given["id"]]
            for key in ("title", "body"):
                if key in given:
                    issue[key] = given[key]
            if "labelIds" in given:
                names = {v: k for k, v in self.labels.items()}
                issue["labels"] = [names[i] for i in given["labelIds"]]
            return {"issue": {"id": given["id"]}}
        if name == "addComment":
            return {"subject": {"id": given["subjectId"]}}
        raise AssertionError(f"unexpected field {name}")

    def _node(self, node_id: str) -> dict[str, Any] | None:
        issue = self.issues.get(node_id)
        if issue is None:
            return None
        return {
            "id": node_id,
            "databaseId": 1,
            "number": int(node_id.split("_")[1]),
            "title": issue["title"],
            "body": issue["body"],
            "state": "OPEN",
            "stateReason": None,
            "labels": {"nodes": [{"name": n} for n in issue["labels"]]},
            "projectItems": {"nodes": []},
        }

    def mutations(self) -> list[tuple[str, dict[str, Any]]]:
        """The issue writes (labels the repository lacks are created on the way)."""
        return [
            (name, given)
            for kind, name, given in self.sent
            if kind == "mutation" and name != "createLabel"
        ]


@pytest.fixture
def github() -> Iterator[FakeGraphQL]:
    fake = FakeGraphQL()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mocked:
        mocked.add_callback(responses.POST, MOCK_GRAPHQL, callback=fake)
        yield fake


@pytest.fixture
def settings(db: str) -> Settings:
    return load_settings(
        {
            "DATABASE_URL": db,
            "GITHUB_TOKEN": "t",
            "GITHUB_API_URL": MOCK_API,
            "GITHUB_WRITE_INTERVAL": "0",
            "GITHUB_CONTENT_LIMITS": "none",
        }
    )


def _task(title: str = "Fuel the rocket", description: str = "Fill it up.") -> SpecTask:
    return SpecTask(key="T-1", title=title, description=description, priority="medium")


@pytest.fixture
def spec(session: Session) -> Spec:
    repository = Repository(full_name=REPO)
    spec = Spec(
        repository=repository,
        key="rocket",
        path="specs/rocket.yaml",
        title="Rocket",
        phase=SpecPhase.TASKS,
        status=SpecStatus.PLANNED,
        tracking_issue_number=1,
        tracking_issue_node_id="I_1",
    )
    spec.tasks = [_task()]
    session.add_all([repository, spec])
    session.commit()
    return spec


def _ticket(session: Session, spec: Spec, github: FakeGraphQL, extra: str = "") -> Ticket:
    """T-1's issue #5 as the sync wrote it (and recorded it), then `extra` around it."""
    task = spec.tasks[0]
    title = render.ticket_title(task)
    body = render.ticket_body(spec, task, [])
    labels = render.ticket_labels(spec, task)
    ticket = Ticket(
        repository=spec.repository,
        spec=spec,
        spec_task=task,
        issue_number=5,
        issue_node_id="I_5",
        content_hash=render.content_hash(title, body, labels),
        written={
            "title": render.title_hash(title),
            "part": render.part_hash(render.split_ticket_body(body)[1]),
            "labels": sorted(labels),
        },
    )
    session.add(ticket)
    session.commit()
    github.issue("I_5", title, body, labels)
    return ticket


def _writer(session: Session, settings: Settings, spec: Spec) -> SpecWriter:
    client = github_client(settings, None)
    side = GitHubSide(RepositoryGateway(client, REPO), BoardGateway(client), RepoConfig())
    return SpecWriter(session, settings, side, spec, None)  # type: ignore[arg-type]


def test_a_persons_note_under_the_generated_part_survives_a_spec_change(
    session: Session, settings: Settings, spec: Spec, github: FakeGraphQL
) -> None:
    _ticket(session, spec, github)
    issue = github.issues["I_5"]
    issue["body"] += "\n\n**Note from mona:** the pad is booked until Friday."
    issue["body"] = "Seen in the field: it leaks.\n\n" + issue["body"]
    spec.tasks[0].description = "Fill it up, then check for leaks."
    session.commit()

    _writer(session, settings, spec)._update_tickets()

    [(name, update)] = github.mutations()
    assert name == "updateIssue" and "title" not in update
    body = update["body"]
    assert body.startswith("Seen in the field: it leaks.\n\n" + render.START + "\n")
    assert "Fill it up, then check for leaks." in body
    assert body.endswith(
        "<!-- specbridge: spec=rocket task=T-1 -->"
        "\n\n**Note from mona:** the pad is booked until Friday."
    )
    # Only the issue about to change was read, in one request.
    reads = [given for kind, name, given in github.sent if name == "nodes"]
    assert reads == [{"ids": ["I_5"]}]


def test_a_label_a_person_added_stays_and_assignees_are_never_sent(
    session: Session, settings: Settings, spec: Spec, github: FakeGraphQL
) -> None:
    _ticket(session, spec, github)
    github.issue("I_5", **{**github.issues["I_5"], "labels": [
        "specbridge", "priority: medium", "needs-design"
    ]})  # fmt: skip
    spec.tasks[0].priority = "high"
    session.commit()

    _writer(session, settings, spec)._update_tickets()

    [(name, update)] = github.mutations()
    assert name == "updateIssue"
    # The body says the new priority; assignees and milestone are never sent.
    assert set(update) == {"id", "body", "labelIds"}
    assert sorted(github.issues["I_5"]["labels"]) == [
        "needs-design",
        "priority: high",
        "specbridge",
    ]


def test_a_persons_edit_inside_the_generated_part_is_quoted_before_it_is_rewritten(
    session: Session, settings: Settings, spec: Spec, github: FakeGraphQL
) -> None:
    ticket = _ticket(session, spec, github)
    issue = github.issues["I_5"]
    issue["body"] = issue["body"].replace("Fill it up.", "Fill it up.\nUse the blue hose, @ops.")
    spec.tasks[0].description = "Fill it up to the brim."
    session.commit()

    _writer(session, settings, spec)._update_tickets()

    [(first, comment), (then, update)] = github.mutations()
    assert (first, then) == ("addComment", "updateIssue")
    assert comment["subjectId"] == "I_5"
    assert "> Use the blue hose, @&#8203;ops." in comment["body"]
    assert "specbridge: spec=" not in comment["body"]
    assert "Fill it up to the brim." in update["body"]
    assert "blue hose" not in update["body"]
    # Recorded: the next sync that changes nothing there says nothing again.
    assert ticket.written["part"] == render.part_hash(render.split_ticket_body(update["body"])[1])


def test_a_refused_quote_leaves_the_persons_edit_in_place(
    session: Session, settings: Settings, spec: Spec, github: FakeGraphQL
) -> None:
    ticket = _ticket(session, spec, github)
    before = ticket.content_hash
    issue = github.issues["I_5"]
    issue["body"] = issue["body"].replace("Fill it up.", "Fill it up. Mind the valve.")
    spec.tasks[0].description = "Fill it."
    session.commit()
    github.refuse.add("addComment")

    writer = _writer(session, settings, spec)
    writer._update_tickets()

    assert [name for name, _ in github.mutations()] == ["addComment"]
    assert "Mind the valve." in issue["body"]
    assert ticket.content_hash == before and "quote" in next(iter(writer.refused))


def test_a_title_a_person_changed_stays_until_the_spec_changes_it(
    session: Session, settings: Settings, spec: Spec, github: FakeGraphQL
) -> None:
    _ticket(session, spec, github)
    github.issues["I_5"]["title"] = "Fuel the rocket (LOX first!)"
    spec.tasks[0].description = "Fill it up slowly."
    session.commit()

    _writer(session, settings, spec)._update_tickets()
    [(_, update)] = github.mutations()
    assert "title" not in update
    assert github.issues["I_5"]["title"] == "Fuel the rocket (LOX first!)"

    github.sent.clear()
    spec.tasks[0].title = "Fuel and pressurize the rocket"
    session.commit()
    _writer(session, settings, spec)._update_tickets()
    [(_, update)] = github.mutations()
    assert update["title"] == "T-1: Fuel and pressurize the rocket"


def test_an_unchanged_task_reads_and_writes_nothing(
    session: Session, settings: Settings, spec: Spec, github: FakeGraphQL
) -> None:
    _ticket(session, spec, github)
    github.issues["I_5"]["body"] += "\n\nA note."
    _writer(session, settings, spec)._update_tickets()
    assert github.sent == []


def test_a_body_written_before_the_start_marker_keeps_its_note_below_and_peoples_labels(
    session: Session, settings: Settings, spec: Spec, github: FakeGraphQL
) -> None:
    """Issues written by an older specbridge: all generated up to the task's marker, and
    nothing recorded of what the bot wrote."""
    ticket = _ticket(session, spec, github)
    ticket.written = None
    issue = github.issues["I_5"]
    old = render.split_ticket_body(issue["body"])[1]
    issue["body"] = old + "\n\nA note below."
    issue["labels"].append("customer")
    spec.tasks[0].description = "Fill it halfway."
    session.commit()

    _writer(session, settings, spec)._update_tickets()

    [(name, update)] = github.mutations()
    assert name == "updateIssue"
    assert update["body"].startswith(render.START + "\n")
    assert update["body"].endswith("-->\n\nA note below.")
    assert "customer" in github.issues["I_5"]["labels"]


def test_a_task_proposed_from_an_issue_adopts_that_issue_instead_of_opening_one(
    session: Session, settings: Settings, spec: Spec, github: FakeGraphQL
) -> None:
    """The proposal's pull request was merged: T-2 is in the spec, and #12 is its issue."""
    _ticket(session, spec, github)
    added = SpecTask(key="T-2", title="Check the weather", description="Proposed in #12.")
    spec.tasks.append(added)
    session.add(
        TaskProposal(
            repository_id=spec.repository_id,
            spec=spec,
            kind="add",
            task_key="T-2",
            issue_number=12,
            issue_node_id="I_12",
            branch="specbridge/add-task/rocket/issue-12",
            requested_by="mona",
        )
    )
    session.commit()
    github.issue("I_12", "Check the weather", "Winds above 20 knots scrub it.", ["weather"])

    writer = _writer(session, settings, spec)
    writer._adopt_proposed(None)
    writer._create_tickets(None)  # nothing left to create
    writer._update_tickets()

    assert added.ticket is not None and added.ticket.issue_number == 12
    assert session.scalars(select(TaskProposal)).one().state == "adopted"
    [(name, update)] = github.mutations()
    assert name == "updateIssue"  # no createIssue
    assert update["title"] == "T-2: Check the weather"
    assert update["body"].startswith(f"Winds above 20 knots scrub it.\n\n{render.START}\n")
    assert update["body"].endswith("<!-- specbridge: spec=rocket task=T-2 -->")
    assert sorted(github.issues["I_12"]["labels"]) == ["priority: medium", "specbridge", "weather"]
    assert writer.counts["adopted"] == 1 and writer.counts["opened"] == 0


def test_split_and_compose_keep_peoples_text_byte_for_byte() -> None:
    part = "Do it.\n\n<!-- specbridge: spec=s task=T-1 -->"
    body = render.compose_ticket_body("Above\r\n\r\n", part, "\r\n\r\nBelow")
    assert render.split_ticket_body(body) == ("Above\r\n\r\n", part, "\r\n\r\nBelow")
    # An issue with no part at all (adopted): everything is the person's.
    assert render.split_ticket_body("Just words") == ("Just words", None, "")
    adopted = render.compose_ticket_body("Just words", part, "")
    assert adopted == f"Just words\n\n{render.START}\n{part}"
    # GitHub's editor turns line ends into CRLF: the part is still the bot's.
    crlf = body.replace("\n", "\r\n").replace("\r\r\n", "\r\n")
    assert render.part_hash(render.split_ticket_body(crlf)[1]) == render.part_hash(part)

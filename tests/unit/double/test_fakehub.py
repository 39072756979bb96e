"""The GitHub double answers as GitHub does: checked requests, signed webhooks
shaped like GitHub's own schemas, faults on demand."""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import github
import jsonschema
import pytest
import requests
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

from bot.github import BoardGateway, GitHubConnection, RepositoryGateway, github_client
from bot.github.checks import ChecksGateway
from bot.github.issues import IssueWriter
from bot.settings import load_settings
from fakehub import FakeHub
from tests.support import FIXTURES, SPECBRIDGE_COLUMNS, WEBHOOK_SECRET, signature

SCHEMAS = FIXTURES / "webhook-schemas"


class Receiver:
    """A tiny webhook endpoint recording what the double sends."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append({"headers": dict(self.headers), "body": body})
                self.send_response(202)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/webhook"


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    yield receiver
    receiver.server.shutdown()


@pytest.fixture(scope="module")
def hub(receiver: Receiver, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeHub]:
    hub = FakeHub(receiver.url, WEBHOOK_SECRET, tmp_path_factory.mktemp("hub"))
    hub.start()
    yield hub
    hub.stop()


@pytest.fixture
def client(hub: FakeHub) -> GitHubConnection:
    settings = load_settings(
        {
            "GITHUB_API_URL": hub.url,
            "GITHUB_TOKEN": "t",
            "GITHUB_WRITE_INTERVAL": "0",
            "GITHUB_CONTENT_LIMITS": "none",
        }
    )
    return github_client(settings, None)


_names = iter(range(1000))


@pytest.fixture
def repo(hub: FakeHub) -> str:
    name = f"r{next(_names)}"
    requests.post(
        f"{hub.url}/_admin/repos",
        json={
            "owner": "acme",
            "name": name,
            "project": {"number": 1},
            "status_options": SPECBRIDGE_COLUMNS,
            "files": {"specs/a.yaml": "title: A\n", "specs/b.yaml": "title: B\n"},
        },
        timeout=30,
    ).raise_for_status()
    return f"acme/{name}"


def _requests(hub: FakeHub) -> list[dict[str, Any]]:
    return requests.get(f"{hub.url}/_admin/state", timeout=30).json()["requests"]


def test_a_body_github_would_reject_gets_422_and_is_recorded(hub: FakeHub, repo: str) -> None:
    response = requests.post(
        f"{hub.url}/repos/{repo}/issues", json={"title": "x", "labels": "bug"}, timeout=30
    )
    assert response.status_code == 422
    assert response.json()["message"] == "Validation Failed"
    last = _requests(hub)[-1]
    assert "labels: 'bug' is not of type 'array'" in last["mismatch"]


def test_an_unknown_query_parameter_is_a_mismatch(hub: FakeHub, repo: str) -> None:
    requests.get(f"{hub.url}/repos/{repo}/issues?colour=red", timeout=30)
    assert "unknown query parameter(s) colour" in _requests(hub)[-1]["mismatch"]


def test_graphql_document_outside_the_schema_is_refused_and_recorded(client: github.Github) -> None:
    with pytest.raises(github.GithubException) as error:
        client.requester.graphql_query(
            'query { organization(login: "acme") { projectV3 { id } } }', {}
        )
    assert "projectV3" in json.dumps(error.value.data)


def test_board_batches_run_in_order_in_one_request(
    hub: FakeHub, client: github.Github, repo: str
) -> None:
    gateway = RepositoryGateway(client, repo)
    parent = gateway.create_issue("parent", "", [])
    children = [gateway.create_issue(f"child {n}", "", []) for n in range(3)]
    boards = BoardGateway(client)
    board = boards.find_board("acme", 1)
    before = len(_requests(hub))
    IssueWriter(client, repo).add_sub_issues(
        [(str(c.number), parent.node_id, c.node_id, False) for c in children]
    )
    items = boards.add_to_board(board, [c.node_id for c in children])
    boards.set_status(board, [i for i in items if i], "Building")
    assert len(_requests(hub)) - before == 3
    state = requests.get(f"{hub.url}/_admin/state", timeout=30).json()
    repo_state = next(r for r in state["repositories"] if r["full_name"] == repo)
    assert next(i for i in repo_state["issues"] if i["number"] == parent.number)["sub_issues"] == [
        c.number for c in children
    ]
    assert {i["issue_number"]: i["status"] for i in repo_state["project_items"]} == {
        c.number: "Building" for c in children
    }
    assert [r for r in state["requests"][before:] if r["mismatch"]] == []


def test_a_rate_limited_write_is_retried_by_the_gateway(
    hub: FakeHub, client: github.Github, repo: str
) -> None:
    requests.post(
        f"{hub.url}/_admin/faults",
        json={
            "method": "POST",
            "path": f"/repos/{repo}/issues$",
            "status": 403,
            "retry_after": 0,
            "count": 1,
        },
        timeout=30,
    )
    issue = RepositoryGateway(client, repo).create_issue("after a rate limit", "", [])
    statuses = [r["status"] for r in _requests(hub) if r["path"] == f"/repos/{repo}/issues"]
    assert statuses[-2:] == [403, 201]
    assert issue.title == "after a rate limit"


def test_a_server_error_is_retried(hub: FakeHub, client: github.Github, repo: str) -> None:
    requests.post(
        f"{hub.url}/_admin/faults",
        json={"method": "GET", "path": f"/repos/{repo}$", "status": 502, "count": 2},
        timeout=30,
    )
    assert RepositoryGateway(client, repo).default_branch() == "main"


def test_listing_pages_with_a_link_header(hub: FakeHub, client: github.Github, repo: str) -> None:
    gateway = RepositoryGateway(client, repo)
    for n in range(3):
        gateway.create_issue(f"i{n}", "", ["paged"])
    response = requests.get(f"{hub.url}/repos/{repo}/issues?labels=paged&per_page=2", timeout=30)
    assert len(response.json()) == 2
    assert 'rel="next"' in response.headers["Link"]
    assert len(gateway.issues_with_label("paged")) == 3


def test_issue_comments_are_listed_oldest_first_by_pages_and_since(
    hub: FakeHub, client: github.Github, repo: str
) -> None:
    gateway = RepositoryGateway(client, repo)
    issue = gateway.create_issue("talked about", "", [])
    for n in range(3):
        gateway.comment_on_issue(issue.number, f"c{n}")
    page = requests.get(
        f"{hub.url}/repos/{repo}/issues/{issue.number}/comments?per_page=2", timeout=30
    )
    assert [c["body"] for c in page.json()] == ["c0", "c1"]
    assert 'rel="next"' in page.headers["Link"]
    assert [c.body for c in gateway.issue_comments(issue.number)] == ["c0", "c1", "c2"]
    assert gateway.issue_comments(issue.number, since="2999-01-01T00:00:00Z") == []


def test_a_request_github_carried_out_but_answered_502_for_is_kept(
    hub: FakeHub, client: github.Github, repo: str
) -> None:
    gateway = RepositoryGateway(client, repo)
    issue = gateway.create_issue("answered badly", "", [])
    requests.post(
        f"{hub.url}/_admin/faults",
        json={"method": "POST", "path": "/comments$", "status": 502, "after": True, "count": 1},
        timeout=30,
    )
    with pytest.raises(github.GithubException) as refused:
        gateway.comment_on_issue(issue.number, "kept", once=True)
    assert refused.value.status == 502
    assert [c.body for c in gateway.issue_comments(issue.number)] == ["kept"]


def test_contents_come_from_git_after_a_commit(
    hub: FakeHub, client: github.Github, repo: str
) -> None:
    result = requests.post(
        f"{hub.url}/_admin/repos/{repo}/commits",
        json={"files": {"specs/a.yaml": "title: A2\n", "specs/b.yaml": None}},
        timeout=30,
    ).json()
    gateway = RepositoryGateway(client, repo)
    assert gateway.commit_sha("main") == result["sha"]
    assert gateway.read_file("specs/a.yaml", result["sha"]) == b"title: A2\n"
    assert gateway.read_file("specs/b.yaml", result["sha"]) is None
    assert gateway.list_files("specs", result["sha"]) == ["specs/a.yaml"]
    refs = subprocess.run(
        ["git", "ls-remote", gateway.clone_url(), "main"], capture_output=True, text=True
    )
    assert refs.stdout.split() == [result["sha"], "refs/heads/main"]


def _validator(event: str, action: str | None) -> jsonschema.Draft7Validator:
    registry = Registry()
    for path in SCHEMAS.rglob("*.schema.json"):
        contents = json.loads(path.read_text())
        resource = Resource(contents, specification=DRAFT7)
        relative = str(path.relative_to(SCHEMAS))
        registry = registry.with_resources([(relative, resource), (path.name, resource)])
    name = "event" if action is None else action
    schema = json.loads((SCHEMAS / event / f"{name}.schema.json").read_text())
    return jsonschema.Draft7Validator(schema, registry=registry)


def test_every_webhook_is_signed_and_shaped_like_githubs(
    hub: FakeHub, client: github.Github, receiver: Receiver, repo: str
) -> None:
    receiver.received.clear()
    gateway = RepositoryGateway(client, repo)
    pushed = requests.post(
        f"{hub.url}/_admin/repos/{repo}/commits", json={"files": {"x.txt": "x"}}, timeout=30
    ).json()
    checks = ChecksGateway(client, repo)
    run = checks.start("specbridge", pushed["sha"], "Checking", "…")
    checks.complete(run.id, "success", "Fine", "All good")
    requests.post(
        f"{hub.url}/_admin/repos/{repo}/check-runs/{run.id}/rerequest", json={}, timeout=30
    ).raise_for_status()
    state = requests.get(f"{hub.url}/_admin/state", timeout=30).json()
    [repo_state] = [r for r in state["repositories"] if r["full_name"] == repo]
    [suite] = [s for s in repo_state["check_suites"] if s["head_sha"] == pushed["sha"]]
    assert (suite["status"], suite["conclusion"]) == ("completed", "success")
    requests.post(
        f"{hub.url}/_admin/repos/{repo}/check-suites/{suite['id']}/rerequest", json={}, timeout=30
    ).raise_for_status()
    issue = gateway.create_issue("t", "b", ["specbridge"])
    gateway.update_issue(issue.number, title="t2")
    gateway.comment_on_issue(issue.number, "hello")
    gateway.close_issue(issue.number, "completed")
    requests.post(
        f"{hub.url}/_admin/repos/{repo}/issues/{issue.number}/reopen", json={}, timeout=30
    )
    boards = BoardGateway(client)
    board = boards.find_board("acme", 1)
    [item] = boards.add_to_board(board, [issue.node_id])
    boards.set_status(board, [item], "Done")
    requests.post(f"{hub.url}/_admin/wait", timeout=60)

    kinds = []
    for delivery in receiver.received:
        headers, body = delivery["headers"], delivery["body"]
        assert headers["X-Hub-Signature-256"] == signature(body)
        payload = json.loads(body)
        event = headers["X-GitHub-Event"]
        errors = [
            f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
            for e in _validator(event, payload.get("action")).iter_errors(payload)
        ]
        assert errors == [], (event, payload.get("action"))
        kinds.append((event, payload.get("action")))
    assert kinds == [
        ("push", None),
        ("check_suite", "requested"),
        ("check_run", "created"),
        ("check_run", "completed"),
        ("check_suite", "completed"),
        ("check_run", "rerequested"),
        ("check_suite", "rerequested"),
        ("issues", "opened"),
        ("issues", "edited"),
        ("issue_comment", "created"),
        ("issues", "closed"),
        ("issues", "reopened"),
        ("projects_v2_item", "created"),
        ("projects_v2_item", "edited"),
    ]


def test_redelivery_keeps_the_delivery_id(hub: FakeHub, receiver: Receiver, repo: str) -> None:
    receiver.received.clear()
    result = requests.post(
        f"{hub.url}/_admin/repos/{repo}/commits", json={"files": {"y": "y"}}, timeout=30
    ).json()
    requests.post(f"{hub.url}/_admin/deliveries/{result['delivery_id']}/redeliver", timeout=30)
    requests.post(f"{hub.url}/_admin/wait", timeout=60)
    pushes = [d for d in receiver.received if d["headers"]["X-GitHub-Event"] == "push"]
    assert [d["headers"]["X-GitHub-Delivery"] for d in pushes] == [result["delivery_id"]] * 2


def test_an_app_hears_only_of_repositories_it_is_installed_on(
    hub: FakeHub, receiver: Receiver
) -> None:
    for name in ("quiet-1", "quiet-2"):
        requests.post(
            f"{hub.url}/_admin/repos",
            json={"owner": "hooli", "name": name, "installed": False},
            timeout=30,
        ).raise_for_status()
    receiver.received.clear()
    requests.post(
        f"{hub.url}/_admin/repos/hooli/quiet-1/commits", json={"files": {"a": "a"}}, timeout=30
    )
    not_yet = requests.get(f"{hub.url}/repos/hooli/quiet-1/installation", timeout=30)
    for name in ("quiet-1", "quiet-2"):
        requests.post(
            f"{hub.url}/_admin/installations/hooli",
            json={"repositories": [name], "user": "gilfoyle"},
            timeout=30,
        ).raise_for_status()
    requests.post(f"{hub.url}/_admin/wait", timeout=60)

    assert not_yet.status_code == 404
    payloads = [(d["headers"]["X-GitHub-Event"], json.loads(d["body"])) for d in receiver.received]
    for event, payload in payloads:
        errors = [e.message for e in _validator(event, payload["action"]).iter_errors(payload)]
        assert errors == [], (event, payload["action"])
    assert [(event, payload["action"]) for event, payload in payloads] == [
        ("installation", "created"),
        ("installation_repositories", "added"),
    ]
    assert [r["full_name"] for r in payloads[0][1]["repositories"]] == ["hooli/quiet-1"]
    assert [r["full_name"] for r in payloads[1][1]["repositories_added"]] == ["hooli/quiet-2"]
    installed = requests.get(f"{hub.url}/repos/hooli/quiet-1/installation", timeout=30)
    assert installed.json()["id"] == payloads[0][1]["installation"]["id"]

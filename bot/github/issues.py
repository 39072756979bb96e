"""Issues written in batches through GraphQL: several mutations under aliases in
one request, which GitHub runs in order. One request creates 25 issues, each
already a sub-issue of its parent and on the board; another sets 50 cards'
Status or 50 "blocked by" links. Each alias succeeds or fails on its own, and
the answer says which: the caller records what was done and keeps the rest.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from github import UnknownObjectException

from bot.github.connection import GitHubConnection, GraphQLAnswer

# Per request: well inside GitHub's node and complexity limits and its 10 s
# per-request time, and each mutation request costs 5 secondary points
# whatever it holds.
CREATE_BATCH = 25
WRITE_BATCH = 50
READ_BATCH = 100

ISSUE_FIELDS = (
    "id databaseId number title body state stateReason "
    "labels(first: 100) { nodes { name } } "
    "projectItems(first: 10) { nodes { id project { id } } }"
)

READ_ISSUES = f"query($ids: [ID!]!) {{ nodes(ids: $ids) {{ ... on Issue {{ {ISSUE_FIELDS} }} }} }}"

T = TypeVar("T")


@dataclass(frozen=True)
class NewIssue:
    """An issue to create; `key` is the caller's name for it (a task key)."""

    key: str
    title: str
    body: str
    label_ids: tuple[str, ...] = ()
    parent_id: str | None = None
    project_id: str | None = None
    assignee_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class WrittenIssue:
    number: int
    database_id: int
    node_id: str
    title: str
    body: str
    state: str  # open | closed
    state_reason: str | None
    labels: tuple[str, ...]
    project_item_ids: dict[str, str] = field(default_factory=dict)  # project id → item id

    @classmethod
    def from_node(cls, node: dict[str, Any]) -> WrittenIssue:
        items = (node.get("projectItems") or {}).get("nodes") or []
        return cls(
            number=node["number"],
            database_id=node["databaseId"],
            node_id=node["id"],
            title=node.get("title") or "",
            body=node.get("body") or "",
            state=str(node.get("state", "OPEN")).lower(),
            state_reason=(node.get("stateReason") or "").lower() or None,
            labels=tuple(n["name"] for n in (node.get("labels") or {}).get("nodes") or []),
            project_item_ids={i["project"]["id"]: i["id"] for i in items if i.get("project")},
        )


@dataclass
class Outcome:
    """What a batched write did: results by key, and why the others failed."""

    done: dict[str, Any] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)

    def merge(self, other: Outcome) -> None:
        self.done.update(other.done)
        self.failed.update(other.failed)


@dataclass(frozen=True)
class IssueUpdate:
    key: str
    node_id: str
    title: str | None = None
    body: str | None = None
    label_ids: tuple[str, ...] | None = None


class IssueWriter:
    """Batched GraphQL writes to the issues of one repository."""

    def __init__(self, connection: GitHubConnection, full_name: str) -> None:
        self.connection = connection
        self.owner, self.name = full_name.split("/", 1)

    # -- reads ---------------------------------------------------------------------

    def repository_and_labels(self, names: Iterable[str]) -> tuple[str, dict[str, str]]:
        """The repository's node id, and the ids of those of `names` that exist."""
        wanted = sorted(set(names))
        aliases = "".join(f" l{i}: label(name: $l{i}) {{ id name }}" for i in range(len(wanted)))
        declared = "".join(f", $l{i}: String!" for i in range(len(wanted)))
        document = (
            f"query($owner: String!, $name: String!{declared}) "
            f"{{ repository(owner: $owner, name: $name) {{ id{aliases} }} }}"
        )
        variables: dict[str, Any] = {"owner": self.owner, "name": self.name}
        variables |= {f"l{i}": name for i, name in enumerate(wanted)}
        repository = self.connection.query(document, variables)["repository"]
        labels = {
            repository[f"l{i}"]["name"]: repository[f"l{i}"]["id"]
            for i in range(len(wanted))
            if repository.get(f"l{i}")
        }
        return repository["id"], labels

    def user_ids(self, logins: Iterable[str]) -> dict[str, str]:
        wanted = sorted(set(logins))
        if not wanted:
            return {}
        document = (
            "query("
            + ", ".join(f"$u{i}: String!" for i in range(len(wanted)))
            + ") {"
            + "".join(f" u{i}: user(login: $u{i}) {{ id login }}" for i in range(len(wanted)))
            + " }"
        )
        try:
            data = self.connection.query(document, {f"u{i}": u for i, u in enumerate(wanted)})
        except Exception:  # an unknown login: nobody is assigned, the issue is still written
            return {}
        return {user["login"]: user["id"] for user in data.values() if user}

    def parents_of(self, node_ids: Sequence[str]) -> dict[str, str | None]:
        """Each issue's parent issue (node id), or None: what GitHub holds, read back."""
        parents: dict[str, str | None] = {}
        for start in range(0, len(node_ids), READ_BATCH):
            chunk = node_ids[start : start + READ_BATCH]
            document = (
                "query("
                + ", ".join(f"$c{i}: ID!" for i in range(len(chunk)))
                + ") {"
                + "".join(
                    f" c{i}: node(id: $c{i}) {{ ... on Issue {{ parent {{ id }} }} }}"
                    for i in range(len(chunk))
                )
                + " }"
            )
            data = self.connection.query(document, {f"c{i}": n for i, n in enumerate(chunk)})
            for i, node_id in enumerate(chunk):
                parent = (data.get(f"c{i}") or {}).get("parent")
                parents[node_id] = parent["id"] if parent else None
        return parents

    def read_issues(self, node_ids: Sequence[str]) -> dict[str, WrittenIssue]:
        """Issues as they are now (title, body, labels, state, cards), by node id: GraphQL
        `nodes`, up to 100 a request. An id that is no issue any more is left out."""
        found: dict[str, WrittenIssue] = {}
        ids = list(dict.fromkeys(node_ids))
        for start in range(0, len(ids), READ_BATCH):
            chunk = ids[start : start + READ_BATCH]
            try:
                nodes = self.connection.query(READ_ISSUES, {"ids": chunk}).get("nodes") or []
            except UnknownObjectException:  # one was deleted: the others one by one
                nodes = [self._read_one(node_id) for node_id in chunk]
            for node in nodes:
                if node and node.get("id"):
                    found[node["id"]] = WrittenIssue.from_node(node)
        return found

    def _read_one(self, node_id: str) -> dict[str, Any] | None:
        try:
            nodes = self.connection.query(READ_ISSUES, {"ids": [node_id]}).get("nodes")
        except UnknownObjectException:
            return None
        return (nodes or [None])[0]

    # -- writes --------------------------------------------------------------------

    def create_labels(self, repository_id: str, names: Sequence[str]) -> Outcome:
        return self._batched(
            names,
            WRITE_BATCH,
            lambda name: (
                "createLabel",
                "CreateLabelInput!",
                {"repositoryId": repository_id, "name": name, "color": _color(name)},
                "label { id name }",
            ),
            key=lambda name: name,
            result=lambda data: data["label"]["id"],
            content=True,
        )

    def create_issues(self, repository_id: str, issues: Sequence[NewIssue]) -> Outcome:
        """Create issues, each under its parent and on its board; sent once, never resent."""
        return self._batched(
            issues,
            CREATE_BATCH,
            lambda issue: (
                "createIssue",
                "CreateIssueInput!",
                _create_input(repository_id, issue),
                _issue_sel(),
            ),
            key=lambda issue: issue.key,
            result=lambda data: WrittenIssue.from_node(data["issue"]),
            content=True,
            once=True,
        )

    def update_issues(self, updates: Sequence[IssueUpdate]) -> Outcome:
        return self._batched(
            updates,
            WRITE_BATCH,
            lambda update: (
                "updateIssue",
                "UpdateIssueInput!",
                _update_input(update),
                "issue { id }",
            ),
            key=lambda update: update.key,
        )

    def close_issues(self, closes: Sequence[tuple[str, str, str]]) -> Outcome:
        """(key, node id, reason: COMPLETED or NOT_PLANNED)."""
        return self._batched(
            closes,
            WRITE_BATCH,
            lambda close: (
                "closeIssue",
                "CloseIssueInput!",
                {"issueId": close[1], "stateReason": close[2]},
                "issue { id }",
            ),
            key=lambda close: close[0],
        )

    def reopen_issues(self, reopens: Sequence[tuple[str, str]]) -> Outcome:
        """(key, node id)."""
        return self._batched(
            reopens,
            WRITE_BATCH,
            lambda reopen: (
                "reopenIssue",
                "ReopenIssueInput!",
                {"issueId": reopen[1]},
                "issue { id }",
            ),
            key=lambda reopen: reopen[0],
        )

    def add_comments(self, comments: Sequence[tuple[str, str, str]]) -> Outcome:
        """(key, subject node id, body)."""
        return self._batched(
            comments,
            WRITE_BATCH,
            lambda comment: (
                "addComment",
                "AddCommentInput!",
                {"subjectId": comment[1], "body": comment[2]},
                "subject { id }",
            ),
            key=lambda comment: comment[0],
            content=True,
        )

    def add_blocked_by(self, links: Sequence[tuple[str, str, str]]) -> Outcome:
        """(key, issue node id, blocking issue node id)."""
        return self._batched(
            links,
            WRITE_BATCH,
            lambda link: (
                "addBlockedBy",
                "AddBlockedByInput!",
                {"issueId": link[1], "blockingIssueId": link[2]},
                "issue { id }",
            ),
            key=lambda link: link[0],
            tolerated="already",  # the link exists: what we wanted
        )

    def remove_blocked_by(self, links: Sequence[tuple[str, str, str]]) -> Outcome:
        return self._batched(
            links,
            WRITE_BATCH,
            lambda link: (
                "removeBlockedBy",
                "RemoveBlockedByInput!",
                {"issueId": link[1], "blockingIssueId": link[2]},
                "issue { id }",
            ),
            key=lambda link: link[0],
            tolerated="not",  # not blocked by it (any more): what we wanted
        )

    def add_sub_issues(self, links: Sequence[tuple[str, str, str, bool]]) -> Outcome:
        """(key, parent node id, child node id, replace an existing parent)."""
        return self._batched(
            links,
            WRITE_BATCH,
            lambda link: (
                "addSubIssue",
                "AddSubIssueInput!",
                {"issueId": link[1], "subIssueId": link[2], "replaceParent": link[3]},
                "subIssue { id }",
            ),
            key=lambda link: link[0],
            # GitHub's refusal of a child already under that very parent: what we wanted.
            tolerated="duplicate sub-issues",
        )

    # -- batching ------------------------------------------------------------------

    def _batched(
        self,
        items: Sequence[T],
        size: int,
        mutation: Callable[[T], tuple[str, str, dict[str, Any], str]],
        key: Callable[[T], str],
        result: Callable[[dict[str, Any]], Any] = lambda data: True,
        content: bool = False,
        once: bool = False,
        tolerated: str | None = None,
    ) -> Outcome:
        outcome = Outcome()
        for start in range(0, len(items), size):
            chunk = items[start : start + size]
            fields, declared, variables = [], [], {}
            for i, item in enumerate(chunk):
                name, input_type, value, selection = mutation(item)
                fields.append(f"m{i}: {name}(input: $m{i}) {{ {selection} }}")
                declared.append(f"$m{i}: {input_type}")
                variables[f"m{i}"] = value
            document = f"mutation({', '.join(declared)}) {{\n  " + "\n  ".join(fields) + "\n}"
            answer = self.connection.mutate(
                document, variables, content=len(chunk) if content else 0, once=once
            )
            outcome.merge(_outcome(answer, chunk, key, result, tolerated))
        return outcome


def _outcome(
    answer: GraphQLAnswer,
    chunk: Sequence[T],
    key: Callable[[T], str],
    result: Callable[[dict[str, Any]], Any],
    tolerated: str | None,
) -> Outcome:
    outcome = Outcome()
    for i, item in enumerate(chunk):
        alias = f"m{i}"
        data = answer.data.get(alias)
        error = answer.errors.get(alias)
        if data is not None and error is None:
            outcome.done[key(item)] = result(data)
        elif error and tolerated and tolerated in error.lower():
            outcome.done[key(item)] = True
        else:
            outcome.failed[key(item)] = error or "; ".join(answer.other_errors) or "not done"
    return outcome


def _issue_sel() -> str:
    return f"issue {{ {ISSUE_FIELDS} }}"


def _create_input(repository_id: str, issue: NewIssue) -> dict[str, Any]:
    value: dict[str, Any] = {
        "repositoryId": repository_id,
        "title": issue.title,
        "body": issue.body,
    }
    if issue.label_ids:
        value["labelIds"] = list(issue.label_ids)
    if issue.parent_id:
        value["parentIssueId"] = issue.parent_id
    if issue.project_id:
        value["projectV2Ids"] = [issue.project_id]
    if issue.assignee_ids:
        value["assigneeIds"] = list(issue.assignee_ids)
    return value


def _update_input(update: IssueUpdate) -> dict[str, Any]:
    value: dict[str, Any] = {"id": update.node_id}
    if update.title is not None:
        value["title"] = update.title
    if update.body is not None:
        value["body"] = update.body
    if update.label_ids is not None:
        value["labelIds"] = list(update.label_ids)
    return value


def _color(name: str) -> str:
    """A stable colour per label name."""
    return hashlib.sha256(name.encode()).hexdigest()[:6]

"""GraphQL: checked against GitHub's schema, executed against the double's state.

The schema is GitHub's published snapshot with the project's own additions
(schema-additions.graphql) on top. Several mutations in one request run in
order; one that fails leaves the others done, and its alias gets an error
with its path, as GitHub answers.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from graphql import (
    GraphQLSchema,
    build_schema,
    extend_schema,
    graphql_sync,
    parse,
    validate,
)
from graphql.language import FieldNode, OperationDefinitionNode

from fakehub import copilot
from fakehub.actors import actor_of
from fakehub.assignees import add_assignees, assign_agent, remove_assignees
from fakehub.fixtures import FIXTURES
from fakehub.http import Refused, SubIssueRefused, TooQuickly
from fakehub.limits import MAX_PAGE
from fakehub.state import BOT, COPILOT, Issue, Project, Repo, State, new_id, node_id, now

ADDITIONS = Path(__file__).with_name("schema-additions.graphql")
# Mutations that create content, and spend the content budget.
CONTENT_MUTATIONS = {"createIssue", "addComment", "createLabel"}
CLOSED_REASONS = {"COMPLETED": "completed", "NOT_PLANNED": "not_planned", "DUPLICATE": "duplicate"}


@cache
def github_schema() -> GraphQLSchema:
    schema = build_schema(
        (FIXTURES / "graphql" / "schema.graphql").read_text(), assume_valid_sdl=True
    )
    schema = extend_schema(schema, parse(ADDITIONS.read_text()), assume_valid_sdl=True)
    # GitHub's own schema breaks a few of graphql-core's strict interface rules
    # (deprecations); it is GitHub's, so it is taken as valid.
    schema._validation_errors = []  # type: ignore[attr-defined]
    return schema


class GraphQLError(Exception):
    type = "UNPROCESSABLE"


class _NotFound(GraphQLError):
    type = "NOT_FOUND"


class _Forbidden(GraphQLError):
    type = "FORBIDDEN"


class _Validation(GraphQLError):
    type = "VALIDATION"


def kind(query: str) -> str | None:
    operations = _operations(query)
    if operations is None:
        return None
    return "mutation" if any(o.operation.value == "mutation" for o in operations) else "query"


def mutation_fields(query: str) -> list[str]:
    """The mutations a document asks for, one entry per alias."""
    fields = []
    for operation in _operations(query) or []:
        if operation.operation.value == "mutation":
            fields += [
                s.name.value for s in operation.selection_set.selections if isinstance(s, FieldNode)
            ]
    return fields


def _operations(query: str) -> list[OperationDefinitionNode] | None:
    try:
        document = parse(query)
    except Exception:
        return None
    return [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]


def execute(
    hub: Any, query: str, variables: dict[str, Any] | None, token: str = "anonymous"
) -> tuple[dict[str, Any], str | None]:
    """The response body, and the reason GitHub would refuse the document (or None)."""
    schema = github_schema()
    try:
        document = parse(query)
    except Exception as error:
        return {"errors": [{"message": str(error)}]}, f"GraphQL syntax: {error}"
    errors = validate(schema, document)
    if errors:
        reason = "; ".join(e.message for e in errors)
        return {"errors": [e.formatted for e in errors]}, f"GraphQL: {reason}"
    result = graphql_sync(
        schema, query, root_value=_Root(hub, token), variable_values=variables or {}
    )
    body: dict[str, Any] = {"data": result.data}
    if result.errors:
        body["errors"] = [
            {**e.formatted, "type": getattr(e.original_error, "type", "UNPROCESSABLE")}
            for e in result.errors
        ]
    return body, None


def page(
    items: list[Any], first: int | None, last: int | None, after: str | None, field: str
) -> dict[str, Any]:
    """A connection's page, with GitHub's limits on `first` and `last`."""
    for name, value in (("first", first), ("last", last)):
        if value is not None and not 0 <= value <= MAX_PAGE:
            raise GraphQLError(
                f"Requesting {value} records on the `{field}` connection exceeds the "
                f"`{name}` limit of {MAX_PAGE} records."
            )
    if first is None and last is None:
        raise GraphQLError(
            f"You must provide a `first` or `last` value to properly paginate the `{field}` "
            "connection."
        )
    start = int(after) if after else 0
    chunk = items[start : start + first] if first is not None else items[-(last or 0) :]
    end = start + len(chunk)
    return {
        "nodes": chunk,
        "totalCount": len(items),
        "pageInfo": {
            "hasNextPage": end < len(items),
            "endCursor": str(end),
            "hasPreviousPage": start > 0,
            "startCursor": str(start),
        },
    }


def connection(items: Any, field: str) -> Any:
    """A resolver for a connection field; `items()` gives its nodes when it is asked for."""

    def resolve(info: Any, first: int | None = None, last: int | None = None, **kw: Any) -> Any:
        return page(items(), first, last, kw.get("after"), field)

    return resolve


class _Root(dict):  # type: ignore[type-arg]
    """Root fields as callables: graphql-core calls them with (info, **arguments)."""

    def __init__(self, hub: Any, token: str) -> None:
        super().__init__()
        self.hub = hub
        self.token = token
        self.state: State = hub.state
        self.update(
            organization=lambda info, login: self._owner(login, "Organization"),
            user=lambda info, login: self._owner(login, "User"),
            repository=lambda info, owner, name, **_: self._repository(owner, name),
            node=lambda info, id: self._node(id),
            nodes=lambda info, ids: [self._node(i) for i in ids],
            addProjectV2ItemById=lambda info, input: self._add_item(input),
            updateProjectV2ItemFieldValue=lambda info, input: self._set_status(input),
            addSubIssue=lambda info, input: self._add_sub_issue(input),
            removeSubIssue=lambda info, input: self._remove_sub_issue(input),
            createIssue=lambda info, input: self._create_issue(input),
            updateIssue=lambda info, input: self._update_issue(input),
            closeIssue=lambda info, input: self._set_state(input, "closed"),
            reopenIssue=lambda info, input: self._set_state(input, "open"),
            addComment=lambda info, input: self._add_comment(input),
            addBlockedBy=lambda info, input: self._blocked_by(input, add=True),
            removeBlockedBy=lambda info, input: self._blocked_by(input, add=False),
            createLabel=lambda info, input: self._create_label(input),
            markPullRequestReadyForReview=lambda info, input: self._mark_ready(input),
        )
        self.update(assignment_fields(self))

    # -- queries ---------------------------------------------------------------------

    def _owner(self, login: str, owner_type: str) -> dict[str, Any]:
        owners = {p.owner: p.owner_type for p in self.state.projects.values()}
        owners |= {r.owner: r.owner_type for r in self.state.repos.values()}
        known = owners.get(login)
        if (owner_type == "Organization" and known != "Organization") or (
            owner_type == "User" and known == "Organization"
        ):
            article = "an Organization" if owner_type == "Organization" else "a User"
            raise _NotFound(f"Could not resolve to {article} with the login of '{login}'.")
        return {
            "id": node_id("U" if owner_type == "User" else "O", abs(hash(login)) % 10_000_000),
            "login": login,
            "projectV2": lambda info, number: self._project(login, number),
        }

    def _project(self, login: str, number: int) -> dict[str, Any] | None:
        project = self.state.projects.get((login, number))
        return project_node(self.state, project) if project else None

    def _repository(self, owner: str, name: str) -> dict[str, Any]:
        repo = self.state.repo(owner, name)
        if repo is None or not self.state.may_read(self.token, repo):
            raise _NotFound(f"Could not resolve to a Repository with the name '{owner}/{name}'.")

        def label(info: Any, name: str) -> dict[str, Any] | None:
            return _label_node(repo.label(name)) if name in repo.label_ids else None

        def labels(info: Any, first: int | None = None, query: str | None = None, **kw: Any) -> Any:
            names = [n for n in repo.label_ids if not query or query.lower() in n.lower()]
            found = [_label_node(repo.label(n)) for n in names]
            return page(found, first, kw.get("last"), kw.get("after"), "labels")

        def suggested_actors(info: Any, capabilities: list[str], **kw: Any) -> Any:
            actors = copilot.suggested_actors(
                self.state, repo, self.token, capabilities, kw.get("loginNames")
            )
            found = page(
                actors, kw.get("first"), kw.get("last"), kw.get("after"), "suggestedActors"
            )
            start = int(kw.get("after") or 0)
            edges = [
                {"cursor": str(start + i + 1), "node": a} for i, a in enumerate(found["nodes"])
            ]
            return {**found, "edges": edges}

        return {
            "id": repo.node_id,
            "nameWithOwner": repo.full_name,
            "suggestedActors": suggested_actors,
            # A pull request's number is no Issue's in GraphQL (null, as GitHub's error says).
            "issue": lambda info, number: issue_node(self.state, _plain_issue(repo, number)),
            "label": label,
            "labels": labels,
        }

    def _node(self, node: str) -> dict[str, Any] | None:
        issue = self.state.issue_by_node(node)
        if issue is not None:
            return issue_node(self.state, issue)
        for project in self.state.projects.values():
            if node == project.node_id:
                return project_node(self.state, project)
            if node in project.items:
                return item_node(self.state, project, project.items[node])
        return None

    # -- mutations -------------------------------------------------------------------

    def _issue(self, node: str | None) -> Issue:
        issue = self.state.issue_by_node(node or "")
        if issue is None:
            raise _NotFound(f"Could not resolve to a node with the global id of '{node}'")
        return issue

    def _repo(self, node: str) -> Any:
        repo = next((r for r in self.state.repos.values() if r.node_id == node), None)
        if repo is None:
            raise _NotFound(f"Could not resolve to a node with the global id of '{node}'")
        return repo

    def _create_issue(self, input: dict[str, Any]) -> dict[str, Any]:
        repo = self._repo(input["repositoryId"])
        labels = [self._label_name(repo, label_id) for label_id in input.get("labelIds") or []]
        parent = self._issue(input["parentIssueId"]) if input.get("parentIssueId") else None
        projects = [self.hub._project(p) for p in input.get("projectV2Ids") or []]
        assignees = [self._login(a) for a in input.get("assigneeIds") or []]
        if parent is not None:  # checked first: GitHub creates nothing it cannot place
            self._guarded(lambda: self.hub.check_room(parent))
        assignees, agent = take_from_graphql(
            self, repo, assignees, input.get("agentAssignment"), None
        )
        issue = self._guarded(
            lambda: self.hub.create_issue(
                repo, input["title"], input.get("body"), self.token, labels, assignees
            )
        )
        if agent is not None:
            assign_agent(self.hub, issue, agent, actor_of(self.state, self.token))
        if parent is not None:
            self._guarded(lambda: self.hub.add_sub_issue(parent, issue))
        for project in projects:
            self.hub.add_project_item(project.node_id, issue.node_id)
        return {"issue": issue_node(self.state, issue)}

    def _update_issue(self, input: dict[str, Any]) -> dict[str, Any]:
        issue = self._issue(input["id"])
        changes: dict[str, Any] = {
            key: input[key] for key in ("title", "body") if input.get(key) is not None
        }
        if input.get("labelIds") is not None:
            changes["labels"] = [self._label_name(issue.repo, i) for i in input["labelIds"]]
        agent, keep_copilot = None, False
        if input.get("assigneeIds") is not None:
            wanted = [self._login(a) for a in input["assigneeIds"]]
            keep_copilot = COPILOT["login"] in wanted and COPILOT["login"] in issue.assignees
            new = [w for w in wanted if w not in issue.assignees]
            _, agent = take_from_graphql(
                self, issue.repo, new, input.get("agentAssignment"), issue.number
            )
            changes["assignees"] = [w for w in wanted if w != COPILOT["login"]]
        if input.get("state"):
            changes["state"] = input["state"].lower()
        self._guarded(lambda: self.hub.edit_issue(issue, changes))
        if keep_copilot:
            issue.assignees.append(COPILOT["login"])
        if agent is not None:
            assign_agent(self.hub, issue, agent, actor_of(self.state, self.token))
        return {"issue": issue_node(self.state, issue), "actor": None}

    def _set_state(self, input: dict[str, Any], state: str) -> dict[str, Any]:
        issue = self._issue(input["issueId"])
        reason = CLOSED_REASONS.get(input.get("stateReason") or "COMPLETED")
        self.hub.set_issue_state(issue, state, reason, BOT["login"])
        return {"issue": issue_node(self.state, issue)}

    def _add_comment(self, input: dict[str, Any]) -> dict[str, Any]:
        issue = self._issue(input["subjectId"])
        self._guarded(
            lambda: self.hub.add_comment(issue, BOT["login"], input["body"], "NONE", self.token)
        )
        return {"subject": issue_node(self.state, issue), "commentEdge": None}

    def _blocked_by(self, input: dict[str, Any], add: bool) -> dict[str, Any]:
        issue, blocking = self._issue(input["issueId"]), self._issue(input["blockingIssueId"])
        change = self.hub.add_blocked_by if add else self.hub.remove_blocked_by
        self._guarded(lambda: change(issue, blocking))
        return {
            "issue": issue_node(self.state, issue),
            "blockingIssue": issue_node(self.state, blocking),
        }

    def _add_sub_issue(self, input: dict[str, Any]) -> dict[str, Any]:

        parent, child = self._issue(input["issueId"]), self._issue(input.get("subIssueId"))
        try:
            self.hub.add_sub_issue(parent, child, bool(input.get("replaceParent")))
        except SubIssueRefused as refused:
            raise _Validation(
                f"Failed to add sub-issue #{child.number} to parent #{parent.number}. {refused}"
            ) from None
        return {"issue": issue_node(self.state, parent), "subIssue": issue_node(self.state, child)}

    def _remove_sub_issue(self, input: dict[str, Any]) -> dict[str, Any]:
        parent, child = self._issue(input["issueId"]), self._issue(input["subIssueId"])
        self._guarded(lambda: self.hub.remove_sub_issue(parent, child))
        return {"issue": issue_node(self.state, parent), "subIssue": issue_node(self.state, child)}

    def _create_label(self, input: dict[str, Any]) -> dict[str, Any]:
        repo = self._repo(input["repositoryId"])
        label = self._guarded(lambda: self.hub.create_label(repo, input["name"], self.token))
        return {"label": _label_node(label)}

    def _add_item(self, input: dict[str, Any]) -> dict[str, Any]:
        item = self._guarded(
            lambda: self.hub.add_project_item(input["projectId"], input["contentId"])
        )
        project = self.hub._project(input["projectId"])
        return {"item": item_node(self.state, project, item)}

    def _set_status(self, input: dict[str, Any]) -> dict[str, Any]:
        item = self._guarded(
            lambda: self.hub.set_item_status(
                input["projectId"],
                input["itemId"],
                input["fieldId"],
                input["value"].get("singleSelectOptionId"),
            )
        )
        project = self.hub._project(input["projectId"])
        return {"projectV2Item": item_node(self.state, project, item)}

    def _mark_ready(self, input: dict[str, Any]) -> dict[str, Any]:
        """A draft marked ready for review: `pull_request` ready_for_review, and GitHub
        asks the code owners of its files (fakehub/reviewers.py)."""
        from fakehub.pulls import mark_ready

        wanted = input["pullRequestId"]
        found = next(
            (
                (repo, pull)
                for repo in self.state.repos.values()
                for pull in repo.pulls.values()
                if node_id("PR", pull["id"]) == wanted
            ),
            None,
        )
        if found is None:
            raise _NotFound(f"Could not resolve to a node with the global id of '{wanted}'")
        repo, pull = found
        actor = actor_of(self.state, self.token)
        self._guarded(lambda: mark_ready(self.hub, repo, pull, actor))
        return {
            "pullRequest": {
                "__typename": "PullRequest",
                "id": wanted,
                "number": pull["number"],
                "isDraft": pull["draft"],
                "state": pull["state"].upper(),
            }
        }

    def _label_name(self, repo: Any, label_id: str) -> str:
        name = next((n for n, i in repo.label_ids.items() if node_id("LA", i) == label_id), None)
        if name is None:
            raise _NotFound(f"Could not resolve to a node with the global id of '{label_id}'")
        return name

    def _login(self, user_id: str) -> str:
        known = copilot.login_of(self.state, user_id)
        if known is not None:
            return known
        return next(
            (
                login
                for login in {r.owner for r in self.state.repos.values()} | {"octocat"}
                if node_id("U", abs(hash(login)) % 10_000_000) == user_id
            ),
            "octocat",
        )

    def _guarded(self, action):  # type: ignore[no-untyped-def]
        """GitHub's refusals as GraphQL errors on the alias."""

        try:
            return action()
        except TooQuickly as refused:
            raise _Forbidden(str(refused)) from None
        except Refused as refused:
            raise GraphQLError(str(refused)) from None


def _plain_issue(repo: Any, number: int) -> Issue | None:
    issue = repo.issues.get(number)
    return None if issue is None or issue.is_pull_request else issue


def issue_node(state: State, issue: Issue | None) -> dict[str, Any] | None:
    if issue is None:
        return None
    repo = issue.repo

    def project_items() -> list[dict[str, Any]]:
        return [
            item_node(state, project, item)
            for project in state.projects.values()
            for item in project.items.values()
            if item["content"] == issue.node_id
        ]

    def issues(numbers: list[int]) -> Any:
        return lambda: [issue_node(state, repo.issues[n]) for n in numbers]

    blocking = [i.number for i in repo.issues.values() if issue.number in i.blocked_by]
    sub_issues = [repo.issues[n] for n in issue.sub_issues]
    completed = sum(1 for s in sub_issues if s.state == "closed")
    return {
        "__typename": "Issue",
        "id": issue.node_id,
        "databaseId": issue.id,
        "number": issue.number,
        "title": issue.title,
        "body": issue.body or "",
        "state": issue.state.upper(),
        "stateReason": (issue.state_reason or "").upper() or None,
        "closed": issue.state == "closed",
        "createdAt": issue.created_at,
        "updatedAt": issue.updated_at,
        "url": f"{repo.html_url}/issues/{issue.number}",
        "repository": {"id": repo.node_id, "nameWithOwner": repo.full_name},
        "labels": connection(lambda: [_label_node(repo.label(n)) for n in issue.labels], "labels"),
        "assignees": connection(
            lambda: [copilot.user_node(login) for login in issue.assignees], "assignees"
        ),
        "projectItems": connection(project_items, "projectItems"),
        "parent": lambda info: (
            issue_node(state, repo.issues[issue.parent]) if issue.parent else None
        ),
        "subIssues": connection(issues(issue.sub_issues), "subIssues"),
        "blockedBy": connection(issues(issue.blocked_by), "blockedBy"),
        "blocking": connection(issues(blocking), "blocking"),
        "subIssuesSummary": {
            "total": len(sub_issues),
            "completed": completed,
            "percentCompleted": round(100 * completed / len(sub_issues)) if sub_issues else 0,
        },
        "issueDependenciesSummary": {
            "blockedBy": sum(1 for n in issue.blocked_by if repo.issues[n].state == "open"),
            "blocking": len(blocking),
            "totalBlockedBy": len(issue.blocked_by),
            "totalBlocking": len(blocking),
        },
    }


def _label_node(label: dict[str, Any]) -> dict[str, Any]:
    return {
        "__typename": "Label",
        "id": label["node_id"],
        "name": label["name"],
        "color": label["color"],
        "description": label["description"],
        "isDefault": False,
    }


def project_node(state: State, project: Project) -> dict[str, Any]:
    def field(info: Any, name: str) -> dict[str, Any] | None:
        if name != "Status":
            return None
        return {
            "__typename": "ProjectV2SingleSelectField",
            "id": project.field_node_id,
            "name": "Status",
            "options": [{"id": oid, "name": n} for n, oid in project.options.items()],
        }

    def items() -> list[dict[str, Any]]:
        return [item_node(state, project, i) for i in project.items.values()]

    return {
        "__typename": "ProjectV2",
        "id": project.node_id,
        "number": project.number,
        "title": f"{project.owner} board",
        "field": field,
        "items": connection(items, "items"),
    }


def item_node(state: State, project: Project, item: dict[str, Any]) -> dict[str, Any]:
    def value(info: Any, name: str) -> dict[str, Any] | None:
        if name != "Status" or item["status"] is None:
            return None
        return {
            "__typename": "ProjectV2ItemFieldSingleSelectValue",
            "optionId": item["status"],
            "name": project.status_name(item["status"]),
        }

    return {
        "__typename": "ProjectV2Item",
        "id": item["id"],
        "type": "ISSUE",
        "project": {"id": project.node_id},
        "content": issue_node(state, state.issue_by_node(item["content"])),
        "fieldValueByName": value,
    }


def new_item(content: str, creator: str) -> dict[str, Any]:
    database_id = new_id()
    return {
        "id": node_id("PVTI", database_id),
        "database_id": database_id,
        "content": content,
        "status": None,
        "creator": creator,
        "created_at": now(),
    }


__all__ = ["GraphQLError", "execute", "github_schema", "kind", "mutation_fields", "new_item"]


# -- assigning, Copilot among the assignees (fakehub/copilot.py) --------------------


def assignment_fields(root: Any) -> dict[str, Any]:
    """Root mutation fields of assignment, for _Root."""
    return {
        "replaceActorsForAssignable": lambda info, input: _replace(root, input),
        "addAssigneesToAssignable": lambda info, input: _add(root, input),
        "removeAssigneesFromAssignable": lambda info, input: _remove(root, input),
    }


def take_from_graphql(
    root: Any, repo: Repo, logins: list[str], agent: dict[str, Any] | None, number: int | None
) -> tuple[list[str], dict[str, Any] | None]:
    """Assignees without Copilot, and Copilot's assignment; a refusal is a GraphQL
    error on the mutation's alias."""
    others = [login for login in logins if login not in copilot.agent_logins()]
    if len(others) == len(logins):
        return others, None
    wanted = next(login for login in logins if login in copilot.agent_logins())
    try:
        return others, copilot.check(root.hub, repo, root.token, agent, graphql=True, login=wanted)
    except copilot.CopilotRefused as refusal:
        copilot.refused(repo, number, str(refusal), "graphql")
        error = GraphQLError(str(refusal))
        error.type = refusal.type
        raise error from None


def _logins(root: Any, ids: list[str] | None, names: list[str] | None = None) -> list[str]:
    found = []
    for node in ids or []:
        login = copilot.login_of(root.state, node)
        if login is None:
            error = GraphQLError(f"Could not resolve to a node with the global id of '{node}'")
            error.type = "NOT_FOUND"
            raise error
        found.append(login)
    found += [copilot.rest_login(name) for name in names or []]
    return list(dict.fromkeys(found))


def _change(root: Any, input: dict[str, Any], wanted: list[str], replace: bool) -> dict[str, Any]:

    issue = root._issue(input["assignableId"])
    new = [w for w in wanted if w not in issue.assignees]
    _, assignment = take_from_graphql(
        root, issue.repo, new, input.get("agentAssignment"), issue.number
    )
    actor = actor_of(root.state, root.token)
    if replace:
        remove_assignees(root.hub, issue, [a for a in issue.assignees if a not in wanted], actor)
    add_assignees(root.hub, issue, [w for w in new if w not in copilot.agent_logins()], actor)
    if assignment is not None:
        assign_agent(root.hub, issue, assignment, actor)
    return {"assignable": issue_node(root.state, issue), "clientMutationId": None}


def _replace(root: Any, input: dict[str, Any]) -> dict[str, Any]:
    wanted = _logins(root, input.get("actorIds"), input.get("actorLogins"))
    return _change(root, input, wanted, replace=True)


def _add(root: Any, input: dict[str, Any]) -> dict[str, Any]:
    return _change(root, input, _logins(root, input.get("assigneeIds")), replace=False)


def _remove(root: Any, input: dict[str, Any]) -> dict[str, Any]:

    issue = root._issue(input["assignableId"])
    gone = _logins(root, input.get("assigneeIds"))
    remove_assignees(root.hub, issue, gone, actor_of(root.state, root.token))
    return {"assignable": issue_node(root.state, issue), "clientMutationId": None}

"""GraphQL: checked against GitHub's schema, executed against the double's state."""

from __future__ import annotations

from functools import cache
from typing import Any

from graphql import GraphQLSchema, build_schema, graphql_sync, parse, validate
from graphql.language import OperationDefinitionNode

from fakehub.fixtures import FIXTURES
from fakehub.state import Issue, Project, State, new_id, node_id, now


@cache
def github_schema() -> GraphQLSchema:
    schema = build_schema(
        (FIXTURES / "graphql" / "schema.graphql").read_text(), assume_valid_sdl=True
    )
    # GitHub's own schema breaks a few of graphql-core's strict interface rules
    # (deprecations); it is GitHub's, so it is taken as valid.
    schema._validation_errors = []  # type: ignore[attr-defined]
    return schema


class GraphQLError(Exception):
    pass


def kind(query: str) -> str | None:
    try:
        document = parse(query)
    except Exception:
        return None
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    return "mutation" if any(o.operation.value == "mutation" for o in operations) else "query"


def execute(
    hub: Any, query: str, variables: dict[str, Any] | None
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
    result = graphql_sync(schema, query, root_value=_Root(hub), variable_values=variables or {})
    body: dict[str, Any] = {"data": result.data}
    if result.errors:
        body["errors"] = [
            {**e.formatted, "type": getattr(e.original_error, "type", "UNPROCESSABLE")}
            for e in result.errors
        ]
    return body, None


class _NotFound(Exception):
    type = "NOT_FOUND"


class _Root(dict):  # type: ignore[type-arg]
    """Root fields as callables: graphql-core calls them with (info, **arguments)."""

    def __init__(self, hub: Any) -> None:
        super().__init__()
        self.hub = hub
        state: State = hub.state
        self.update(
            organization=lambda info, login: self._owner(login, "Organization"),
            user=lambda info, login: self._owner(login, "User"),
            repository=lambda info, owner, name, **_: self._repository(owner, name),
            node=lambda info, id: self._node(id),
            addProjectV2ItemById=lambda info, input: hub.add_project_item(
                input["projectId"], input["contentId"]
            ),
            updateProjectV2ItemFieldValue=lambda info, input: hub.set_item_status(
                input["projectId"],
                input["itemId"],
                input["fieldId"],
                input["value"].get("singleSelectOptionId"),
            ),
            addSubIssue=lambda info, input: hub.add_sub_issue(
                input.get("issueId"), input.get("subIssueId")
            ),
        )
        self.state = state

    def _owner(self, login: str, owner_type: str) -> dict[str, Any]:
        owners = {p.owner: p.owner_type for p in self.state.projects.values()}
        owners |= {r.owner: r.owner_type for r in self.state.repos.values()}
        if owners.get(login) != owner_type:
            article = "an Organization" if owner_type == "Organization" else "a User"
            raise _NotFound(f"Could not resolve to {article} with the login of '{login}'.")
        return {"login": login, "projectV2": lambda info, number: self._project(login, number)}

    def _project(self, login: str, number: int) -> dict[str, Any] | None:
        project = self.state.projects.get((login, number))
        return project_node(self.state, project) if project else None

    def _repository(self, owner: str, name: str) -> dict[str, Any]:
        repo = self.state.repo(owner, name)
        if repo is None:
            raise _NotFound(f"Could not resolve to a Repository with the name '{owner}/{name}'.")
        return {
            "id": node_id("R", repo.id),
            "nameWithOwner": repo.full_name,
            "issue": lambda info, number: issue_node(repo.issues.get(number)),
        }

    def _node(self, node: str) -> dict[str, Any] | None:
        issue = self.state.issue_by_node(node)
        if issue is not None:
            return issue_node(issue)
        for project in self.state.projects.values():
            if node == project.node_id:
                return project_node(self.state, project)
            if node in project.items:
                return item_node(self.state, project, project.items[node])
        return None


def issue_node(issue: Issue | None) -> dict[str, Any] | None:
    if issue is None:
        return None
    return {
        "__typename": "Issue",
        "id": issue.node_id,
        "number": issue.number,
        "title": issue.title,
        "state": issue.state.upper(),
        "repository": {"nameWithOwner": issue.repo.full_name},
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

    def items(
        info: Any, first: int | None = None, after: str | None = None, **_: Any
    ) -> dict[str, Any]:
        all_items = list(project.items.values())
        start = int(after) if after else 0
        page = all_items[start : start + (first or 100)]
        end = start + len(page)
        return {
            "nodes": [item_node(state, project, i) for i in page],
            "totalCount": len(all_items),
            "pageInfo": {
                "hasNextPage": end < len(all_items),
                "endCursor": str(end),
                "hasPreviousPage": start > 0,
                "startCursor": str(start),
            },
        }

    return {
        "__typename": "ProjectV2",
        "id": project.node_id,
        "number": project.number,
        "title": f"{project.owner} board",
        "field": field,
        "items": items,
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
        "content": issue_node(state.issue_by_node(item["content"])),
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


__all__ = ["GraphQLError", "execute", "github_schema", "kind", "new_item"]

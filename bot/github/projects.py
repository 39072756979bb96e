"""Projects v2 boards through GraphQL: finding a board and its Status field,
reading cards, putting issues on it and setting their Status in batches."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from github import UnknownObjectException

from bot.github.connection import GitHubConnection, GraphQLError

# Mutations per request: well below GitHub's limits on query cost and size.
BATCH_SIZE = 50

BOARD_QUERY = """
query($login: String!, $number: Int!) {
  %s(login: $login) {
    projectV2(number: $number) {
      id
      field(name: "Status") {
        ... on ProjectV2SingleSelectField { id options { id name } }
      }
    }
  }
}
"""


ITEM_STATUS_QUERY = """
query($item: ID!) {
  node(id: $item) {
    ... on ProjectV2Item {
      id
      fieldValueByName(name: "Status") { ... on ProjectV2ItemFieldSingleSelectValue { name } }
    }
  }
}
"""

BOARD_ITEMS_QUERY = """
query($project: ID!, $after: String) {
  node(id: $project) {
    ... on ProjectV2 {
      items(first: 100, after: $after) {
        pageInfo { hasNextPage endCursor }
        nodes {
          id
          content { ... on Issue { id number } }
          fieldValueByName(name: "Status") { ... on ProjectV2ItemFieldSingleSelectValue { name } }
        }
      }
    }
  }
}
"""


class BoardNotFound(LookupError):
    pass


@dataclass(frozen=True)
class Board:
    project_id: str
    status_field_id: str
    status_options: dict[str, str]  # column name → option id

    def option_id(self, column: str) -> str:
        try:
            return self.status_options[column]
        except KeyError:
            raise BoardNotFound(
                f"the board's Status field has no option {column!r} "
                f"(it has: {', '.join(self.status_options)})"
            ) from None


class BoardGateway:
    def __init__(self, connection: GitHubConnection) -> None:
        self.connection = connection

    def find_board(self, owner: str, number: int) -> Board:
        """The project `number` of an organization or user, with its Status field."""
        for owner_kind in ("organization", "user"):
            try:
                data = self.connection.query(
                    BOARD_QUERY % owner_kind, {"login": owner, "number": number}
                )
            except UnknownObjectException:
                continue
            project = (data.get(owner_kind) or {}).get("projectV2")
            if project is None:
                continue
            field = project.get("field") or {}
            if "options" not in field:
                raise BoardNotFound(f"project {owner}/{number} has no single-select Status field")
            options = {option["name"]: option["id"] for option in field["options"]}
            return Board(project["id"], field["id"], options)
        raise BoardNotFound(f"no project number {number} owned by {owner}")

    def item_status(self, item_id: str) -> str | None:
        """The Status column an item is in now, or None."""
        data = self.connection.query(ITEM_STATUS_QUERY, {"item": item_id})
        value = (data.get("node") or {}).get("fieldValueByName") or {}
        return value.get("name")

    def items(self, board: Board) -> list[tuple[str, str, str | None]]:
        """(item id, issue node id, Status) of every issue on the board."""
        found: list[tuple[str, str, str | None]] = []
        after = None
        while True:
            data = self.connection.query(
                BOARD_ITEMS_QUERY, {"project": board.project_id, "after": after}
            )
            page = data["node"]["items"]
            for node in page["nodes"]:
                content = node.get("content") or {}
                if "id" in content:
                    status = (node.get("fieldValueByName") or {}).get("name")
                    found.append((node["id"], content["id"], status))
            if not page["pageInfo"]["hasNextPage"]:
                return found
            after = page["pageInfo"]["endCursor"]

    def add_to_board(self, board: Board, issue_node_ids: Sequence[str]) -> list[str | None]:
        """Put issues on the board (an issue already there keeps its card); item ids in order."""
        item_ids: list[str | None] = []
        for chunk in _chunks(issue_node_ids):
            batch = _MutationBatch()
            for i, node_id in enumerate(chunk):
                batch.add(
                    f"add{i}",
                    "addProjectV2ItemById(input: {projectId: $project, contentId: $c%d}) "
                    "{ item { id } }" % i,
                    project=board.project_id,
                    **{f"c{i}": node_id},
                )
            data = batch.send(self.connection)
            item_ids += [
                ((data.get(f"add{i}") or {}).get("item") or {}).get("id") for i in range(len(chunk))
            ]
        return item_ids

    def set_status(self, board: Board, item_ids: Sequence[str], column: str) -> None:
        option = board.option_id(column)
        for chunk in _chunks(item_ids):
            batch = _MutationBatch()
            for i, item_id in enumerate(chunk):
                batch.add(
                    f"set{i}",
                    "updateProjectV2ItemFieldValue(input: {projectId: $project, itemId: $i%d, "
                    "fieldId: $field, value: {singleSelectOptionId: $option}}) "
                    "{ projectV2Item { id } }" % i,
                    project=board.project_id,
                    field=board.status_field_id,
                    option=option,
                    **{f"i{i}": item_id},
                )
            batch.send(self.connection)


class _MutationBatch:
    """Several aliased mutations in one GraphQL request; variables are IDs unless typed."""

    # singleSelectOptionId is a String in GitHub's schema, not an ID.
    TYPES = {"option": "String!"}

    def __init__(self) -> None:
        self._fields: list[str] = []
        self._variables: dict[str, str] = {}

    def add(self, alias: str, mutation: str, **variables: str) -> None:
        self._fields.append(f"{alias}: {mutation}")
        self._variables.update(variables)

    def send(self, connection: GitHubConnection) -> dict:  # type: ignore[type-arg]
        if not self._fields:
            return {}
        declared = ", ".join(f"${name}: {self.TYPES.get(name, 'ID!')}" for name in self._variables)
        query = f"mutation({declared}) {{\n  " + "\n  ".join(self._fields) + "\n}"
        answer = connection.mutate(query, self._variables)
        if answer.errors:
            raise GraphQLError([f"{alias}: {message}" for alias, message in answer.errors.items()])
        return answer.data


def _chunks(items: Sequence) -> list[Sequence]:  # type: ignore[type-arg]
    return [items[i : i + BATCH_SIZE] for i in range(0, len(items), BATCH_SIZE)]

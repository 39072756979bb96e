"""Agents GitHub runs: its Copilot coding agent assigned an issue, and the issues a
pull request closes.

Copilot is assigned as GitHub documents it (changelog 2025-12-03 "Assign issues
to Copilot using the API"): its Bot id is found among the repository's
`suggestedActors(capabilities: [CAN_BE_ASSIGNED])` (login `copilot-swe-agent`),
then `addAssigneesToAssignable` with an `agentAssignment` (base branch, custom
instructions, custom agent, model), sent with the request header
`GraphQL-Features: issues_copilot_assignment_api_support`. GitHub takes both
only from a person's token (SPECBRIDGE_AGENT_USER_TOKEN), never an App's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from github import GithubException

from bot.github.connection import GitHubConnection

COPILOT_LOGIN = "copilot-swe-agent"
# How GitHub names Copilot among an issue's assignees, and in REST.
COPILOT_NAMES = frozenset({COPILOT_LOGIN, f"{COPILOT_LOGIN}[bot]", "Copilot"})
ASSIGNMENT_FEATURE = "issues_copilot_assignment_api_support"
MODEL_FEATURE = "coding_agent_model_selection"

SUGGESTED_ACTORS = """\
query($owner: String!, $name: String!) {
  repository(owner: $owner, name: $name) {
    id
    suggestedActors(capabilities: [CAN_BE_ASSIGNED], first: 100) {
      nodes { __typename login ... on Bot { id } }
    }
  }
}"""

ASSIGN = """\
mutation($m0: AddAssigneesToAssignableInput!) {
  m0: addAssigneesToAssignable(input: $m0) {
    assignable { ... on Issue { id assignees(first: 20) { nodes { login } } } }
  }
}"""

ASSIGNEES = """\
query($owner: String!, $name: String!, $number: Int!) {
  repository(owner: $owner, name: $name) {
    issue(number: $number) { id assignees(first: 50) { nodes { id login } } }
  }
}"""

UNASSIGN = """\
mutation($m0: RemoveAssigneesFromAssignableInput!) {
  m0: removeAssigneesFromAssignable(input: $m0) { assignable { ... on Issue { id } } }
}"""

CLOSING_ISSUES = """\
query($owner: String!, $name: String!, $number: Int!) {
  repository(owner: $owner, name: $name) {
    pullRequest(number: $number) {
      closingIssuesReferences(first: 50) { nodes { number repository { nameWithOwner } } }
    }
  }
}"""


class CopilotRefused(RuntimeError):
    """GitHub did not assign Copilot; the message says why, in GitHub's words or ours."""


@dataclass(frozen=True)
class CopilotAssignment:
    """What Copilot is told besides the issue: GraphQL's AgentAssignmentInput."""

    base_ref: str | None = None
    custom_instructions: str | None = None
    custom_agent: str | None = None
    model: str | None = None

    def graphql(self, repository_id: str) -> dict[str, Any]:
        value: dict[str, Any] = {"targetRepositoryId": repository_id}
        for key, given in (
            ("baseRef", self.base_ref),
            ("customInstructions", self.custom_instructions),
            ("customAgent", self.custom_agent),
            ("model", self.model),
        ):
            if given:
                value[key] = given
        return value


class HostedAgentGateway:
    """One repository's Copilot assignments, over a connection made with a person's token."""

    def __init__(self, connection: GitHubConnection, full_name: str) -> None:
        self.connection = connection
        self.full_name = full_name
        self.owner, self.name = full_name.split("/", 1)

    def copilot(self, login: str = COPILOT_LOGIN) -> tuple[str, str]:
        """(the repository's node id, the agent's Bot id: Copilot's, or Claude's or Codex's
        by `login`); CopilotRefused when it is not among those who may be assigned (the
        agent not enabled there)."""
        data = self.connection.query(SUGGESTED_ACTORS, {"owner": self.owner, "name": self.name})
        repository = data["repository"]
        actors = (repository.get("suggestedActors") or {}).get("nodes") or []
        bot = next((a for a in actors if a and a.get("login") == login), None)
        if bot is None or not bot.get("id"):
            enable = (
                "enable the Copilot coding agent for the repository"
                if login == COPILOT_LOGIN
                else f"enable {login} as a partner agent (the organization's Copilot coding "
                "agent settings)"
            )
            raise CopilotRefused(
                f"{login} is not among those who may be assigned issues of {self.full_name}: "
                f"{enable}, and check that SPECBRIDGE_AGENT_USER_TOKEN belongs to someone "
                "with a Copilot seat"
            )
        return repository["id"], bot["id"]

    def assign_copilot(
        self, issue_node_id: str, assignment: CopilotAssignment, login: str = COPILOT_LOGIN
    ) -> None:
        """Assign the issue to Copilot (or to the agent named `login`), which starts work;
        CopilotRefused when GitHub says no."""
        repository_id, bot_id = self.copilot(login)
        features = [ASSIGNMENT_FEATURE] + ([MODEL_FEATURE] if assignment.model else [])
        answer = self.connection.mutate(
            ASSIGN,
            {
                "m0": {
                    "assignableId": issue_node_id,
                    "assigneeIds": [bot_id],
                    "agentAssignment": assignment.graphql(repository_id),
                }
            },
            headers={"GraphQL-Features": ",".join(features)},
        )
        if "m0" in answer.errors or answer.data.get("m0") is None:
            reason = answer.errors.get("m0") or "; ".join(answer.other_errors) or "no answer"
            raise CopilotRefused(reason)

    def unassign_copilot(self, number: int, login: str = COPILOT_LOGIN) -> bool:
        """Take the issue back from Copilot (or the agent named `login`); False when it
        was not assigned."""
        data = self.connection.query(
            ASSIGNEES, {"owner": self.owner, "name": self.name, "number": number}
        )
        issue = (data.get("repository") or {}).get("issue")
        if issue is None:
            return False
        nodes = (issue.get("assignees") or {}).get("nodes") or []
        names = COPILOT_NAMES if login == COPILOT_LOGIN else {login, f"{login}[bot]"}
        ids = [n["id"] for n in nodes if n and n.get("login") in names and n.get("id")]
        if not ids:
            return False
        answer = self.connection.mutate(
            UNASSIGN, {"m0": {"assignableId": issue["id"], "assigneeIds": ids}}
        )
        if "m0" in answer.errors:
            raise CopilotRefused(answer.errors["m0"])
        return True


def closing_issues(connection: GitHubConnection, full_name: str, number: int) -> list[int]:
    """The issues of `full_name` a pull request closes when it merges, as GitHub links them
    (closing keywords, and issues linked to it on github.com)."""
    owner, name = full_name.split("/", 1)
    data = connection.query(CLOSING_ISSUES, {"owner": owner, "name": name, "number": number})
    pull = (data.get("repository") or {}).get("pullRequest") or {}
    nodes = (pull.get("closingIssuesReferences") or {}).get("nodes") or []
    return [
        n["number"]
        for n in nodes
        if n and (n.get("repository") or {}).get("nameWithOwner", full_name) == full_name
    ]


@dataclass(frozen=True)
class WorkflowRun:
    """The run a workflow dispatch started, as GitHub answers with `return_run_details`."""

    id: int
    html_url: str


def dispatch_workflow(
    connection: GitHubConnection, full_name: str, workflow: str, ref: str, inputs: dict[str, str]
) -> WorkflowRun | None:
    """`POST /repos/{o}/{r}/actions/workflows/{id}/dispatches` with the run's details asked
    for; None when GitHub answers without them (204, before the 2026-03-10 API version)."""
    answer = connection.rest(
        "POST",
        f"/repos/{full_name}/actions/workflows/{quote(workflow, safe='')}/dispatches",
        {"ref": ref, "inputs": inputs, "return_run_details": True},
        once=True,
    )
    if not answer or not answer.get("workflow_run_id"):
        return None
    return WorkflowRun(int(answer["workflow_run_id"]), str(answer.get("html_url") or ""))


def cancel_workflow_run(connection: GitHubConnection, full_name: str, run_id: int) -> bool:
    """`POST /repos/{o}/{r}/actions/runs/{id}/cancel`; False when the run ended already
    (GitHub answers 409)."""
    try:
        connection.rest("POST", f"/repos/{full_name}/actions/runs/{run_id}/cancel")
    except GithubException as error:
        if error.status == 409:
            return False
        raise
    return True

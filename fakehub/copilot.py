"""The Copilot coding agent, as GitHub lets an API client assign it an issue.

What GitHub documents (changelog 2025-12-03 "Assign issues to Copilot using
the API"; docs "Asking GitHub Copilot to create a pull request", section
"Assigning an issue to Copilot via the GitHub API"; GraphQL reference):

- A repository with the coding agent enabled (`POST /_admin/repos` with
  `"copilot": true`) lists it first in GraphQL `repository.suggestedActors(
  capabilities: [CAN_BE_ASSIGNED])`, a `Bot` with login `copilot-swe-agent`.
- GraphQL assigns it with `replaceActorsForAssignable`, `addAssigneesToAssignable`,
  `updateIssue` or `createIssue` (its Bot id among the actor or assignee ids),
  each request carrying `GraphQL-Features: issues_copilot_assignment_api_support`
  (and `coding_agent_model_selection` to choose a `model`), with an optional
  `agentAssignment { targetRepositoryId baseRef customInstructions customAgent model }`.
- REST assigns it as `copilot-swe-agent[bot]` in `POST .../issues/{n}/assignees`,
  `POST .../issues` or `PATCH .../issues/{n}`, with an optional `agent_assignment
  { target_repo, base_branch, custom_instructions, custom_agent, model }`.
- Only a user token may assign it (a personal access token, a GitHub App
  user-to-server token): not an installation token (`ghs_`).

Once assigned, the issue's assignees include `Copilot` (a Bot), `issues` assigned
is sent, and the assignment is kept in `Repo.copilot_assignments` (and shown in
`/_admin/state`) for a test to act as Copilot next, through the admin pull-request
routes. The wording of refusals is the double's own.
"""

from __future__ import annotations

from typing import Any

from flask import request

from fakehub.actors import actor_of, is_user_token
from fakehub.state import BOT, COPILOT, PARTNER_AGENTS, Repo, now, user

AGENT_LOGIN = COPILOT["app"]  # `copilot-swe-agent`, as suggestedActors names it
# How REST requests name Copilot among assignees (docs: `copilot-swe-agent[bot]`).
REST_NAMES = {f"{AGENT_LOGIN}[bot]", AGENT_LOGIN, COPILOT["login"]}
FEATURE = "issues_copilot_assignment_api_support"
MODEL_FEATURE = "coding_agent_model_selection"


class CopilotRefused(Exception):
    """GitHub does not assign Copilot; `type` is the GraphQL error type."""

    def __init__(self, message: str, type: str = "FORBIDDEN") -> None:
        super().__init__(message)
        self.type = type


def bot_id() -> str:
    return user(COPILOT["login"])["node_id"]


def rest_login(name: Any) -> str:
    """A REST assignee (a login or `{"login"}`), Copilot under any of its REST names."""
    login = name if isinstance(name, str) else name["login"]
    return COPILOT["login"] if login in REST_NAMES else login


def features() -> set[str]:
    header = request.headers.get("GraphQL-Features", "")
    return {part.strip() for part in header.split(",") if part.strip()}


# -- who may be assigned --------------------------------------------------------------------


def copilot_node() -> dict[str, Any]:
    url = f"https://github.com/apps/{AGENT_LOGIN}"
    return {
        "__typename": "Bot",
        "id": bot_id(),
        "databaseId": COPILOT["id"],
        "login": AGENT_LOGIN,
        "url": url,
        "resourcePath": f"/apps/{AGENT_LOGIN}",
        "avatarUrl": lambda info, size=None: "https://avatars.githubusercontent.com/in/1143301?v=4",
        "createdAt": "2025-05-19T00:00:00Z",
        "updatedAt": "2025-05-19T00:00:00Z",
    }


def partner_node(login: str) -> dict[str, Any]:
    """Claude or Codex, as suggestedActors lists them where a repository enabled them."""
    node = user_node(login)
    node.update(url=f"https://github.com/apps/{login}", resourcePath=f"/apps/{login}")
    return node


def agent_logins() -> set[str]:
    """The logins of the agents GitHub hosts, as assignees."""
    return {COPILOT["login"], *PARTNER_AGENTS}


def user_node(login: str) -> dict[str, Any]:
    shown = user(login)
    return {
        "__typename": "Bot" if shown["type"] == "Bot" else "User",
        "id": shown["node_id"],
        "databaseId": shown["id"],
        "login": login,
        "name": None,
        "url": shown["html_url"],
        "resourcePath": f"/{login}",
        "avatarUrl": lambda info, size=None: shown["avatar_url"],
        "createdAt": "2026-01-01T00:00:00Z",
        "updatedAt": "2026-01-01T00:00:00Z",
    }


def suggested_actors(
    state: Any, repo: Repo, token: str | None, capabilities: list[str], login_names: str | None
) -> list[dict[str, Any]]:
    """Copilot first where it is enabled and the viewer is a person (an installation
    token does not see it), then the people who may be assigned."""
    actors: list[dict[str, Any]] = []
    if "CAN_BE_ASSIGNED" in capabilities and is_user_token(state, token):
        actors += [copilot_node()] if repo.copilot else []
        actors += [partner_node(login) for login in repo.agents if login in PARTNER_AGENTS]
    people = [repo.owner] if repo.owner_type == "User" else []
    people += [login for login in repo.collaborators if login not in people]
    actors += [user_node(login) for login in people]
    if login_names:
        wanted = {n.strip() for n in login_names.split(",")[:10]}
        actors = [a for a in actors if a["login"] in wanted]
    return actors


def login_of(state: Any, node: str) -> str | None:
    """The login of a User or Bot node id the double knows."""
    if node == bot_id():
        return COPILOT["login"]
    partner = next((p for p in PARTNER_AGENTS if user(p)["node_id"] == node), None)
    if partner is not None:
        return partner
    known = {BOT["login"], "octocat", *state.user_tokens.values()}
    for repo in state.repos.values():
        known |= {repo.owner, *repo.collaborators}
    return next((login for login in known if user(login)["node_id"] == node), None)


# -- assigning Copilot ----------------------------------------------------------------------


def check(
    hub: Any,
    repo: Repo,
    token: str | None,
    agent: dict[str, Any] | None,
    graphql: bool,
    login: str = COPILOT["login"],
) -> dict[str, Any]:
    """The assignment GitHub would accept for an issue of `repo`, or CopilotRefused.
    `agent` is the agent assignment with GraphQL's names (`baseRef`, ...); `login` the
    agent assigned (Copilot, or a partner agent: Claude, Codex)."""
    state = hub.state
    agent = agent or {}
    if login in PARTNER_AGENTS and login not in repo.agents:
        raise CopilotRefused(
            f"{login} is not available as an assignee for {repo.full_name}: the agent is not "
            "enabled there"
        )
    if graphql and FEATURE not in features():
        raise CopilotRefused(
            f"Assigning Copilot through the API needs the header `GraphQL-Features: {FEATURE}`"
        )
    if not is_user_token(state, token):
        raise CopilotRefused(
            "Copilot can be assigned only with a user token (a personal access token or a "
            "GitHub App user-to-server token), not an installation token"
        )
    if login == COPILOT["login"] and not repo.copilot:
        raise CopilotRefused(
            f"{AGENT_LOGIN} is not available as an assignee for {repo.full_name}: the Copilot "
            "coding agent is not enabled there"
        )
    target = repo
    if agent.get("targetRepositoryId"):
        target = next(
            (r for r in state.repos.values() if r.node_id == agent["targetRepositoryId"]), None
        )
        if target is None:
            raise CopilotRefused(
                "Could not resolve to a node with the global id of "
                f"'{agent['targetRepositoryId']}'",
                "NOT_FOUND",
            )
        if login == COPILOT["login"] and not target.copilot:
            raise CopilotRefused(
                f"Could not assign agent: the Copilot coding agent is not enabled in "
                f"{target.full_name}"
            )
    base = agent.get("baseRef") or target.default_branch
    if target.git.sha(base) is None or base not in target.git.refs():
        raise CopilotRefused(
            f"Could not assign agent: no branch {base} in {target.full_name}", "UNPROCESSABLE"
        )
    if agent.get("model") and graphql and MODEL_FEATURE not in features():
        raise CopilotRefused(
            f"Choosing a model needs the header `GraphQL-Features: {MODEL_FEATURE}`"
        )
    return {
        "repository": repo.full_name,
        "target_repository": target.full_name,
        "base_ref": base,
        "custom_instructions": agent.get("customInstructions") or "",
        "custom_agent": agent.get("customAgent") or "",
        "model": agent.get("model") or "",
        "assigned_by": actor_of(state, token),
        "via": "graphql" if graphql else "rest",
        "agent": login,
    }


def refused(repo: Repo, number: int | None, reason: str, via: str) -> None:
    repo.copilot_assignments.append(
        {"issue": number, "accepted": False, "reason": reason, "via": via, "at": now()}
    )


def take_from_rest(
    hub: Any,
    repo: Repo,
    names: list[Any],
    data: dict[str, Any],
    token: str | None,
    number: int | None = None,
) -> tuple[list[str], dict[str, Any] | None]:
    """REST assignees without Copilot, and Copilot's assignment when GitHub takes it.
    A refused Copilot is left out silently, as REST leaves out anyone it cannot assign."""
    logins = [rest_login(n) for n in names]
    others = [login for login in logins if login != COPILOT["login"]]
    if len(others) == len(logins):
        return others, None
    given = data.get("agent_assignment") or {}
    target = given.get("target_repo")
    agent = {
        "baseRef": given.get("base_branch"),
        "customInstructions": given.get("custom_instructions"),
        "customAgent": given.get("custom_agent"),
        "model": given.get("model"),
    }
    if target:
        owner, _, name = target.partition("/")
        found = hub.state.repo(owner, name)
        agent["targetRepositoryId"] = found.node_id if found else f"missing:{target}"
    try:
        return others, check(hub, repo, token, agent, graphql=False)
    except CopilotRefused as refusal:
        refused(repo, number, str(refusal), "rest")
        return others, None

"""Reviewers requested on a pull request, kept in the state as GitHub keeps them.

REST: `POST /repos/{o}/{r}/pulls/{n}/requested_reviewers` (`reviewers` logins,
`team_reviewers` slugs; 422 for the pull request's author or for anyone who is not a
collaborator, in GitHub's words), `GET` the same path (`users`, `teams`), `DELETE`
(`reviewers`, `team_reviewers`). Each reviewer added sends `pull_request`
review_requested (`requested_reviewer` or `requested_team`), each removed
review_request_removed; a requested reviewer who submits a review is no longer requested.

Code owners, as GitHub requests them itself: when a pull request is opened ready for
review, or a draft is marked ready, the owners of its changed files in the base branch's
CODEOWNERS (`.github/CODEOWNERS`, then `CODEOWNERS`, then `docs/CODEOWNERS`; the last
matching line wins) are requested, the pull request's author left out. A draft asks
no one.
"""

from __future__ import annotations

import re
from typing import Any

from flask import Flask, g, jsonify, request

from fakehub.actors import actor_of
from fakehub.http import Refused, error
from fakehub.state import Repo, user
from fakehub.webhooks import pull_request_json, team_json

CODEOWNERS_PLACES = (".github/CODEOWNERS", "CODEOWNERS", "docs/CODEOWNERS")
NOT_A_COLLABORATOR = (
    "Reviews may only be requested from collaborators. One or more of the users or teams "
    "you specified is not a collaborator of the {repo} repository."
)


def requested(repo: Repo, number: int) -> dict[str, list[str]]:
    return repo.requested_reviewers.setdefault(number, {"users": [], "teams": []})


def request_reviewers(
    hub: Any,
    repo: Repo,
    pull: dict[str, Any],
    users: list[str],
    teams: list[str],
    actor: str,
) -> None:
    """Ask people and teams to review, as the REST API does (refusals first, all or nothing)."""

    author = pull["user"]["login"]
    if author in users:
        raise Refused("Review cannot be requested from pull request author.")
    strangers = [u for u in users if u not in repo.collaborators and u != repo.owner]
    unknown_teams = [t for t in teams if repo.owner_type != "Organization" or t not in repo.teams]
    if strangers or unknown_teams:
        raise Refused(NOT_A_COLLABORATOR.format(repo=repo.full_name))
    asked = requested(repo, pull["number"])
    for login in users:
        if login not in asked["users"]:
            asked["users"].append(login)
            _send(hub, repo, pull, actor, "review_requested", requested_reviewer=user(login))
    for slug in teams:
        if slug not in asked["teams"]:
            asked["teams"].append(slug)
            team = team_json(repo, slug)
            _send(hub, repo, pull, actor, "review_requested", requested_team=team)


def remove_reviewers(
    hub: Any, repo: Repo, pull: dict[str, Any], users: list[str], teams: list[str], actor: str
) -> None:
    asked = requested(repo, pull["number"])
    for login in users:
        if login in asked["users"]:
            asked["users"].remove(login)
            _send(hub, repo, pull, actor, "review_request_removed", requested_reviewer=user(login))
    for slug in teams:
        if slug in asked["teams"]:
            asked["teams"].remove(slug)
            team = team_json(repo, slug)
            _send(hub, repo, pull, actor, "review_request_removed", requested_team=team)


def reviewed(repo: Repo, pull: dict[str, Any], login: str) -> None:
    """A requested reviewer who reviews is no longer requested (no webhook, as on GitHub)."""
    asked = requested(repo, pull["number"])
    if login in asked["users"]:
        asked["users"].remove(login)


def request_code_owners(hub: Any, repo: Repo, pull: dict[str, Any], actor: str) -> None:
    """GitHub's own request of the code owners of the changed files (see the module)."""
    rules = code_owner_rules(repo, pull["base"]["ref"])
    if not rules:
        return
    owners: list[str] = []
    for path in sorted(repo.changed_paths(pull)):
        for owner in owners_of(rules, path):
            if owner not in owners:
                owners.append(owner)
    author = pull["user"]["login"]
    users = [o for o in owners if "/" not in o and o != author and _collaborator(repo, o)]
    teams = [o.split("/", 1)[1] for o in owners if o.startswith(f"{repo.owner}/")]
    teams = [t for t in teams if t in repo.teams]
    asked = requested(repo, pull["number"])
    for login in users:
        if login not in asked["users"]:
            asked["users"].append(login)
            _send(hub, repo, pull, actor, "review_requested", requested_reviewer=user(login))
    for slug in teams:
        if slug not in asked["teams"]:
            asked["teams"].append(slug)
            _send(hub, repo, pull, actor, "review_requested", requested_team=team_json(repo, slug))


def _collaborator(repo: Repo, login: str) -> bool:
    return login in repo.collaborators or login == repo.owner


def code_owner_rules(repo: Repo, ref: str) -> list[tuple[re.Pattern[str], list[str]]]:
    """The CODEOWNERS lines of the first file GitHub looks at: (pattern, owners)."""
    for place in CODEOWNERS_PLACES:
        data = repo.git.read(ref, place)
        if data is None:
            continue
        rules = []
        for line in data.decode(errors="replace").splitlines():
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            pattern, *owners = line.split()
            rules.append((_pattern(pattern), [o.removeprefix("@") for o in owners]))
        return rules
    return []


def owners_of(rules: list[tuple[re.Pattern[str], list[str]]], path: str) -> list[str]:
    """The owners of a file: those of the last line whose pattern matches it."""
    found: list[str] = []
    for pattern, owners in rules:
        if pattern.match(path):
            found = owners
    return found


def _pattern(text: str) -> re.Pattern[str]:
    """A CODEOWNERS pattern (gitignore's rules, as GitHub reads them) as a regex."""
    anchored = text.startswith("/") or "/" in text.rstrip("/")
    directory = text.endswith("/")
    body = text.strip("/")
    regex = ""
    index = 0
    while index < len(body):
        if body.startswith("**/", index):
            regex += "(?:.*/)?"
            index += 3
        elif body.startswith("**", index):
            regex += ".*"
            index += 2
        elif body[index] == "*":
            regex += "[^/]*"
            index += 1
        elif body[index] == "?":
            regex += "[^/]"
            index += 1
        else:
            regex += re.escape(body[index])
            index += 1
    start = "^" if anchored else "^(?:.*/)?"
    end = "/.*$" if directory else "(?:/.*)?$"
    return re.compile(start + regex + end)


def _send(hub: Any, repo: Repo, pull: dict[str, Any], actor: str, action: str, **who: Any) -> None:
    hub.send(
        "pull_request",
        repo,
        actor,
        action=action,
        number=pull["number"],
        pull_request=pull_request_json(repo, pull),
        **who,
    )


def register_reviewers(app: Flask, hub: Any) -> None:

    state = hub.state

    def pull_or_error(owner: str, name: str, number: int) -> tuple[Repo, dict[str, Any]] | Any:
        repo = state.repo(owner, name)
        if repo is None or not state.may_read(g.get("token"), repo) or number not in repo.pulls:
            return error(404, "Not Found")
        return repo, repo.pulls[number]

    @app.route(
        "/repos/<owner>/<name>/pulls/<int:number>/requested_reviewers",
        methods=["GET", "POST", "DELETE"],
    )
    def requested_reviewers(owner: str, name: str, number: int) -> Any:
        found = pull_or_error(owner, name, number)
        if not isinstance(found, tuple):
            return found
        repo, pull = found
        if request.method == "GET":
            asked = requested(repo, number)
            return jsonify(
                users=[user(login) for login in asked["users"]],
                teams=[team_json(repo, slug) for slug in asked["teams"]],
            )
        data = request.get_json(silent=True) or {}
        users = list(data.get("reviewers") or [])
        teams = list(data.get("team_reviewers") or [])
        actor = actor_of(state, g.get("token"))
        try:
            with state.lock:
                if request.method == "POST":
                    request_reviewers(hub, repo, pull, users, teams, actor)
                else:
                    remove_reviewers(hub, repo, pull, users, teams, actor)
        except Refused as refused:
            return error(422, str(refused))
        return jsonify(pull_request_json(repo, pull)), 201 if request.method == "POST" else 200

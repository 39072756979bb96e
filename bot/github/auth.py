"""Authentication: as the GitHub App (a JWT exchanged for an installation
token that PyGithub refreshes before it expires) or with GITHUB_TOKEN.

One connection is cached per installation and process, so its token is
reused until it nears expiry.
"""

from __future__ import annotations

import hashlib
import threading
from functools import partial
from typing import Any

from github import Auth, Github, GithubIntegration
from github.Requester import Requester

from bot.counters import count_github_request
from bot.errors import GitHubAuthError
from bot.github.connection import GitHubConnection, client_options
from bot.github.pacing import Pacer
from bot.settings import Settings

_connections: dict[tuple[object, ...], GitHubConnection] = {}
_connections_lock = threading.Lock()


def github_client(settings: Settings, installation_id: int | None) -> GitHubConnection:
    key = (
        settings,
        None if settings.github_token else installation_id,
    )
    with _connections_lock:
        connection = _connections.get(key)
        if connection is None:
            connection = _connections[key] = _new_connection(settings, installation_id)
        return connection


def user_client(settings: Settings) -> GitHubConnection:
    """A connection with a person's token (bot/github/user_token.py: the operator's
    SPECBRIDGE_AGENT_USER_TOKEN, or the one kept and renewed): GitHub lets only a person
    assign an issue to its Copilot coding agent, never an App. A new connection when the
    token was renewed."""
    from bot.github.user_token import agent_user_token  # it reads the database: imported late

    token = agent_user_token(settings)
    key = (settings, "agent-user")
    with _connections_lock:
        connection = _connections.get(key)
        if connection is None or connection.token != token:
            auth = Auth.Token(token)
            base = settings.github_api_url
            connection = _connections[key] = GitHubConnection(
                Github(auth=auth, base_url=base, **client_options()),
                Github(auth=auth, base_url=base, **client_options(once=True)),
                Pacer(settings, _token_pace_key("user", token)),
                partial(count_github_request, settings),
            )
        return connection


def installation_id_for(settings: Settings, full_name: str) -> int | None:
    """The App's installation on a repository (None when using a token)."""
    installation = repository_installation(settings, full_name)
    return installation["id"] if installation else None


def repository_installation(settings: Settings, full_name: str) -> dict[str, Any] | None:
    """The App's installation on a repository as GitHub describes it (`id`, `account`),
    to record as a webhook's would be; None when using a token."""
    if settings.github_token or not settings.uses_app_auth:
        return None
    return _integration(settings).get_repo_installation(*full_name.split("/", 1)).raw_data


def repository_token(settings: Settings, installation_id: int | None, full_name: str) -> str:
    """A token for one repository with `contents: write` only, for one push.

    GitHub lets an App narrow an installation token to some repositories and
    permissions; a token from GITHUB_TOKEN cannot be narrowed and is used as is.
    """
    if settings.github_token:
        return settings.github_token
    if installation_id is None:
        raise GitHubAuthError("an App needs the installation id of the repository")
    requester = _integration(settings).requester
    _, data = requester.requestJsonAndCheck(
        "POST",
        f"/app/installations/{installation_id}/access_tokens",
        input={
            "repositories": [full_name.split("/", 1)[1]],
            "permissions": {"contents": "write"},
        },
    )
    return data["token"]


def app_slug(settings: Settings) -> str | None:
    """The App's slug: GITHUB_APP_SLUG, else GitHub's answer (GET /app, as the App);
    None with a token, or when GitHub does not say."""
    if settings.github_app_slug or not settings.uses_app_auth:
        return settings.github_app_slug
    try:
        return str(_integration(settings, once=True).get_app().slug)
    except Exception:  # only for a message: whatever went wrong, it says less
        return None


def app_requester(settings: Settings, once: bool = False) -> Requester:
    """Requests as the App itself, with its JWT (not an installation's token): the
    App's own resources, such as its webhook's deliveries. `once`: not resent after
    a 5xx (see bot/github/connection.py)."""
    if settings.github_token or not settings.uses_app_auth:
        raise GitHubAuthError("only an App (GITHUB_APP_ID and GITHUB_PRIVATE_KEY) has an App JWT")
    return _integration(settings, once).requester


def pace_key(settings: Settings, installation_id: int | None) -> str:
    """Whose budget a request spends: the installation's, or the token's."""
    if settings.github_token:
        return _token_pace_key("token", settings.github_token)
    return f"installation-{installation_id}"


def _token_pace_key(kind: str, token: str) -> str:
    return f"{kind}-" + hashlib.sha256(token.encode()).hexdigest()[:16]


def _new_connection(settings: Settings, installation_id: int | None) -> GitHubConnection:
    if settings.github_token:
        auth: Auth.Auth = Auth.Token(settings.github_token)
    elif not settings.uses_app_auth:
        raise GitHubAuthError(
            "no GitHub credentials: set GITHUB_APP_ID and GITHUB_PRIVATE_KEY, or GITHUB_TOKEN"
        )
    elif installation_id is None:
        raise GitHubAuthError("an App needs the installation id of the repository")
    else:
        assert settings.github_app_id is not None and settings.github_private_key is not None
        auth = Auth.AppAuth(
            settings.github_app_id, settings.github_private_key
        ).get_installation_auth(installation_id)
    # Both clients share one auth, so one installation token serves both.
    reading = Github(auth=auth, base_url=settings.github_api_url, **client_options())
    once = Github(auth=auth, base_url=settings.github_api_url, **client_options(once=True))
    pacer = Pacer(settings, pace_key(settings, installation_id))
    return GitHubConnection(reading, once, pacer, partial(count_github_request, settings))


def _integration(settings: Settings, once: bool = False) -> GithubIntegration:
    assert settings.github_app_id is not None and settings.github_private_key is not None
    return GithubIntegration(
        auth=Auth.AppAuth(settings.github_app_id, settings.github_private_key),
        base_url=settings.github_api_url,
        **client_options(once),
    )

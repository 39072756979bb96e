"""Authentication: as the GitHub App (a JWT exchanged for an installation
token that PyGithub refreshes before it expires) or with GITHUB_TOKEN.

One client is cached per installation and process, so its token is reused
until it nears expiry.
"""

from __future__ import annotations

import threading

from github import Auth, Github, GithubIntegration, GithubRetry

from bot.settings import Settings

TIMEOUT_SECONDS = 20
_clients: dict[tuple[object, ...], Github] = {}
_clients_lock = threading.Lock()


class GitHubAuthError(RuntimeError):
    """Neither an App nor a token is configured."""


def github_client(settings: Settings, installation_id: int | None) -> Github:
    key = (
        settings.github_api_url,
        settings.github_token,
        settings.github_app_id,
        settings.github_write_interval,
        None if settings.github_token else installation_id,
    )
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            client = _clients[key] = _new_client(settings, installation_id)
        return client


def installation_id_for(settings: Settings, full_name: str) -> int | None:
    """The App's installation on a repository (None when using a token)."""
    if settings.github_token or not settings.uses_app_auth:
        return None
    return _integration(settings).get_repo_installation(*full_name.split("/", 1)).id


def retry_policy() -> GithubRetry:
    """Rate limits (403/429 with retry-after) and 5xx are retried with backoff."""
    return GithubRetry(
        total=6,
        backoff_factor=0.5,
        status_forcelist=[*range(500, 600), 429],
        secondary_rate_wait=60,
        max_rate_limit_wait=15 * 60,
    )


def _new_client(settings: Settings, installation_id: int | None) -> Github:
    if settings.github_token:
        return Github(
            auth=Auth.Token(settings.github_token),
            base_url=settings.github_api_url,
            retry=retry_policy(),
            timeout=TIMEOUT_SECONDS,
            **_pacing(settings),
        )
    if not settings.uses_app_auth:
        raise GitHubAuthError(
            "no GitHub credentials: set GITHUB_APP_ID and GITHUB_PRIVATE_KEY, or GITHUB_TOKEN"
        )
    if installation_id is None:
        raise GitHubAuthError("an App needs the installation id of the repository")
    return _integration(settings).get_github_for_installation(installation_id)


def _integration(settings: Settings) -> GithubIntegration:
    assert settings.github_app_id is not None and settings.github_private_key is not None
    return GithubIntegration(
        auth=Auth.AppAuth(settings.github_app_id, settings.github_private_key),
        base_url=settings.github_api_url,
        retry=retry_policy(),
        timeout=TIMEOUT_SECONDS,
        **_pacing(settings),
    )


def _pacing(settings: Settings) -> dict[str, float]:
    interval = settings.github_write_interval
    return {"seconds_between_writes": interval, "seconds_between_requests": interval / 4}

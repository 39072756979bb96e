"""The one unauthenticated call of GitHub's manifest flow: a code for the new App."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import requests

TIMEOUT_SECONDS = 20


def is_api_root(url: str) -> bool:
    """Whether `url` is the root of a GitHub REST API: `GET /` answers with its links
    (github.com, an Enterprise Server's /api/v3, or a double serving the API at its root)."""
    try:
        response = requests.get(
            f"{url.rstrip('/')}/",
            headers={"Accept": "application/vnd.github+json"},
            timeout=TIMEOUT_SECONDS / 4,
        )
        return response.status_code == 200 and "current_user_url" in response.json()
    except (requests.RequestException, ValueError, TypeError):
        return False


class ConversionFailed(RuntimeError):
    """GitHub did not turn the code into an App (expired, used, or unknown)."""


def convert_manifest_code(api_url: str, code: str) -> dict[str, Any]:
    """`POST /app-manifests/{code}/conversions`: the App's id, slug, pem, webhook_secret, ...

    The code is good for one hour and once.
    """
    try:
        response = requests.post(
            f"{api_url}/app-manifests/{quote(code, safe='')}/conversions",
            headers={
                "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": "2022-11-28",
            },
            timeout=TIMEOUT_SECONDS,
        )
    except requests.RequestException as error:
        raise ConversionFailed(f"cannot reach GitHub at {api_url}: {error}") from None
    if response.status_code != 201:
        try:
            message = response.json().get("message")
        except ValueError:
            message = response.reason
        raise ConversionFailed(
            f"GitHub did not convert the code ({response.status_code} {message}): "
            "it is good for one hour and once; run `specbridge setup` again"
        )
    return response.json()

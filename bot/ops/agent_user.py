"""`specbridge setup --agent-user`: a person authorizes the App with GitHub's device flow,
and specbridge keeps their token (encrypted) and renews it (bot/github/user_token.py).

The person is the one whose name the agents GitHub runs work under: someone with a
Copilot seat and write access to the repositories. They open GitHub's page, enter the
code printed here and authorize the App; this command polls until they have.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from pathlib import Path

from cryptography.fernet import Fernet

from bot.errors import CommandError
from bot.github.oauth import OAuthClient, OAuthRefused
from bot.github.user_token import store_authorized
from bot.settings import Settings


def run_agent_user_setup(
    args: argparse.Namespace, settings: Settings, say: Callable[[str], None]
) -> int:
    """`settings`: read from the environment and .env, the database migrated."""
    if not settings.github_client_id or not settings.github_client_secret:
        raise CommandError(
            "GITHUB_CLIENT_ID and GITHUB_CLIENT_SECRET are needed to authorize a person and "
            "renew their token: copy the Client ID from the App's settings page on GitHub, "
            "generate a client secret there, and set both (in .env); enable the device flow "
            "there too (Optional features, or General: Enable Device Flow)"
        )
    if not settings.secret_key:
        settings = replace(settings, secret_key=add_secret_key(Path(args.env_file)))
        say(f"made SPECBRIDGE_SECRET_KEY (the key the token is kept with) in {args.env_file}")
    if settings.agent_user_token:
        say(
            "SPECBRIDGE_AGENT_USER_TOKEN is set, and is used instead of the token authorized "
            "now until it is unset"
        )
    client = OAuthClient(
        settings.github_web_url, settings.github_client_id, settings.github_client_secret
    )
    code = client.start_device_flow()
    say(
        f"open {code.verification_uri} and enter the code {code.user_code} within "
        f"{code.expires_in // 60} minutes, signed in as the person the agents GitHub runs "
        "will work for (a Copilot seat, write access); Ctrl-C to stop"
    )
    try:
        pair = client.wait_for_token(code)
    except OAuthRefused as refused:
        raise CommandError(f"GitHub did not authorize the App: {refused}") from None
    store_authorized(settings, pair)
    say(
        "authorized: the token is kept encrypted in the database and renewed before it "
        f"expires{_until(pair.refresh_expires_at)}"
    )
    return 0


def add_secret_key(env_file: Path) -> str:
    """A new SPECBRIDGE_SECRET_KEY, added to the env file (made readable by its owner only)."""
    key = Fernet.generate_key().decode()
    descriptor = os.open(env_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.fchmod(descriptor, 0o600)
    with os.fdopen(descriptor, "a") as file:
        if file.tell() and not env_file.read_text().endswith("\n"):
            file.write("\n")
        file.write(f"SPECBRIDGE_SECRET_KEY={key}\n")
    return key


def _until(refresh_expires_at: datetime | None) -> str:
    if refresh_expires_at is None:
        return ""
    return f"; authorize again before {refresh_expires_at:%Y-%m-%d}, when renewing stops"

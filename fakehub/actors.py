"""Who a request to the double acts as: the App (its JWT, or an installation token
it minted) or a person (a user token made with `POST /_admin/tokens` or the device
flow). Below every route: it imports nothing of the double but its state."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from fakehub.state import BOT


def is_installation_token(state: Any, token: str | None) -> bool:
    """Tokens the double mints at `POST /app/installations/{id}/access_tokens`
    start with `ghs_`, as GitHub's do; any other token is a user's."""
    return token is not None and (token in state.tokens or token.startswith("ghs_"))


def is_user_token(state: Any, token: str | None) -> bool:
    """A person's token: neither an installation token nor the App's own JWT."""
    return (
        token not in (None, "anonymous")
        and not is_installation_token(state, token)
        and jwt_claims(token) is None
    )


def actor_of(state: Any, token: str | None) -> str:
    """Who a request acts as: the App's bot for an installation token (or the App's
    JWT), else the person a user token was made for (`POST /_admin/tokens`), else
    `octocat`."""
    if not is_user_token(state, token):
        return BOT["login"]
    return state.user_tokens.get(token, "octocat")


def jwt_claims(token: str | None) -> dict[str, Any] | None:
    """The claims of an App JWT (`header.claims.signature`, base64url JSON), or None.

    The double does not know the App's public key, so the signature is not checked."""
    if not token or token.count(".") != 2:
        return None
    try:
        header, claims = (json.loads(_unbase64(part)) for part in token.split(".")[:2])
    except (ValueError, binascii.Error):
        return None
    if not isinstance(header, dict) or "alg" not in header or not isinstance(claims, dict):
        return None
    return claims


def _unbase64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))

"""A person authorizes the App, as GitHub does it for a GitHub App's user access tokens:

- the device flow (https://docs.github.com/apps/creating-github-apps/authenticating-with-a-github-app/generating-a-user-access-token-for-a-github-app#using-the-device-flow-to-generate-a-user-access-token):
  `POST /login/device/code` (client_id) answers a device code, a user code, where to
  enter it, how long it lasts (15 minutes) and how often to poll (5 s); polling
  `POST /login/oauth/access_token` (client_id, device_code, grant_type
  `urn:ietf:params:oauth:grant-type:device_code`) answers 200 with `error`,
  `error_description` and `error_uri` until the person enters the code
  (`authorization_pending`; `slow_down` with the new `interval` when polled sooner than
  the interval; `expired_token`, `access_denied`, `incorrect_device_code`,
  `incorrect_client_credentials`, `unsupported_grant_type`);
- user access tokens that expire
  (https://docs.github.com/apps/creating-github-apps/authenticating-with-a-github-app/refreshing-user-access-tokens):
  `ghu_` tokens for 8 hours (`expires_in` 28800) with a `ghr_` refresh token for
  6 months (`refresh_token_expires_in` 15897600); `grant_type=refresh_token` with
  client_id, client_secret and the refresh token answers a new pair, and the used refresh
  token and the old access token stop working (`bad_refresh_token`, 401 Bad credentials);
- `DELETE /applications/{client_id}/grant` (HTTP Basic client_id:client_secret, JSON
  `access_token`) deletes the person's grant: every token of theirs for the App.

A person acts through `/_admin/`: `POST /_admin/device/approve {"user_code","user"}`
(the person enters the code and authorizes), `POST /_admin/device/deny {"user_code"}`,
and `POST /_admin/clock {"advance": seconds}` moves the clock these tokens expire by
(the installation tokens the App makes keep the real clock, as PyGithub renews them by it).
The App the double knows answers to CLIENT_ID and CLIENT_SECRET, and so does each App
registered from a manifest (fakehub/apps.py) to its own.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from flask import Flask, Response, g, jsonify, request

from fakehub.http import error

CLIENT_ID = "Iv1.fakehub4242"
CLIENT_SECRET = "fakehub-client-secret-4242"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
DEVICE_CODE_SECONDS = 900
POLL_INTERVAL = 5
SLOW_DOWN_STEP = 5
ACCESS_SECONDS = 28800
REFRESH_SECONDS = 15897600
USER_CODE_LETTERS = "BCDFGHJKLMNPQRSTVWXZ"
DEVICE_ERRORS_URI = (
    "https://docs.github.com/developers/apps/authorizing-oauth-apps#error-codes-for-the-device-flow"
)
REFRESH_ERRORS_URI = (
    "https://docs.github.com/apps/managing-oauth-apps/"
    "troubleshooting-oauth-app-access-token-request-errors"
)
# GitHub's words for each error of the token endpoint.
DESCRIPTIONS = {
    "authorization_pending": "The authorization request is still pending.",
    "slow_down": "Too many requests have been made in the same timeframe.",
    "expired_token": "The `device_code` has expired.",
    "access_denied": "The authorization request was denied.",
    "incorrect_device_code": "The device_code provided is not valid.",
    "incorrect_client_credentials": "The client_id and/or client_secret passed are incorrect.",
    "unsupported_grant_type": "The grant type is not supported.",
    "bad_refresh_token": "The refresh token passed is incorrect or expired.",
}


@dataclass
class DeviceCode:
    client_id: str
    user_code: str
    expires_at: float
    interval: int = POLL_INTERVAL
    last_poll: float | None = None
    user: str | None = None
    denied: bool = False
    used: bool = False


@dataclass
class UserToken:
    """An access (`ghu_`) or refresh (`ghr_`) token of one person's grant to one App."""

    client_id: str
    user: str
    expires_at: float
    dead: bool = False  # used (a refresh token), replaced or revoked


@dataclass
class OAuth:
    """The double's grants, and its clock for them."""

    offset: float = 0.0
    devices: dict[str, DeviceCode] = field(default_factory=dict)
    tokens: dict[str, UserToken] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    # The double's own map of people's tokens (State.user_tokens): a token there acts as them.
    people: dict[str, str] = field(default_factory=dict)

    def now(self) -> float:
        return time.time() + self.offset

    def refused(self, token: str | None) -> bool:
        """A user token this double issued that no longer works: expired, replaced, revoked."""
        issued = self.tokens.get(token or "")
        return issued is not None and (issued.dead or issued.expires_at <= self.now())


def register_oauth(app: Flask, hub: Any) -> None:
    oauth = hub.oauth = OAuth(people=hub.state.user_tokens)

    def secret_of(client_id: str) -> str | None:
        if client_id == CLIENT_ID:
            return CLIENT_SECRET
        registered = getattr(hub, "registered_apps", [])
        return next((a["client_secret"] for a in registered if a["client_id"] == client_id), None)

    @app.before_request
    def bad_credentials() -> Any:
        """An expired or revoked user token is refused before anything else is looked at."""
        if oauth.refused(g.get("token")):
            return error(401, "Bad credentials")
        return None

    @app.post("/login/device/code")
    def oauth_device_code() -> Any:
        client_id = _param("client_id")
        if secret_of(client_id) is None:
            return _answer({"error": "Not Found"}, 404)
        code = secrets.token_hex(20)
        user_code = "-".join(
            "".join(secrets.choice(USER_CODE_LETTERS) for _ in range(4)) for _ in range(2)
        )
        with oauth.lock:
            expires = oauth.now() + DEVICE_CODE_SECONDS
            oauth.devices[code] = DeviceCode(client_id, user_code, expires)
        return _answer(
            {
                "device_code": code,
                "user_code": user_code,
                "verification_uri": f"{hub.url}/login/device",
                "expires_in": DEVICE_CODE_SECONDS,
                "interval": POLL_INTERVAL,
            }
        )

    @app.post("/login/oauth/access_token")
    def oauth_access_token() -> Any:
        grant = _param("grant_type")
        client_id = _param("client_id")
        with oauth.lock:
            if grant == DEVICE_GRANT:
                return _device_token(oauth, client_id, _param("device_code"), secret_of)
            if grant == "refresh_token":
                secret = secret_of(client_id)
                if secret is None or _param("client_secret") != secret:
                    return _failed("incorrect_client_credentials", REFRESH_ERRORS_URI)
                return _refreshed(oauth, client_id, _param("refresh_token"))
        return _failed("unsupported_grant_type", DEVICE_ERRORS_URI)

    @app.delete("/applications/<client_id>/grant")
    def delete_grant(client_id: str) -> Any:

        user, _, password = _basic()
        if user != client_id or secret_of(client_id) != password:
            return error(404, "Not Found")
        token = (request.get_json(silent=True) or {}).get("access_token")
        with oauth.lock:
            issued = oauth.tokens.get(token or "")
            if issued is None or issued.client_id != client_id:
                return error(404, "Not Found")
            for each in oauth.tokens.values():
                if each.client_id == client_id and each.user == issued.user:
                    each.dead = True
        return Response(status=204)

    @app.post("/_admin/device/approve")
    def approve_device() -> Any:
        data = request.get_json(silent=True) or {}
        with oauth.lock:
            device = _by_user_code(oauth, data["user_code"])
            device.user = data["user"]
        return jsonify(user_code=device.user_code, user=device.user)

    @app.post("/_admin/device/deny")
    def deny_device() -> Any:
        data = request.get_json(silent=True) or {}
        with oauth.lock:
            device = _by_user_code(oauth, data["user_code"])
            device.denied = True
        return jsonify(user_code=device.user_code, denied=True)

    @app.post("/_admin/clock")
    def move_clock() -> Any:
        advance = float((request.get_json(silent=True) or {}).get("advance", 0))
        with oauth.lock:
            oauth.offset += advance
        return jsonify(now=oauth.now(), offset=oauth.offset)


def _device_token(oauth: OAuth, client_id: str, code: str, secret_of: Any) -> Any:
    if secret_of(client_id) is None:
        return _failed("incorrect_client_credentials", DEVICE_ERRORS_URI)
    device = oauth.devices.get(code)
    if device is None or device.used or device.client_id != client_id:
        return _failed("incorrect_device_code", DEVICE_ERRORS_URI)
    now = oauth.now()
    if device.expires_at <= now:
        return _failed("expired_token", DEVICE_ERRORS_URI)
    if device.denied:
        return _failed("access_denied", DEVICE_ERRORS_URI)
    polled, device.last_poll = device.last_poll, now
    if polled is not None and now - polled < device.interval:
        device.interval += SLOW_DOWN_STEP
        return _failed("slow_down", DEVICE_ERRORS_URI, interval=device.interval)
    if device.user is None:
        return _failed("authorization_pending", DEVICE_ERRORS_URI)
    device.used = True
    return _answer(_new_pair(oauth, client_id, device.user))


def _refreshed(oauth: OAuth, client_id: str, refresh_token: str) -> Any:
    issued = oauth.tokens.get(refresh_token)
    if (
        issued is None
        or not refresh_token.startswith("ghr_")
        or issued.client_id != client_id
        or issued.dead
        or issued.expires_at <= oauth.now()
    ):
        return _failed("bad_refresh_token", REFRESH_ERRORS_URI)
    # Single use: the refresh token and the access tokens it replaces stop working.
    for token, each in oauth.tokens.items():
        if each.client_id == client_id and each.user == issued.user and token.startswith("ghu_"):
            each.dead = True
    issued.dead = True
    return _answer(_new_pair(oauth, client_id, issued.user))


def _new_pair(oauth: OAuth, client_id: str, user: str) -> dict[str, Any]:
    access, refresh = f"ghu_{secrets.token_hex(18)}", f"ghr_{secrets.token_hex(38)}"
    now = oauth.now()
    oauth.tokens[access] = UserToken(client_id, user, now + ACCESS_SECONDS)
    oauth.tokens[refresh] = UserToken(client_id, user, now + REFRESH_SECONDS)
    oauth.people[access] = user  # requests with it act as the person
    return {
        "access_token": access,
        "expires_in": ACCESS_SECONDS,
        "refresh_token": refresh,
        "refresh_token_expires_in": REFRESH_SECONDS,
        "scope": "",
        "token_type": "bearer",
    }


def _by_user_code(oauth: OAuth, user_code: str) -> DeviceCode:
    found = next((d for d in oauth.devices.values() if d.user_code == user_code), None)
    if found is None:
        raise KeyError(f"no device code waits for the user code {user_code}")
    return found


def _param(name: str) -> str:
    """GitHub takes these parameters in the query, a form or JSON."""
    body = request.get_json(silent=True) if request.is_json else None
    return str((body or {}).get(name) or request.form.get(name) or request.args.get(name) or "")


def _failed(code: str, uri: str, **extra: Any) -> Any:
    """GitHub answers the token endpoint's errors with 200 and the error in the body."""
    said = {"error": code, "error_description": DESCRIPTIONS[code], "error_uri": uri}
    return _answer({**said, **extra})


def _answer(data: dict[str, Any], status: int = 200) -> Any:
    """JSON when asked for (`Accept: application/json`), else form-encoded, as GitHub does."""
    if "application/json" in request.headers.get("Accept", ""):
        return jsonify(data), status
    return Response(
        urlencode(data), status=status, content_type="application/x-www-form-urlencoded"
    )


def _basic() -> tuple[str, str, str]:
    import base64

    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return "", "", ""
    try:
        return base64.b64decode(value).decode().partition(":")
    except ValueError:
        return "", "", ""

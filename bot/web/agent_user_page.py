"""/agent-user: a person authorizes the App from the browser, as `specbridge setup
--agent-user` does from a terminal (bot/github/user_token.py), behind the status token
(SPECBRIDGE_STATUS_TOKEN: the status page's cookie, or HTTP basic auth).

GET shows the kept token's state. POST starts GitHub's device flow and shows the code
and where to enter it; a thread of this process polls GitHub until the person has entered
it, then keeps the token. The state shown is read from the database, so any `serve`
process shows it.
"""

from __future__ import annotations

import hmac
import logging
import threading
from urllib.parse import urlparse

from flask import Blueprint, Response, current_app, render_template, request

from bot.github.oauth import DeviceCode, OAuthClient, OAuthRefused
from bot.github.user_token import kept_token_state, store_authorized
from bot.settings import Settings
from bot.web.status_page import COOKIE, OFF_NOTE, _basic_auth_matches, _cookie_value, _refused

log = logging.getLogger(__name__)
blueprint = Blueprint("agent_user_page", __name__, template_folder="templates")


@blueprint.get("/agent-user")
def page() -> Response:
    settings: Settings = current_app.config["SPECBRIDGE_SETTINGS"]
    refused = _guard(settings)
    return refused or _render(settings)


@blueprint.post("/agent-user")
def start() -> Response:
    settings: Settings = current_app.config["SPECBRIDGE_SETTINGS"]
    refused = _guard(settings)
    if refused is not None:
        return refused
    origin = request.headers.get("Origin")
    if origin and urlparse(origin).netloc != request.host:
        return Response("Refused: the form was sent from another site.\n", 403)
    missing = _missing(settings)
    if missing:
        return _render(settings, problem=missing)
    assert settings.github_client_id is not None
    client = OAuthClient(
        settings.github_web_url, settings.github_client_id, settings.github_client_secret
    )
    try:
        code = client.start_device_flow()
    except OAuthRefused as refusal:
        return _render(settings, problem=f"GitHub did not start the device flow: {refusal}")
    threading.Thread(
        target=_wait_and_keep, args=(settings, client, code), name="agent-user", daemon=True
    ).start()
    return _render(settings, code=code)


def _wait_and_keep(settings: Settings, client: OAuthClient, code: DeviceCode) -> None:
    try:
        store_authorized(settings, client.wait_for_token(code))
        log.info("a person authorized the App from /agent-user: their token is kept")
    except OAuthRefused as refusal:
        log.warning("the person did not authorize the App from /agent-user: %s", refusal)
    except Exception:  # a thread of its own: nobody else would see it
        log.exception("authorizing a person from /agent-user failed")


def _missing(settings: Settings) -> str | None:
    if not settings.github_client_id or not settings.github_client_secret:
        return "set GITHUB_CLIENT_ID and GITHUB_CLIENT_SECRET (the App's settings page) first"
    if not settings.secret_key:
        return "set SPECBRIDGE_SECRET_KEY first (`specbridge setup --agent-user` makes one)"
    return None


def _guard(settings: Settings) -> Response | None:
    """As the status page: off without its token, else its cookie or basic auth."""
    if not settings.status_token:
        return Response(OFF_NOTE, 404, content_type="text/plain; charset=utf-8")
    expected = _cookie_value(settings.status_token)
    if hmac.compare_digest(request.cookies.get(COOKIE, ""), expected) or _basic_auth_matches(
        settings.status_token
    ):
        return None
    return _refused()


def _render(
    settings: Settings, code: DeviceCode | None = None, problem: str | None = None
) -> Response:
    page = render_template(
        "agent_user.html",
        state=kept_token_state(settings),
        own_token=bool(settings.agent_user_token),
        code=code,
        problem=problem,
    )
    response = Response(page)
    response.headers["Cache-Control"] = "no-store"
    return response

"""/agent-user: behind the status token, a person authorizes the App from the browser
(GitHub's device flow, checked with `responses`) and the page shows the kept token."""

from __future__ import annotations

import base64

import pytest
import responses
from cryptography.fernet import Fernet
from flask.testing import FlaskClient

from bot.github.user_token import agent_user_token
from bot.settings import Settings, load_settings
from bot.web.app import create_app
from tests.e2e.harness import wait_until
from tests.support import MOCK_API

WEB = "https://ghe.example:8443"
TOKEN = "status-secret"


@pytest.fixture
def settings(db: str) -> Settings:
    return load_settings(
        {
            "DATABASE_URL": db,
            "GITHUB_TOKEN": "t",
            "GITHUB_API_URL": MOCK_API,
            "SPECBRIDGE_STATUS_TOKEN": TOKEN,
            "GITHUB_CLIENT_ID": "Iv1.client",
            "GITHUB_CLIENT_SECRET": "s3cret",
            "SPECBRIDGE_SECRET_KEY": Fernet.generate_key().decode(),
        }
    )


def _client(settings: Settings) -> FlaskClient:
    return create_app(settings).test_client()


def _auth(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"x:{token}".encode()).decode()}


def test_the_page_is_behind_the_status_token(settings: Settings) -> None:
    client = _client(settings)
    assert client.get("/agent-user").status_code == 401
    assert client.post("/agent-user", headers=_auth("wrong")).status_code == 401
    page = client.get("/agent-user", headers=_auth())
    assert page.status_code == 200
    assert '<p id="state">No person&#39;s token is set' in page.text
    assert "Authorize a person" in page.text
    off = _client(load_settings({"DATABASE_URL": settings.database_url}))
    assert off.get("/agent-user").status_code == 404


@responses.activate
def test_a_person_authorizes_from_the_page(settings: Settings) -> None:
    responses.post(
        f"{WEB}/login/device/code",
        json={
            "device_code": "dc",
            "user_code": "WDJB-MJHT",
            "verification_uri": f"{WEB}/login/device",
            "expires_in": 900,
            "interval": 0,
        },
    )
    responses.post(
        f"{WEB}/login/oauth/access_token",
        json={
            "access_token": "ghu_from_page",
            "expires_in": 28800,
            "refresh_token": "ghr_from_page",
            "refresh_token_expires_in": 15897600,
            "scope": "",
            "token_type": "bearer",
        },
    )
    client = _client(settings)
    foreign = client.post("/agent-user", headers={**_auth(), "Origin": "https://evil.example"})
    assert foreign.status_code == 403 and len(responses.calls) == 0

    shown = client.post("/agent-user", headers=_auth())
    assert shown.status_code == 200
    assert "WDJB-MJHT" in shown.text and f"{WEB}/login/device" in shown.text
    kept = '<p id="state">A person&#39;s token is kept, valid until'
    wait_until(lambda: kept in client.get("/agent-user", headers=_auth()).text, 10, "kept")
    assert agent_user_token(settings) == "ghu_from_page"
    assert "ghu_from_page" not in client.get("/agent-user", headers=_auth()).text

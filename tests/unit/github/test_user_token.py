"""A person's token that renews itself: the exact requests of GitHub's device flow and of
a refresh (checked with `responses`), the token kept encrypted, renewed before it
expires by one process at a time, and a renewal GitHub refuses recorded and explained."""

from __future__ import annotations

import os
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs

import pytest
import responses
from cryptography.fernet import Fernet
from sqlalchemy import select

from bot.github.auth import user_client
from bot.github.oauth import DEVICE_GRANT, OAuthClient, OAuthRefused, TokenPair
from bot.github.user_token import (
    UserTokenUnavailable,
    agent_user_token,
    known_user_tokens,
    store_authorized,
    user_token_missing,
    user_token_problem,
)
from bot.settings import Settings, load_settings
from storage.db import session_scope
from storage.models import AgentUserToken
from tests.support import MOCK_API

WEB = "https://ghe.example:8443"
DEVICE_CODE = f"{WEB}/login/device/code"
ACCESS_TOKEN = f"{WEB}/login/oauth/access_token"
KEY = Fernet.generate_key().decode()


def _settings(db: str, **extra: str) -> Settings:
    environ = {
        "DATABASE_URL": db,
        "GITHUB_TOKEN": "t",
        "GITHUB_API_URL": MOCK_API,
        "GITHUB_CLIENT_ID": "Iv1.client",
        "GITHUB_CLIENT_SECRET": "s3cret",
        "SPECBRIDGE_SECRET_KEY": KEY,
        **extra,
    }
    if os.environ.get("REDIS_URL"):
        environ["REDIS_URL"] = os.environ["REDIS_URL"]  # the lock is Redis's, as in production
    return load_settings(environ)


def _form(call: Any) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(call.request.body).items()}


def _pair(access: str, refresh: str, expires_in: float) -> TokenPair:
    now = datetime.now(UTC)
    return TokenPair(
        access, refresh, now + timedelta(seconds=expires_in), now + timedelta(days=180)
    )


def _renewed(access: str, refresh: str) -> dict[str, Any]:
    return {
        "access_token": access,
        "expires_in": 28800,
        "refresh_token": refresh,
        "refresh_token_expires_in": 15897600,
        "scope": "",
        "token_type": "bearer",
    }


@responses.activate
def test_the_device_flow_polls_at_githubs_interval_and_slows_down_when_told() -> None:
    responses.post(
        DEVICE_CODE,
        json={
            "device_code": "dc",
            "user_code": "WDJB-MJHT",
            "verification_uri": f"{WEB}/login/device",
            "expires_in": 900,
            "interval": 5,
        },
    )
    for answer in (
        {"error": "authorization_pending", "error_description": "pending"},
        {"error": "slow_down", "error_description": "slow", "interval": 10},
        _renewed("ghu_new", "ghr_new"),
    ):
        responses.post(ACCESS_TOKEN, json=answer)
    client = OAuthClient(WEB, "Iv1.client")
    code = client.start_device_flow()
    assert (code.user_code, code.verification_uri) == ("WDJB-MJHT", f"{WEB}/login/device")
    slept: list[float] = []
    pair = client.wait_for_token(code, sleep=slept.append, clock=lambda: 0)

    assert slept == [5, 5, 10]
    assert pair.access_token == "ghu_new" and pair.refresh_token == "ghr_new"
    assert pair.access_expires_at is not None and pair.refresh_expires_at is not None
    assert pair.refresh_expires_at - pair.access_expires_at == timedelta(seconds=15897600 - 28800)
    start, *polls = responses.calls
    assert _form(start) == {"client_id": "Iv1.client"}
    assert start.request.headers["Accept"] == "application/json"
    assert all(
        _form(p) == {"client_id": "Iv1.client", "device_code": "dc", "grant_type": DEVICE_GRANT}
        for p in polls
    )


@responses.activate
def test_a_declined_or_expired_code_ends_the_flow() -> None:
    responses.post(ACCESS_TOKEN, json={"error": "access_denied", "error_description": "no"})
    client = OAuthClient(WEB, "Iv1.client")
    code = type("Code", (), {"device_code": "dc", "interval": 5, "expires_in": 900})()
    with pytest.raises(OAuthRefused, match="access_denied") as refused:
        client.wait_for_token(code, sleep=lambda _: None, clock=lambda: 0)  # type: ignore[arg-type]
    assert refused.value.error == "access_denied"


@responses.activate
def test_a_token_near_expiry_is_renewed_with_the_exact_request_and_kept_encrypted(db: str) -> None:
    settings = _settings(db)
    store_authorized(settings, _pair("ghu_old", "ghr_old", expires_in=3600))
    assert agent_user_token(settings) == "ghu_old"  # an hour left: used as it is
    assert len(responses.calls) == 0

    store_authorized(settings, _pair("ghu_old", "ghr_old", expires_in=120))  # 2 minutes left
    responses.post(ACCESS_TOKEN, json=_renewed("ghu_new", "ghr_new"))
    assert agent_user_token(settings) == "ghu_new"
    assert agent_user_token(settings) == "ghu_new"  # kept: no second request
    [call] = responses.calls
    assert _form(call) == {
        "client_id": "Iv1.client",
        "client_secret": "s3cret",
        "grant_type": "refresh_token",
        "refresh_token": "ghr_old",
    }
    with session_scope(db) as session:
        row = session.scalars(select(AgentUserToken)).one()
        stored = f"{row.access_token} {row.refresh_token}"
    assert "ghu_new" not in stored and "ghr_new" not in stored  # encrypted at rest
    assert set(known_user_tokens(settings)) == {"ghu_new", "ghr_new"}  # for the redaction list
    assert user_client(settings).token == "ghu_new"


@responses.activate
def test_a_refused_renewal_stops_the_token_and_says_how_to_authorize_again(db: str) -> None:
    settings = _settings(db)
    store_authorized(settings, _pair("ghu_old", "ghr_old", expires_in=-60))
    responses.post(
        ACCESS_TOKEN,
        json={
            "error": "bad_refresh_token",
            "error_description": "The refresh token passed is incorrect or expired.",
        },
    )
    with pytest.raises(UserTokenUnavailable, match="specbridge setup --agent-user"):
        agent_user_token(settings)
    said = user_token_missing(settings)
    assert said and "bad_refresh_token" in said and "specbridge setup --agent-user" in said
    assert user_token_problem(settings) == said  # /readyz's warning
    assert len(responses.calls) == 1  # not asked again until someone authorizes

    store_authorized(settings, _pair("ghu_again", "ghr_again", expires_in=28800))
    assert agent_user_token(settings) == "ghu_again" and user_token_problem(settings) is None


def test_the_operators_token_wins_and_none_at_all_says_what_to_do(db: str) -> None:
    settings = _settings(db)
    said = user_token_missing(settings)
    assert said and "SPECBRIDGE_AGENT_USER_TOKEN" in said and "setup --agent-user" in said
    store_authorized(settings, _pair("ghu_kept", "ghr_kept", expires_in=28800))
    own = _settings(db, SPECBRIDGE_AGENT_USER_TOKEN="ghp_own")
    assert agent_user_token(own) == "ghp_own"
    assert "ghp_own" in known_user_tokens(own) and "ghu_kept" in known_user_tokens(own)


def test_a_token_kept_with_another_key_is_not_read(db: str) -> None:
    store_authorized(_settings(db), _pair("ghu_old", "ghr_old", expires_in=28800))
    other = _settings(db, SPECBRIDGE_SECRET_KEY=Fernet.generate_key().decode())
    with pytest.raises(UserTokenUnavailable, match="another SPECBRIDGE_SECRET_KEY"):
        agent_user_token(other)


@responses.activate
def test_two_processes_renewing_at_once_send_one_refresh(db: str) -> None:
    """GitHub's refresh tokens work once: a second refresh with the same one would fail
    and lose the token. Two threads, each with its own sessions, as two workers."""
    settings = _settings(db)
    store_authorized(settings, _pair("ghu_old", "ghr_old", expires_in=60))

    def slow_refresh(request: Any) -> tuple[int, dict[str, str], str]:
        time.sleep(0.5)  # long enough for the other thread to be waiting on the lock
        import json

        return 200, {}, json.dumps(_renewed("ghu_new", "ghr_new"))

    responses.add_callback(responses.POST, ACCESS_TOKEN, callback=slow_refresh)
    got: list[str] = []
    start = threading.Barrier(2)

    def renew() -> None:
        start.wait()
        got.append(agent_user_token(settings))

    threads = [threading.Thread(target=renew) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert got == ["ghu_new", "ghu_new"]
    assert len(responses.calls) == 1

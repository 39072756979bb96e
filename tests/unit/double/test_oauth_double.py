"""A person authorizes the App on the double as on github.com: the device flow's
answers and errors, user tokens that expire in 8 hours, single-use refresh tokens,
and a revoked grant."""

from __future__ import annotations

import base64
from typing import Any

import requests

from fakehub import FakeHub
from fakehub.oauth import ACCESS_SECONDS, CLIENT_ID, CLIENT_SECRET, DEVICE_GRANT, REFRESH_SECONDS

JSON = {"Accept": "application/json"}


def _post(hub: FakeHub, path: str, **form: str) -> dict[str, Any]:
    answer = requests.post(f"{hub.url}{path}", data=form, headers=JSON, timeout=30)
    assert answer.status_code == 200, answer.text
    return answer.json()


def _admin(hub: FakeHub, path: str, **body: Any) -> requests.Response:
    return requests.post(f"{hub.url}/_admin/{path}", json=body, timeout=30)


def _poll(hub: FakeHub, device_code: str) -> dict[str, Any]:
    return _post(
        hub,
        "/login/oauth/access_token",
        client_id=CLIENT_ID,
        device_code=device_code,
        grant_type=DEVICE_GRANT,
    )


def _authorized(hub: FakeHub, user: str = "maintainer") -> dict[str, Any]:
    code = _post(hub, "/login/device/code", client_id=CLIENT_ID)
    _admin(hub, "device/approve", user_code=code["user_code"], user=user).raise_for_status()
    return _poll(hub, code["device_code"])


def _viewer(hub: FakeHub, token: str) -> requests.Response:
    return requests.get(
        f"{hub.url}/repos/acme/none/issues", headers={"Authorization": f"token {token}"}, timeout=30
    )


def _refresh(hub: FakeHub, refresh_token: str, secret: str = CLIENT_SECRET) -> dict[str, Any]:
    return _post(
        hub,
        "/login/oauth/access_token",
        client_id=CLIENT_ID,
        client_secret=secret,
        grant_type="refresh_token",
        refresh_token=refresh_token,
    )


def test_the_device_flow_answers_as_github_does(hub: FakeHub) -> None:
    code = _post(hub, "/login/device/code", client_id=CLIENT_ID)
    assert set(code) == {"device_code", "user_code", "verification_uri", "expires_in", "interval"}
    assert code["expires_in"] == 900 and code["interval"] == 5
    assert code["verification_uri"] == f"{hub.url}/login/device"

    pending = _poll(hub, code["device_code"])
    assert pending["error"] == "authorization_pending" and pending["error_description"]
    # Polled again at once: slow down, with the interval to keep from now on.
    slow = _poll(hub, code["device_code"])
    assert slow["error"] == "slow_down" and slow["interval"] == 10

    _admin(hub, "device/approve", user_code=code["user_code"], user="maintainer")
    _admin(hub, "clock", advance=11)
    token = _poll(hub, code["device_code"])
    assert token["expires_in"] == ACCESS_SECONDS == 28800
    assert token["refresh_token_expires_in"] == REFRESH_SECONDS == 15897600
    assert token["access_token"].startswith("ghu_") and token["refresh_token"].startswith("ghr_")
    assert token["token_type"] == "bearer"
    assert _poll(hub, code["device_code"])["error"] == "incorrect_device_code"  # used


def test_the_device_flow_refuses_what_github_refuses(hub: FakeHub) -> None:
    unknown = requests.post(
        f"{hub.url}/login/device/code", data={"client_id": "Iv1.nobody"}, headers=JSON, timeout=30
    )
    assert unknown.status_code == 404

    denied = _post(hub, "/login/device/code", client_id=CLIENT_ID)
    _admin(hub, "device/deny", user_code=denied["user_code"]).raise_for_status()
    assert _poll(hub, denied["device_code"])["error"] == "access_denied"

    late = _post(hub, "/login/device/code", client_id=CLIENT_ID)
    _admin(hub, "clock", advance=901)
    assert _poll(hub, late["device_code"])["error"] == "expired_token"

    wrong = _post(hub, "/login/oauth/access_token", client_id=CLIENT_ID, grant_type="password")
    assert wrong["error"] == "unsupported_grant_type"


def test_without_accept_json_the_answer_is_form_encoded(hub: FakeHub) -> None:
    form = {"client_id": CLIENT_ID}
    answer = requests.post(f"{hub.url}/login/device/code", data=form, timeout=30)
    assert answer.headers["Content-Type"].startswith("application/x-www-form-urlencoded")
    assert "device_code=" in answer.text and "interval=5" in answer.text


def test_a_user_token_expires_after_8_hours_and_a_refresh_token_works_once(hub: FakeHub) -> None:
    first = _authorized(hub)
    assert _viewer(hub, first["access_token"]).status_code != 401
    _admin(hub, "clock", advance=ACCESS_SECONDS)
    expired = _viewer(hub, first["access_token"])
    assert expired.status_code == 401 and expired.json()["message"] == "Bad credentials"

    assert _refresh(hub, first["refresh_token"], "wrong")["error"] == "incorrect_client_credentials"
    second = _refresh(hub, first["refresh_token"])
    assert second["access_token"] != first["access_token"]
    assert _viewer(hub, second["access_token"]).status_code != 401
    # Single use: the same refresh token again is refused.
    assert _refresh(hub, first["refresh_token"])["error"] == "bad_refresh_token"

    # A refresh token expires after six months.
    _admin(hub, "clock", advance=REFRESH_SECONDS)
    assert _refresh(hub, second["refresh_token"])["error"] == "bad_refresh_token"


def test_deleting_the_grant_revokes_every_token_of_the_person(hub: FakeHub) -> None:
    granted = _authorized(hub, "revoker")
    basic = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
    gone = requests.delete(
        f"{hub.url}/applications/{CLIENT_ID}/grant",
        json={"access_token": granted["access_token"]},
        headers={"Authorization": f"Basic {basic}"},
        timeout=30,
    )
    assert gone.status_code == 204
    assert _viewer(hub, granted["access_token"]).status_code == 401
    assert _refresh(hub, granted["refresh_token"])["error"] == "bad_refresh_token"
    [record] = [r for r in hub.state.requests if r["method"] == "DELETE"]
    assert record["mismatch"] is None  # checked against GitHub's REST description

"""A person authorizes the App: GitHub's device flow, and renewing the user access token
it gives (GitHub App user tokens expire after 8 hours; their refresh token, used once,
after 6 months).

As GitHub documents them:
https://docs.github.com/apps/creating-github-apps/authenticating-with-a-github-app/generating-a-user-access-token-for-a-github-app#using-the-device-flow-to-generate-a-user-access-token
and .../refreshing-user-access-tokens. Both endpoints are on GitHub's web host
(github.com, not api.github.com) and answer their errors with 200 and `error`,
`error_description` in the body.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import requests

from bot.github.connection import TIMEOUT_SECONDS, _check_no_transaction

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
# What RFC 8628 adds to the interval when GitHub says slow_down without a new one.
SLOW_DOWN_STEP = 5
JSON = {"Accept": "application/json"}


class OAuthRefused(RuntimeError):
    """GitHub said no for good: `error` is its code (access_denied, expired_token,
    bad_refresh_token, incorrect_client_credentials...), the message its words."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(f"{error}: {description}" if description else error)
        self.error = error


@dataclass(frozen=True)
class DeviceCode:
    """What the person is shown (the code, where to enter it) and what the App polls with."""

    device_code: str
    user_code: str
    verification_uri: str
    expires_in: int
    interval: int


@dataclass(frozen=True)
class TokenPair:
    """A user access token and its refresh token, with when each expires (None: never)."""

    access_token: str
    refresh_token: str | None
    access_expires_at: datetime | None
    refresh_expires_at: datetime | None

    @classmethod
    def from_answer(cls, answer: dict[str, Any], now: datetime) -> TokenPair:
        def expiry(key: str) -> datetime | None:
            seconds = answer.get(key)
            return now + timedelta(seconds=int(seconds)) if seconds else None

        return cls(
            access_token=str(answer["access_token"]),
            refresh_token=answer.get("refresh_token") or None,
            access_expires_at=expiry("expires_in"),
            refresh_expires_at=expiry("refresh_token_expires_in"),
        )


class OAuthClient:
    """The App's OAuth client on one GitHub (its web URL: https://github.com, an
    Enterprise Server, or the double)."""

    def __init__(self, web_url: str, client_id: str, client_secret: str | None = None) -> None:
        self.web_url = web_url.rstrip("/")
        self.client_id = client_id
        self.client_secret = client_secret

    def start_device_flow(self) -> DeviceCode:
        """Step 1: a device code, and the user code the person enters at verification_uri."""
        answer = self._post("/login/device/code", {"client_id": self.client_id})
        return DeviceCode(
            device_code=str(answer["device_code"]),
            user_code=str(answer["user_code"]),
            verification_uri=str(answer["verification_uri"]),
            expires_in=int(answer["expires_in"]),
            interval=int(answer["interval"]),
        )

    def wait_for_token(
        self,
        code: DeviceCode,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> TokenPair:
        """Step 3: poll until the person has entered the code, at the interval GitHub set
        (longer after each slow_down); OAuthRefused when they declined or the code expired."""
        interval = code.interval
        deadline = clock() + code.expires_in
        while True:
            sleep(interval)
            answer = self._post(
                "/login/oauth/access_token",
                {
                    "client_id": self.client_id,
                    "device_code": code.device_code,
                    "grant_type": DEVICE_GRANT,
                },
                refused_ok={"authorization_pending", "slow_down"},
            )
            error = answer.get("error")
            if error is None:
                return TokenPair.from_answer(answer, datetime.now(UTC))
            if error == "slow_down":
                interval = int(answer.get("interval") or interval + SLOW_DOWN_STEP)
            if clock() >= deadline:
                raise OAuthRefused("expired_token", "the code was not entered in time")

    def refresh(self, refresh_token: str) -> TokenPair:
        """A new pair for the refresh token, which GitHub then never takes again."""
        answer = self._post(
            "/login/oauth/access_token",
            {
                "client_id": self.client_id,
                "client_secret": self.client_secret or "",
                "grant_type": "refresh_token",
                "refresh_token": refresh_token,
            },
        )
        return TokenPair.from_answer(answer, datetime.now(UTC))

    def _post(
        self, path: str, form: dict[str, str], refused_ok: set[str] = frozenset()
    ) -> dict[str, Any]:
        _check_no_transaction(f"POST {path}")
        response = requests.post(
            f"{self.web_url}{path}", data=form, headers=JSON, timeout=TIMEOUT_SECONDS
        )
        if response.status_code == 404:
            raise OAuthRefused(
                "not_found", f"GitHub knows no App with the client id {self.client_id}"
            )
        if response.status_code >= 400:
            response.raise_for_status()  # a 5xx or a rate limit: it passes, try again later
        answer: dict[str, Any] = response.json()
        error = answer.get("error")
        if error and error not in refused_ok:
            raise OAuthRefused(str(error), str(answer.get("error_description") or ""))
        return answer

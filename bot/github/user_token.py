"""The person's token the agents GitHub runs need (GitHub lets only a person assign an
issue to Copilot): SPECBRIDGE_AGENT_USER_TOKEN when the operator manages one, else the
token `specbridge setup --agent-user` stored, renewed here before it expires.

Stored encrypted (Fernet, the key SPECBRIDGE_SECRET_KEY) in one row of
`agent_user_tokens`. GitHub's refresh tokens work once, so a renewal is made by one
process at a time under a lock held across workers; the process re-reads the row once
it holds the lock (another may have renewed it meanwhile), ends its transaction before
asking GitHub, and stores the new pair only if the row is still the one it renewed
(`generation`). A renewal GitHub refuses (the grant revoked, the refresh token expired:
`bad_refresh_token`) is recorded: until someone authorizes again, every hosted dispatch
that needs the token is refused with a message saying how, and /readyz warns.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import NoReturn

from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import update
from sqlalchemy.exc import SQLAlchemyError

from bot.errors import GitHubAuthError
from bot.github.connection import GitHubConnection
from bot.github.oauth import OAuthClient, OAuthRefused, TokenPair
from bot.locks import exclusive
from bot.settings import Settings
from storage.db import session_scope
from storage.models import AgentUserToken

log = logging.getLogger(__name__)

ROW = "agent-user"
LOCK = "agent-user-token"
# Renewed when it has less than this left: a dispatch never starts with a token about to go.
RENEW_BEFORE = timedelta(minutes=5)
AUTHORIZE = "run `specbridge setup --agent-user` to authorize the App for a person again"
NOT_SET = (
    "no person's token is set: run `specbridge setup --agent-user` (a person with a Copilot "
    "seat and write access authorizes the App) or set SPECBRIDGE_AGENT_USER_TOKEN"
)


class UserTokenUnavailable(GitHubAuthError):
    """No person's token to use: the message says what the operator does about it."""


@dataclass(frozen=True)
class _Stored:
    generation: int
    pair: TokenPair

    def fresh(self, now: datetime) -> bool:
        expires = self.pair.access_expires_at
        return expires is None or _aware(expires) - RENEW_BEFORE > now


def agent_user_token(settings: Settings) -> str:
    """The person's token to act with now: SPECBRIDGE_AGENT_USER_TOKEN when set, else the
    stored one, renewed first when it nears expiry. UserTokenUnavailable when there is
    none or it can no longer be renewed; a GitHub that does not answer raises as requests
    does (the caller tries again later)."""
    if settings.agent_user_token:
        return settings.agent_user_token
    stored = _read(settings)
    if stored.fresh(datetime.now(UTC)):
        return stored.pair.access_token
    with exclusive(settings, LOCK):
        stored = _read(settings)  # another process may have renewed it while we waited
        if stored.fresh(datetime.now(UTC)):
            return stored.pair.access_token
        return _renew(settings, stored)


def user_token_missing(settings: Settings) -> str | None:
    """Why no person's token can be used now (renewed first when it nears expiry), for
    the issue; None when one can."""
    try:
        agent_user_token(settings)
    except UserTokenUnavailable as unavailable:
        return str(unavailable)
    return None


def renew_refused(settings: Settings, connection: GitHubConnection) -> str | None:
    """GitHub answered 401 to the person's token of `connection` (revoked, or expired
    sooner than its stated lifetime): renew it once. None when renewed (the caller tries
    again); else why it cannot be, and what the operator does."""
    if settings.agent_user_token:
        return "GitHub refused SPECBRIDGE_AGENT_USER_TOKEN (401): the operator sets a valid one"
    try:
        with exclusive(settings, LOCK):
            stored = _read(settings)
            if stored.pair.access_token == connection.token:  # else renewed meanwhile
                _renew(settings, stored)
    except UserTokenUnavailable as unavailable:
        return str(unavailable)
    return None


def user_token_problem(settings: Settings) -> str | None:
    """Why no person's token can be used (for /readyz), read without asking GitHub."""
    if settings.agent_user_token:
        return None
    try:
        _read(settings)
    except UserTokenUnavailable as unavailable:
        return str(unavailable)
    except SQLAlchemyError:
        return None  # /readyz says the database does not answer
    return None


def kept_token_state(settings: Settings) -> str:
    """One sentence on the kept token, for the operator's page (no token in it)."""
    problem = user_token_problem(settings)
    if problem:
        return problem[0].upper() + problem[1:] + "."
    row = _row(settings)
    if row is None:  # the operator's own SPECBRIDGE_AGENT_USER_TOKEN, nothing kept
        return "No token is kept; SPECBRIDGE_AGENT_USER_TOKEN is used."
    until = row.refresh_expires_at
    renewed = f", renewed by itself until {_aware(until):%Y-%m-%d}" if until else ""
    valid = row.access_expires_at
    now = f", valid until {_aware(valid):%Y-%m-%d %H:%M} UTC" if valid else ""
    return f"A person's token is kept{now}{renewed}."


def known_user_tokens(settings: Settings) -> list[str]:
    """Every person's token specbridge holds, for the redaction list: none is ever shown."""
    values = [settings.agent_user_token] if settings.agent_user_token else []
    row = _row(settings)
    if row is not None and settings.secret_key:
        fernet = Fernet(settings.secret_key.encode())
        for encrypted in (row.access_token, row.refresh_token):
            try:
                values += [fernet.decrypt(encrypted.encode()).decode()] if encrypted else []
            except InvalidToken:
                continue
    return values


def store_authorized(settings: Settings, pair: TokenPair) -> None:
    """Keep the pair a person just authorized, replacing whatever was kept (or lost)."""
    fernet = _fernet(settings)
    with session_scope(settings.database_url) as session:
        row = session.get(AgentUserToken, ROW)
        if row is None:
            row = AgentUserToken(name=ROW, generation=0)
            session.add(row)
        _put(row, fernet, pair)
        row.generation = (row.generation or 0) + 1
        row.lost = None


# -- reading and renewing ---------------------------------------------------------------


def _row(settings: Settings) -> AgentUserToken | None:
    with session_scope(settings.database_url) as session:
        row = session.get(AgentUserToken, ROW)
        if row is not None:
            session.expunge(row)
        return row


def _read(settings: Settings) -> _Stored:
    row = _row(settings)
    if row is None:
        raise UserTokenUnavailable(NOT_SET)
    if row.lost:
        raise UserTokenUnavailable(
            f"the person's token specbridge kept can no longer be renewed ({row.lost}): {AUTHORIZE}"
        )
    fernet = _fernet(settings)
    try:
        access = fernet.decrypt(row.access_token.encode()).decode()
        refresh = fernet.decrypt(row.refresh_token.encode()).decode() if row.refresh_token else None
    except InvalidToken:
        raise UserTokenUnavailable(
            f"the person's token was stored with another SPECBRIDGE_SECRET_KEY: {AUTHORIZE}"
        ) from None
    pair = TokenPair(access, refresh, row.access_expires_at, row.refresh_expires_at)
    return _Stored(row.generation, pair)


def _renew(settings: Settings, stored: _Stored) -> str:
    """Exchange the refresh token for a new pair; the caller holds the lock and no
    transaction."""
    pair = stored.pair
    now = datetime.now(UTC)
    if pair.refresh_token is None:
        _lose(settings, stored, "it expired and GitHub gave no refresh token with it")
    if pair.refresh_expires_at is not None and _aware(pair.refresh_expires_at) <= now:
        _lose(settings, stored, "its refresh token expired")
    if not settings.github_client_id or not settings.github_client_secret:
        raise UserTokenUnavailable(
            "the person's token nears expiry and cannot be renewed without the App's "
            "GITHUB_CLIENT_ID and GITHUB_CLIENT_SECRET: set them"
        )
    client = OAuthClient(
        settings.github_web_url, settings.github_client_id, settings.github_client_secret
    )
    assert pair.refresh_token is not None
    try:
        renewed = client.refresh(pair.refresh_token)
    except OAuthRefused as refused:
        _lose(settings, stored, f"GitHub said {refused}")
    fernet = _fernet(settings)
    with session_scope(settings.database_url) as session:
        row = session.get_one(AgentUserToken, ROW)
        if row.generation != stored.generation:  # replaced by a new authorization meanwhile
            log.warning("the person's token was authorized again while it was being renewed")
            return fernet.decrypt(row.access_token.encode()).decode()
        _put(row, fernet, renewed)
        row.generation += 1
    log.info("the person's token is renewed until %s", renewed.access_expires_at)
    return renewed.access_token


def _lose(settings: Settings, stored: _Stored, why: str) -> NoReturn:
    """Record that the token can no longer be renewed; raise UserTokenUnavailable saying so."""
    with session_scope(settings.database_url) as session:
        session.execute(
            update(AgentUserToken)
            .where(AgentUserToken.name == ROW, AgentUserToken.generation == stored.generation)
            .values(lost=why)
        )
    log.error("the person's token can no longer be renewed: %s", why)
    raise UserTokenUnavailable(
        f"the person's token specbridge kept can no longer be renewed ({why}): {AUTHORIZE}"
    )


def _put(row: AgentUserToken, fernet: Fernet, pair: TokenPair) -> None:
    row.access_token = fernet.encrypt(pair.access_token.encode()).decode()
    refresh = pair.refresh_token
    row.refresh_token = fernet.encrypt(refresh.encode()).decode() if refresh else None
    row.access_expires_at = pair.access_expires_at
    row.refresh_expires_at = pair.refresh_expires_at


def _fernet(settings: Settings) -> Fernet:
    if not settings.secret_key:
        raise UserTokenUnavailable(
            f"SPECBRIDGE_SECRET_KEY is not set, so the stored person's token cannot be read: "
            f"{AUTHORIZE}"
        )
    return Fernet(settings.secret_key.encode())


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)  # SQLite keeps no zone

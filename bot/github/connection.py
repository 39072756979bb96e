"""One installation's (or token's) connection to GitHub: every request specbridge
makes goes through here, paced, checked and retried as GitHub asks.

Requests are retried on rate limits, 5xx and lost connections, except those
sent `once` (creating issues): they are retried only when GitHub says nothing
was done (a rate limit answer, a connection never made). After a 502 or a
timeout GitHub may have created the issue anyway, so the sync looks for it by
its hidden marker instead of sending it twice.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from github import Github, GithubException, GithubRetry
from github.Requester import Requester

from bot.github.pacing import Pacer
from storage.db import transaction_open

log = logging.getLogger(__name__)

TIMEOUT_SECONDS = 20

# Told of every request: its kind (rest_read, rest_write, graphql_query,
# graphql_mutation) and GitHub's answer (a status code, or "error": no answer).
RequestHook = Callable[[str, str], None]


class TransactionOpenError(RuntimeError):
    """A database transaction was left open across a call to GitHub."""


@dataclass
class GraphQLAnswer:
    """A GraphQL answer: `data` for what was done, `errors` by alias for what was not."""

    data: dict[str, Any]
    errors: dict[str, str] = field(default_factory=dict)
    other_errors: list[str] = field(default_factory=list)


class GraphQLError(RuntimeError):
    def __init__(self, messages: list[str]) -> None:
        super().__init__("; ".join(messages))
        self.messages = messages


class GitHubConnection:
    def __init__(
        self, github: Github, once: Github, pacer: Pacer, on_request: RequestHook | None = None
    ) -> None:
        self.github = github
        self.requester: Requester = github.requester
        self._once: Requester = once.requester
        self.pacer = pacer
        self.writes = 0  # write requests sent, for the logs and the benches
        # How long GitHub took to answer the last mutation (its pace's wait aside).
        self.last_mutation_seconds = 0.0
        self._on_request = on_request

    @property
    def token(self) -> str | None:
        auth = self.requester.auth
        return getattr(auth, "token", None) if auth is not None else None

    # -- REST ------------------------------------------------------------------------

    def rest(
        self,
        verb: str,
        path: str,
        body: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
        content: int = 0,
        once: bool = False,
    ) -> Any:
        """One REST request.

        `content`: how many items it creates (issues, comments…), for the budget.
        `once`: not resent after an answer that leaves unknown whether it was done.
        """
        _check_no_transaction(f"{verb} {path}")
        reservation = None
        if verb != "GET":
            reservation = self.pacer.before_write(content)
            self.writes += 1
        requester = self._once if once else self.requester
        try:
            status, headers, output = self._counted(
                "rest_read" if verb == "GET" else "rest_write",
                lambda: requester.requestJson(verb, path, params or None, None, body),
            )
        finally:
            self.pacer.counted(reservation)
        data = json.loads(output) if output else None
        if status >= 400:
            raise requester.createException(status, headers, data)
        return data

    # -- GraphQL ---------------------------------------------------------------------

    def query(self, document: str, variables: dict[str, Any]) -> dict[str, Any]:
        """A GraphQL query; any error raises (NOT_FOUND as UnknownObjectException)."""
        _check_no_transaction("GraphQL query")
        _, data = self._counted(
            "graphql_query",
            lambda: self.requester.graphql_query(document, variables),
        )
        return data["data"]

    def mutate(
        self,
        document: str,
        variables: dict[str, Any],
        content: int = 0,
        once: bool = False,
        headers: dict[str, str] | None = None,
    ) -> GraphQLAnswer:
        """Mutations under aliases, run in order; each alias succeeds or fails on its own.

        `headers`: more request headers, such as GraphQL-Features for a preview."""
        _check_no_transaction("GraphQL mutation")
        reservation = self.pacer.before_write(content)
        self.writes += 1
        requester = self._once if once else self.requester
        started = time.monotonic()
        try:
            status, answered, output = self._counted(
                "graphql_mutation",
                lambda: requester.requestJson(
                    "POST",
                    requester.graphql_url,
                    None,
                    headers,
                    {"query": document, "variables": variables},
                ),
            )
        finally:
            self.pacer.counted(reservation)
            self.last_mutation_seconds = time.monotonic() - started
        body = json.loads(output) if output else {}
        if status >= 400:
            raise requester.createException(status, answered, body)
        answer = GraphQLAnswer(body.get("data") or {})
        for error in body.get("errors") or []:
            path = error.get("path") or []
            message = error.get("message", "GraphQL error")
            if path:
                answer.errors.setdefault(str(path[0]), message)
            else:
                answer.other_errors.append(message)
        if answer.other_errors and not answer.data:
            raise GraphQLError(answer.other_errors)
        return answer

    def _counted(self, kind: str, send: Callable[[], tuple[Any, ...]]) -> tuple[Any, ...]:
        """Send one request and tell the hook how GitHub answered.

        `send` answers (status, headers, body), or (headers, data) when any
        status but 200 raises (PyGithub's graphql_query).
        """
        if self._on_request is None:
            return send()
        try:
            answer = send()
        except GithubException as error:
            self._on_request(kind, str(error.status))
            raise
        except Exception:
            self._on_request(kind, "error")
            raise
        status = answer[0] if isinstance(answer[0], int) else 200
        self._on_request(kind, str(status))
        return answer


def retry_policy(once: bool = False) -> GithubRetry:
    """Rate limits (403/429 with retry-after) and, unless `once`, 5xx and lost reads."""
    if once:
        return GithubRetry(
            total=6,
            read=0,
            backoff_factor=0.5,
            status_forcelist=[429],
            secondary_rate_wait=60,
            max_rate_limit_wait=15 * 60,
        )
    return GithubRetry(
        total=6,
        backoff_factor=0.5,
        status_forcelist=[*range(500, 600), 429],
        secondary_rate_wait=60,
        max_rate_limit_wait=15 * 60,
    )


def client_options(once: bool = False) -> dict[str, Any]:
    # Pacing is ours (bot/github/pacing.py), shared across processes, and spaces
    # only writes: PyGithub's own spaces every request of one process.
    return {
        "retry": retry_policy(once),
        "timeout": TIMEOUT_SECONDS,
        "seconds_between_requests": None,
        "seconds_between_writes": None,
    }


def _check_no_transaction(what: str) -> None:
    """Never hold a database transaction while waiting on GitHub (it can take minutes).

    Tests and the double's runs set SPECBRIDGE_CHECK_TRANSACTIONS=1 to make it an error.
    """
    if not transaction_open():
        return
    message = f"a database transaction is open across {what}"
    if os.environ.get("SPECBRIDGE_CHECK_TRANSACTIONS") == "1":
        raise TransactionOpenError(message)
    log.warning(message)

"""Shared helpers for tests: GitHub's published payloads, signing, settings."""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from pathlib import Path
from typing import Any

import pytest

from bot.queue import EmbeddedQueue
from fakehub.fixtures import FIXTURES

REPO_ROOT = Path(__file__).resolve().parents[1]
WEBHOOK_SECRET = "It's a Secret to Everybody"
# A board with a column per phase (a board made with GitHub's defaults has Todo, In Progress, Done).
SPECBRIDGE_COLUMNS = ["Backlog", "Analyzing", "Building", "Testing", "Done"]


def github_payload(event: str, name: str = "payload.json") -> dict[str, Any]:
    """A real webhook payload published by octokit/webhooks (a fresh copy)."""
    return copy.deepcopy(json.loads((FIXTURES / "webhooks" / event / name).read_text()))


def signature(body: bytes, secret: str = WEBHOOK_SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def webhook_headers(event: str, delivery_id: str, body: bytes) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery_id,
        "X-Hub-Signature-256": signature(body),
    }


# A GitHub Enterprise-style base URL for `responses` mocks (PyGithub always names the port).
MOCK_API = "https://ghe.example:8443/api/v3"
MOCK_GRAPHQL = "https://ghe.example:8443/api/graphql"


@contextmanager
def jobs_end_with_the_test() -> Iterator[None]:
    """Jobs put on the embedded queue in this block that have not started when it ends
    never run. The queue lives as long as the process, and a job left by a test that
    ended (a delayed one: a tracking refresh, a paced sync's continuation) would run in
    a later test, reading that test's settings from the environment (its double, its
    database); on SQLite, whose emptied tables hand the same ids out again, it then took
    the later test's spec for its own (and read the labels of a counted sync again)."""
    ended = threading.Event()
    put = EmbeddedQueue.put

    def put_unless_ended(
        queue: EmbeddedQueue,
        job: Callable[..., Any],
        args: tuple[Any, ...],
        job_id: str | None = None,
        delay: float = 0,
        retry_intervals: list[int] | None = None,
    ) -> None:
        @wraps(job)
        def unless_ended(*job_args: Any) -> None:
            if not ended.is_set():
                job(*job_args)

        put(queue, unless_ended, args, job_id, delay, retry_intervals)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(EmbeddedQueue, "put", put_unless_ended)
        try:
            yield
        finally:
            ended.set()

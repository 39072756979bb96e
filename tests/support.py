"""Shared helpers for tests: GitHub's published payloads, signing, settings."""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

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

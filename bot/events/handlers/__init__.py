"""One module per GitHub event; each registers its handlers on bot.events.router.router."""

from __future__ import annotations

import importlib

MODULES = (
    "installation",
    "push",
    "heads",  # after push: it follows what the push handler did
    "issues",
    "issue_comment",
    "sub_issues",
    "projects_v2_item",
    "pull_request",
    "pull_request_review",
    "check_suite",
    "check_run",
    "status",
    "workflow_run",
)


def load() -> None:
    """Import every handler module so its handlers are registered (idempotent)."""
    for module in MODULES:
        importlib.import_module(f"bot.events.handlers.{module}")

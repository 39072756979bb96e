"""What every route of the double shares: GitHub's error answer, the refusals that
become a 422 in REST or an error in GraphQL, and the token a request carries. The
bottom layer of the routes: it imports nothing of the double but its limits."""

from __future__ import annotations

import base64
from collections.abc import Iterable
from typing import Any

from flask import Response, jsonify, request

from fakehub.limits import (
    MAX_BODY,
    MAX_LABEL,
    MAX_TITLE,
    NESTING_LEVELS,
    SECONDARY_LIMITED,
    SUB_ISSUES_PER_PARENT,
)

DOCS = "https://docs.github.com/rest"


class Refused(Exception):
    """GitHub refuses the change: a 422 in REST, an error on the alias in GraphQL."""


class TooQuickly(Refused):
    """Content created faster than the budget allows."""


# github.com's words for a sub-issue it will not link: Rails validation messages,
# joined as `to_sentence` joins them ("A and B", "A, B, and C").
TOO_MANY_SUB_ISSUES = f"Parent cannot have more than {SUB_ISSUES_PER_PARENT} sub-issues"
TOO_DEEP = (
    f"You can\u2019t add more than {NESTING_LEVELS - 1} layers of sub-issues. "
    "To add a sub-issue, remove a parent issue at any level."
)


class SubIssueRefused(Refused):
    """A sub-issue github.com will not link, with every rule it breaks. REST answers
    422 `An error occurred while adding the sub-issue to the parent issue. <reasons>`;
    GraphQL `Failed to add sub-issue #<child> to parent #<parent>. <reasons>`
    (type VALIDATION)."""

    def __init__(self, reasons: list[str]) -> None:
        self.reasons = reasons
        super().__init__(to_sentence(reasons))


def check_text(title: str | None, body: str | None) -> None:
    """GitHub's limits on an issue's, a pull request's or a comment's title and body,
    in its words (the `message` of the 422's error)."""
    if title is not None and len(title) > MAX_TITLE:
        raise Refused(f"title is too long (maximum is {MAX_TITLE} characters)")
    if body is not None and len(body) > MAX_BODY:
        raise Refused(f"body is too long (maximum is {MAX_BODY} characters)")


def check_label_names(names: Iterable[str]) -> None:
    """GitHub makes no label whose name is longer than MAX_LABEL, whether asked to
    (createLabel) or as it labels an issue with a name it does not know (REST)."""
    for name in names:
        if len(name) > MAX_LABEL:
            raise Refused(f"name is too long (maximum is {MAX_LABEL} characters)")


def to_sentence(parts: list[str]) -> str:
    """Rails' Array#to_sentence."""
    if len(parts) <= 2:
        return " and ".join(parts)
    return f"{', '.join(parts[:-1])}, and {parts[-1]}"


def error(status: int, message: str, **extra: Any) -> tuple[Response, int]:
    answer = {"message": message, "documentation_url": DOCS, "status": str(status), **extra}
    return jsonify(answer), status


def request_token() -> str | None:
    """The token a request carries (`token X`, `Bearer X`, or Basic with the token as password)."""
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() in ("token", "bearer"):
        return value.strip() or None
    if scheme.lower() == "basic":
        try:
            _, _, password = base64.b64decode(value).decode().partition(":")
        except ValueError:
            return None
        return password or None
    return None


def rate_limited(retry_after: float, status: int = 403) -> tuple[Response, int]:
    response, _ = error(status, SECONDARY_LIMITED)
    response.headers["Retry-After"] = str(max(1, round(retry_after)))
    return response, status

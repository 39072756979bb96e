"""GitHub's own shapes for what the double sends and answers: webhook payloads by
octokit's schema folder, or else by the REST description's `x-webhooks` (the
only published schemas of `pull_request_review`, `pull_request_review_comment`
and `sub_issues`), and REST answers by the description's response schemas."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import jsonschema
import requests
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

from fakehub import FakeHub
from fakehub.openapi import github_rest
from tests.support import FIXTURES

SCHEMAS = FIXTURES / "webhook-schemas"


@cache
def _registry() -> Registry:
    registry = Registry()
    for path in SCHEMAS.rglob("*.schema.json"):
        resource = Resource(json.loads(path.read_text()), specification=DRAFT7)
        relative = str(path.relative_to(SCHEMAS))
        registry = registry.with_resources([(relative, resource), (path.name, resource)])
    return registry


@cache
def _webhook_validator(event: str, action: str | None) -> jsonschema.Draft7Validator:
    name = "event" if action is None else action
    file = SCHEMAS / event / f"{name}.schema.json"
    if file.exists():
        return jsonschema.Draft7Validator(json.loads(file.read_text()), registry=_registry())
    api = github_rest()
    key = "-".join(part.replace("_", "-") for part in (event, action) if part)
    operation = api.spec["x-webhooks"][key]["post"]
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    return jsonschema.Draft7Validator(api.json_schema(json.dumps(schema)))


def _errors(validator: jsonschema.Draft7Validator, document: Any) -> list[str]:
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validator.iter_errors(document)
    ]


def webhook_errors(event: str, payload: dict[str, Any]) -> list[str]:
    return _errors(_webhook_validator(event, payload.get("action")), payload)


def rest_errors(method: str, template: str, body: Any, status: str = "200") -> list[str]:
    """Where `body` departs from the REST description's answer for the operation."""
    api = github_rest()
    operation = api.spec["paths"][template][method.lower()]
    response = api._resolve(operation["responses"][status])
    schema = response["content"]["application/json"]["schema"]
    return _errors(jsonschema.Draft7Validator(api.json_schema(json.dumps(schema))), body)


def deliveries(hub: FakeHub, since: int = 0) -> list[tuple[str, dict[str, Any]]]:
    """(event, payload) of every webhook the double sent, from the `since`-th on."""
    requests.post(f"{hub.url}/_admin/wait", timeout=60).raise_for_status()
    sent = requests.get(f"{hub.url}/_admin/deliveries", timeout=30).json()
    return [(d["event"], d["payload"]) for d in sent[since:]]


def delivery_count(hub: FakeHub) -> int:
    return len(requests.get(f"{hub.url}/_admin/deliveries", timeout=30).json())


def admin(hub: FakeHub, method: str, path: str, **body: Any) -> requests.Response:
    return requests.request(method, f"{hub.url}/_admin/{path}", json=body, timeout=30)


def repo_state(hub: FakeHub, full_name: str) -> dict[str, Any]:
    repositories = requests.get(f"{hub.url}/_admin/state", timeout=30).json()["repositories"]
    return next(r for r in repositories if r["full_name"] == full_name)

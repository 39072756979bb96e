"""Checks requests against GitHub's published REST description, as GitHub would."""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

from fakehub.fixtures import FIXTURES

DESCRIPTION = FIXTURES / "openapi" / "api.github.com.json"


class OpenAPI:
    def __init__(self, path: Path = DESCRIPTION) -> None:
        self.spec = json.loads(path.read_text())
        self.routes = []
        for template, item in self.spec["paths"].items():
            # A trailing file path, git ref or branch name may hold slashes (and so
            # may a comparison's `base...head` of branches).
            pattern = re.sub(r"\{(path|ref|branch|basehead)\}$", r"(?P<\1>.+)", template)
            pattern = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern)
            literal = len(re.sub(r"\{\w+\}", "", template))
            self.routes.append((literal, re.compile(f"^{pattern}$"), template, item))
        self.routes.sort(key=lambda route: -route[0])

    def operation(self, method: str, path: str) -> tuple[str, dict[str, Any]] | None:
        for _, pattern, template, item in self.routes:
            if pattern.match(path) and method.lower() in item:
                return template, item
        return None

    def template(self, method: str, path: str) -> str:
        """The operation's path template (`/repos/{owner}/{repo}/issues`), or the path itself."""
        found = self.operation(method, path.split("?", 1)[0])
        return found[0] if found else path

    def check(self, method: str, path: str, query: dict[str, str], body: Any) -> str | None:
        """None when GitHub would accept the request, else why not."""
        found = self.operation(method, path)
        if found is None:
            return f"no operation {method} {path} in GitHub's REST description"
        template, item = found
        operation = item[method.lower()]
        declared = {p["name"] for p in self._parameters(item, operation) if p["in"] == "query"}
        unknown = sorted(set(query) - declared)
        if unknown:
            return f"{method} {template}: unknown query parameter(s) {', '.join(unknown)}"
        request_body = operation.get("requestBody")
        if request_body is None:
            return None
        if body is None:
            return (
                f"{method} {template}: a JSON body is required"
                if request_body.get("required")
                else None
            )
        schema = request_body["content"].get("application/json", {}).get("schema")
        if schema is None:
            return None
        errors = sorted(
            jsonschema.Draft7Validator(self.json_schema(json.dumps(schema))).iter_errors(body),
            key=lambda e: list(e.path),
        )
        if errors:
            where = "/".join(str(p) for p in errors[0].path) or "body"
            return f"{method} {template}: {where}: {errors[0].message}"
        return None

    def _parameters(self, item: dict[str, Any], operation: dict[str, Any]) -> list[dict[str, Any]]:
        return [
            self._resolve(p) for p in item.get("parameters", []) + operation.get("parameters", [])
        ]

    def _resolve(self, node: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in node:
            target: Any = self.spec
            for part in node["$ref"].lstrip("#/").split("/"):
                target = target[part]
            node = target
        return node

    @cache  # noqa: B019 - one description per process, kept for its lifetime
    def json_schema(self, schema_text: str) -> dict[str, Any]:
        return self._convert(json.loads(schema_text), depth=0)

    def _convert(self, node: Any, depth: int) -> Any:
        """OpenAPI 3.0 schema → JSON Schema: $refs inlined, `nullable` as a type."""
        if depth > 12:  # deeper schemas are taken as anything; scalars and names stay
            if isinstance(node, list):
                return [{} if isinstance(n, dict) else n for n in node]
            return {} if isinstance(node, dict) else node
        if isinstance(node, list):
            return [self._convert(n, depth) for n in node]
        if not isinstance(node, dict):
            return node
        if "$ref" in node:
            return self._convert(self._resolve(node), depth + 1)
        converted = {
            k: self._convert(v, depth + 1)
            for k, v in node.items()
            if k not in ("nullable", "example", "examples", "x-github")
        }
        if node.get("nullable"):
            if "type" in converted:
                converted["type"] = [converted["type"], "null"]
            elif "enum" in converted:
                converted["enum"] = [*converted["enum"], None]
            else:
                converted = {"anyOf": [converted, {"type": "null"}]}
        if (
            "enum" in converted
            and None not in converted["enum"]
            and converted.get("type") == ["string", "null"]
        ):
            converted["enum"] = [*converted["enum"], None]
        return converted


@cache
def github_rest() -> OpenAPI:
    return OpenAPI()

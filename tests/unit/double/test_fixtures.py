"""GitHub's published descriptions are laid out from pinned npm packages when no
copy is beside the repository (fakehub/fixtures.py). An `npm` stand-in on PATH
serves tarballs made here, so no registry is needed."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest

from fakehub.fixtures import FixturesUnavailable, filled

EXAMPLES = [
    {"name": "issues", "examples": [{"action": "docs"}, {"action": "opened", "n": 1}]},
    {"name": "fork", "examples": [{"forkee": {}}]},
]
SCHEMAS = {
    "$schema": "http://json-schema.org/draft-07/schema",
    "definitions": {
        "issues$opened": {
            "$schema": "http://json-schema.org/draft-07/schema",
            "properties": {"issue": {"$ref": "#/definitions/issue"}},
        },
        "fork$event": {"$schema": "http://json-schema.org/draft-07/schema"},
        "issue": {
            "$schema": "http://json-schema.org/draft-07/schema",
            "properties": {"user": {"$ref": "#/definitions/user"}},
        },
        "user": {"title": "User"},
        "issues_event": {"oneOf": [{"$ref": "#/definitions/issues$opened"}]},
    },
}


def _tarball(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, contents in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(contents)
            archive.addfile(info, io.BytesIO(contents))
    return buffer.getvalue()


def _integrity(tarball: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(tarball).digest()).decode()


@pytest.fixture
def registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A directory of tarballs that an `npm pack <name>@<version>` stand-in serves."""
    tarballs = tmp_path / "registry"
    tarballs.mkdir()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    npm = bin_dir / "npm"
    npm.write_text(
        f"#!{sys.executable}\n"
        "import pathlib, shutil, sys\n"
        "name = sys.argv[-1].lstrip('@').replace('/', '-').replace('@', '-') + '.tgz'\n"
        f"shutil.copy(pathlib.Path({str(tarballs)!r}) / name, name)\n"
        "print(name)\n"
    )
    npm.chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    return tarballs


def _publish(registry: Path, name: str, version: str, files: dict[str, Any]) -> str:
    tarball = _tarball(
        {path: c if isinstance(c, bytes) else json.dumps(c).encode() for path, c in files.items()}
    )
    (registry / f"{name.lstrip('@').replace('/', '-')}-{version}.tgz").write_bytes(tarball)
    return _integrity(tarball)


def _packages(tmp_path: Path, packages: list[dict[str, Any]]) -> Path:
    path = tmp_path / "fixture_packages.json"
    path.write_text(json.dumps({"packages": packages}))
    return path


def test_the_packages_are_laid_out_as_the_shared_copy(registry: Path, tmp_path: Path) -> None:
    packages = _packages(
        tmp_path,
        [
            {
                "name": "@octokit/openapi",
                "version": "1.0.0",
                "integrity": _publish(
                    registry, "@octokit/openapi", "1.0.0", {"package/api.json": b'{"openapi": 1}'}
                ),
                "copy": {"package/api.json": "openapi/api.github.com.json"},
            },
            {
                "name": "@octokit/webhooks-examples",
                "version": "2.0.0",
                "integrity": _publish(
                    registry,
                    "@octokit/webhooks-examples",
                    "2.0.0",
                    {"package/index.json": EXAMPLES},
                ),
                "webhook_examples": {
                    "from": "package/index.json",
                    "into": "webhooks",
                    "events": {"issues": [None, "opened.payload.json"]},
                },
            },
            {
                "name": "@octokit/webhooks-schemas",
                "version": "2.0.0",
                "integrity": _publish(
                    registry, "@octokit/webhooks-schemas", "2.0.0", {"package/schema.json": SCHEMAS}
                ),
                "webhook_schemas": {
                    "from": "package/schema.json",
                    "into": "webhook-schemas",
                    "events": ["issues"],
                },
            },
        ],
    )
    fixtures = filled(tmp_path / "github-fixtures", packages)

    laid_out = sorted(str(p.relative_to(fixtures)) for p in fixtures.rglob("*") if p.is_file())
    assert laid_out == [
        "fixture_packages.json",
        "openapi/api.github.com.json",
        "webhook-schemas/common/issue.schema.json",
        "webhook-schemas/common/user.schema.json",
        "webhook-schemas/issues/opened.schema.json",
        "webhooks/issues/opened.payload.json",
    ]
    assert (fixtures / "openapi/api.github.com.json").read_bytes() == b'{"openapi": 1}'
    opened = json.loads((fixtures / "webhooks/issues/opened.payload.json").read_text())
    assert opened == {"action": "opened", "n": 1}
    schemas = fixtures / "webhook-schemas"
    assert json.loads((schemas / "issues/opened.schema.json").read_text()) == {
        "$schema": "http://json-schema.org/draft-07/schema",
        "$id": "issues$opened",
        "properties": {"issue": {"$ref": "common/issue.schema.json"}},
    }
    issue = json.loads((schemas / "common/issue.schema.json").read_text())
    assert issue["$id"] == "common/issue.schema.json"
    assert issue["properties"]["user"] == {"$ref": "user.schema.json"}


def test_a_package_other_than_the_pinned_one_is_refused_and_nothing_is_cached(
    registry: Path, tmp_path: Path
) -> None:
    _publish(registry, "@octokit/graphql-schema", "3.0.0", {"package/schema.graphql": b"type Q"})
    packages = _packages(
        tmp_path,
        [
            {
                "name": "@octokit/graphql-schema",
                "version": "3.0.0",
                "integrity": _integrity(b"something else"),
                "copy": {"package/schema.graphql": "graphql/schema.graphql"},
            }
        ],
    )
    with pytest.raises(FixturesUnavailable, match="does not match the integrity pinned"):
        filled(tmp_path / "github-fixtures", packages)
    assert not (tmp_path / "github-fixtures").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".github-fixtures-")] == []


def test_without_npm_the_error_says_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    packages = _packages(tmp_path, [{"name": "@octokit/openapi", "version": "1.0.0"}])
    with pytest.raises(FixturesUnavailable) as raised:
        filled(tmp_path / "github-fixtures", packages)
    assert "npm is not installed" in str(raised.value)
    assert "set SPECBRIDGE_GITHUB_FIXTURES" in str(raised.value)


def test_a_directory_with_contents_is_used_as_it_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no npm: nothing may be fetched
    copy = tmp_path / "copy"
    (copy / "graphql").mkdir(parents=True)
    (copy / "graphql/schema.graphql").write_text("type Query { a: Int }\n")
    packages = _packages(tmp_path, [{"name": "@octokit/graphql-schema", "version": "1.0.0"}])
    assert filled(copy, packages) == copy

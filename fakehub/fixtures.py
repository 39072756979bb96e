"""Where GitHub's published descriptions are: REST (OpenAPI), GraphQL schema,
webhook payload examples and schemas, laid out as `../shared/github-fixtures/`
(webhooks/, webhook-schemas/, openapi/, graphql/).

In order:
- `SPECBRIDGE_GITHUB_FIXTURES`, a directory; when it is missing or empty it is
  filled from the pinned npm packages (below);
- `../shared/github-fixtures/` beside the repository, when it is there;
- a cache, `$XDG_CACHE_HOME/specbridge/github-fixtures/<pins>` (default
  `~/.cache/...`), filled once from the npm packages pinned, with their
  integrity, in fixture_packages.json.

A directory is filled in a temporary sibling, then renamed into place: a
process (pytest, or the double it starts) sees all of it or none of it.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
PACKAGES = Path(__file__).with_name("fixture_packages.json")
NPM_TIMEOUT_SECONDS = 600


class FixturesUnavailable(RuntimeError):
    """GitHub's descriptions are neither on disk nor obtainable from npm."""


def github_fixtures() -> Path:
    """The directory of GitHub's published descriptions, filled first if need be."""
    configured = os.environ.get("SPECBRIDGE_GITHUB_FIXTURES")
    if configured:
        return filled(Path(configured).expanduser().resolve())
    beside = REPO_ROOT.parent / "shared" / "github-fixtures"
    if beside.is_dir():
        return beside
    return filled(default_cache())


def default_cache() -> Path:
    cache_home = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    # Keyed by the pins, so changing a version or the layout fills a new cache.
    pins = hashlib.sha256(PACKAGES.read_bytes()).hexdigest()[:16]
    return Path(cache_home) / "specbridge" / "github-fixtures" / pins


def filled(destination: Path, packages: Path = PACKAGES) -> Path:
    """`destination`, filled from the npm packages listed in `packages` unless it
    has contents already."""
    if _has_contents(destination):
        return destination
    destination.parent.mkdir(parents=True, exist_ok=True)
    with _lock(destination):
        if not _has_contents(destination):  # another process may have filled it meanwhile
            _fill_from_npm(destination, json.loads(packages.read_text()))
    return destination


def _has_contents(directory: Path) -> bool:
    return directory.is_dir() and any(directory.iterdir())


@contextlib.contextmanager
def _lock(destination: Path) -> Iterator[None]:
    with open(destination.parent / f".{destination.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _fill_from_npm(destination: Path, manifest: dict[str, Any]) -> None:
    """Lay out `destination` from the manifest's npm packages, all at once."""
    work = Path(tempfile.mkdtemp(prefix=f".{destination.name}-", dir=destination.parent))
    try:
        layout = work / "layout"
        layout.mkdir()
        for package in manifest["packages"]:
            tarball = _npm_pack(package, work)
            with tarfile.open(tarball) as archive:
                _extract(package, archive, layout)
        (layout / PACKAGES.name).write_text(json.dumps(manifest, indent=2) + "\n")
        if destination.is_dir():
            destination.rmdir()  # empty (checked under the lock): replaced whole below
        layout.rename(destination)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _npm_pack(package: dict[str, Any], directory: Path) -> Path:
    spec = f"{package['name']}@{package['version']}"
    remedy = (
        "the tests and the GitHub double need GitHub's published descriptions: install "
        "Node.js's npm and let it reach the npm registry, or set SPECBRIDGE_GITHUB_FIXTURES "
        "to a copy laid out like ../shared/github-fixtures/"
    )
    try:
        packed = subprocess.run(
            ["npm", "pack", "--silent", spec],
            cwd=directory,
            capture_output=True,
            text=True,
            timeout=NPM_TIMEOUT_SECONDS,
        )
    except FileNotFoundError:
        raise FixturesUnavailable(f"npm is not installed: {remedy}") from None
    except subprocess.TimeoutExpired:
        raise FixturesUnavailable(
            f"`npm pack {spec}` took over {NPM_TIMEOUT_SECONDS} s: {remedy}"
        ) from None
    if packed.returncode != 0:
        reason = (packed.stderr.strip().splitlines() or ["no message"])[-1]
        raise FixturesUnavailable(f"`npm pack {spec}` failed ({reason}): {remedy}")
    tarball = directory / packed.stdout.strip().splitlines()[-1]
    digest = base64.b64encode(hashlib.sha512(tarball.read_bytes()).digest()).decode()
    if f"sha512-{digest}" != package["integrity"]:
        raise FixturesUnavailable(
            f"{spec} does not match the integrity pinned in {PACKAGES.name}: "
            "the registry served something else; nothing was cached"
        )
    return tarball


def _extract(package: dict[str, Any], archive: tarfile.TarFile, layout: Path) -> None:
    for member, target in package.get("copy", {}).items():
        _write(layout / target, _read(archive, member))
    if examples := package.get("webhook_examples"):
        _lay_out_examples(examples, json.loads(_read(archive, examples["from"])), layout)
    if schemas := package.get("webhook_schemas"):
        _lay_out_schemas(schemas, json.loads(_read(archive, schemas["from"])), layout)


def _lay_out_examples(spec: dict[str, Any], index: list[dict[str, Any]], layout: Path) -> None:
    """octokit/webhooks' index.json lists each event's examples: one file each."""
    examples_by_event = {event["name"]: event["examples"] for event in index}
    for event, names in spec["events"].items():
        for name, example in zip(names, examples_by_event[event], strict=True):
            if name is not None:
                _write_json(layout / spec["into"] / event / name, example)


def _lay_out_schemas(spec: dict[str, Any], bundle: dict[str, Any], layout: Path) -> None:
    """octokit/webhooks' schema.json bundles the payload schemas under definitions;
    unbundle them as in the repository, $refs relative to the schemas' root."""
    root = layout / spec["into"]
    for key, schema in bundle["definitions"].items():
        event, dollar, action = key.partition("$")
        if dollar and event in spec["events"]:
            _write_json(root / event / f"{action}.schema.json", _unbundled(schema, key, "common/"))
        elif not dollar and not key.endswith("_event"):  # `<event>_event`: a bundle's oneOf
            path = f"common/{key}.schema.json"
            _write_json(root / path, _unbundled(schema, path, ""))


def _unbundled(schema: dict[str, Any], schema_id: str, common_prefix: str) -> dict[str, Any]:
    unbundled = _with_file_refs(schema, common_prefix)
    head = {key: unbundled.pop(key) for key in ["$schema"] if key in unbundled}
    return head | {"$id": schema_id} | unbundled


def _with_file_refs(node: Any, common_prefix: str) -> Any:
    if isinstance(node, list):
        return [_with_file_refs(item, common_prefix) for item in node]
    if not isinstance(node, dict):
        return node
    rewritten = {key: _with_file_refs(value, common_prefix) for key, value in node.items()}
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/definitions/"):
        rewritten["$ref"] = f"{common_prefix}{ref.removeprefix('#/definitions/')}.schema.json"
    return rewritten


def _read(archive: tarfile.TarFile, member: str) -> bytes:
    extracted = archive.extractfile(member)
    if extracted is None:
        raise FixturesUnavailable(f"{member} is not a file in {archive.name}")
    with extracted:
        return extracted.read()


def _write_json(path: Path, document: Any) -> None:
    _write(path, (json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode())


def _write(path: Path, contents: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(contents)


FIXTURES = github_fixtures()

"""The coding agents' own command-line programs, Claude Code and Codex, installed
from the npm registry at the versions pinned in agent_cli_packages.json, for
tests that run them against the model double (fakehub/model.py).

`agent_cli("codex")` is the path of the program, installed first if need be in
`$XDG_CACHE_HOME/specbridge/agent-clis/<package>@<version>` (default
`~/.cache/...`). An install, in a temporary sibling renamed into place (a
process sees all of it or none, as for GitHub's descriptions in fixtures.py):
- `npm install --ignore-scripts` of the pinned package;
- its package-lock.json must list exactly the pinned packages (each platform's
  native binary is an optional dependency), each with the pinned name, version
  and integrity: npm checked every tarball it fetched against the integrity it
  wrote there, so nothing else was unpacked;
- only then `npm rebuild` runs the install scripts (Claude Code's copies its
  native binary into place);
- the program must say it is the pinned version.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from fakehub.fixtures import NPM_TIMEOUT_SECONDS, _has_contents, _lock

PINS = Path(__file__).with_name("agent_cli_packages.json")


class AgentCliUnavailable(RuntimeError):
    """The pinned program could not be installed as pinned."""


def agent_cli(name: str, cache: Path | None = None) -> Path:
    """The executable of the agent `name` ("claude-code", "codex"), installed if need be."""
    pin = json.loads(PINS.read_text())["clis"][name]
    destination = (cache or default_cache()) / f"{pin['package']}@{pin['version']}"
    if not _has_contents(destination):
        destination.parent.mkdir(parents=True, exist_ok=True)
        with _lock(destination):
            if not _has_contents(destination):  # another process may have installed it meanwhile
                _install(pin, destination)
    return executable(destination, pin)


def default_cache() -> Path:
    cache_home = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache_home) / "specbridge" / "agent-clis"


def executable(prefix: Path, pin: dict[str, Any]) -> Path:
    return prefix / "node_modules" / ".bin" / pin["bin"]


def _install(pin: dict[str, Any], destination: Path) -> None:
    spec = f"{pin['package']}@{pin['version']}"
    work = Path(tempfile.mkdtemp(prefix=f".{destination.name}-", dir=destination.parent))
    try:
        _npm(spec, "install", "--prefix", work, "--no-audit", "--no-fund", "--ignore-scripts", spec)
        _check_lock(spec, pin, json.loads((work / "package-lock.json").read_text()))
        _npm(spec, "rebuild", "--prefix", work)
        _check_version(spec, pin, executable(work, pin))
        work.chmod(0o755)  # mkdtemp's 0700 would keep out an agent run under another account
        if destination.is_dir():
            destination.rmdir()  # empty (checked under the lock): replaced whole below
        work.rename(destination)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _npm(spec: str, *arguments: str | Path) -> None:
    command = ["npm", *map(str, arguments)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=NPM_TIMEOUT_SECONDS)
    except FileNotFoundError:
        raise AgentCliUnavailable(f"npm is not installed: it installs {spec}") from None
    except subprocess.TimeoutExpired:
        raise AgentCliUnavailable(
            f"`npm {arguments[0]}` of {spec} took over {NPM_TIMEOUT_SECONDS} s"
        ) from None
    if done.returncode != 0:
        raise AgentCliUnavailable(f"`npm {arguments[0]}` of {spec} failed: {_reason(done.stderr)}")


def _reason(stderr: str) -> str:
    """npm's first telling error line (after `code`, `errno`... come the words)."""
    errors = [line.removeprefix("npm error").strip() for line in stderr.splitlines()]
    telling = [e for e in errors if e and e.split()[0] not in ("code", "syscall", "errno", "path")]
    return (telling or ["no message"])[0]


def _check_lock(spec: str, pin: dict[str, Any], lock: dict[str, Any]) -> None:
    installed = {path: entry for path, entry in lock["packages"].items() if path}
    wrong = sorted(
        path
        for path in installed.keys() | pin["lock"].keys()
        if {key: installed.get(path, {}).get(key) for key in ("name", "version", "integrity")}
        != {key: pin["lock"].get(path, {}).get(key) for key in ("name", "version", "integrity")}
    )
    if wrong:
        raise AgentCliUnavailable(
            f"{spec}: these packages of its lockfile are not as pinned in {PINS.name} "
            f"(the registry served something else; nothing was cached): {', '.join(wrong)}"
        )


def _check_version(spec: str, pin: dict[str, Any], program: Path) -> None:
    with tempfile.TemporaryDirectory() as home:  # the program may write its settings there
        environment = {"PATH": os.environ.get("PATH", ""), "HOME": home}
        try:
            done = subprocess.run(
                [program, "--version"], capture_output=True, text=True, timeout=60, env=environment
            )
        except OSError as error:
            raise AgentCliUnavailable(f"{spec}: {program} does not run: {error}") from None
    said = done.stdout.strip() or done.stderr.strip()
    if done.returncode != 0 or pin["version"] not in done.stdout:
        raise AgentCliUnavailable(f"{spec}: `{program.name} --version` said {said!r}")

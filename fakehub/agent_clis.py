"""The coding agents' own command-line programs, Claude Code, Codex, Gemini CLI
(npm) and aider (PyPI), installed at the versions pinned in
agent_cli_packages.json, for tests that run them against the model double
(fakehub/model.py) or as the presets run them.

`agent_cli("codex")` is the path of the program, installed first if need be in
`$XDG_CACHE_HOME/specbridge/agent-clis/<package>@<version>` (default
`~/.cache/...`). An install, in a temporary sibling renamed into place (a
process sees all of it or none, as for GitHub's descriptions in fixtures.py):

From npm:
- `npm install --ignore-scripts` of the pinned package;
- its package-lock.json must list exactly the pinned packages (each platform's
  native binary is an optional dependency), each with the pinned name, version
  and integrity: npm checked every tarball it fetched against the integrity it
  wrote there, so nothing else was unpacked;
- only then `npm rebuild` runs the install scripts of the packages the pin's
  `scripts` names (Claude Code's copies its native binary into place; Gemini
  CLI's optional keychain and terminal modules would build or download
  binaries it does without);
From PyPI (`"registry": "pypi"`):
- a virtual environment of /usr/bin/python3 (the sandbox shows /usr, and an
  agent run as another account can use it), which must be the pinned `python`;
- `pip install --require-hashes --no-deps --only-binary :all:` of every pinned
  wheel: pip refuses any file whose sha256 is not the pinned one;
- `bin/<program>` runs `python -m <module>` of that environment (a virtual
  environment's own scripts name the path it was made at, not where it is renamed to);
Then the program must say it is the pinned version.

`readable_copy(program, folder)`: the same install, linked into a folder any
account can enter, for an agent run as `nobody` (a cache under /root is not).
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
# What an aider install's virtual environment is made of: in /usr, which the sandbox shows.
PYTHON = "/usr/bin/python3"


class AgentCliUnavailable(RuntimeError):
    """The pinned program could not be installed as pinned."""


def agent_cli(name: str, cache: Path | None = None) -> Path:
    """The executable of the agent `name` ("claude-code", "codex", "gemini", "aider"),
    installed if need be."""
    pin = json.loads(PINS.read_text())["clis"][name]
    destination = (cache or default_cache()) / f"{pin['package']}@{pin['version']}"
    if not _has_contents(destination):
        destination.parent.mkdir(parents=True, exist_ok=True)
        with _lock(destination):
            if not _has_contents(destination):  # another process may have installed it meanwhile
                install = _install_from_pypi if pin.get("registry") == "pypi" else _install
                install(pin, destination)
    return executable(destination, pin)


def install_root(program: Path) -> Path:
    """The install folder `program` (from agent_cli) belongs to."""
    for folder in program.parents:
        if (folder / "node_modules").is_dir() or (folder / "venv").is_dir():
            return folder
    raise ValueError(f"{program} is not in an install of agent_cli's")


def readable_copy(program: Path, folder: Path) -> Path:
    """`program`'s install, hard-linked (copied across file systems) into `folder`,
    which must be open to other accounts; the program's path there."""
    source = install_root(program)
    target = folder / source.name
    if not target.exists():
        link = ["cp", "-a", "--link", str(source), str(target)]
        if subprocess.run(link, capture_output=True).returncode != 0:
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(source, target, symlinks=True)
    target.chmod(0o755)
    return target / program.relative_to(source)


def default_cache() -> Path:
    cache_home = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache_home) / "specbridge" / "agent-clis"


def executable(prefix: Path, pin: dict[str, Any]) -> Path:
    if pin.get("registry") == "pypi":
        return prefix / "bin" / pin["bin"]
    return prefix / "node_modules" / ".bin" / pin["bin"]


def _install(pin: dict[str, Any], destination: Path) -> None:
    spec = f"{pin['package']}@{pin['version']}"
    work = Path(tempfile.mkdtemp(prefix=f".{destination.name}-", dir=destination.parent))
    try:
        _npm(spec, "install", "--prefix", work, "--no-audit", "--no-fund", "--ignore-scripts", spec)
        _check_lock(spec, pin, json.loads((work / "package-lock.json").read_text()))
        if pin["scripts"]:
            _npm(spec, "rebuild", "--prefix", work, *pin["scripts"])
        _check_version(spec, pin, executable(work, pin))
        work.chmod(0o755)  # mkdtemp's 0700 would keep out an agent run under another account
        if destination.is_dir():
            destination.rmdir()  # empty (checked under the lock): replaced whole below
        work.rename(destination)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _install_from_pypi(pin: dict[str, Any], destination: Path) -> None:
    spec = f"{pin['package']}=={pin['version']}"
    work = Path(tempfile.mkdtemp(prefix=f".{destination.name}-", dir=destination.parent))
    try:
        _check_python(spec, pin)
        _run(spec, "python3 -m venv", [PYTHON, "-m", "venv", work / "venv"])
        requirements = work / "requirements.txt"
        requirements.write_text(
            "".join(
                f"{name}=={wheel['version']} --hash=sha256:{wheel['sha256']}\n"
                for name, wheel in pin["wheels"].items()
            )
        )
        pip = [work / "venv" / "bin" / "python", "-m", "pip", "install", "--no-input"]
        pip += ["--disable-pip-version-check", "--require-hashes", "--no-deps"]
        pip += ["--only-binary", ":all:", "--requirement", requirements]
        _run(spec, "pip install", pip)
        launcher = executable(work, pin)
        launcher.parent.mkdir()
        # Relative to itself: the folder is renamed after this, and may be linked elsewhere.
        launcher.write_text(
            f'#!/bin/sh\nexec "$(dirname "$0")/../venv/bin/python" -m {pin["module"]} "$@"\n'
        )
        launcher.chmod(0o755)
        _check_version(spec, pin, launcher)
        work.chmod(0o755)
        if destination.is_dir():
            destination.rmdir()
        work.rename(destination)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _check_python(spec: str, pin: dict[str, Any]) -> None:
    try:
        done = subprocess.run(
            [PYTHON, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=60,
        )
    except OSError:
        raise AgentCliUnavailable(f"{spec} installs into a venv of {PYTHON}, not here") from None
    if done.stdout.strip() != pin["python"]:
        raise AgentCliUnavailable(
            f"{spec}: the pinned wheels are CPython {pin['python']}'s, {PYTHON} is "
            f"{done.stdout.strip() or 'not Python'}"
        )


def _run(spec: str, what: str, command: list[str | Path]) -> None:
    try:
        done = subprocess.run(
            list(map(str, command)), capture_output=True, text=True, timeout=NPM_TIMEOUT_SECONDS
        )
    except subprocess.TimeoutExpired:
        raise AgentCliUnavailable(f"`{what}` of {spec} took over {NPM_TIMEOUT_SECONDS} s") from None
    if done.returncode != 0:
        errors = [line for line in done.stderr.splitlines() if line.startswith("ERROR")]
        said = (errors or done.stderr.strip().splitlines()[-1:] or ["no message"])[0]
        raise AgentCliUnavailable(f"`{what}` of {spec} failed: {said}")


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

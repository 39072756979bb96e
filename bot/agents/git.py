"""git as specbridge runs it around an agent: its own repository, its own configuration.

Every git command the bot runs for a workspace names its git directory and work
tree itself (GIT_DIR, GIT_WORK_TREE) and reads no configuration but the one
given here: no system or global file (GIT_CONFIG_NOSYSTEM, GIT_CONFIG_GLOBAL=
/dev/null, a HOME of the bot's with nothing in it), and the git directory's own
config holds only what the bot wrote there. On top, the settings below are
given on the command line's level (GIT_CONFIG_COUNT), where nothing in a
repository can override them: no hooks, fsmonitor, filters from global
attributes, credential helpers, askpass, signing, proxies, submodules or
background maintenance.

Network: only the protocols the computed remote needs (GIT_ALLOW_PROTOCOL: https,
or http where the GitHub API itself is http, as the double is in tests), never
ext, file or ssh; remotes are URLs the bot computed, never names; the token is
an HTTP header given to the one command that needs it, through its environment.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

GIT = shutil.which("git", path="/usr/bin:/bin:/usr/local/bin") or "/usr/bin/git"
TIMEOUT_SECONDS = 300
MAX_ERROR_CHARS = 2000
IDENTITY = {
    "GIT_AUTHOR_NAME": "specbridge[bot]",
    "GIT_AUTHOR_EMAIL": "specbridge@users.noreply.github.com",
    "GIT_COMMITTER_NAME": "specbridge[bot]",
    "GIT_COMMITTER_EMAIL": "specbridge@users.noreply.github.com",
}
# Given on the command line's level: above the repository's config, whatever it says.
FIXED_CONFIG = (
    ("core.hooksPath", os.devnull),
    ("core.fsmonitor", "false"),
    ("core.untrackedCache", "false"),
    ("core.attributesFile", os.devnull),
    ("core.excludesFile", os.devnull),
    ("core.askPass", ""),
    ("core.symlinks", "true"),
    ("core.protectNTFS", "true"),
    ("core.protectHFS", "true"),
    ("credential.helper", ""),
    ("commit.gpgSign", "false"),
    ("tag.gpgSign", "false"),
    ("push.gpgSign", "false"),
    ("http.proxy", ""),
    ("protocol.allow", "never"),
    ("submodule.recurse", "false"),
    ("fetch.recurseSubmodules", "false"),
    ("push.recurseSubmodules", "no"),
    ("diff.ignoreSubmodules", "all"),
    ("status.submoduleSummary", "false"),
    ("gc.auto", "0"),
    ("maintenance.auto", "false"),
    ("init.defaultBranch", "main"),
    # The work tree belongs to the agents' account; the git directory is ours.
    ("safe.directory", "*"),
)
# What says git could not reach the remote for a while (worth another try), rather than
# that the remote refused (a protected branch, a workflow file, a bad token).
PASSING = re.compile(
    r"returned error: (5\d\d|429)|Could not resolve host|Failed to connect|Connection "
    r"(timed out|refused|reset)|RPC failed|early EOF|remote end hung up|Operation timed out"
    r"|SSL_read|TLS|gnutls",
    re.IGNORECASE,
)


class GitError(RuntimeError):
    """git refused or failed: the message says what, without any credential."""

    def __init__(self, message: str, passing: bool = False) -> None:
        super().__init__(message)
        self.passing = passing  # the remote was unreachable, not refusing


@dataclass(frozen=True)
class BotGit:
    """git on one repository of the bot's: `git_dir`, and `work_tree` when it has one."""

    git_dir: Path
    home: Path
    work_tree: Path | None = None
    protocols: tuple[str, ...] = ()  # what a fetch or push may speak

    def __call__(
        self,
        *args: str,
        token: str | None = None,
        stdin: bytes | None = None,
        env: dict[str, str] | None = None,
        timeout: float = TIMEOUT_SECONDS,
        success: tuple[int, ...] = (0,),
    ) -> bytes:
        """Run `git ARGS`; its output. GitError when it fails (exits with another status
        than `success`) or takes too long."""
        try:
            result = subprocess.run(
                [GIT, *args],
                cwd=self.home,  # not the agent's tree: nothing there is ours
                input=stdin,
                capture_output=True,
                timeout=timeout,
                env={**self.environment(token), **(env or {})},
            )
        except subprocess.TimeoutExpired:
            raise GitError(
                f"git {args[0]} took longer than {timeout:.0f} s", passing=True
            ) from None
        if result.returncode not in success:
            said = result.stderr.decode(errors="replace").strip()
            said = redact_credentials(said, token)[-MAX_ERROR_CHARS:]
            raise GitError(f"git {args[0]} failed: {said}", passing=bool(PASSING.search(said)))
        return result.stdout

    def text(self, *args: str, **options: object) -> str:
        return self(*args, **options).decode(errors="replace").strip()  # type: ignore[arg-type]

    def environment(self, token: str | None = None) -> dict[str, str]:
        env = {
            "PATH": "/usr/bin:/bin",
            "HOME": str(self.home),
            "XDG_CONFIG_HOME": str(self.home / "config"),
            "LC_ALL": "C",
            "GIT_DIR": str(self.git_dir),
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_SYSTEM": os.devnull,
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_ASKPASS": "",  # set, and empty: no askpass program at all, not core.askPass's
            "GIT_ALLOW_PROTOCOL": ":".join(self.protocols),
            "GIT_PROTOCOL_FROM_USER": "0",
            "GIT_NO_REPLACE_OBJECTS": "1",
            "GIT_LITERAL_PATHSPECS": "1",
            **IDENTITY,
            **config_environment(FIXED_CONFIG, token),
        }
        if self.work_tree is not None:
            env["GIT_WORK_TREE"] = str(self.work_tree)
        return env


def config_environment(settings: Sequence[tuple[str, str]], token: str | None) -> dict[str, str]:
    """Settings through the environment (GIT_CONFIG_*), and the token as an HTTP header."""
    pairs = list(settings)
    if token:
        basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
        pairs.append(("http.extraHeader", f"Authorization: Basic {basic}"))
    env = {"GIT_CONFIG_COUNT": str(len(pairs))}
    for index, (key, value) in enumerate(pairs):
        env[f"GIT_CONFIG_KEY_{index}"] = key
        env[f"GIT_CONFIG_VALUE_{index}"] = value
    return env


def redact_credentials(text: str, token: str | None) -> str:
    text = re.sub(r"://[^/@\s]+@", "://***@", text)
    return text.replace(token, "***") if token else text

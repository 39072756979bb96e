"""A workspace for one agent run: the bot's repository, the agent's tree, the task.

    root/            the bot's; the agents' account may pass through it, not list it
      git/           the bot's repository: fetched, committed and pushed by the bot alone,
                     never mounted in the sandbox (only its objects, read-only, below)
      bot/           the HOME and working folder of the bot's git: empty
      tree/          the agent's: the checkout it works in, handed to its account
        .git/        the agent's own repository, for its `git diff` and `git log`: its
                     history is borrowed read-only from git/objects (alternates); the
                     bot never reads this folder, whatever the agent makes of it
      home/          the agent's HOME when it runs without a sandbox
      context/       the task, read-only to the agent (never committed)

Once the agent is gone, the bot surveys the tree without following a link, then
runs its own git (bot/agents/git.py) on its own repository with `tree/` as the
work tree: nothing the agent wrote decides what git runs or where it connects.
What goes into the commit is checked path by path: no link leaving the tree, no
special file, no repository nested in the tree, nothing GitHub would refuse.
Changes under `.github/workflows/` are left out (see `commit`).

The workspace holds no credential: the token a fetch or a push needs is given
to that one git command through its environment, never written to disk.
"""

from __future__ import annotations

import json
import logging
import os
import posixpath
import shutil
import stat
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bot.agents.git import BotGit, GitError
from bot.agents.tree import lstat_inside, survey

log = logging.getLogger(__name__)

# GitHub refuses a push that holds a file over 100 MiB.
MAX_FILE_BYTES = 100 << 20
# An App's token without the `workflows` permission cannot push these (GitHub refuses
# the whole push), and a workflow changed on a branch of the repository runs with its
# secrets: an agent's change there is never pushed.
WORKFLOWS = ".github/workflows"
# A push that could not reach GitHub is tried again after these; the agent's work is
# only in this workspace until it is pushed.
PUSH_RETRY_SECONDS = (5, 30)
MAX_NAMED = 5


class WorkspaceError(RuntimeError):
    """The workspace cannot go on: the message says why, without any credential."""


@dataclass(frozen=True)
class Changes:
    """What the agent changed in its tree, as git sees it against the branch's head."""

    kept: tuple[str, ...]  # paths the commit changes
    left_out: tuple[str, ...] = ()  # under .github/workflows/: never pushed
    ignored: tuple[str, ...] = ()  # written, but the repository ignores them

    def note(self) -> str:
        """What the commit message and the pull request say of what was left out."""
        if not self.left_out:
            return ""
        return (
            f"specbridge left out the agent's changes to {named(self.left_out)}: files under "
            f"`{WORKFLOWS}/` are not pushed for an agent (GitHub refuses them from an App "
            "without the `workflows` permission, and a workflow on a branch runs with the "
            "repository's secrets). Make that change yourself if it is wanted."
        )


@dataclass
class Workspace:
    root: Path
    account: tuple[int, int] | None = None  # who the agent runs as, when not us
    url: str = ""

    @property
    def git_dir(self) -> Path:
        return self.root / "git"

    @property
    def checkout(self) -> Path:
        """The agent's tree."""
        return self.root / "tree"

    @property
    def history(self) -> Path:
        """What the agent's own repository borrows, shown to it read-only."""
        return self.git_dir / "objects"

    @property
    def agent_home(self) -> Path:
        return self.root / "home"

    @property
    def context(self) -> Path:
        return self.root / "context"

    @property
    def task_file(self) -> Path:
        return self.context / "task.md"

    @property
    def task_json(self) -> Path:
        return self.context / "task.json"

    @property
    def git(self) -> BotGit:
        """The bot's git, on its repository, with the agent's tree as work tree."""
        scheme = urlsplit(self.url).scheme
        return BotGit(self.git_dir, self.root / "bot", self.checkout, (scheme,) if scheme else ())

    @classmethod
    def create(
        cls,
        url: str,
        start: str,
        branch: str,
        token: str | None = None,
        account: tuple[int, int] | None = None,
        also: tuple[str, ...] = (),
    ) -> Workspace:
        """Fetch `start` (and the branches `also`) from `url` and check out `branch` there.

        `url` is the one the bot computed for the repository: https, or http only when
        GitHub's API itself is (the double); nothing else is fetched or pushed to."""
        scheme = urlsplit(url).scheme
        if scheme not in ("https", "http"):
            raise WorkspaceError(f"specbridge fetches over https only, not {url!r}")
        workspace = cls(Path(tempfile.mkdtemp(prefix="specbridge-task-")), account, url)
        try:
            workspace._fetch(start, also, token)
            workspace._check_out(start, branch, also)
        except GitError as error:
            workspace.remove()
            raise WorkspaceError(str(error)) from None
        except BaseException:
            workspace.remove()
            raise
        return workspace

    def ignore(self, patterns: tuple[str, ...]) -> None:
        """Keep files the agent's tools write (aider's history) out of the commit."""
        if not patterns:
            return
        lines = "".join(f"{pattern}\n" for pattern in patterns)
        for exclude in (self.git_dir / "info" / "exclude", self.checkout / ".git/info/exclude"):
            with exclude.open("a") as file:
                file.write(lines)

    def write_context(self, markdown: str, data: dict[str, Any]) -> None:
        self.context.mkdir(parents=True, exist_ok=True)
        self.task_file.write_text(markdown)
        self.task_json.write_text(json.dumps(data, indent=2))

    def hand_over(self) -> None:
        """Give the tree (and a HOME) to the account the agent runs as; the rest stays
        the bot's, and readable where the sandbox needs it (the task, the history)."""
        self.agent_home.mkdir(exist_ok=True)
        self.context.mkdir(exist_ok=True)
        for path in [self.context, *self.context.iterdir()]:
            path.chmod(0o755 if path.is_dir() else 0o644)
        if self.account is None:
            return
        uid, gid = self.account
        for folder in self.root.parents:
            if not folder.stat().st_mode & stat.S_IXOTH:
                raise WorkspaceError(
                    f"the agents' account (uid {uid}) cannot reach {self.root}: {folder} is "
                    "closed to it; point TMPDIR at a folder it can enter"
                )
        # Its group may pass through (bubblewrap, as the agent, binds what is inside),
        # not list the folder or write in it: the bot's repository stays the bot's.
        os.chown(self.root, -1, gid)
        self.root.chmod(0o710)
        for path in [self.agent_home, *_walk(self.checkout)]:
            os.lchown(path, uid, gid)

    def changes(self) -> Changes:
        """What the agent changed, checked: WorkspaceError when the tree holds what the bot
        will not commit (nor let git meet): a repository nested in it, a link leaving it,
        a FIFO or device, a file GitHub would refuse."""
        if not stat.S_ISDIR(os.lstat(self.checkout).st_mode):
            raise WorkspaceError("the agent replaced its working folder")
        found = survey(self.checkout)
        if found.odd_git_files:
            raise WorkspaceError(
                f"the agent left {named(found.odd_git_files)} as a FIFO, socket or device, "
                "not a file: git reads those files and would hang on it"
            )
        nested = self._not_ignored(list(found.nested_repositories))
        if nested:
            raise WorkspaceError(
                f"the agent left a git repository inside the tree ({named(nested)}): "
                "specbridge does not commit nested repositories; remove it, or list its "
                "folder in .gitignore"
            )
        try:
            status = self.git(
                "status",
                "--porcelain=v1",
                "-z",
                "--untracked-files=all",
                "--ignore-submodules=all",
                "--no-renames",
            )
        except GitError as error:
            raise WorkspaceError(str(error)) from None
        paths = sorted({entry[3:] for entry in _entries(status)})
        problems = [problem for path in paths if (problem := self._refused(path))]
        if problems:
            raise WorkspaceError(
                "specbridge will not commit what the agent left: " + "; ".join(problems[:MAX_NAMED])
            )
        left_out = tuple(p for p in paths if _is_workflow(p))
        kept = tuple(p for p in paths if not _is_workflow(p))
        return Changes(kept, left_out, () if kept else self._ignored_writes())

    def merge_marked(self, commit: str) -> tuple[str, ...]:
        """Merge `commit` (fetched with the branch) into the tree, without committing, and
        leave its conflicts marked in the files for the agent; the conflicted paths. The
        bot's git, before the tree is handed over: nothing of the agent's exists yet."""
        try:
            self.git("merge", "--quiet", "--no-commit", "--no-ff", commit, success=(0, 1))
            unmerged = self.git("diff", "--name-only", "--diff-filter=U", "-z")
        except GitError as error:
            raise WorkspaceError(str(error)) from None
        return tuple(p for p in os.fsdecode(unmerged).split("\0") if p)

    def unresolved(self, paths: tuple[str, ...]) -> tuple[str, ...]:
        """Those of the paths whose file still holds a conflict marker."""
        left = []
        for path in paths:
            found = lstat_inside(self.checkout, path)  # no link followed on the way
            if found is None or not stat.S_ISREG(found.st_mode):
                continue  # removed (or not a file: changes() judges it)
            lines = (self.checkout / path).read_bytes().splitlines()
            if any(line.startswith((b"<<<<<<< ", b">>>>>>> ")) for line in lines):
                left.append(path)
        return tuple(left)

    def commit(self, changes: Changes, message: str, merged: str | None = None) -> str | None:
        """Commit the changes kept on the branch; the commit, or None when git finds the
        tree the same as the branch's head after all (a line ending normalised back).
        `merged`: the commit merged in (`merge_marked`), the commit's second parent."""
        if not changes.kept:
            return None
        note = changes.note()
        if note:
            message = f"{message}\n\n{note}"
        try:
            self.git(
                "add",
                "--all",
                "--pathspec-from-file=-",
                "--pathspec-file-nul",
                stdin=_paths(changes.kept),
            )
            tree = self.git.text("write-tree")
            if tree == self.git.text("rev-parse", "HEAD^{tree}"):
                return None
            parents = ["-p", "HEAD", *(["-p", merged] if merged else [])]
            commit = self.git.text("commit-tree", tree, *parents, "-F", "-", stdin=message.encode())
            self.git("update-ref", "HEAD", commit)
        except GitError as error:
            raise WorkspaceError(str(error)) from None
        return commit

    def push(self, commit: str, branch: str, token: str | None, force: bool = True) -> None:
        """Push `commit` to `branch` of the repository's URL (never a remote of the
        repository's config), with the token for this command only. `force`: the branch
        is specbridge's own, and a retry replaces what an earlier attempt pushed; a
        revision adds to a pull request people review: never forced."""
        forced = ["--force"] if force else []
        for delay in (*PUSH_RETRY_SECONDS, None):
            try:
                self.git(
                    "push",
                    "--quiet",
                    *forced,
                    self.url,
                    f"{commit}:refs/heads/{branch}",
                    token=token,
                )
                return
            except GitError as error:
                if not error.passing or delay is None:
                    raise WorkspaceError(f"pushing the agent's work failed: {error}") from None
                log.warning(
                    "push of %s to %s failed, again in %ss: %s", commit, branch, delay, error
                )
                time.sleep(delay)

    def commit_and_push(
        self, branch: str, message: str, token: str | None, force: bool = True
    ) -> str | None:
        """`changes`, `commit` and `push` at once; the commit, or None with nothing to push."""
        commit = self.commit(self.changes(), message)
        if commit is not None:
            self.push(commit, branch, token, force)
        return commit

    def remove(self) -> None:
        remove_tree(self.root)

    # -- inside ----------------------------------------------------------------------

    def _fetch(self, start: str, also: tuple[str, ...], token: str | None) -> None:
        git = BotGit(self.git_dir, self.root / "bot", None, self.git.protocols)
        (self.root / "bot").mkdir(mode=0o700)
        # Objects readable by the agents' account (its repository borrows them).
        git("init", "--quiet", "--bare", "--template=", "--shared=0644")
        git("config", "core.bare", "false")
        (self.git_dir / "info").mkdir(exist_ok=True)
        (self.git_dir / "info" / "exclude").touch()
        for name in (start, *also):
            self._check_branch_name(name)
        refspecs = [f"+refs/heads/{name}:refs/remotes/origin/{name}" for name in (start, *also)]
        git(
            "fetch",
            "--quiet",
            "--no-tags",
            "--no-write-fetch-head",
            self.url,
            *refspecs,
            token=token,
        )

    def _check_out(self, start: str, branch: str, also: tuple[str, ...]) -> None:
        self._check_branch_name(branch)
        head = self.git.text("rev-parse", "--verify", f"refs/remotes/origin/{start}^{{commit}}")
        self.git("update-ref", f"refs/heads/{branch}", head)
        self.git("symbolic-ref", "HEAD", f"refs/heads/{branch}")
        self.checkout.mkdir()
        self.git("read-tree", "--reset", "-u", "HEAD")
        self._agents_repository(start, branch, head, also)

    def _agents_repository(self, start: str, branch: str, head: str, also: tuple[str, ...]) -> None:
        """The agent's own `.git`: the same branch and history, none of the bot's files."""
        own = BotGit(self.checkout / ".git", self.root / "bot")
        own("init", "--quiet", "--bare", "--template=")
        own("config", "core.bare", "false")
        (self.checkout / ".git" / "objects" / "info").mkdir(parents=True, exist_ok=True)
        (self.checkout / ".git" / "objects" / "info" / "alternates").write_text(f"{self.history}\n")
        for name in (start, *also):
            seen = self.git.text("rev-parse", f"refs/remotes/origin/{name}")
            own("update-ref", f"refs/remotes/origin/{name}", seen)
        own("update-ref", f"refs/heads/{branch}", head)
        own("symbolic-ref", "HEAD", f"refs/heads/{branch}")
        shutil.copyfile(self.git_dir / "index", self.checkout / ".git" / "index")
        (self.checkout / ".git" / "info").mkdir(exist_ok=True)
        (self.checkout / ".git" / "info" / "exclude").touch()

    def _check_branch_name(self, name: str) -> None:
        try:
            if name.startswith("-"):
                raise GitError(name)
            self.git("check-ref-format", f"refs/heads/{name}")
        except GitError:
            raise WorkspaceError(f"not a branch name: {name!r}") from None

    def _refused(self, path: str) -> str | None:
        """Why `path`, as the agent left it, will not be committed; None when it may be."""
        found = lstat_inside(self.checkout, path)
        if found is None:
            return None  # removed
        mode = found.st_mode
        if stat.S_ISREG(mode):
            if found.st_size > MAX_FILE_BYTES:
                return f"`{path}` is {found.st_size >> 20} MiB, over GitHub's 100 MiB a file"
            return None
        if stat.S_ISLNK(mode):
            target = os.readlink(self.checkout / path)
            if _leaves_tree(path, target):
                return f"`{path}` is a link to `{target}`, outside the repository"
            return None
        if stat.S_ISDIR(mode):
            return f"`{path}` is a repository of its own"
        return f"`{path}` is not a file (a FIFO, socket or device)"

    def _not_ignored(self, folders: list[str]) -> list[str]:
        if not folders:
            return []
        try:
            ignored = self.git(
                "check-ignore",
                "-z",
                "--stdin",
                stdin=_paths(folders),
                success=(0, 1),  # 1: none is ignored
                env={"GIT_LITERAL_PATHSPECS": "0"},  # it takes paths, and refuses the magic
            )
        except GitError as error:
            raise WorkspaceError(str(error)) from None
        seen = set(os.fsdecode(ignored).split("\0"))
        return [folder for folder in folders if folder not in seen]

    def _ignored_writes(self) -> tuple[str, ...]:
        """Files the run wrote that the repository ignores (a fresh checkout has none)."""
        try:
            status = self.git(
                "status", "--porcelain=v1", "-z", "--ignored=traditional", "--ignore-submodules=all"
            )
        except GitError:
            return ()
        return tuple(sorted(e[3:] for e in _entries(status) if e.startswith("!! ")))


def named(paths: tuple[str, ...] | list[str]) -> str:
    """`a`, `b` and 3 more."""
    shown = ", ".join(f"`{p}`" for p in paths[:MAX_NAMED])
    more = len(paths) - MAX_NAMED
    return f"{shown} and {more} more" if more > 0 else shown


def remove_tree(root: Path) -> None:
    """Remove `root` whole, even where the agent took its own folders' permissions away
    (`chmod 000`): the bot opens each folder up again (it owns them, or is root)."""
    shutil.rmtree(root, ignore_errors=True)
    if not os.path.lexists(root):
        return
    todo = [root]
    while todo:
        folder = todo.pop()
        try:
            folder.chmod(0o700)
            entries = list(os.scandir(folder))
        except OSError:
            continue
        todo += [Path(e.path) for e in entries if e.is_dir(follow_symlinks=False)]
    shutil.rmtree(root, ignore_errors=True)
    if os.path.lexists(root):
        log.warning("could not remove the workspace %s", root)


def _walk(root: Path) -> list[Path]:
    """`root` and everything in it, never through a link."""
    found = [root]
    todo = [root]
    while todo:
        folder = todo.pop()
        for entry in os.scandir(folder):
            path = Path(entry.path)
            found.append(path)
            if entry.is_dir(follow_symlinks=False):
                todo.append(path)
    return found


def _entries(status: bytes) -> list[str]:
    """`git status --porcelain -z` entries: 'XY path' (no renames asked for)."""
    return [e for e in os.fsdecode(status).split("\0") if len(e) > 3]


def _paths(paths: tuple[str, ...] | list[str]) -> bytes:
    return b"\0".join(os.fsencode(path) for path in paths)


def _is_workflow(path: str) -> bool:
    return path == WORKFLOWS or path.startswith(f"{WORKFLOWS}/")


def _leaves_tree(path: str, target: str) -> bool:
    """Whether a link at `path` to `target` points outside the tree (or into a `.git`)."""
    if not target or posixpath.isabs(target):
        return True
    resolved = posixpath.normpath(posixpath.join(posixpath.dirname(path), target))
    parts = resolved.split("/")
    return parts[0] == ".." or any(part.lower() == ".git" for part in parts)

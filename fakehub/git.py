"""Each repository of the double is a real bare git repository on disk."""

from __future__ import annotations

import subprocess
from pathlib import Path

AUTHOR = ["-c", "user.name=octocat", "-c", "user.email=octocat@github.com"]


def git(*args: str, cwd: Path) -> str:
    result = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)}: {result.stderr.strip()}")
    return result.stdout


class GitRepository:
    def __init__(self, root: Path, full_name: str, default_branch: str) -> None:
        self.bare = root / "git" / f"{full_name}.git"
        self.work = root / "work" / full_name
        self.default_branch = default_branch
        self.bare.mkdir(parents=True)
        git(
            "init",
            "--quiet",
            "--bare",
            f"--initial-branch={default_branch}",
            str(self.bare),
            cwd=root,
        )
        self.work.mkdir(parents=True)
        git("init", "--quiet", f"--initial-branch={default_branch}", cwd=self.work)
        git("remote", "add", "origin", str(self.bare), cwd=self.work)

    def commit(
        self, branch: str, files: dict[str, str | None], message: str, author: str
    ) -> tuple[str, str]:
        """Commit files (None deletes) on branch and push; returns (before, after) shas."""
        before = self.sha(branch) or "0" * 40
        # A new branch starts from the default branch, as one made on GitHub does.
        start = branch if before != "0" * 40 else self.default_branch
        if self.sha(start) is not None:
            git("fetch", "--quiet", "origin", start, cwd=self.work)
            git("checkout", "--quiet", "-B", branch, "FETCH_HEAD", cwd=self.work)
        else:
            git("checkout", "--quiet", "--orphan", branch, cwd=self.work)
        for path, text in files.items():
            target = self.work / path
            if text is None:
                target.unlink(missing_ok=True)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(text)
        git("add", "--all", cwd=self.work)
        identity = [
            "-c",
            f"user.name={author}",
            "-c",
            f"user.email={author}@users.noreply.github.com",
        ]
        git(*identity, "commit", "--quiet", "--allow-empty", "-m", message, cwd=self.work)
        git("push", "--quiet", "origin", f"HEAD:refs/heads/{branch}", cwd=self.work)
        return before, self.sha(branch) or ""

    def sha(self, ref: str) -> str | None:
        try:
            return git(
                "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", cwd=self.bare
            ).strip()
        except RuntimeError:
            return None

    def message(self, sha: str) -> str:
        return git("log", "-1", "--format=%B", sha, cwd=self.bare).strip()

    def refs(self) -> dict[str, str]:
        """Branch name → sha, as the bare repository has them now."""
        out = git(
            "for-each-ref", "--format=%(refname:short) %(objectname)", "refs/heads", cwd=self.bare
        )
        return dict(line.split(" ", 1) for line in out.splitlines())

    def read(self, ref: str, path: str) -> bytes | None:
        result = subprocess.run(
            ["git", "show", f"{ref}:{path}"], cwd=self.bare, capture_output=True, check=False
        )
        return result.stdout if result.returncode == 0 else None

    def list_dir(self, ref: str, path: str) -> list[tuple[str, str, str]] | None:
        """(type, path, sha) of the entries of a directory, or None when it is not one."""
        prefix = path.strip("/") + "/" if path.strip("/") else ""
        try:
            out = git("ls-tree", ref, prefix, cwd=self.bare)
        except RuntimeError:
            return None
        entries = []
        for line in out.splitlines():
            meta, name = line.split("\t", 1)
            _, kind, sha = meta.split()
            entries.append(("dir" if kind == "tree" else "file", name, sha))
        if not entries or (len(entries) == 1 and entries[0][1] == path.strip("/")):
            return None
        return entries

    def changes(self, before: str, after: str) -> tuple[list[str], list[str], list[str]]:
        if set(before) == {"0"}:
            out = git("ls-tree", "-r", "--name-only", after, cwd=self.bare)
            return out.split(), [], []
        added, removed, modified = [], [], []
        for line in git("diff", "--name-status", before, after, cwd=self.bare).splitlines():
            status, name = line.split("\t", 1)
            {"A": added, "D": removed}.get(status[0], modified).append(name)
        return added, removed, modified

    def line_counts(self, before: str, after: str) -> dict[str, tuple[int, int]]:
        """Path → (lines added, lines removed) from before to after (a binary file: 0, 0,
        as GitHub counts it)."""
        counts = {}
        out = git("diff", "--numstat", "--no-renames", before, after, cwd=self.bare)
        for line in out.splitlines():
            added, removed, name = line.split("\t", 2)
            counts[name] = (_count(added), _count(removed))
        return counts

    def merge_base(self, base: str, head: str) -> str | None:
        try:
            return git("merge-base", base, head, cwd=self.bare).strip()
        except RuntimeError:
            return None

    def commits_between(self, base: str, head: str) -> int:
        """How many commits head has that base has not (GitHub's ahead_by)."""
        return int(git("rev-list", "--count", f"{base}..{head}", cwd=self.bare).strip())

    def merge(self, head: str, base: str, message: str) -> str:
        git("fetch", "--quiet", "origin", base, head, cwd=self.work)
        git("checkout", "--quiet", "-B", base, f"origin/{base}", cwd=self.work)
        git(*AUTHOR, "merge", "--quiet", "--no-ff", "-m", message, f"origin/{head}", cwd=self.work)
        git("push", "--quiet", "origin", f"HEAD:refs/heads/{base}", cwd=self.work)
        return self.sha(base) or ""


def _count(numstat: str) -> int:
    return 0 if numstat == "-" else int(numstat)

"""Where progress goes: which branch, which commits, and what is left to a person."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from bot.github.contents import Branch, FileChanged, FileVersion
from bot.sync.write_back import BRANCH, SUBJECT, _write

TASKS = "# Tasks: X\n\n## Phase 1: Setup\n\n- [ ] T001 One\n- [ ] T002 Two\n"
PATH = "specs/001-x/tasks.md"
WANTED = {"specs/001-x/": {"T001": (True, 11), "T002": (False, 12)}}


@dataclass
class Repo:
    """A repository's branches, each a list of (sha, message, files), as the gateway sees it."""

    branches: dict[str, list[tuple[str, str, dict[str, str]]]]
    protected: set[str] = field(default_factory=set)
    log: list[str] = field(default_factory=list)
    sneak_in: str | None = None  # a person's version of PATH, committed before our first write

    def _head(self, name: str) -> tuple[str, str, dict[str, str]]:
        return self.branches[name][-1]

    def branch(self, name: str) -> Branch | None:
        if name not in self.branches:
            return None
        sha, message, _ = self._head(name)
        parents = tuple(c[0] for c in self.branches[name][-2:-1])
        return Branch(name, sha, name in self.protected, "x", message, parents)

    def file(self, path: str, ref: str) -> FileVersion | None:
        for commits in self.branches.values():
            for sha, _, files in commits:
                if ref == sha and path in files:
                    return FileVersion(files[path].encode(), f"{sha}:{path}")
        if ref in self.branches and path in self._head(ref)[2]:
            sha = self._head(ref)[0]
            return FileVersion(self._head(ref)[2][path].encode(), f"{sha}:{path}")
        return None

    def put_file(self, path: str, content: bytes, message: str, branch: str, sha: str) -> str:
        if self.sneak_in is not None:
            text, self.sneak_in = self.sneak_in, None
            self._commit(branch, "a person's edit", {path: text})
        if branch in self.protected:
            raise FileChanged("Changes must be made through a pull request.")
        if sha != f"{self._head(branch)[0]}:{path}":
            raise FileChanged(f"{path} does not match {sha}")
        self.log.append(f"put {branch}")
        return self._commit(branch, message, {path: content.decode()})

    def _commit(self, branch: str, message: str, files: dict[str, str]) -> str:
        sha = f"c{sum(len(c) for c in self.branches.values())}"
        self.branches[branch].append((sha, message, {**self._head(branch)[2], **files}))
        return sha

    def create_branch(self, name: str, sha: str) -> None:
        self.log.append(f"create {name}")
        source = next(c for cs in self.branches.values() for c in cs if c[0] == sha)
        self.branches[name] = [source]

    def move_branch(self, name: str, sha: str) -> None:
        self.log.append(f"move {name}")
        self.create_branch(name, sha)
        self.log.pop()

    def open_pull_request_for(self, head: str, base: str, title: str, body: str) -> int:
        self.log.append(f"pull {head}")
        return 7

    def compare(self, base: str, head: str) -> str:
        shas = [c[0] for c in self.branches[BRANCH]]
        return "ahead" if base in shas else "diverged"


def repo(**options) -> Repo:  # type: ignore[no-untyped-def]
    return Repo({"main": [("c0", "first", {PATH: TASKS})]}, **options)


def write(r: Repo, mode: str) -> object:
    return _write(r, r.compare, "main", mode, WANTED)  # type: ignore[arg-type]


def test_by_default_a_branch_and_one_pull_request_never_main() -> None:
    r = repo()
    outcome = write(r, "pull_request")
    assert r.log == [f"create {BRANCH}", f"put {BRANCH}", f"pull {BRANCH}"]
    assert r.branch("main").sha == "c0"  # type: ignore[union-attr]
    _sha, message, files = r.branches[BRANCH][-1]
    assert files[PATH].splitlines()[4:] == ["- [x] T001 One", "- [ ] T002 Two"]
    assert message == f"{SUBJECT}: {PATH}\n\n- T001 done (#11)"
    assert outcome.pull_request == 7  # type: ignore[attr-defined]
    r.log.clear()
    write(r, "pull_request")  # nothing new: nothing written
    assert r.log == []


def test_commit_mode_commits_to_main_and_a_protected_main_gets_a_pull_request() -> None:
    r = repo()
    write(r, "commit")
    assert r.log == ["put main"] and BRANCH not in r.branches
    r = repo(protected={"main"})
    write(r, "commit")
    assert r.log == [f"create {BRANCH}", f"put {BRANCH}", f"pull {BRANCH}"]


def test_main_moved_on_the_branch_is_redone_from_its_head() -> None:
    r = repo()
    write(r, "pull_request")
    r._commit("main", "Reword", {PATH: TASKS.replace("Setup", "Set-up")})
    r.log.clear()
    write(r, "pull_request")
    assert r.log == [f"move {BRANCH}", f"put {BRANCH}", f"pull {BRANCH}"]
    text = r.branches[BRANCH][-1][2][PATH]
    assert "## Phase 1: Set-up" in text and "- [x] T001 One" in text


def test_a_persons_commit_on_the_progress_branch_is_left_to_a_person() -> None:
    r = repo()
    write(r, "pull_request")
    r._commit(BRANCH, "Fix a typo", {PATH: TASKS + "\n"})
    r.log.clear()
    outcome = write(r, "pull_request")
    assert r.log == [] and "a commit by a person" in outcome.left  # type: ignore[attr-defined]


def test_an_edit_landing_between_read_and_write_is_not_overwritten() -> None:
    r = repo(sneak_in=TASKS.replace("T002 Two", "T002 Two, reworded"))
    with pytest.raises(FileChanged):  # refused: the version it replaces is not main's now
        write(r, "commit")
    write(r, "commit")  # the job reads again and redoes it (write_repository: ATTEMPTS times)
    text = r.branches["main"][-1][2][PATH]
    assert "- [x] T001 One" in text and "T002 Two, reworded" in text

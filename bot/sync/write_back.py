"""Progress written back: a task whose issue closed as completed is ticked in its spec
file (`- [x]` in tasks.md, `done: true` in YAML), one whose issue reopened is
unticked. Issues closed as not planned leave their task as it is.

Batched: a change queues one job a `write_back_seconds` window (60 s) ahead; every
change until it runs is in it, as it writes the state of every task of the
repository as it is then, one commit per file. Where it goes is `write_back` in
.github/specbridge.yml:

- `pull_request` (the default): commits on the branch `specbridge/progress` and
  one pull request from it, kept open and updated. Never a push to the default
  branch, protected or not.
- `commit`: straight onto the default branch; a pull request all the same when
  the branch is protected.
- `off`: nothing.

A person's edit is never overwritten. Each file is read at the default branch's
head and written naming the version read (the contents API's `sha`): when it
changed in between, the write is refused and done again from the new version.
The progress branch is moved onto the default branch's head before it is written
to (a rebase: its earlier commits are redone from the issues' state), unless a
person has committed to it: then it is left as it is, for a person.

The bot's own commits sync nothing: their `push` is sent by the App's bot, which
specbridge does not act on (bot/events/deliveries.py), and they change only done
marks, which change no issue.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from bot.github.contents import ContentsGateway, FileChanged
from bot.locks import exclusive
from bot.logs import log_context
from bot.queue import EVENTS, enqueue_coalesced
from bot.repo_config import RepoConfig
from bot.settings import Settings, get_settings
from bot.sync.github_side import github_side_for
from specs.progress import mark_done
from specs.sources import tasks_file
from storage.db import session_scope
from storage.models import IssueState, Repository, Spec, SpecPhase, SpecStatus

log = logging.getLogger(__name__)

BRANCH = "specbridge/progress"
# The first line of every commit it makes: how its commits are told from people's.
SUBJECT = "specbridge: progress from issues"
PULL_TITLE = "specbridge: progress from issues"
PULL_BODY = (
    "Ticks the tasks whose issues closed as completed, and unticks those whose issues "
    "reopened, in their spec files. specbridge keeps this pull request up to date as "
    "issues change, rebased on the default branch; merging it changes no issue.\n\n"
    "Set `write_back` in `.github/specbridge.yml` to `commit` to have these changes "
    "committed to the default branch instead, or to `off`."
)
ATTEMPTS = 3


def queue_write_back(settings: Settings, spec_id: int) -> None:
    """Write the progress of the spec's repository back soon: the first change queues a
    job a window (`write_back_seconds`) ahead, and every change until it runs is in it.
    A change while that job is already running queues one more, a window later."""
    try:
        enqueue_coalesced(
            settings,
            EVENTS,
            write_back,
            spec_id,
            f"write-back-{spec_id}",
            settings.write_back_seconds,
        )
    except Exception:  # the queue is down: the next change queues it again
        log.warning("could not queue the write-back of spec %s", spec_id, exc_info=True)


@dataclass
class Outcome:
    mode: str = "off"
    written: dict[str, str] = field(default_factory=dict)  # file → commit
    pull_request: int | None = None
    left: str | None = None  # why nothing was written although it should have been


def write_back(spec_id: int) -> None:
    """The queue job: every task of the spec's repository marked in its file as its
    issue stands now. (It returns nothing: a queue keeps results as JSON.)"""
    settings = get_settings()
    with session_scope(settings.database_url) as session:
        spec = session.get(Spec, spec_id)
        if spec is None:
            return
        full_name = spec.repository.full_name
        # Every line of it, and its failure's, names the repository and the spec.
        with log_context(repository=full_name, spec=spec.key):
            outcome = write_repository(session, settings, spec.repository)
            if outcome.written or outcome.left:
                log.info(
                    "progress of %s: %s%s",
                    full_name,
                    ", ".join(outcome.written) or "nothing written",
                    f" ({outcome.left})" if outcome.left else "",
                    extra={"pull_request": outcome.pull_request, "mode": outcome.mode},
                )


def write_repository(session: Session, settings: Settings, repository: Repository) -> Outcome:
    config = RepoConfig.from_dict(repository.settings)
    if config.write_back == "off":
        return Outcome()
    wanted = wanted_marks(repository)
    full_name, default_branch = repository.full_name, repository.default_branch
    repo = github_side_for(settings, repository, config).repo
    session.commit()  # no transaction while GitHub answers
    contents = ContentsGateway(repo.connection, full_name)
    with exclusive(settings, f"write-back:{full_name}"):
        for attempt in range(ATTEMPTS):
            try:
                return _write(
                    contents, repo.compare_commits, default_branch, config.write_back, wanted
                )
            except FileChanged as changed:
                log.info("%s changed while writing progress (%s); again", full_name, changed)
                if attempt == ATTEMPTS - 1:
                    return Outcome(config.write_back, left=str(changed))
    return Outcome()  # pragma: no cover


def wanted_marks(repository: Repository) -> dict[str, dict[str, tuple[bool, int]]]:
    """For each spec path: task key → (done, its issue), as the issues stand."""
    wanted: dict[str, dict[str, tuple[bool, int]]] = {}
    for spec in repository.specs:
        if spec.status is SpecStatus.CANCELLED or spec.phase is not SpecPhase.TASKS:
            continue
        for ticket in spec.tickets:
            task = ticket.spec_task
            if task is None or task.removed_at is not None:
                continue
            if ticket.state is IssueState.OPEN:
                done = False
            elif ticket.state is IssueState.CLOSED and ticket.state_reason == "completed":
                done = True
            else:
                continue  # not planned, deleted, transferred: the file says what it says
            wanted.setdefault(spec.path, {})[task.key] = (done, ticket.issue_number)
    return wanted


def _write(
    contents: ContentsGateway,
    compare: Callable[[str, str], str],
    default_branch: str,
    mode: str,
    wanted: dict[str, dict[str, tuple[bool, int]]],
) -> Outcome:
    main = contents.branch(default_branch)
    if main is None:
        return Outcome(mode, left=f"no branch {default_branch}")
    if mode == "commit" and main.protected:
        mode = "pull_request"  # GitHub would refuse the commit: a pull request instead
    changes = []
    for spec_path, marks in sorted(wanted.items()):
        path = tasks_file(spec_path)
        version = contents.file(path, main.sha)
        if version is None:
            continue
        text = version.content.decode("utf-8", "surrogateescape")
        new = mark_done(spec_path, text, {key: done for key, (done, _) in marks.items()})
        if new != text:
            changes.append((path, new, version.sha, _message(path, text, new, spec_path, marks)))
    outcome = Outcome(mode)
    if mode == "commit":
        for path, new, sha, message in changes:
            outcome.written[path] = contents.put_file(
                path, _encoded(new), message, default_branch, sha
            )
        return outcome
    branch = contents.branch(BRANCH)
    if branch is not None and branch.sha != main.sha and not _ours(branch.message):
        outcome.left = f"{BRANCH} has a commit by a person; left for a person to merge"
        log.info("progress not written: %s", outcome.left)
        return outcome
    if not changes:
        if branch is not None and branch.sha != main.sha:
            contents.move_branch(BRANCH, main.sha)  # what it held is in the default branch
        return outcome
    if branch is None:
        contents.create_branch(BRANCH, main.sha)
    elif branch.sha != main.sha and compare(main.sha, branch.sha) != "ahead":
        # The default branch moved on: redo the branch from its head (a rebase), each
        # file's marks worked out again from the issues' state.
        contents.move_branch(BRANCH, main.sha)
    elif branch.sha != main.sha:
        # On top of the default branch's head already: only what differs is written.
        changes = [
            (path, new, version.sha, message)
            for path, new, _sha, message in changes
            if (version := contents.file(path, BRANCH)) is not None
            and version.content != _encoded(new)
        ]
    for path, new, sha, message in changes:
        outcome.written[path] = contents.put_file(path, _encoded(new), message, BRANCH, sha)
    if outcome.written:
        outcome.pull_request = contents.open_pull_request_for(
            BRANCH, default_branch, PULL_TITLE, PULL_BODY
        )
    return outcome


def _ours(message: str) -> bool:
    return message.startswith(SUBJECT)


def _encoded(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def _message(
    path: str, before: str, after: str, spec_path: str, marks: dict[str, tuple[bool, int]]
) -> str:
    """The subject, then one line per task whose mark changes: `T005 done (#12)`."""
    lines = []
    for key, (done, number) in sorted(marks.items(), key=lambda m: m[1][1]):
        if mark_done(spec_path, before, {key: done}) != before:
            lines.append(f"- {key} {'done' if done else 'not done'} (#{number})")
    return f"{SUBJECT}: {path}\n\n" + "\n".join(lines)

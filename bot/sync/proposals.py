"""Tasks proposed from GitHub: a change of a spec's tasks asked for on an issue becomes
a pull request that makes the change in the spec's tasks file, in the file's own
format (specs/propose.py), through the contents API as the progress write-back does.

- A person adds an existing issue as a sub-issue of a spec's tracking issue (or of
  one of its group issues), or comments `/add-task <title>` on it: the pull request
  adds the task, with a fresh id. Its merge syncs the spec as any push does, and the
  sync makes that issue the task's ticket (bot/sync/writer.py `_adopt_proposed`)
  instead of opening a second one: the proposal records the issue and the task id.
- A person takes a ticket out of the tracking issue, or closes it as not planned:
  the pull request removes the task; merged, the sync closes its issue as not
  planned (if it is still open), as for any task removed from the spec.

Each proposal has a branch of its own (`specbridge/add-task/<spec>/issue-<n>`,
`specbridge/add-task/<spec>/<task>`, `specbridge/remove-task/<spec>/<task>`) started
from the default branch's head, one commit, and one pull request. The same request
again (a redelivered event) finds the proposal and opens nothing more. Nothing is
ever pushed to the default branch: people decide by merging or closing.

Callers hold the spec's lock; nothing here waits on GitHub inside a transaction.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.github import RepositoryGateway
from bot.github.contents import ContentsGateway
from specs.propose import CannotPropose, add_task, remove_task
from specs.sources import tasks_file
from storage.models import Repository, Spec, TaskProposal, Ticket

log = logging.getLogger(__name__)

ADD_BRANCH = "specbridge/add-task/"
REMOVE_BRANCH = "specbridge/remove-task/"
SUBJECT = "specbridge: task proposed from GitHub"


@dataclass
class Proposed:
    """What a request came to: a pull request (new, or the one proposed before), or why not."""

    task_key: str | None = None
    pull_request: int | None = None
    again: bool = False  # proposed before: nothing new was opened
    left: str | None = None

    def said(self) -> str:
        if self.left:
            return f"Nothing was proposed: {self.left}."
        return f"#{self.pull_request}" + (" (proposed before)" if self.again else "")


def propose_adding(
    session: Session,
    repo: RepositoryGateway,
    spec: Spec,
    title: str,
    by: str,
    issue: tuple[int, str] | None = None,
    asked_on: int | None = None,
) -> Proposed:
    """A pull request adding a task titled `title` to the spec's tasks file. `issue`
    (number, node id): the issue that becomes its ticket once merged; `asked_on`: the
    issue where `/add-task` was asked, for `/add-task`."""
    number = issue[0] if issue else None
    if number is not None:
        name = _branch(ADD_BRANCH, spec, f"issue-{number}")
        before = _open_proposal(session, spec.repository, name)
        if before is not None:
            return Proposed(before.task_key, before.pull_request_number, again=True)
    where = f"#{number}" if number is not None else f"#{asked_on}"
    note = f"Proposed in {where}."
    path, default_branch = tasks_file(spec.path), spec.repository.default_branch
    session.commit()
    contents = ContentsGateway(repo.connection, repo.full_name)
    main = contents.branch(default_branch)
    version = contents.file(path, main.sha) if main is not None else None
    if main is None or version is None:
        return Proposed(left=f"`{path}` is not on `{default_branch}`")
    try:
        added = add_task(spec.path, version.content.decode("utf-8", "surrogateescape"), title, note)
    except CannotPropose as refused:
        return Proposed(left=f"`{path}` cannot take it: {refused}")
    name = _branch(ADD_BRANCH, spec, f"issue-{number}" if number is not None else added.task_id)
    source = (
        f"@{by} added #{number} as a sub-issue of #{spec.tracking_issue_number}, the "
        f"tracking issue of the spec `{spec.key}`"
        if number is not None
        else f"@{by} asked for it on #{asked_on} (`/add-task`)"
    )
    adopt = (
        f"Merging it makes #{number} the task's issue: no other issue is opened for it."
        if number is not None
        else "Merging it opens the task's issue, as for any task added to the spec."
    )
    body = (
        f"Adds the task `{added.task_id}` to `{path}`:\n\n    {added.line}\n\n{source}.\n\n"
        f"{adopt} Edit the task on this branch before merging (its place, dependencies, "
        "description); the id is what specbridge follows. Closing this pull request "
        "leaves the spec as it is."
    )
    pull = _open_pull_request(
        contents,
        name,
        default_branch,
        main.sha,
        path,
        added.text,
        version.sha,
        f"{SUBJECT}: add {added.task_id}\n\nProposed by @{by} in {where}.",
        f"Add task {added.task_id} to {spec.path}: {added.line.split(' ', 3)[-1]}"[:256],
        body,
    )
    _record(session, spec, "add", added.task_id, name, pull, by, issue)
    return Proposed(added.task_id, pull)


def propose_removal(
    session: Session, repo: RepositoryGateway, spec: Spec, ticket: Ticket, by: str, why: str
) -> Proposed:
    """A pull request removing the ticket's task from the spec's tasks file; `why`: what
    the person did, as a sentence's end ("took #12 out of #3")."""
    task = ticket.spec_task
    if task is None or task.removed_at is not None:
        return Proposed(left="the task is not in the spec any more")
    name = _branch(REMOVE_BRANCH, spec, task.key)
    before = _open_proposal(session, spec.repository, name)
    if before is not None:
        return Proposed(before.task_key, before.pull_request_number, again=True)
    key, number = task.key, ticket.issue_number
    path, default_branch = tasks_file(spec.path), spec.repository.default_branch
    session.commit()
    contents = ContentsGateway(repo.connection, repo.full_name)
    main = contents.branch(default_branch)
    version = contents.file(path, main.sha) if main is not None else None
    if main is None or version is None:
        return Proposed(left=f"`{path}` is not on `{default_branch}`")
    try:
        text = remove_task(spec.path, version.content.decode("utf-8", "surrogateescape"), key)
    except CannotPropose as refused:
        return Proposed(left=f"`{path}` cannot lose it: {refused}")
    body = (
        f"Removes the task `{key}` from `{path}`: @{by} {why}.\n\n"
        f"Once this is merged, #{number} is closed as not planned if it is still open, as "
        "for any task removed from the spec. Closing this pull request keeps the task."
    )
    pull = _open_pull_request(
        contents,
        name,
        default_branch,
        main.sha,
        path,
        text,
        version.sha,
        f"{SUBJECT}: remove {key}\n\n@{by} {why}.",
        f"Remove task {key} from {spec.path}",
        body,
    )
    _record(session, spec, "remove", key, name, pull, by, (number, ticket.issue_node_id or ""))
    return Proposed(key, pull)


def adoptions(session: Session, spec: Spec) -> dict[str, TaskProposal]:
    """Open proposals of issues to adopt as tickets of the spec's tasks, by task id."""
    found = session.scalars(
        select(TaskProposal)
        .where(
            TaskProposal.spec_id == spec.id,
            TaskProposal.kind == "add",
            TaskProposal.state == "open",
            TaskProposal.issue_node_id.is_not(None),
        )
        .order_by(TaskProposal.id)
    )
    return {p.task_key: p for p in found}


def settle_proposal(session: Session, repository: Repository, branch: str, merged: bool) -> None:
    """Its pull request closed. Unmerged: nothing to adopt or remove. A removal merged is
    done (the sync closes the issue); an addition merged waits for the sync to adopt."""
    proposal = _open_proposal(session, repository, branch)
    if proposal is None or (merged and proposal.kind == "add"):
        return
    proposal.state = "merged" if merged else "dropped"
    session.commit()


def is_proposal_branch(branch: str) -> bool:
    return branch.startswith((ADD_BRANCH, REMOVE_BRANCH))


# -- helpers ----------------------------------------------------------------------------


def _branch(prefix: str, spec: Spec, name: str) -> str:
    return f"{prefix}{spec.key}/{name}"


def _open_proposal(session: Session, repository: Repository, branch: str) -> TaskProposal | None:
    return session.scalars(
        select(TaskProposal).where(
            TaskProposal.repository_id == repository.id,
            TaskProposal.branch == branch,
            TaskProposal.state == "open",
        )
    ).first()


def _open_pull_request(
    contents: ContentsGateway,
    branch: str,
    base: str,
    base_sha: str,
    path: str,
    text: str,
    version_sha: str,
    message: str,
    title: str,
    body: str,
) -> int:
    """The branch from the base's head with one commit of the file, and its pull request."""
    if contents.branch(branch) is None:
        contents.create_branch(branch, base_sha)
    else:  # left by an earlier proposal that was closed: started again
        contents.move_branch(branch, base_sha)
    contents.put_file(path, text.encode("utf-8", "surrogateescape"), message, branch, version_sha)
    return contents.open_pull_request_for(branch, base, title, body)


def _record(
    session: Session,
    spec: Spec,
    kind: str,
    task_key: str,
    branch: str,
    pull: int,
    by: str,
    issue: tuple[int, str] | None,
) -> None:
    proposal = session.scalars(
        select(TaskProposal).where(
            TaskProposal.repository_id == spec.repository_id, TaskProposal.branch == branch
        )
    ).first() or TaskProposal(repository_id=spec.repository_id, branch=branch)
    proposal.spec_id, proposal.kind, proposal.task_key = spec.id, kind, task_key
    proposal.issue_number, proposal.issue_node_id = issue if issue else (None, None)
    proposal.pull_request_number, proposal.requested_by, proposal.state = pull, by, "open"
    session.add(proposal)
    session.commit()
    log.info(
        "proposed to %s task %s of %s in pull request #%s (asked by %s)",
        kind,
        task_key,
        spec.key,
        pull,
        by,
        extra={"repository": spec.repository.full_name, "pull_request": pull},
    )

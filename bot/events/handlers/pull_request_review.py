"""`pull_request_review` submitted → a review that requests changes on an agent's
pull request runs the agent again on its branch, told what the review says.

Only a review that requests changes, by a person with write access, on a pull
request one of our Tasks opened or follows (its number and its head branch: a local
agent's `specbridge/...`, or the branch of an agent GitHub runs): an approval, a
plain comment, a bot's review (our own included) or a review of anyone else's pull
request runs nothing and says nothing. For an agent GitHub runs, the revision is
asked in its own way (bot/agents/hosted.py). The review's
body and each of its line comments (read back from GitHub, file and line) go
into the prompt; the run is a new Task with the next revision, on the same
branch and pull request (`Steering.revise`, as `/revise` on the issue).

Each review is recorded once as a CommandRun `review` on the ticket's issue, its
`comment_id` the review's id and `line` 0 (comment commands count lines from 1):
a redelivered review runs nothing twice.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.agents.planning import run_of_pull_request
from bot.events.router import Event, router
from bot.github.repository import ReviewComment
from bot.locks import card_lock, exclusive, spec_lock
from bot.repositories import repository_from_payload
from bot.steer.permissions import may_steer, permission_to_steer
from bot.steer.planning import idea_lock
from bot.steer.planning import revise as revise_planning
from bot.steer.steering import Steering
from storage.models import CommandRun, Task, Ticket

log = logging.getLogger(__name__)

# A review is recorded as this command, on this line (comments' commands start at 1).
REVIEW_COMMAND = "review"
REVIEW_LINE = 0
PLANNING_BRANCHES = "specbridge/plan/"


@router.register("pull_request_review", "submitted")
def on_review(event: Event) -> None:
    review = event.payload["review"]
    pull = event.payload["pull_request"]
    user = review.get("user") or {}
    login = user.get("login") or ""
    if (review.get("state") or "").lower() != "changes_requested":
        return  # an approval or a comment: nothing to revise
    if user.get("type") == "Bot" or login.endswith("[bot]"):
        return  # specbridge's own reviews, and other bots': no loops
    head = pull.get("head") or {}
    if not head.get("ref"):
        return
    if ((head.get("repo") or {}).get("full_name")) != event.repository_full_name:
        return  # a fork's branch of the same name
    session = event.session
    repository = repository_from_payload(session, event.payload)
    number = pull["number"]
    task = _agent_task(session, repository.id, number, head["ref"])
    if task is None:
        return  # not a pull request one of our agents opened
    ticket = task.ticket
    if _recorded(session, review["id"]):
        return  # this review was handled before (a redelivery)
    issue = ticket.issue_number
    lock = (
        spec_lock(repository.full_name, ticket.spec.key)
        if ticket.spec is not None
        else card_lock(repository.full_name, issue)
    )
    session.commit()
    repo = event.repository_gateway()
    association = review.get("author_association") or "NONE"
    allowed = may_steer(permission_to_steer(repo, login, association))
    comments = repo.review_comments(number, review["id"]) if allowed else []
    with exclusive(event.settings, lock):
        run = _record(session, repository.id, issue, review, login)
        if run is None:
            return  # handled meanwhile by another worker
        if allowed:
            run.allowed = True
            session.expire(ticket)  # what other workers did before we held the lock
            steering = Steering(session, event.settings, repo, event.board_gateway())
            state = "merged" if pull.get("merged") else pull.get("state") or "open"
            request = review_request(login, number, review, comments)
            outcome = steering.revise(ticket, request, state)
            run.result = outcome
            reply = f"@{login} requested changes on #{number}. {outcome}"
        else:
            run.refusal_reason = "needs write access to the repository"
            reply = (
                f"@{login} requested changes on #{number}; running the agent again needs write "
                f"access to this repository, and @{login} has none: nothing runs."
            )
        session.commit()
        log.info(
            "review %s by %s on %s#%s (ticket #%s): %s",
            review["id"],
            login,
            repository.full_name,
            number,
            issue,
            "allowed" if allowed else "refused (needs write access)",
            extra={"user": login, "command": REVIEW_COMMAND, "allowed": allowed},
        )
    repo.comment_on_issue(issue, reply)


def review_request(
    login: str, number: int, review: dict[str, Any], comments: list[ReviewComment]
) -> str:
    """What the agent is told: the review's body, then each line comment with its place."""
    lines = [f"@{login} requested changes in a review of #{number}:"]
    body = (review.get("body") or "").strip()
    if body:
        lines += ["", body]
    if comments:
        lines += ["", "Comments on the code:"]
        for comment in comments:
            where = f"`{comment.path}` line {comment.line}" if comment.line else f"`{comment.path}`"
            text = comment.body.strip().replace("\n", "\n  ")
            lines.append(f"- {where}: {text}")
    return "\n".join(lines)


def _agent_task(session: Session, repository_id: int, number: int, branch: str) -> Task | None:
    """The newest Task that opened (or revised) this pull request, from this branch."""
    return session.scalars(
        select(Task)
        .join(Task.ticket)
        .where(
            Ticket.repository_id == repository_id,
            Task.pull_request_number == number,
            Task.branch == branch,
        )
        .order_by(Task.id.desc())
        .limit(1)
    ).first()


def _recorded(session: Session, review_id: int) -> bool:
    return (
        session.scalars(
            select(CommandRun.id).where(
                CommandRun.comment_id == review_id, CommandRun.line == REVIEW_LINE
            )
        ).first()
        is not None
    )


def _record(
    session: Session, repository_id: int, issue: int, review: dict[str, Any], login: str
) -> CommandRun | None:
    """The review's CommandRun, or None when it is recorded already."""
    run = CommandRun(
        repository_id=repository_id,
        issue_number=issue,
        comment_id=review["id"],
        line=REVIEW_LINE,
        user_login=login,
        command=REVIEW_COMMAND,
        arguments=review.get("body") or "",
        allowed=False,
    )
    try:
        with session.begin_nested():
            session.add(run)
    except IntegrityError:
        return None
    return run


@router.register("pull_request_review", "submitted")
def on_planning_review(event: Event) -> None:
    """A review that requests changes on a planner's pull request runs the planner again
    on its branch (bot/steer/planning.py), as on an agent's; recorded once, on the idea's
    issue, and said there."""
    review, pull = event.payload["review"], event.payload["pull_request"]
    user = review.get("user") or {}
    login = user.get("login") or ""
    if (review.get("state") or "").lower() != "changes_requested":
        return
    if user.get("type") == "Bot" or login.endswith("[bot]"):
        return
    head = pull.get("head") or {}
    if not (head.get("ref") or "").startswith(PLANNING_BRANCHES):
        return
    session = event.session
    repository = repository_from_payload(session, event.payload)
    number = pull["number"]
    run = run_of_pull_request(session, repository.id, number)
    if run is None or _recorded(session, review["id"]):
        return
    issue = run.issue_number
    session.commit()
    repo = event.repository_gateway()
    association = review.get("author_association") or "NONE"
    allowed = may_steer(permission_to_steer(repo, login, association))
    comments = repo.review_comments(number, review["id"]) if allowed else []
    with exclusive(event.settings, idea_lock(repository.full_name, issue)):
        recorded = _record(session, repository.id, issue, review, login)
        if recorded is None:
            return
        if allowed:
            recorded.allowed = True
            request = review_request(login, number, review, comments)
            outcome = revise_planning(session, event.settings, repo, run, request)
            recorded.result = outcome
            reply = f"@{login} requested changes on #{number}. {outcome}"
        else:
            recorded.refusal_reason = "needs write access to the repository"
            reply = (
                f"@{login} requested changes on #{number}; running the planner again needs "
                f"write access to this repository, and @{login} has none: nothing runs."
            )
        session.commit()
    repo.comment_on_issue(issue, reply)

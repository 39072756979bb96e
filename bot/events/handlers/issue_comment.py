"""`issue_comment` created → comment commands, on the issues specbridge made and on
the pull requests its agents opened (GitHub sends a pull request's conversation
comments as `issue_comment`, with `issue.pull_request` set): `/revise` there is the
ticket's, and the reply goes on the pull request.

Quiet elsewhere: on an issue or pull request specbridge did not create it hears
only `/specify`, which starts planning a spec from the issue's idea (an idea's issue
and a planner's pull request then take their own commands: bot/steer/planning.py),
and on its own issues a command it does not know (another bot's `/lgtm`) gets no
answer unless it looks like a typo of one of its own.
Permission checks come before anything runs; every command is recorded in
CommandRun, and a redelivered comment is not run twice.

A delivery retried after GitHub failed part way runs the recorded commands that
have no result yet, and posts the reply unless GitHub kept it already (a reply
answered 502 may have been stored: it is found by its hidden marker first). The
👀 reaction is a courtesy: GitHub refusing it holds nothing up.
"""

from __future__ import annotations

import logging
from typing import Any

from github import GithubException
from requests import RequestException
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.agents.hosted import RELAYED
from bot.events.router import Event, router
from bot.github import RepositoryGateway
from bot.locks import exclusive, spec_lock
from bot.repositories import repository_from_payload, spec_tracked_by
from bot.settings import SettingsError
from bot.steer import commands
from bot.steer.commands import CommandError, Context, Where
from bot.steer.permissions import may_steer, permission_to_steer
from bot.steer.planning import idea_lock, idea_of
from bot.steer.steering import Steering
from storage.models import CommandRun, PlanningRun, Spec, Task, Ticket

log = logging.getLogger(__name__)

# Where a command works, as a reply names it.
PLACES = {
    Where.TICKET: "on a task's issue",
    Where.TRACKING: "on a spec's tracking issue",
    Where.PULL_REQUEST: "on an agent's pull request",
    Where.ANYWHERE: "anywhere",
    Where.IDEA: "on an idea's issue",
    Where.PLANNING: "on a planner's pull request",
}


def _from_a_bot(payload: dict[str, Any]) -> bool:
    """A bot's comment, or one specbridge posted with a person's token to ask a hosted
    agent for a revision (it quotes a review, whose lines are not that person's commands)."""
    comment = payload.get("comment") or {}
    user = comment.get("user") or {}
    if RELAYED in (comment.get("body") or ""):
        return True
    return user.get("type") == "Bot" or user.get("login", "").endswith("[bot]")


@router.register("issue_comment", "created", unless=_from_a_bot)
def on_comment(event: Event) -> None:
    comment = event.payload["comment"]
    user = comment["user"]
    if _from_a_bot(event.payload):
        return  # specbridge's own replies, and other bots': no loops
    lines = commands.parse(comment.get("body") or "")
    if not lines:
        return
    session = event.session
    repository = repository_from_payload(session, event.payload)
    number = event.payload["issue"]["number"]
    on_pull_request = bool(event.payload["issue"].get("pull_request"))
    if on_pull_request:
        ticket, spec = _agent_pull_request(session, repository.id, number), None
        where = Where.PULL_REQUEST
    else:
        ticket, spec = _target(session, repository.id, number)
        where = Where.TICKET if ticket is not None else Where.TRACKING
    planning = None
    if ticket is None and spec is None:
        planning = idea_of(session, repository.id, number, on_pull_request)
        where = Where.ANYWHERE
        if planning is not None:
            where = Where.PLANNING if on_pull_request else Where.IDEA
        else:
            # Not an issue of ours: only `/specify` is heard there, to start an idea.
            lines = [line for line in lines if line[1] == "specify" and not on_pull_request]
    lines = [line for line in lines if _ours(line[1], where)]
    if not lines:
        return
    lock = _lock_name(repository.full_name, ticket, spec, planning, number)
    session.commit()
    repo = event.repository_gateway()
    with exclusive(event.settings, lock):
        runs, first_sight = _record_runs(event, repository.id, number, comment, lines)
        if first_sight:
            _react(repo, comment["id"])
        unanswered = [run for run in runs if run.result is None]
        if unanswered:
            association = comment.get("author_association", "NONE")
            can_write = _changes_things(lines, where) and may_steer(
                permission_to_steer(repo, user["login"], association)
            )
            ctx = Context(
                session,
                Steering(session, event.settings, repo, event.board_gateway()),
                repo,
                repository,
                number,
                user["login"],
                ticket,
                spec,
                on_pull_request,
                planning,
            )
            for run in unanswered:
                _run(ctx, run, can_write)
                session.commit()  # ran: a retry does not run it again
        replies = [run.result or "" for run in runs]
        session.commit()
    marker = _reply_marker(comment["id"])
    if not first_sight and _replied(event, repo, number, comment, marker):
        return  # an earlier attempt's reply reached GitHub
    repo.comment_on_issue(number, _reply(user["login"], replies, marker), once=True)


def _react(repo: RepositoryGateway, comment_id: int) -> None:
    """👀 on the comment: seen. Failing, it is left out: the reply says more."""
    try:
        repo.react_to_comment(comment_id, "eyes")
    except (GithubException, RequestException):
        log.warning("could not react to comment %s", comment_id, exc_info=True)


def _replied(
    event: Event, repo: RepositoryGateway, number: int, comment: dict[str, Any], marker: str
) -> bool:
    """Whether specbridge's reply to the comment is on the issue already."""
    as_app = event.settings.github_token is None  # an App's comments are a Bot's
    return any(
        marker in found.body and (found.by_bot or not as_app)
        for found in repo.issue_comments(number, since=comment.get("created_at"))
    )


def _changes_things(lines: list[tuple[int, str, str]], where: Where) -> bool:
    return any(
        (found := commands.find(name, where)) and found.changes_things for _, name, _ in lines
    )


def _ours(name: str, where: Where) -> bool:
    return commands.find(name, where) is not None or commands.nearest(name, where) is not None


def _lock_name(
    full_name: str,
    ticket: Ticket | None,
    spec: Spec | None,
    planning: PlanningRun | None,
    number: int,
) -> str:
    """The spec's lock, shared with its syncs and issue events; an idea's, by its issue."""
    owner = ticket.spec if ticket is not None and ticket.spec is not None else spec
    if owner is None:
        return idea_lock(full_name, planning.issue_number if planning else number)
    return spec_lock(full_name, owner.key)


def _target(session, repository_id: int, number: int) -> tuple[Ticket | None, Spec | None]:  # type: ignore[no-untyped-def]
    """The ticket of this issue, or the spec whose tracking (or group) issue it is."""
    ticket = session.scalars(
        select(Ticket).where(Ticket.repository_id == repository_id, Ticket.issue_number == number)
    ).first()
    if ticket is not None:
        return ticket, None
    return None, spec_tracked_by(session, repository_id, number)


def _agent_pull_request(session: Session, repository_id: int, number: int) -> Ticket | None:
    """The ticket of the pull request an agent opened (or revised) as `number`."""
    return session.scalars(
        select(Ticket)
        .join(Task, Task.ticket_id == Ticket.id)
        .where(
            Ticket.repository_id == repository_id,
            Task.pull_request_number == number,
            Task.branch.is_not(None),
        )
        .order_by(Task.id.desc())
        .limit(1)
    ).first()


def _record_runs(
    event: Event,
    repository_id: int,
    number: int,
    comment: dict,  # type: ignore[type-arg]
    lines: list,  # type: ignore[type-arg]
) -> tuple[list[CommandRun], bool]:
    """The comment's commands, recorded once: all of them, in order, and whether they were
    recorded just now (False: an earlier attempt, or delivery, recorded them)."""
    recorded = False
    for line, name, arguments in lines:
        run = CommandRun(
            repository_id=repository_id,
            issue_number=number,
            comment_id=comment["id"],
            line=line,
            user_login=comment["user"]["login"],
            command=name,
            arguments=arguments,
            allowed=False,
        )
        try:
            with event.session.begin_nested():
                event.session.add(run)
            recorded = True
        except IntegrityError:
            continue
    runs = event.session.scalars(
        select(CommandRun)
        .where(CommandRun.comment_id == comment["id"], CommandRun.line.in_([n for n, *_ in lines]))
        .order_by(CommandRun.line)
    ).all()
    event.session.commit()
    return list(runs), recorded


def _run(ctx: Context, run: CommandRun, can_write: bool) -> None:
    """Run the command, or refuse it; either way `run.result` is what the reply says."""
    found = commands.find(run.command, ctx.where)
    if found is None:
        run.refusal_reason = "unknown command"
        elsewhere = commands.places(run.command)
        if elsewhere:
            run.result = (
                f"`/{run.command}` works {' and '.join(PLACES[w] for w in elsewhere)}, not "
                "here. `/help` lists the commands that work here."
            )
        else:
            near = commands.nearest(run.command, ctx.where)
            run.result = (
                f"`/{run.command}` is not a command here. Did you mean `/{near}`? "
                "`/help` lists them."
            )
    elif found.changes_things and not can_write:
        run.refusal_reason = "needs write access to the repository"
        run.result = (
            f"`/{run.command}` needs write access to this repository; @{ctx.user} has none."
        )
    else:
        run.allowed = True
        try:
            run.result = found.run(ctx, run.arguments)
        except CommandError as error:
            run.result = str(error)
        except SettingsError as error:
            # The operator's settings (say, a broken agent profiles file): a reply, not a retry.
            run.result = f"`/{run.command}` cannot run now: {error}. An operator must fix it."
    _log_command(ctx, run)


def _log_command(ctx: Context, run: CommandRun) -> None:
    log.info(
        "command /%s by %s on %s#%s: %s",
        run.command,
        run.user_login,
        ctx.repository.full_name,
        ctx.issue_number,
        "allowed" if run.allowed else f"refused ({run.refusal_reason})",
        extra={
            "user": run.user_login,
            "command": run.command,
            "allowed": run.allowed,
            "repository": ctx.repository.full_name,
        },
    )


def _reply_marker(comment_id: int) -> str:
    return f"<!-- specbridge: reply to comment {comment_id} -->"


def _reply(user: str, replies: list[str], marker: str) -> str:
    return f"@{user}\n\n" + "\n\n---\n\n".join(replies) + f"\n\n{marker}"

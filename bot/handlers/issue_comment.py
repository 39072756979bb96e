"""`issue_comment` created → comment commands.

Permission checks come before anything runs; every command is recorded in
CommandRun, and a redelivered comment is not run twice.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from bot import commands
from bot.commands import CommandError, Context
from bot.github import RepositoryGateway
from bot.locks import exclusive, spec_lock
from bot.repositories import repository_from_payload
from bot.router import Event, router
from bot.steering import Steering
from storage.models import CommandRun, Spec, Ticket

# Associations that prove write access without asking GitHub.
WRITERS_BY_ASSOCIATION = {"OWNER"}
WRITE_PERMISSIONS = {"admin", "maintain", "write"}


@router.register("issue_comment", "created")
def on_comment(event: Event) -> None:
    comment = event.payload["comment"]
    user = comment["user"]
    if user.get("type") == "Bot" or user["login"].endswith("[bot]"):
        return  # specbridge's own replies, and other bots': no loops
    lines = commands.parse(comment.get("body") or "")
    if not lines:
        return
    commands.load()
    repository = repository_from_payload(event.session, event.payload)
    repo = event.repository_gateway()
    number = event.payload["issue"]["number"]
    ticket, spec = _target(event, repository.id, number)
    with exclusive(event.settings, _lock_name(repository.full_name, ticket, spec, number)):
        runs = _new_runs(event, repository.id, number, comment, lines)
        if not runs:
            return  # this comment was handled before (a redelivery)
        repo.react_to_comment(comment["id"], "eyes")
        ctx = Context(
            event.session,
            Steering(event.session, event.settings, repo, event.board_gateway()),
            repo,
            repository,
            number,
            user["login"],
            ticket,
            spec,
        )
        replies = [_run(ctx, run, comment.get("author_association", "NONE")) for run in runs]
        event.session.commit()
    repo.comment_on_issue(number, _reply(user["login"], replies))


def _lock_name(full_name: str, ticket: Ticket | None, spec: Spec | None, number: int) -> str:
    """The spec's lock, shared with its syncs and issue events; else the issue's own."""
    owner = ticket.spec if ticket is not None and ticket.spec is not None else spec
    return spec_lock(full_name, owner.key) if owner else f"issue:{full_name}:{number}"


def _target(event: Event, repository_id: int, number: int) -> tuple[Ticket | None, Spec | None]:
    ticket = event.session.scalars(
        select(Ticket).where(Ticket.repository_id == repository_id, Ticket.issue_number == number)
    ).first()
    spec = event.session.scalars(
        select(Spec).where(
            Spec.repository_id == repository_id, Spec.tracking_issue_number == number
        )
    ).first()
    return ticket, spec


def _new_runs(
    event: Event, repository_id: int, number: int, comment: dict, lines: list
) -> list[CommandRun]:  # type: ignore[type-arg]
    runs = []
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
        except IntegrityError:
            continue
        runs.append(run)
    event.session.commit()
    return runs


def _run(ctx: Context, run: CommandRun, association: str) -> str:
    found = commands.find(run.command, ctx.where)
    if found is None:
        run.refusal_reason = "unknown command"
        near = commands.nearest(run.command, ctx.where)
        hint = f" Did you mean `/{near}`?" if near else ""
        return f"`/{run.command}` is not a command here.{hint} `/help` lists them."
    if found.changes_things and not _can_write(ctx.repo, ctx.user, association):
        run.refusal_reason = "needs write access to the repository"
        return f"`/{run.command}` needs write access to this repository; @{ctx.user} has none."
    run.allowed = True
    try:
        run.result = found.run(ctx, run.arguments)
    except CommandError as error:
        run.result = str(error)
    return run.result


def _can_write(repo: RepositoryGateway, login: str, association: str) -> bool:
    if association in WRITERS_BY_ASSOCIATION:
        return True
    return repo.permission_of(login) in WRITE_PERMISSIONS


def _reply(user: str, replies: list[str]) -> str:
    return f"@{user}\n\n" + "\n\n---\n\n".join(replies)

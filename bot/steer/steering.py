"""What people do to a ticket, from a comment, a card on the board or a reconcile.

Each action records its change and commits before it asks anything of GitHub.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy.orm import Session

from bot.agents.failure import clear_failed
from bot.agents.fleet import waits_for
from bot.agents.hosted import relay_way, withdraw
from bot.agents.profiles import load_profiles
from bot.agents.scheduler import (
    LIVE,
    agent_for,
    agent_pull_request,
    cancel_live_tasks,
    failed_revision,
    new_runs,
    not_ready_because,
    not_revisable_because,
    queue_revision,
    queue_run,
    queue_task,
    start_waiting,
    stranded,
)
from bot.github import BoardGateway, RepositoryGateway
from bot.github.columns import phase_of, same_column, show_on_board
from bot.locks import Lease, card_lock, exclusive
from bot.settings import Settings
from bot.steer.tickets import apply_issue_state, ticket_state_changed
from bot.sync.progress import ticket_changed
from specs.model import MANUAL_AGENT
from storage.models import Approval, IssueState, TaskStatus, Ticket, TicketPhase

log = logging.getLogger(__name__)

# The most agents one `/attempt` runs on a task.
MAX_ATTEMPTS = 5


@dataclass
class Steering:
    session: Session
    settings: Settings
    repo: RepositoryGateway
    boards: BoardGateway

    def approve(self, ticket: Ticket, by: str) -> str:
        if ticket.approval is not Approval.PENDING:
            return f"#{ticket.issue_number} needs no approval now."
        ticket.approval, ticket.approved_by = Approval.APPROVED, by
        return f"Approved by @{by}. " + self.start(ticket, explicit=False)

    def start(self, ticket: Ticket, explicit: bool = True) -> str:
        """Queue a Task when the ticket is ready; say why not otherwise. A queued Task
        whose job was lost is queued again (the chore would, within seconds)."""
        lost = stranded(self.session, self.settings, ticket)
        for task in lost:
            queue_run(self.session, self.settings, task)
        if lost:
            ids = ", ".join(str(task.id) for task in lost)
            return (
                f"Task {ids} was queued, but its job was lost (a worker or the queue "
                "restarted): it is queued again."
            )
        reason = not_ready_because(ticket, self.settings)
        if reason is None and (explicit or not ticket.tasks):
            again = failed_revision(ticket)
            if again is not None:
                review = again.review or ""
                task = queue_revision(self.session, self.settings, ticket, review, again)
                return (
                    f"Task {task.id} is queued: the agent `{task.agent}` tries revision "
                    f"{task.revision} of #{task.pull_request_number} again."
                )
            task = queue_task(self.session, self.settings, ticket)
            if task.status is TaskStatus.WAITING:
                return (
                    f"Task {task.id} for the agent `{task.agent}` waits for "
                    f"{waits_for(self.session, self.settings, task)}."
                )
            return f"Task {task.id} is queued for the agent `{task.agent}`."
        return f"Nothing is queued: {reason}." if reason else "Nothing more to queue."

    def attempt(self, ticket: Ticket, agents: list[str]) -> str:
        """Run each named agent on the ticket, each on its own branch and draft pull
        request; say why not otherwise."""
        if not 2 <= len(agents) <= MAX_ATTEMPTS:
            return f"Nothing runs: `/attempt` takes 2 to {MAX_ATTEMPTS} agent profiles."
        profiles = load_profiles(self.settings)
        for agent in agents:
            profile = profiles.get(agent)
            if profile is None:
                return f"Nothing runs: no agent profile named `{agent}` is configured."
            if profile.hosted:
                return f"Nothing runs: the agent `{agent}` works on GitHub, not in attempts."
        reason = not_ready_because(ticket, self.settings)
        if reason is not None and not reason.startswith("its agent is `manual`"):
            return f"Nothing runs: {reason}."
        tasks = new_runs(self.session, self.settings, ticket, agents)
        start_waiting(self.session, self.settings)
        listed = ", ".join(f"{t.attempt_number} by `{t.agent}` (task {t.id})" for t in tasks)
        return (
            f"{len(tasks)} attempts, each on its own branch and draft pull request: {listed}. "
            "When all have run, a comment compares them; merge the one to keep."
        )

    def revise(self, ticket: Ticket, request: str, pull_state: str | None = None) -> str:
        """Run the agent again on its pull request's branch, told `request` (a review's
        words, or a /revise); say why not otherwise. `pull_state`: the pull request's
        state when the caller knows it, else GitHub is asked."""
        reason = not_revisable_because(ticket, self.settings)
        if reason is not None:
            return f"Nothing runs: {reason}."
        previous = agent_pull_request(ticket)
        assert previous is not None and previous.pull_request_number is not None
        number = previous.pull_request_number
        if pull_state is None:
            self.session.commit()
            pull_state = self.repo.pull_request_state(number)
        if pull_state != "open":
            return (
                f"Nothing runs: #{number} is {pull_state}. `/retry` starts over on a new "
                "pull request."
            )
        task = queue_revision(self.session, self.settings, ticket, request)
        profile = load_profiles(self.settings).get(task.agent)
        most = f" of {profile.max_revisions}" if profile else ""
        if profile is not None and profile.dispatch is not None:
            return (
                f"Task {task.id} is queued: the agent `{task.agent}` is asked to revise "
                f"#{number} in its own way, {relay_way(profile.dispatch)} (revision "
                f"{task.revision}{most})."
            )
        return (
            f"Task {task.id} is queued: the agent `{task.agent}` revises #{number} on "
            f"`{task.branch}` (revision {task.revision}{most})."
        )

    def cancel(self, ticket: Ticket, by: str, move_card: bool = True) -> str:
        # Under the card's lock: a running agent checks for a cancel, and moves
        # its card, under the same lock, so the card ends in the backlog.
        with self._card(ticket):
            for task in ticket.tasks:  # as they are now, under the lock a hand-over holds
                self.session.refresh(task)
            cancelled = cancel_live_tasks(ticket, f"by @{by}")
            # Handed to an agent GitHub runs: taken back from it (under the card's lock,
            # as it was handed over, so the two never cross).
            hosted = [(t.agent, t.workflow_run_id) for t in cancelled if t.dispatched_at]
            stuck = self._show(ticket, TicketPhase.BACKLOG, move_card)
            taken = [
                withdraw(self.settings, self.repo, ticket.issue_number, agent, run)
                for agent, run in hosted
            ]
        card = _card_stays(stuck)
        if not cancelled:
            return f"No task was queued or running; the ticket is back in the backlog.{card}"
        ids = ", ".join(str(t.id) for t in cancelled)
        also = "".join(f"; {t}" for t in taken if t)
        return f"Cancelled task {ids}; the ticket is back in the backlog{also}.{card}"

    def set_phase(
        self, ticket: Ticket, phase: TicketPhase, by: str, from_board: bool = False
    ) -> str:
        """Apply a phase chosen by a person; `from_board` when the card already shows it."""
        if phase is TicketPhase.BACKLOG:
            return self.cancel(ticket, by, move_card=not from_board)
        stuck = self._show(ticket, phase, not from_board)
        # Said as it is: a card that could not move is not "moved".
        moved = f"Moved to {phase.value}" if stuck is None else f"The ticket is in {phase.value}"
        if phase is TicketPhase.DONE:
            if ticket.state is IssueState.OPEN:
                self.repo.close_issue(ticket.issue_number, "completed")
                # Our own close comes back as an event we do not act on: apply it here.
                apply_issue_state(ticket, "closed", "completed")
                ticket_state_changed(self.session, self.settings, ticket, self.repo)
                clear_failed(self.session, self.settings, self.boards, self.repo, ticket)
            return f"{moved}: the issue is closed as completed.{_card_stays(stuck)}"
        reply = f"{moved}.{_card_stays(stuck)}"
        if phase in (TicketPhase.ANALYZING, TicketPhase.BUILDING):
            if ticket.approval is Approval.PENDING:
                reply += " " + self.approve(ticket, by)
            else:
                reply += " " + self.start(ticket)
        return reply

    def phase_moved_to(self, ticket: Ticket, column: str | None) -> TicketPhase | None:
        """The phase a card's new column stands for; None when it is the ticket's own."""
        names = (ticket.repository.settings or {}).get("status") or {}
        phase = phase_of(names, column)
        if phase is None or same_column(names, column, ticket.phase):
            return None
        return phase

    def apply_column(self, ticket: Ticket, column: str | None, by: str) -> str | None:
        """Apply the column a card was moved to; None when nothing changes. A card moved
        to start the work when nothing can start yet (it waits for another issue, say)
        gets a comment on its issue saying why: the move alone shows nothing happening."""
        phase = self.phase_moved_to(ticket, column)
        if phase is None:
            return None
        reply = self.set_phase(ticket, phase, by, from_board=True)
        if phase in (TicketPhase.ANALYZING, TicketPhase.BUILDING):
            waiting = _why_nothing_starts(ticket, self.settings)
            if waiting is not None:
                self.session.commit()
                self.repo.comment_on_issue(
                    ticket.issue_number,
                    f"@{by} moved this card to {column}, and nothing starts yet: {waiting}. "
                    "Its agent starts as soon as it can.",
                )
        return reply

    def refuse_move(self, ticket: Ticket, column: str | None, by: str, permission: str) -> None:
        """Put back a card moved by someone who may not steer, and say why on its issue."""
        log.warning(
            "card of %s#%s moved to %s by %s (%s access): put back",
            ticket.repository.full_name,
            ticket.issue_number,
            column,
            by,
            permission,
        )
        self.session.commit()
        with self._card(ticket) as lease:
            lease.check()
            show_on_board(self.boards, ticket)
        self.repo.comment_on_issue(
            ticket.issue_number,
            f"@{by} moved this card to {column}, but moving it needs write access to this "
            f"repository, and @{by} has {'no' if permission == 'none' else permission} access. "
            f"The card is back in {ticket.phase.value}.",
        )

    def _show(self, ticket: Ticket, phase: TicketPhase, move_card: bool) -> str | None:
        """Set the ticket's phase and move its card; why the card could not move, or None."""
        with self._card(ticket) as lease:
            ticket.phase = phase
            self.session.commit()
            ticket_changed(self.settings, ticket)  # the tracking issue, within seconds
            if not move_card:
                return None
            # Always written: what the card shows now is not known here (GitHub's
            # own workflows move cards too).
            lease.check()
            return show_on_board(self.boards, ticket)

    @contextmanager
    def _card(self, ticket: Ticket) -> Iterator[Lease]:
        with exclusive(
            self.settings, card_lock(ticket.repository.full_name, ticket.issue_number)
        ) as lease:
            yield lease


def _card_stays(why: str | None) -> str:
    return f" Its card stays where it is: {why}." if why else ""


def _why_nothing_starts(ticket: Ticket, settings: Settings) -> str | None:
    """Why an agent cannot start on the ticket now, when one would (not a ticket people
    work, nor one whose task is queued or running already)."""
    if agent_for(ticket) == MANUAL_AGENT or any(t.status in LIVE for t in ticket.tasks):
        return None
    return not_ready_because(ticket, settings)

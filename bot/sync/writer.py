"""Rows → GitHub: one spec's tracking issue, group issues, tickets, dependencies
and cards, written in batches and recorded as each batch answers.

The order is the one people feel: the tracking issue, then new tickets with
ready work first (their agents are queued as soon as their issues exist),
then edits, closes, "blocked by" links, card Status, and the tracking issue's
progress. Each step compares what GitHub should show with what was last
written (content hashes, recorded ids), so an unchanged spec costs no write.

Nothing waits on GitHub inside a database transaction: each step reads what
it needs, commits, writes to GitHub, then records the answer and commits.
Before creating anything the spec is marked; an issue GitHub created without
our hearing back (a crash, a 502) is then found by its hidden marker instead
of being created twice.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.agents.hosted import handed_over_labels
from bot.agents.profiles import no_agents
from bot.agents.scheduler import cancel_live_tasks, schedule_tickets
from bot.github import Board
from bot.github.columns import ColumnMissing, column_for
from bot.github.issues import (
    CREATE_BATCH,
    WRITE_BATCH,
    IssueUpdate,
    IssueWriter,
    NewIssue,
    WrittenIssue,
)
from bot.github.pacing import ROOM_LEFT_TO_OTHERS, leaving_room
from bot.github.projects import BATCH_SIZE as BOARD_BATCH
from bot.github.projects import BoardNotFound
from bot.locks import Lease
from bot.repo_config import CONFIG_PATH
from bot.settings import Settings
from bot.sync import render
from bot.sync.commit_files import carried, carry, kept
from bot.sync.github_side import GitHubSide
from bot.sync.plan import creation_order
from bot.sync.proposals import adoptions
from bot.sync.tree import place
from specs.model import MANUAL_AGENT
from storage.models import (
    Approval,
    IssueGroup,
    IssueState,
    Spec,
    SpecTask,
    Ticket,
    TicketDependency,
    TicketPhase,
)

log = logging.getLogger(__name__)

# GitHub's words when content is created faster than it allows.
TOO_FAST = ("submitted too quickly", "secondary rate limit", "rate limit")
HOLD_OFF_SECONDS = 60
Batched = TypeVar("Batched")
# When people may be waiting for the worker (`short_requests`), a creation request is
# sized to take GitHub about this long: a reply waits for the request under way, and
# GitHub takes seconds for a whole batch (4-7 s for 25 issues).
SHORT_REQUEST_SECONDS = 1.5
FEWEST_AT_ONCE = 5
# What GitHub took per issue created, learnt request by request in this process.
_seconds_per_issue = [0.2]


class SyncIncomplete(RuntimeError):
    """GitHub refused some writes; the rest was done and recorded."""


class SpecWriter:
    def __init__(
        self, session: Session, settings: Settings, github: GitHubSide, spec: Spec, lease: Lease
    ) -> None:
        self.session = session
        self.settings = settings
        self.github = github
        self.spec = spec
        self.lease = lease
        self.issues = IssueWriter(github.repo.connection, github.repo.full_name)
        self.counts: Counter[str] = Counter()
        self.refused: dict[str, str] = {}
        self.done: set[str] = set()
        self._created: list[Ticket] = []
        self._repository_id: str | None = None
        self._label_ids: dict[str, str] = {}
        # The spec's tasks are fixed for a writer's life: indexed once, so that a sync
        # makes a bounded number of passes over them whatever its size.
        self._active: dict[str, SpecTask] | None = None
        self._dependants: dict[str, list[SpecTask]] | None = None
        self._groups: dict[int, IssueGroup] | None = None
        # People may be waiting behind this sync's requests: bound them by GitHub's time.
        self.short_requests = False
        # A continuation of a paused sync: the board and labels its first job read hold.
        self.continuing = False

    # -- the whole sync ----------------------------------------------------------

    def run(self, returning: set[str] = frozenset(), done: set[str] = frozenset()) -> Counter[str]:
        """`done`: keys of the tasks ticked in the file (`- [x]`, `done: true`); a new one's
        issue is closed as completed as soon as it exists (the work was done before)."""
        self.session.commit()
        self.done = set(done)
        self._recover_unrecorded()
        board = self._board()
        self._ensure_tracking_issue()
        self._adopt_proposed(board)
        self._create_tickets(board)
        self._close_done_at_first_sight()
        self._link_unlinked()
        self._update_tickets()
        self.close_removed()
        self._reopen(returning)
        self._sync_dependencies()
        self._put_on_board(board)
        self._set_statuses(board)
        self.update_tracking_issue()
        if self.refused:
            reasons = "; ".join(f"{key}: {why}" for key, why in sorted(self.refused.items()))
            raise SyncIncomplete(f"GitHub refused some writes for {self.spec.key}: {reasons}")
        return self.counts

    # -- looking before creating -------------------------------------------------

    def _recover_unrecorded(self) -> None:
        """Record issues a cut-short sync created but never heard back about."""
        started = self.spec.creation_started_at
        if started is None:
            return
        if started.tzinfo is None:
            started = started.replace(tzinfo=UTC)
        self.session.commit()
        found = self.github.repo.issues_with_label(
            render.LABEL, since=started - timedelta(minutes=1)
        )
        tasks = {t.key: t for t in self.spec.tasks}
        groups = {g.position for g in self.spec.groups}
        recorded = {t.issue_number for t in self.spec.tickets}
        for issue in sorted(found, key=lambda i: i.number):
            mark = render.parse_marker(issue.body)
            if mark is None or mark[0] != self.spec.key or issue.number in recorded:
                continue
            _, task_key, group = mark
            written = _as_written(issue)
            if group is not None and group not in groups:
                self._record_group(group, written)
                groups.add(group)
            elif group is None and task_key is None and self.spec.tracking_issue_number is None:
                self._record_tracking(written)
            elif task_key in tasks and tasks[task_key].ticket is None:
                # Its parent and card are unknown: linked again below, which is harmless.
                self._record_ticket(tasks[task_key], written, linked=False)
            recorded.add(issue.number)
        self.session.commit()

    def _mark_creating(self) -> None:
        if self.spec.creation_started_at is None:
            self.spec.creation_started_at = datetime.now(UTC)
        self.session.commit()

    # -- labels and the repository ---------------------------------------------------

    def _labels(self, names: Iterable[str]) -> tuple[str, ...]:
        """Node ids of labels, created when the repository lacks them.

        The first call looks up every label the spec's issues carry, so that
        creating the missing ones costs one request, not one per step.
        """
        names = list(dict.fromkeys(names))
        if self._repository_id is None and self.continuing:  # what an earlier job found
            known = kept(self._full_name, self.spec.source_commit, "labels")
            if known is not None:
                self._repository_id, ids = known
                self._label_ids.update(ids)
        wanted = names if self._repository_id else [*names, *self._every_label()]
        missing = list(dict.fromkeys(n for n in wanted if n not in self._label_ids))
        if missing or self._repository_id is None:
            self.session.commit()
            self._repository_id, found = self.issues.repository_and_labels(missing)
            self._label_ids.update(found)
            absent = [n for n in missing if n not in found]
            if absent:
                created = self.issues.create_labels(self._repository_id, absent)
                self._label_ids.update(created.done)
                self.refused.update({f"label {k}": v for k, v in created.failed.items()})
            known = (self._repository_id, dict(self._label_ids))
            carry(self._full_name, self.spec.source_commit, "labels", known)
        return tuple(self._label_ids[n] for n in names if n in self._label_ids)

    @property
    def _full_name(self) -> str:
        return self.github.repo.full_name

    def _every_label(self) -> list[str]:
        names = [*render.tracking_labels(self.spec), *render.group_labels(self.spec)]
        for task in self._active_tasks():
            names += render.ticket_labels(self.spec, task)
        return names

    def _repository(self) -> str:
        if self._repository_id is None:
            self._labels([])
        assert self._repository_id is not None
        return self._repository_id

    # -- the tracking issue and groups ---------------------------------------------

    def _ensure_tracking_issue(self) -> None:
        spec = self.spec
        if spec.tracking_issue_number is not None:
            return
        labels = render.tracking_labels(spec)
        draft = NewIssue(
            key="tracking",
            title=render.tracking_title(spec),
            body=render.tracking_body(spec, []),
            label_ids=self._labels(labels),
            assignee_ids=tuple(self.issues.user_ids([spec.owner]).values()) if spec.owner else (),
        )
        self._mark_creating()
        outcome = self.issues.create_issues(self._repository(), [draft])
        if "tracking" not in outcome.done:
            raise SyncIncomplete(f"the tracking issue was not created: {outcome.failed}")
        self._record_tracking(outcome.done["tracking"])
        self.counts["opened"] += 1
        self.session.commit()
        self._say_no_agents()

    def _say_no_agents(self) -> None:
        """Once, on a new tracking issue: with no profiles file, its tasks get issues and
        no agent works them, which nothing else would say."""
        worked = [t for t in self.spec.tasks if (t.agent or self.spec.agent) != MANUAL_AGENT]
        if not worked or no_agents(self.settings) is None:
            return
        assert self.spec.tracking_issue_number is not None
        self.github.repo.comment_on_issue(
            self.spec.tracking_issue_number,
            "No agent works these tasks: this specbridge has no agent profiles "
            "(`SPECBRIDGE_AGENTS` is not set where it runs agents), so each task's issue "
            "waits for people. Once an operator sets it (docs/agents/profiles.md), `/retry` on a "
            "task's issue starts its agent.",
        )

    def _record_tracking(self, issue: WrittenIssue) -> None:
        spec = self.spec
        spec.tracking_issue_number, spec.tracking_issue_node_id = issue.number, issue.node_id
        spec.tracking_issue_hash = render.content_hash(issue.title, issue.body, issue.labels)
        spec.tracking_issue_closed = issue.state == "closed"

    def _create_groups(self, positions: Sequence[int]) -> None:
        if not positions:
            return
        labels = self._labels(render.group_labels(self.spec))
        drafts = [
            NewIssue(
                key=str(position),
                title=render.group_title(self.spec, position),
                body=render.group_body(self.spec, position),
                label_ids=labels,
                parent_id=self.spec.tracking_issue_node_id,
            )
            for position in positions
        ]
        self._mark_creating()
        outcome = self.issues.create_issues(self._repository(), drafts)
        for key, issue in outcome.done.items():
            self._record_group(int(key), issue)
        self.session.commit()
        if outcome.failed:
            raise SyncIncomplete(f"group issues were not created: {outcome.failed}")

    def _record_group(self, position: int, issue: WrittenIssue) -> None:
        group = IssueGroup(
            spec=self.spec,
            position=position,
            issue_number=issue.number,
            issue_node_id=issue.node_id,
            content_hash=render.content_hash(issue.title, issue.body, issue.labels),
            closed=issue.state == "closed",
        )
        self.session.add(group)
        self.session.flush()
        self._groups = None

    # -- new tickets ---------------------------------------------------------------

    def _create_tickets(self, board: Board | None) -> None:
        active = self._active_tasks()
        tickets = {t.key: t.ticket for t in self.spec.tasks if t.ticket is not None}
        pending = creation_order([t for t in active if t.ticket is None], tickets)
        if not pending:
            self._creation_done()
            return
        placement = place(self.spec.groups, self._linked(), len(pending))
        self._create_groups(placement.new_groups)
        self._move(placement.moves)
        parents = dict(zip((t.key for t in pending), placement.parents, strict=True))
        # A big spec leaves room in GitHub's budget to the rest: its own agents' pull
        # requests, a small spec pushed meanwhile (bot/github/pacing.py).
        big = len(pending) > ROOM_LEFT_TO_OTHERS
        with leaving_room() if big else nullcontext():
            self._create_pending(pending, parents, board)
        self._creation_done()

    def _create_pending(
        self, pending: list[SpecTask], parents: dict[str, int | None], board: Board | None
    ) -> None:
        first_batch = True
        while pending:
            self.lease.check()
            size = self._batch_size()
            batch, pending = pending[:size], pending[size:]
            drafts = [self._ticket_draft(task, parents[task.key], board) for task in batch]
            self._mark_creating()
            outcome = self.issues.create_issues(self._repository(), drafts)
            self._learn_creation_time(len(drafts))
            by_key = {task.key: task for task in batch}
            created = [
                self._record_ticket(by_key[key], issue, group=parents[key], board=board)
                for key, issue in outcome.done.items()
            ]
            self.counts["opened"] += len(created)
            self._created += created
            self.session.flush()
            self._record_dependency_rows(self._touching(created))
            self.session.commit()
            retry = self._sort_failures(outcome.failed)
            pending = [by_key[key] for key in retry] + pending
            if first_batch and created:
                # Ready work first: its agents start now, not after the whole spec (their
                # cards get a Status below, in the column of the phase they are in by then).
                first_batch = False
                ready = [t for t in created if not self._done_at_first_sight(t)]
                schedule_tickets(self.session, self.settings, ready, self.github.repo)
                self._set_statuses(board)

    def _adopt_proposed(self, board: Board | None) -> None:
        """New tasks proposed from an issue (bot/sync/proposals.py) take that issue as their
        ticket: no second issue. It is linked, put on the board and written as any
        ticket below; what its author wrote stays above the generated part."""
        waiting = {t.key: t for t in self._active_tasks() if t.ticket is None}
        proposed = adoptions(self.session, self.spec) if waiting else {}
        proposed = {key: p for key, p in proposed.items() if key in waiting}
        if not proposed:
            return
        taken = set(
            self.session.scalars(
                select(Ticket.issue_number).where(
                    Ticket.repository_id == self.spec.repository_id,
                    Ticket.issue_number.in_([p.issue_number for p in proposed.values()]),
                )
            )
        )
        self.session.commit()
        found = self.issues.read_issues([p.issue_node_id or "" for p in proposed.values()])
        for key, proposal in proposed.items():
            issue = found.get(proposal.issue_node_id or "")
            if issue is None or issue.number in taken:
                proposal.state = "dropped"  # gone, or a ticket already: the task gets its own
                continue
            self._record_ticket(waiting[key], issue, board=board, linked=False, adopted=True)
            proposal.state = "adopted"
            self.counts["adopted"] += 1
        self.session.commit()

    def _batch_size(self) -> int:
        """How many new issues the next request creates: a whole batch, or what the budget
        holds within two writes' time when that is less (the last of a window).

        Items are counted when GitHub made them, so a window frees them in the batches
        they were made in. Sent as they come free (three, one, then twenty-five) each
        bit costs a write, and comes free again in bits in the next window."""
        pacer = self.github.repo.connection.pacer
        whole = min(CREATE_BATCH, pacer.most_at_once())
        if self.short_requests:
            quick = int(SHORT_REQUEST_SECONDS / _seconds_per_issue[0])
            whole = min(whole, max(FEWEST_AT_ONCE, quick))
        soon = pacer.room_within(2 * pacer.interval)
        return soon if 0 < soon < whole else whole

    def _learn_creation_time(self, created: int) -> None:
        """What the creation request just answered took GitHub per issue (averaged)."""
        if created:
            seconds = self.github.repo.connection.last_mutation_seconds / created
            _seconds_per_issue[0] = 0.5 * _seconds_per_issue[0] + 0.5 * seconds

    def _sort_failures(self, failed: dict[str, str]) -> list[str]:
        """Keys to try again (GitHub asked us to slow down); the rest are refused."""
        retry = [key for key, why in failed.items() if any(t in why.lower() for t in TOO_FAST)]
        if retry:
            log.warning("GitHub asked to slow down while creating %s", ", ".join(retry))
            self.github.repo.connection.pacer.hold_off(HOLD_OFF_SECONDS)
        self.refused.update({k: v for k, v in failed.items() if k not in retry})
        return retry

    def _creation_done(self) -> None:
        if not self.refused and self.spec.creation_started_at is not None:
            self.spec.creation_started_at = None
            self.session.commit()

    def _ticket_draft(self, task: SpecTask, group: int | None, board: Board | None) -> NewIssue:
        return NewIssue(
            key=task.key,
            title=render.ticket_title(task),
            body=render.ticket_body(self.spec, task, self._dependency_tickets(task)),
            label_ids=self._labels(render.ticket_labels(self.spec, task)),
            parent_id=self._parent_node(group),
            project_id=board.project_id if board else None,
        )

    def _record_ticket(
        self,
        task: SpecTask,
        issue: WrittenIssue,
        group: int | None = None,
        board: Board | None = None,
        linked: bool = True,
        adopted: bool = False,
    ) -> Ticket:
        """`adopted`: a person's issue, of which specbridge has written nothing yet."""
        ticket = Ticket(
            repository_id=self.spec.repository_id,
            spec=self.spec,
            spec_task=task,
            issue_number=issue.number,
            issue_id=issue.database_id,
            issue_node_id=issue.node_id,
            content_hash=render.content_hash(issue.title, issue.body, issue.labels),
            written=None
            if adopted
            else _written(issue.title, render.split_ticket_body(issue.body)[1], issue.labels),
            state=IssueState(issue.state),
            state_reason=issue.state_reason,
            approval=Approval.PENDING if self.spec.approval_required else Approval.NOT_REQUIRED,
            parent_linked=linked,
            group=self._group(group) if linked else None,
            project_item_id=issue.project_item_ids.get(board.project_id) if board else None,
        )
        ticket.dependencies = []  # new: known empty, not loaded
        self.session.add(ticket)
        return ticket

    # -- where tickets hang ----------------------------------------------------------

    def _linked(self) -> list[Ticket]:
        return [t for t in self.spec.tickets if t.parent_linked]

    def _group(self, position: int | None) -> IssueGroup | None:
        if position is None:
            return None
        if self._groups is None:
            self._groups = {g.position: g for g in self.spec.groups}
        return self._groups[position]

    def _parent_node(self, position: int | None) -> str | None:
        group = self._group(position)
        return group.issue_node_id if group else self.spec.tracking_issue_node_id

    def _move(self, moves: Sequence[tuple[Ticket, int]]) -> None:
        """Tickets that hung under the tracking issue go into groups, once."""
        if not moves:
            return
        links = [
            (str(t.id), self._parent_node(position), t.issue_node_id or "", True)
            for t, position in moves
        ]
        self.session.commit()
        outcome = self.issues.add_sub_issues(links)
        for ticket, position in moves:
            if str(ticket.id) in outcome.done:
                ticket.group = self._group(position)
        self.refused.update({f"move {k}": v for k, v in outcome.failed.items()})
        self.session.commit()

    def _link_unlinked(self) -> None:
        """Tickets not under their parent yet (found again by marker, or older ones)."""
        unlinked = [t for t in self.spec.tickets if not t.parent_linked and t.issue_node_id]
        if not unlinked or self.spec.tracking_issue_node_id is None:
            return
        unlinked = self._read_back_links(unlinked)
        if not unlinked:
            return
        placement = place(self.spec.groups, self._linked(), len(unlinked))
        self._create_groups(placement.new_groups)
        self._move(placement.moves)
        links = [
            (str(t.id), self._parent_node(parent), t.issue_node_id or "", True)
            for t, parent in zip(unlinked, placement.parents, strict=True)
        ]
        self.session.commit()
        outcome = self.issues.add_sub_issues(links)
        for ticket, parent in zip(unlinked, placement.parents, strict=True):
            if str(ticket.id) in outcome.done:
                ticket.parent_linked, ticket.group = True, self._group(parent)
        self.refused.update({f"link {k}": v for k, v in outcome.failed.items()})
        self.session.commit()

    def _read_back_links(self, unlinked: list[Ticket]) -> list[Ticket]:
        """Record the links GitHub already has (a sync cut short after creating issues
        under their parent); the tickets still unlinked. Sending those links again would
        be refused by a parent that is full."""
        ours = {g.issue_node_id: g for g in self.spec.groups if g.issue_node_id}
        self.session.commit()
        parents = self.issues.parents_of([t.issue_node_id or "" for t in unlinked])
        still = []
        for ticket in unlinked:
            parent = parents.get(ticket.issue_node_id or "")
            if parent == self.spec.tracking_issue_node_id or parent in ours:
                ticket.parent_linked, ticket.group = True, ours.get(parent)
            else:
                still.append(ticket)
        self.session.commit()
        return still

    # -- edits, closes, reopens --------------------------------------------------------

    def _update_tickets(self) -> None:
        """Tickets whose task changed: their issues as the spec says now, people's words kept.

        specbridge owns the generated part of the body, its own title and its own labels.
        The issues about to change are read first (one GraphQL request a hundred): text
        around the generated part stays; a title a person changed stays until the spec
        changes that title; labels the bot did not add stay; a person's edit inside the
        generated part is quoted in a comment before the part is rewritten."""
        due = []
        for task in self._active_tasks():
            ticket = task.ticket
            if ticket is None or ticket.issue_node_id is None:
                continue
            if ticket.state in (IssueState.DELETED, IssueState.TRANSFERRED):
                continue
            title = render.ticket_title(task)
            part = render.ticket_part(self.spec, task, self._dependency_tickets(task))
            labels = render.ticket_labels(self.spec, task)
            digest = render.content_hash(title, render.compose_ticket_body("", part, ""), labels)
            if ticket.content_hash != digest:
                due.append(_Due(ticket, task, title, part, labels, digest))
        if not due:
            return
        self.session.commit()
        now = self.issues.read_issues([d.ticket.issue_node_id or "" for d in due])
        edits, quotes = {}, []
        for item in due:
            issue = now.get(item.ticket.issue_node_id or "")
            edit = self._edit(item, issue)
            if edit is None:  # GitHub shows what the spec says already
                item.ticket.content_hash, item.ticket.written = item.digest, item.written
                continue
            edits[str(item.ticket.id)] = (item, edit)
            if item.quote is not None:
                quotes.append((str(item.ticket.id), item.ticket.issue_node_id or "", item.quote))
        self.session.commit()
        quoted = {key for key, _, _ in quotes}
        self._batch_by_batch(
            [(key, edit) for key, edit in edits.items() if key not in quoted],
            WRITE_BATCH,
            self._write_edits,
        )
        if not quotes:
            return
        # A person's words are quoted and then rewritten with no stop between: a sync
        # continued after the quote alone would quote them again.
        said = self.issues.add_comments(quotes)
        self.counts["quoted"] += len(said.done)
        for key, why in said.failed.items():
            # Not rewritten without the person's version said first: next sync again.
            self.refused[f"quote {key}"] = why
        self._write_edits([(key, edits[key]) for key in said.done])
        self.session.commit()

    def _write_edits(self, edits: Sequence[tuple[str, tuple[_Due, IssueUpdate]]]) -> None:
        if not edits:
            return
        outcome = self.issues.update_issues([edit for _, (_, edit) in edits])
        for key, (item, _) in edits:
            if key in outcome.done:
                item.ticket.content_hash, item.ticket.written = item.digest, item.written
                self.counts["changed"] += 1
        self.refused.update({f"edit {k}": v for k, v in outcome.failed.items()})

    def _edit(self, item: _Due, issue: WrittenIssue | None) -> IssueUpdate | None:
        """What to change on the issue, as it is now, for the generated part, title and
        labels to say what the spec says; None when nothing. Sets `item.written` and
        `item.quote`."""
        ticket = item.ticket
        handed_over = handed_over_labels(self.settings, ticket)
        if issue is None:  # not readable: written as the spec says
            item.written = _written(item.title, item.part, item.labels)
            body = render.compose_ticket_body("", item.part, "")
            labels = self._labels([*item.labels, *handed_over])
            return IssueUpdate(str(ticket.id), ticket.issue_node_id or "", item.title, body, labels)
        above, part_now, below = render.split_ticket_body(issue.body)
        last = ticket.written or _as_found(issue, part_now, self.spec)
        title = None
        if issue.title != item.title and (
            render.title_hash(item.title) != last.get("title")  # the spec changed it
            or render.title_hash(issue.title) == last.get("title")  # nobody did
        ):
            title = item.title
        body = None
        new_body = render.compose_ticket_body(above, item.part, below)
        written_part = render.split_ticket_body(new_body)[1]
        changed = part_now is None or render.part_hash(written_part) != last.get("part")
        if changed and render.part_hash(written_part) != render.part_hash(part_now):
            body = new_body
            if part_now is not None and render.part_hash(part_now) != last.get("part"):
                item.quote = render.edited_part_comment(item.task, part_now)
        ours_before = set(last.get("labels") or [])
        people = [n for n in issue.labels if n not in ours_before and n not in item.labels]
        wanted = list(dict.fromkeys([*item.labels, *handed_over, *people]))
        labels = None
        if set(wanted) != set(issue.labels):
            labels = self._labels(wanted)
        item.written = _written(item.title, written_part, item.labels)
        if title is None and body is None and labels is None:
            return None
        return IssueUpdate(str(ticket.id), ticket.issue_node_id or "", title, body, labels)

    def _done_at_first_sight(self, ticket: Ticket) -> bool:
        return ticket.spec_task is not None and ticket.spec_task.key in self.done

    def _close_done_at_first_sight(self) -> None:
        """New tickets of tasks the file already ticks: closed as completed, with a word why.
        Ticks on tasks that had issues before change nothing: their issues say what is done,
        and their files follow them (bot/sync/write_back.py)."""
        ticked = [
            t
            for t in self._created
            if self._done_at_first_sight(t) and t.state is IssueState.OPEN and t.issue_node_id
        ]
        if not ticked:
            return
        comment = render.ticked_comment(self.spec)
        comments = [(str(t.id), t.issue_node_id or "", comment) for t in ticked]
        closes = [(str(t.id), t.issue_node_id or "", "COMPLETED") for t in ticked]
        self.session.commit()
        self.issues.add_comments(comments)
        outcome = self.issues.close_issues(closes)
        now = datetime.now(UTC)
        for ticket in ticked:
            if str(ticket.id) in outcome.done:
                ticket.state, ticket.state_reason = IssueState.CLOSED, "completed"
                ticket.closed_at, ticket.phase = now, TicketPhase.DONE
                ticket.status_set = False  # its card goes to Done
                cancel_live_tasks(ticket, "ticked done in its spec file")
                self.counts["closed"] += 1
        self.refused.update({f"close {k}": v for k, v in outcome.failed.items()})
        self.session.commit()

    def close_removed(self) -> None:
        """Tasks gone from the spec: their open issues close as not planned, with a word why."""
        removed = [
            task
            for task in self.spec.tasks
            if task.removed_at is not None
            and task.ticket is not None
            and task.ticket.state is IssueState.OPEN
            and task.ticket.issue_node_id
        ]
        if not removed:
            return
        self.session.commit()
        self._batch_by_batch(removed, WRITE_BATCH, self._close_as_removed)

    def _close_as_removed(self, removed: Sequence[SpecTask]) -> None:
        """A batch's words and closes with no stop between: a sync continued after the
        words alone would say them again."""
        tickets = {task.key: task.ticket for task in removed if task.ticket is not None}
        self.issues.add_comments(
            [
                (task.key, tickets[task.key].issue_node_id or "", render.removed_task_comment(task))
                for task in removed
            ]
        )
        outcome = self.issues.close_issues(
            [(key, ticket.issue_node_id or "", "NOT_PLANNED") for key, ticket in tickets.items()]
        )
        now = datetime.now(UTC)
        for key in outcome.done:
            ticket = tickets[key]
            ticket.state, ticket.state_reason, ticket.closed_at = (
                IssueState.CLOSED,
                "not_planned",
                now,
            )
            self.counts["closed"] += 1
        self.refused.update({f"close {k}": v for k, v in outcome.failed.items()})

    def _reopen(self, returning: set[str]) -> None:
        """Tasks back in the spec: their issues, closed as not planned, reopen."""
        back = [
            task.ticket
            for task in self._active_tasks()
            if task.key in returning
            and task.ticket is not None
            and task.ticket.state is IssueState.CLOSED
            and task.ticket.state_reason == "not_planned"
        ]
        if not back:
            return
        self.session.commit()
        self._batch_by_batch(back, WRITE_BATCH, self._reopen_batch)

    def _reopen_batch(self, back: Sequence[Ticket]) -> None:
        outcome = self.issues.reopen_issues([(str(t.id), t.issue_node_id or "") for t in back])
        for ticket in back:
            if str(ticket.id) in outcome.done:
                ticket.state, ticket.state_reason, ticket.closed_at = IssueState.OPEN, None, None

    # -- dependencies --------------------------------------------------------------------

    def _touching(self, created: Sequence[Ticket]) -> list[SpecTask]:
        """The tasks of new tickets, and those that wait for them: the only ones whose
        dependency rows new tickets change."""
        if self._dependants is None:
            self._dependants = {}
            for task in self._active_tasks():
                for key in task.depends_on:
                    self._dependants.setdefault(key, []).append(task)
        keys = [t.spec_task.key for t in created if t.spec_task is not None]
        tasks = [self._tasks_by_key()[key] for key in keys]
        tasks += [waiting for key in keys for waiting in self._dependants.get(key, ())]
        return list(dict.fromkeys(tasks))

    def _record_dependency_rows(
        self, tasks: Sequence[SpecTask] | None = None
    ) -> list[TicketDependency]:
        """Dependency rows as the spec says, of `tasks` (every active task by default);
        returns the rows that should go."""
        to_remove: list[TicketDependency] = []
        for task in self._active_tasks() if tasks is None else tasks:
            ticket = task.ticket
            if ticket is None:
                continue
            wanted = {d.id: d for d in self._dependency_tickets(task)}
            for row in list(ticket.dependencies):
                if row.depends_on_id not in wanted:
                    to_remove.append(row)
            recorded = {row.depends_on_id for row in ticket.dependencies}
            for depends_on_id, depends_on in wanted.items():
                if depends_on_id not in recorded:
                    ticket.dependencies.append(TicketDependency(depends_on=depends_on))
        self.session.flush()
        return to_remove

    def _sync_dependencies(self) -> None:
        """Dependency rows, and GitHub's "blocked by" links, as the spec says."""
        to_remove = self._record_dependency_rows()
        unlink = [r for r in to_remove if r.on_github and r.depends_on.issue_node_id]
        link = [
            row
            for task in self._active_tasks()
            if task.ticket is not None
            for row in task.ticket.dependencies
            if row not in to_remove
            and not row.on_github
            and row.depends_on.issue_node_id
            and row.ticket.issue_node_id
        ]
        self.session.commit()
        kept: dict[str, str] = {}
        if unlink:
            kept = self.issues.remove_blocked_by([_link(row) for row in unlink]).failed
            self.refused.update({f"unlink {k}": v for k, v in kept.items()})
        for row in to_remove:
            if _key(row) not in kept:
                row.ticket.dependencies.remove(row)
                self.session.delete(row)
        self.session.commit()

        def add(batch: Sequence[TicketDependency]) -> None:
            added = self.issues.add_blocked_by([_link(row) for row in batch])
            for row in batch:
                row.on_github = _key(row) in added.done
            self.refused.update({f"link {k}": v for k, v in added.failed.items()})

        self._batch_by_batch(link, WRITE_BATCH, add)

    def _batch_by_batch(
        self, items: Sequence[Batched], size: int, write: Callable[[Sequence[Batched]], None]
    ) -> None:
        """`write` the items a request's worth at a time, committing what each batch
        recorded: the sync may give way between two (bot/github/pacing.py), and its
        continuation goes on from the first batch not recorded."""
        for start in range(0, len(items), size):
            write(items[start : start + size])
            self.session.commit()

    # -- the board -------------------------------------------------------------------------

    def _board(self) -> Board | None:
        config = self.github.config
        if not config.has_board:
            return None
        assert config.project_owner is not None and config.project_number is not None
        owner, number = config.project_owner, config.project_number
        self.session.commit()
        try:
            return carried(
                self._full_name,
                self.spec.source_commit,
                f"board {owner}/{number}",
                lambda: self.github.boards.find_board(owner, number),
                again=self.continuing,
            )
        except BoardNotFound as error:
            self._board_problem(str(error))
            return None

    def _board_problem(self, problem: str) -> None:
        log.warning(
            "%s: %s; issues are created without a board", self.spec.repository.full_name, problem
        )
        self.spec.repository.settings_error = f"{CONFIG_PATH}: {problem}"
        self.session.commit()

    def _put_on_board(self, board: Board | None) -> None:
        """Tickets of a board named later (or whose card was deleted) get a card."""
        if board is None:
            return
        missing = [t for t in self.spec.tickets if t.project_item_id is None and t.issue_node_id]
        missing = [t for t in missing if t.state is not IssueState.DELETED]
        if not missing:
            return
        self.session.commit()

        def add(batch: Sequence[Ticket]) -> None:
            item_ids = self.github.boards.add_to_board(
                board, [t.issue_node_id or "" for t in batch]
            )
            for ticket, item_id in zip(batch, item_ids, strict=True):
                ticket.project_item_id, ticket.status_set = item_id, False

        self._batch_by_batch(missing, BOARD_BATCH, add)

    def _set_statuses(self, board: Board | None) -> None:
        """Cards whose Status was never set go to the column of their ticket's phase."""
        if board is None:
            return
        unset = [t for t in self.spec.tickets if t.project_item_id and not t.status_set]
        by_column: dict[str, list[Ticket]] = {}
        names = self.github.config.status
        try:
            for ticket in unset:
                by_column.setdefault(column_for(board, names, ticket.phase), []).append(ticket)
        except ColumnMissing as error:
            self._board_problem(str(error))
            return
        self.session.commit()
        for column, tickets in by_column.items():

            def set_status(batch: Sequence[Ticket], column: str = column) -> None:
                self.github.boards.set_status(
                    board, [t.project_item_id or "" for t in batch], column
                )
                for ticket in batch:
                    ticket.status_set = True

            self._batch_by_batch(tickets, BOARD_BATCH, set_status)

    # -- the tracking issue's progress ---------------------------------------------------

    def refresh_groups_and_tracking(self) -> None:
        """Group issues close when all their tickets have (and reopen); the tracking issue
        shows the progress as it is now."""
        closing = [g for g in self.spec.groups if not g.closed and _all_closed(g.tickets)]
        reopening = [g for g in self.spec.groups if g.closed and not _all_closed(g.tickets)]
        self.session.commit()
        if closing:
            done = self.issues.close_issues(
                [(str(g.position), g.issue_node_id, "COMPLETED") for g in closing]
            ).done
            for group in closing:
                group.closed = str(group.position) in done
        if reopening:
            done = self.issues.reopen_issues(
                [(str(g.position), g.issue_node_id) for g in reopening]
            ).done
            for group in reopening:
                group.closed = str(group.position) not in done
        self.session.commit()
        self.update_tracking_issue()

    def update_tracking_issue(self) -> None:
        spec = self.spec
        if spec.tracking_issue_node_id is None:
            return
        title = render.tracking_title(spec)
        body = render.tracking_body(spec, self._listed_tickets())
        labels = render.tracking_labels(spec)
        digest = render.content_hash(title, body, labels)
        if spec.tracking_issue_hash == digest:
            return
        update = IssueUpdate(
            "tracking", spec.tracking_issue_node_id, title, body, self._labels(labels)
        )
        self.session.commit()
        outcome = self.issues.update_issues([update])
        if "tracking" in outcome.done:
            spec.tracking_issue_hash = digest
        self.session.commit()

    def _listed_tickets(self) -> list[Ticket]:
        order = {t.key: t.position for t in self.spec.tasks}
        tickets = [t for t in self.spec.tickets if t.spec_task is not None]
        return sorted(
            tickets, key=lambda t: (t.spec_task.removed_at is not None, order[t.spec_task.key])
        )  # type: ignore[union-attr]

    # -- helpers ---------------------------------------------------------------------------

    def _tasks_by_key(self) -> dict[str, SpecTask]:
        if self._active is None:
            self._active = {t.key: t for t in self.spec.tasks if t.removed_at is None}
        return self._active

    def _active_tasks(self) -> list[SpecTask]:
        return list(self._tasks_by_key().values())

    def _dependency_tickets(self, task: SpecTask) -> list[Ticket]:
        by_key = self._tasks_by_key()
        return [
            by_key[key].ticket
            for key in task.depends_on
            if key in by_key and by_key[key].ticket  # type: ignore[misc]
        ]


@dataclass
class _Due:
    """A ticket whose task changed, and what the spec says of it now."""

    ticket: Ticket
    task: SpecTask
    title: str
    part: str
    labels: list[str]
    digest: str
    written: dict[str, Any] | None = None
    quote: str | None = None


def _written(title: str, part: str | None, labels: Iterable[str]) -> dict[str, Any]:
    """What specbridge wrote on an issue, as Ticket.written keeps it."""
    return {
        "title": render.title_hash(title),
        "part": render.part_hash(part),
        "labels": sorted(set(labels)),
    }


def _as_found(issue: WrittenIssue, part: str | None, spec: Spec) -> dict[str, Any]:
    """What specbridge last wrote, when it was not kept (an issue written before it was,
    or one adopted): the issue's title and generated part as they are, and the labels
    that look like its own."""
    ours = {render.LABEL, *spec.labels}
    return {
        "title": render.title_hash(issue.title),
        "part": render.part_hash(part),
        "labels": [n for n in issue.labels if n in ours or n.startswith("priority: ")],
    }


def _all_closed(tickets: Sequence[Ticket]) -> bool:
    return bool(tickets) and all(t.state is not IssueState.OPEN for t in tickets)


def _link(row: TicketDependency) -> tuple[str, str, str]:
    return _key(row), row.ticket.issue_node_id or "", row.depends_on.issue_node_id or ""


def _key(row: TicketDependency) -> str:
    return f"{row.ticket_id}>{row.depends_on_id}"


def _as_written(issue) -> WrittenIssue:  # type: ignore[no-untyped-def]
    """A REST issue, as the GraphQL writer describes issues."""
    return WrittenIssue(
        number=issue.number,
        database_id=issue.id,
        node_id=issue.node_id,
        title=issue.title,
        body=issue.body,
        state=issue.state,
        state_reason=issue.state_reason,
        labels=issue.labels,
    )

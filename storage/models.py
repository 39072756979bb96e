"""SQLAlchemy 2.0 models for everything specbridge records.

Rows are never deleted by normal operation: removed things get a timestamp
(`removed_at`) or a state, so history and foreign keys stay intact.
Enumerations are stored as plain strings with a CHECK constraint, which
migrates the same way on SQLite and PostgreSQL.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# Stable constraint names, so migrations can refer to them on every backend.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON, datetime: DateTime(timezone=True)}


class SpecPhase(enum.StrEnum):
    EXPLORE = "explore"
    REQUIREMENTS = "requirements"
    DESIGN = "design"
    TASKS = "tasks"


class SpecStatus(enum.StrEnum):
    DRAFT = "draft"
    PLANNED = "planned"
    EXECUTING = "executing"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    INVALID = "invalid"


class TicketPhase(enum.StrEnum):
    BACKLOG = "backlog"
    ANALYZING = "analyzing"
    BUILDING = "building"
    TESTING = "testing"
    DONE = "done"


class IssueState(enum.StrEnum):
    OPEN = "open"
    CLOSED = "closed"
    DELETED = "deleted"
    TRANSFERRED = "transferred"


class Approval(enum.StrEnum):
    NOT_REQUIRED = "not_required"
    PENDING = "pending"
    APPROVED = "approved"


class TaskStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    # Ready, waiting for a slot: a cap, or an agent on the same files (bot/agents/fleet.py).
    WAITING = "waiting"


class DeliveryStatus(enum.StrEnum):
    RECEIVED = "received"
    QUEUED = "queued"
    PROCESSING = "processing"
    DONE = "done"
    IGNORED = "ignored"
    FAILED = "failed"


def _enum(kind: type[enum.StrEnum]) -> Enum:
    return Enum(
        kind,
        native_enum=False,
        create_constraint=True,
        length=16,
        name=kind.__name__.lower(),
        values_callable=lambda members: [m.value for m in members],
        validate_strings=True,
    )


def _created() -> Mapped[datetime]:
    return mapped_column(server_default=func.now())


def _updated() -> Mapped[datetime]:
    return mapped_column(server_default=func.now(), onupdate=func.now())


class Installation(Base):
    __tablename__ = "installations"

    id: Mapped[int] = mapped_column(primary_key=True)
    github_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    account_login: Mapped[str] = mapped_column(String(255))
    account_type: Mapped[str] = mapped_column(String(32), default="Organization")
    suspended_at: Mapped[datetime | None]
    removed_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()

    repositories: Mapped[list[Repository]] = relationship(back_populates="installation")


class Repository(Base):
    __tablename__ = "repositories"

    id: Mapped[int] = mapped_column(primary_key=True)
    installation_id: Mapped[int | None] = mapped_column(
        ForeignKey("installations.id", ondelete="SET NULL"), index=True
    )
    github_id: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    full_name: Mapped[str] = mapped_column(String(255), unique=True)
    default_branch: Mapped[str] = mapped_column(String(255), default="main")
    # The last good .github/specbridge.yml, and the error of the last bad one.
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    settings_error: Mapped[str | None] = mapped_column(Text)
    removed_at: Mapped[datetime | None]
    # The default branch's head whose spec files are all synced: the periodic
    # head check (bot/events/heads.py) syncs the repository when the head differs.
    synced_head: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()

    installation: Mapped[Installation | None] = relationship(back_populates="repositories")
    specs: Mapped[list[Spec]] = relationship(back_populates="repository")

    @property
    def installation_github_id(self) -> int | None:
        """GitHub's id of the App's installation here, for a connection as the App (None:
        not known, or not an App)."""
        return self.installation.github_id if self.installation else None


class Spec(Base):
    __tablename__ = "specs"
    __table_args__ = (UniqueConstraint("repository_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    repository_id: Mapped[int] = mapped_column(ForeignKey("repositories.id"), index=True)
    key: Mapped[str] = mapped_column(String(128))  # the spec's `id:` in its file
    path: Mapped[str] = mapped_column(Text)  # git's paths have no length the validator could hold
    title: Mapped[str] = mapped_column(String(512))
    # None only for a file that never loaded (status invalid).
    phase: Mapped[SpecPhase | None] = mapped_column(_enum(SpecPhase))
    status: Mapped[SpecStatus] = mapped_column(_enum(SpecStatus), default=SpecStatus.DRAFT)
    owner: Mapped[str | None] = mapped_column(String(255))
    labels: Mapped[list[Any]] = mapped_column(default=list)
    approval_required: Mapped[bool] = mapped_column(Boolean, default=False)
    agent: Mapped[str] = mapped_column(String(128), default="default")
    context: Mapped[str] = mapped_column(Text, default="")
    design: Mapped[str] = mapped_column(Text, default="")
    source_commit: Mapped[str | None] = mapped_column(String(64))
    content_hash: Mapped[str | None] = mapped_column(String(64))
    # Findings of the last load of this file that failed validation, and its commit.
    findings: Mapped[list[Any]] = mapped_column(default=list)
    findings_commit: Mapped[str | None] = mapped_column(String(64))
    tracking_issue_number: Mapped[int | None]
    tracking_issue_node_id: Mapped[str | None] = mapped_column(String(128))
    tracking_issue_hash: Mapped[str | None] = mapped_column(String(64))
    tracking_issue_closed: Mapped[bool] = mapped_column(Boolean, default=False)
    tickets_total: Mapped[int] = mapped_column(Integer, default=0)
    tickets_closed: Mapped[int] = mapped_column(Integer, default=0)
    # Set before issues are sent for creation, cleared once all are recorded: an
    # issue GitHub may have created without our hearing back is looked for (by
    # its hidden marker) before anything is created again.
    creation_started_at: Mapped[datetime | None]
    # A sync paused by GitHub's content budget continues by itself at this time.
    resume_at: Mapped[datetime | None]
    # What the tracking issue says about a sync under way ("40 of 600 issues…").
    sync_note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()
    # What `/budget <spec> +N` added to the spec's caps (bot/agents/budgets.py).
    budget_extra_usd: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    budget_extra_tokens: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    # Paused from its tracking issue (bot/steer/dashboard.py): no new agent run starts.
    paused: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")

    repository: Mapped[Repository] = relationship(back_populates="specs")
    versions: Mapped[list[SpecVersion]] = relationship(
        back_populates="spec", order_by="SpecVersion.id"
    )
    requirements: Mapped[list[SpecRequirement]] = relationship(
        back_populates="spec", order_by="SpecRequirement.position"
    )
    tasks: Mapped[list[SpecTask]] = relationship(
        back_populates="spec", order_by="SpecTask.position"
    )
    tickets: Mapped[list[Ticket]] = relationship(back_populates="spec")
    groups: Mapped[list[IssueGroup]] = relationship(
        back_populates="spec", order_by="IssueGroup.position"
    )
    # A sync under way, over all its jobs (it may continue in later ones): when its first
    # job started, and what its jobs did so far (counts, writes, jobs). None between syncs.
    sync_started_at: Mapped[datetime | None]
    sync_totals: Mapped[dict[str, Any] | None]


class IssueGroup(Base):
    """An issue between a spec's tracking issue and its tickets.

    GitHub allows 100 sub-issues a parent (closed ones count): a spec with more
    tickets hangs them in groups of at most 100 under its tracking issue.
    """

    __tablename__ = "issue_groups"
    __table_args__ = (UniqueConstraint("spec_id", "position"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    spec_id: Mapped[int] = mapped_column(ForeignKey("specs.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)  # 1, 2, … in the order they were made
    issue_number: Mapped[int]
    issue_node_id: Mapped[str] = mapped_column(String(128))
    content_hash: Mapped[str | None] = mapped_column(String(64))
    closed: Mapped[bool] = mapped_column(Boolean, default=False)

    spec: Mapped[Spec] = relationship(back_populates="groups")
    tickets: Mapped[list[Ticket]] = relationship(back_populates="group")


class SpecVersion(Base):
    """One row each time a merge changes a spec: the commit and what changed."""

    __tablename__ = "spec_versions"
    __table_args__ = (UniqueConstraint("spec_id", "commit_sha"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    spec_id: Mapped[int] = mapped_column(ForeignKey("specs.id"), index=True)
    commit_sha: Mapped[str] = mapped_column(String(64))
    content_hash: Mapped[str] = mapped_column(String(64))
    tasks_added: Mapped[list[Any]] = mapped_column(default=list)
    tasks_removed: Mapped[list[Any]] = mapped_column(default=list)
    tasks_changed: Mapped[list[Any]] = mapped_column(default=list)
    created_at: Mapped[datetime] = _created()

    spec: Mapped[Spec] = relationship(back_populates="versions")


class SpecRequirement(Base):
    __tablename__ = "spec_requirements"
    __table_args__ = (UniqueConstraint("spec_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    spec_id: Mapped[int] = mapped_column(ForeignKey("specs.id"), index=True)
    key: Mapped[str] = mapped_column(String(64))
    text: Mapped[str] = mapped_column(Text)
    position: Mapped[int] = mapped_column(Integer, default=0)
    removed_at: Mapped[datetime | None]

    spec: Mapped[Spec] = relationship(back_populates="requirements")
    acceptance_criteria: Mapped[list[SpecAcceptanceCriterion]] = relationship(
        back_populates="requirement", order_by="SpecAcceptanceCriterion.position"
    )


class SpecAcceptanceCriterion(Base):
    __tablename__ = "spec_acceptance_criteria"
    __table_args__ = (UniqueConstraint("requirement_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    requirement_id: Mapped[int] = mapped_column(ForeignKey("spec_requirements.id"), index=True)
    key: Mapped[str] = mapped_column(String(64))
    text: Mapped[str] = mapped_column(Text)
    position: Mapped[int] = mapped_column(Integer, default=0)
    removed_at: Mapped[datetime | None]

    requirement: Mapped[SpecRequirement] = relationship(back_populates="acceptance_criteria")


class SpecTask(Base):
    """The planning artefact: a task as written in the spec file."""

    __tablename__ = "spec_tasks"
    __table_args__ = (UniqueConstraint("spec_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    spec_id: Mapped[int] = mapped_column(ForeignKey("specs.id"), index=True)
    key: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(String(512))
    description: Mapped[str] = mapped_column(Text, default="")
    priority: Mapped[str] = mapped_column(String(16), default="medium")
    requirement_keys: Mapped[list[Any]] = mapped_column(default=list)
    depends_on: Mapped[list[Any]] = mapped_column(default=list)
    agent: Mapped[str | None] = mapped_column(String(128))
    position: Mapped[int] = mapped_column(Integer, default=0)
    removed_at: Mapped[datetime | None]
    # The commit where the task last changed: its issue links the spec file there.
    changed_commit: Mapped[str | None] = mapped_column(String(64))
    # The files it touches, as globs (None: unknown), and whether it runs beside the
    # spec's other tasks anyway (spec-kit's [P]): what keeps two agents off one file.
    files: Mapped[list[Any] | None] = mapped_column(JSON, nullable=True)
    parallel: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    # Runs of its agent, each on a branch of its own (None: the profile's `attempts`).
    attempts: Mapped[int | None] = mapped_column(Integer)

    spec: Mapped[Spec] = relationship(back_populates="tasks")
    ticket: Mapped[Ticket | None] = relationship(back_populates="spec_task")


class Ticket(Base):
    """The execution artefact: one GitHub issue on the board for one SpecTask."""

    __tablename__ = "tickets"
    __table_args__ = (UniqueConstraint("repository_id", "issue_number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    repository_id: Mapped[int] = mapped_column(ForeignKey("repositories.id"), index=True)
    spec_id: Mapped[int | None] = mapped_column(
        ForeignKey("specs.id", ondelete="SET NULL"), index=True
    )
    spec_task_id: Mapped[int | None] = mapped_column(
        ForeignKey("spec_tasks.id", ondelete="SET NULL"), index=True, unique=True
    )
    issue_number: Mapped[int]
    issue_id: Mapped[int | None] = mapped_column(BigInteger)
    issue_node_id: Mapped[str | None] = mapped_column(String(128))
    project_item_id: Mapped[str | None] = mapped_column(String(128))
    # Whether the card's Status has been set since it was put on the board.
    status_set: Mapped[bool] = mapped_column(Boolean, default=False)
    parent_linked: Mapped[bool] = mapped_column(Boolean, default=False)
    # The group issue it hangs under, or none: directly under the tracking issue.
    group_id: Mapped[int | None] = mapped_column(
        ForeignKey("issue_groups.id", ondelete="SET NULL"), index=True
    )
    # A hash of the title, body and labels last written, so an unchanged
    # task costs no GitHub write.
    content_hash: Mapped[str | None] = mapped_column(String(64))
    # What specbridge itself last wrote on the issue, to tell people's edits from its own:
    # {"title": hash, "part": hash of the generated part of the body, "labels": [names]}.
    # None: not known (an issue written before it was kept, or one adopted as a ticket).
    written: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    phase: Mapped[TicketPhase] = mapped_column(_enum(TicketPhase), default=TicketPhase.BACKLOG)
    state: Mapped[IssueState] = mapped_column(_enum(IssueState), default=IssueState.OPEN)
    state_reason: Mapped[str | None] = mapped_column(String(32))
    approval: Mapped[Approval] = mapped_column(_enum(Approval), default=Approval.NOT_REQUIRED)
    approved_by: Mapped[str | None] = mapped_column(String(255))
    blocked: Mapped[bool] = mapped_column(Boolean, default=False)
    blocked_reason: Mapped[str | None] = mapped_column(Text)
    # `/agent <profile>` on the issue: wins over the spec's and the task's agent.
    agent_override: Mapped[str | None] = mapped_column(String(128))
    # Why its last agent run failed, said where people look (its card, a label, the
    # tracking issue, the status page); None when it did not, or a new run started.
    failure: Mapped[str | None] = mapped_column(Text)
    closed_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()

    repository: Mapped[Repository] = relationship()
    spec: Mapped[Spec | None] = relationship(back_populates="tickets")
    spec_task: Mapped[SpecTask | None] = relationship(back_populates="ticket")
    group: Mapped[IssueGroup | None] = relationship(back_populates="tickets")
    tasks: Mapped[list[Task]] = relationship(back_populates="ticket", order_by="Task.id")
    dependencies: Mapped[list[TicketDependency]] = relationship(
        foreign_keys="TicketDependency.ticket_id", back_populates="ticket"
    )


class TicketDependency(Base):
    """`ticket` waits for `depends_on` (from the spec's `depends_on`)."""

    __tablename__ = "ticket_dependencies"

    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), primary_key=True)
    depends_on_id: Mapped[int] = mapped_column(
        ForeignKey("tickets.id"), primary_key=True, index=True
    )
    # Also shown on GitHub as the issue's "blocked by" relationship.
    on_github: Mapped[bool] = mapped_column(Boolean, default=False)

    ticket: Mapped[Ticket] = relationship(foreign_keys=[ticket_id], back_populates="dependencies")
    depends_on: Mapped[Ticket] = relationship(foreign_keys=[depends_on_id])


class Task(Base):
    """One execution attempt by an agent for a ticket."""

    __tablename__ = "tasks"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    status: Mapped[TaskStatus] = mapped_column(_enum(TaskStatus), default=TaskStatus.QUEUED)
    agent: Mapped[str] = mapped_column(String(128))
    rq_job_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    queued_at: Mapped[datetime] = _created()
    started_at: Mapped[datetime | None]
    heartbeat_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    branch: Mapped[str | None] = mapped_column(String(255))
    pull_request_number: Mapped[int | None]
    error: Mapped[str | None] = mapped_column(Text)
    log_tail: Mapped[str | None] = mapped_column(Text)
    # 0: the first run; n: the nth run again on the same branch, asked for by a review.
    revision: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    review: Mapped[str | None] = mapped_column(Text)  # what the reviewers asked, for the prompt
    summary: Mapped[str | None] = mapped_column(Text)  # the agent's own account of its run
    # Set when the task went to an agent GitHub runs (no worker holds it).
    dispatched_at: Mapped[datetime | None]
    # A local run's stages past its agent: a retry resumes from them, never running it again.
    agent_ended_at: Mapped[datetime | None]
    pushed_commit: Mapped[str | None] = mapped_column(String(64))
    # A revision that fixes what the repository's checks found (its `review` says what),
    # not one a person asked for.
    fixes_checks: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    # The workflow run a `hosted: workflow` task dispatched (bot/agents/hosted.py).
    workflow_run_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    # A revision that resolves the conflicts of merging this commit of the default
    # branch into its pull request's (bot/agents/freshen.py): its commit has it as parent.
    merges_base: Mapped[str | None] = mapped_column(String(64))
    # One of several attempts at the ticket (a profile's `attempts`): its number, which
    # ends its branch's name (specbridge/<spec>/<task>/<n>).
    attempt_number: Mapped[int | None] = mapped_column(Integer)
    # What the run cost and delivered (bot/agents/usage.py, bot/agents/costs.py): its
    # preset ("command" for a command of the operator's, "hosted" for an agent GitHub
    # runs), model, wall time, why it ended, its usage, and its pull request's outcome.
    preset: Mapped[str | None] = mapped_column(String(32))
    model: Mapped[str | None] = mapped_column(String(128))
    wall_seconds: Mapped[float | None] = mapped_column(Float)
    exit_reason: Mapped[str | None] = mapped_column(String(32))
    input_tokens: Mapped[int | None] = mapped_column(BigInteger)
    output_tokens: Mapped[int | None] = mapped_column(BigInteger)
    cache_read_tokens: Mapped[int | None] = mapped_column(BigInteger)
    cost_usd: Mapped[float | None] = mapped_column(Float)
    # The cost is tokens times the profile's price table, not the agent's own figure.
    cost_estimated: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    turns: Mapped[int | None] = mapped_column(Integer)
    pull_request_outcome: Mapped[str | None] = mapped_column(String(16))  # open|merged|closed
    merged_at: Mapped[datetime | None]
    # Queued, and not started because of this budget cap, or its spec paused
    # (bot/agents/budgets.py).
    budget_hold: Mapped[str | None] = mapped_column(Text)

    ticket: Mapped[Ticket] = relationship(back_populates="tasks")


class CheckVerdict(Base):
    """What the repository's checks said of one head commit of an agent's pull request,
    acted on once: `failed` (the card back to Building, the agent told, or people) or
    `passed` (marked ready for review, reviewers asked). bot/agents/checks.py."""

    __tablename__ = "check_verdicts"
    __table_args__ = (UniqueConstraint("ticket_id", "head_sha", "verdict"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    pull_request_number: Mapped[int]
    head_sha: Mapped[str] = mapped_column(String(64))
    verdict: Mapped[str] = mapped_column(String(16))  # failed | passed
    checks: Mapped[list[Any]] = mapped_column(default=list)  # the names it is about
    created_at: Mapped[datetime] = _created()


class Delivery(Base):
    """Every webhook received, stored before it is acknowledged."""

    __tablename__ = "deliveries"

    id: Mapped[int] = mapped_column(primary_key=True)
    delivery_id: Mapped[str] = mapped_column(String(64), unique=True)
    event: Mapped[str] = mapped_column(String(64))
    action: Mapped[str | None] = mapped_column(String(64))
    installation_github_id: Mapped[int | None] = mapped_column(BigInteger)
    repository_full_name: Mapped[str | None] = mapped_column(String(255), index=True)
    payload: Mapped[dict[str, Any]]
    # The outbox: a delivery not done is queued again until it is (bot/deliveries.py).
    status: Mapped[DeliveryStatus] = mapped_column(
        _enum(DeliveryStatus), default=DeliveryStatus.RECEIVED, index=True
    )
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # Queued for a retry: not to run before this.
    next_attempt_at: Mapped[datetime | None]
    # Processing: the worker holds it until this, renewing while it works.
    lease_until: Mapped[datetime | None]
    received_at: Mapped[datetime] = _created()
    processed_at: Mapped[datetime | None]


class TaskProposal(Base):
    """A change of a spec's tasks asked for on GitHub, proposed as a pull request that
    edits the spec's tasks file: a task to add (an issue made a sub-issue of the
    tracking issue, or `/add-task`) or to remove (a ticket taken out of the tracking
    issue, or closed as not planned). The sync that finds an added task in the merged
    file makes its issue the task's ticket instead of opening another."""

    __tablename__ = "task_proposals"
    __table_args__ = (UniqueConstraint("repository_id", "branch"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    repository_id: Mapped[int] = mapped_column(ForeignKey("repositories.id"), index=True)
    spec_id: Mapped[int] = mapped_column(ForeignKey("specs.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # add | remove
    task_key: Mapped[str] = mapped_column(String(64))
    # The issue to adopt as the added task's ticket (none for `/add-task`), or the
    # ticket's issue whose task is to go.
    issue_number: Mapped[int | None]
    issue_node_id: Mapped[str | None] = mapped_column(String(128))
    branch: Mapped[str] = mapped_column(String(255))
    pull_request_number: Mapped[int | None]
    requested_by: Mapped[str] = mapped_column(String(255))
    # open, then adopted (an addition whose issue became the ticket), merged (a removal)
    # or dropped (closed unmerged, or an issue that could not be adopted)
    state: Mapped[str] = mapped_column(String(16), default="open")
    created_at: Mapped[datetime] = _created()

    spec: Mapped[Spec] = relationship()


class CommandRun(Base):
    """Every comment command: who, what, allowed or refused, and the result."""

    __tablename__ = "command_runs"
    __table_args__ = (UniqueConstraint("comment_id", "line"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    repository_id: Mapped[int] = mapped_column(ForeignKey("repositories.id"), index=True)
    issue_number: Mapped[int]
    comment_id: Mapped[int] = mapped_column(BigInteger)
    # Lines count from 1; 0: a review that requested changes, its id in comment_id
    # (bot/events/handlers/pull_request_review.py).
    line: Mapped[int] = mapped_column(Integer, default=1)
    user_login: Mapped[str] = mapped_column(String(255))
    command: Mapped[str] = mapped_column(String(64))
    arguments: Mapped[str] = mapped_column(Text, default="")
    allowed: Mapped[bool] = mapped_column(Boolean)
    refusal_reason: Mapped[str | None] = mapped_column(Text)
    result: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = _created()


class GitHubPace(Base):
    """When an installation may next write to GitHub (without Redis; see bot/github/pacing.py)."""

    __tablename__ = "github_pace"

    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    next_write_at: Mapped[float] = mapped_column(Float)


class GitHubContentUse(Base):
    """One item an installation created on GitHub, and when: its content budget, without Redis."""

    __tablename__ = "github_content_use"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(128), index=True)
    at: Mapped[float] = mapped_column(Float)


class ChoreRun(Base):
    """When a periodic chore that all processes share last ran, and how far it got.

    A process runs such a chore only after claiming its row (one UPDATE), so N
    workers sweep GitHub once per interval, not N times.
    """

    __tablename__ = "chore_runs"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    ran_at: Mapped[datetime | None]
    # The redelivery sweep: the newest of GitHub's webhook delivery ids it has read.
    mark: Mapped[int | None] = mapped_column(BigInteger)


class AgentUserToken(Base):
    """The person's token specbridge keeps for the agents GitHub runs, from
    `specbridge setup --agent-user` (bot/github/user_token.py): both tokens encrypted with
    SPECBRIDGE_SECRET_KEY, the pair replaced whole at each renewal (`generation` + 1)."""

    __tablename__ = "agent_user_tokens"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    access_token: Mapped[str] = mapped_column(Text)
    refresh_token: Mapped[str | None] = mapped_column(Text)
    access_expires_at: Mapped[datetime | None]
    refresh_expires_at: Mapped[datetime | None]
    generation: Mapped[int] = mapped_column(Integer, default=0)
    # Why it can no longer be renewed (GitHub's error), until someone authorizes again.
    lost: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()


class PlanningStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    ASKING = "asking"  # the planner asked questions on the idea's issue: it waits for answers
    OPENED = "opened"  # its pull request is open, for people to review and merge
    MERGED = "merged"
    FAILED = "failed"
    CANCELLED = "cancelled"


class PlanningRun(Base):
    """One run of the planner for an idea's issue: one phase of its spec (requirements,
    design, tasks), written by an agent and proposed in a pull request
    (bot/agents/planning.py). A revision or an answered question is a new run."""

    __tablename__ = "planning_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    repository_id: Mapped[int] = mapped_column(ForeignKey("repositories.id"), index=True)
    issue_number: Mapped[int] = mapped_column(Integer, index=True)  # the idea's issue
    issue_node_id: Mapped[str | None] = mapped_column(String(128))
    title: Mapped[str] = mapped_column(String(512))
    idea: Mapped[str] = mapped_column(Text, default="")  # what and why, as the person said it
    asked_by: Mapped[str] = mapped_column(String(255))
    phase: Mapped[SpecPhase] = mapped_column(_enum(SpecPhase))
    status: Mapped[PlanningStatus] = mapped_column(
        _enum(PlanningStatus), default=PlanningStatus.QUEUED
    )
    agent: Mapped[str] = mapped_column(String(128))
    spec_format: Mapped[str | None] = mapped_column(String(16))
    spec_path: Mapped[str | None] = mapped_column(Text)  # the YAML file, or the folder
    spec_key: Mapped[str | None] = mapped_column(String(128))
    branch: Mapped[str | None] = mapped_column(String(255))
    pull_request_number: Mapped[int | None]
    revision: Mapped[int] = mapped_column(Integer, default=0)
    review: Mapped[str | None] = mapped_column(Text)  # what a revision is asked
    questions: Mapped[str | None] = mapped_column(Text)  # what the planner asked back
    error: Mapped[str | None] = mapped_column(Text)
    log_tail: Mapped[str | None] = mapped_column(Text)
    summary: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = _created()
    started_at: Mapped[datetime | None]
    # Written while it runs, as a Task's: one silent too long lost its worker (reaper.py).
    heartbeat_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]

    repository: Mapped[Repository] = relationship()

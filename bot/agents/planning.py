"""From an idea to tasks: the planner writes a spec one phase at a time.

`/specify` on an issue (or the label `specbridge: idea`) queues a PlanningRun for the
phase `requirements`; `run_planning` is its `agents` queue job: a workspace at the
default branch (or at its pull request's branch, for a revision), a prompt with the
idea, what people with write access said on its issue, the earlier phases' files and
the repository's instructions for agents, then the `planner:` profile's command in
the sandbox. What it leaves is hostile input: it may have written only the spec's
own file or folder (anything else and nothing is committed), the spec must load in
the repository's format at the phase asked, and every text read back goes through
bot/agents/tree.py. Then the bot's git commits and pushes it, and a pull request
"Spec: <title> — <phase>" is opened for the idea's issue.

The planner may ask instead (its questions file, or `[NEEDS CLARIFICATION: ...]`):
the questions go on the idea's issue and the run waits for `/specify continue`.

When a phase's pull request merges, the sync (bot/sync) calls `phase_merged`: the
idea's issue becomes the spec's tracking issue, and the next phase is said, or
queued with `phases: auto`. The tasks phase merged is a spec like any other: its
tickets are opened by the sync, under the idea's issue.
"""

from __future__ import annotations

import logging
import os
import time
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from pathlib import Path

from github import GithubException
from requests import RequestException
from sqlalchemy import and_, select, update
from sqlalchemy.orm import Session

from bot.agents import sandbox
from bot.agents.exit_reasons import exit_reason
from bot.agents.held_secrets import held_secrets, operator_values
from bot.agents.isolation import agent_account
from bot.agents.planning_layout import (
    PHASES,
    QUESTIONS_FILE,
    SpecLayout,
    is_questions_file,
    new_layout,
    questions_in,
    what_to_write,
)
from bot.agents.presets import PRESETS, summary_of
from bot.agents.profiles import AgentProfile, load_profiles
from bot.agents.prompt import read_instructions
from bot.agents.redaction import Redactor, code_block, inert
from bot.agents.tree import read_text
from bot.agents.workspace import Changes, Workspace, WorkspaceError, named
from bot.beats import heartbeat
from bot.counters import observe_agent_run
from bot.github import BoardGateway, RepositoryGateway, github_client
from bot.github.auth import repository_token
from bot.github.columns import column_for
from bot.github.text import MAX_BODY, MAX_TITLE, cut, shown
from bot.locks import exclusive
from bot.queue import AGENTS, enqueue
from bot.repo_config import CONFIG_PATH, RepoConfig, parse_repo_config
from bot.settings import Settings, SettingsError, get_settings, web_url_for
from specs.importers import slug
from specs.sources import format_of, spec_files
from specs.validate import validate_files
from storage.db import session_scope
from storage.models import (
    PlanningRun,
    PlanningStatus,
    Repository,
    Spec,
    SpecPhase,
    TicketPhase,
)

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3
RUN_OVERHEAD_SECONDS = 600
LOG_TAIL_CHARS = 4000
MAX_FILE_CHARS = 60_000  # of each earlier phase's file, in the prompt
MAX_SPEC_BYTES = 1 << 20  # what is read back of a file the planner wrote
MAX_COMMENTS = 50
WRITE_PERMISSIONS = {"admin", "maintain", "write"}
# The branch of each idea's phase: one pull request per phase.
BRANCH = "specbridge/plan/{issue}-{phase}"
LIVE = (PlanningStatus.QUEUED, PlanningStatus.RUNNING)
# A run in one of these holds the place it took for its spec (see _places_being_planned).
UNMERGED = (*LIVE, PlanningStatus.ASKING, PlanningStatus.OPENED)
# The profile that plans when the repository's settings name none.
DEFAULT_PLANNER = "planner"


class PlanningFailed(Exception):
    """The run failed for a reason of its own: said on the idea's issue, never retried."""


# -- recorded runs --------------------------------------------------------------------


def latest_run(session: Session, repository_id: int, issue_number: int) -> PlanningRun | None:
    """The newest planning run for the idea of issue #issue_number."""
    return session.scalars(
        select(PlanningRun)
        .where(PlanningRun.repository_id == repository_id, PlanningRun.issue_number == issue_number)
        .order_by(PlanningRun.id.desc())
        .limit(1)
    ).first()


def run_of_pull_request(session: Session, repository_id: int, number: int) -> PlanningRun | None:
    """The newest planning run that opened (or revised) pull request #number."""
    return session.scalars(
        select(PlanningRun)
        .where(
            PlanningRun.repository_id == repository_id,
            PlanningRun.pull_request_number == number,
        )
        .order_by(PlanningRun.id.desc())
        .limit(1)
    ).first()


def run_of_spec(session: Session, spec: Spec) -> PlanningRun | None:
    """The newest planning run that wrote this spec."""
    return session.scalars(
        select(PlanningRun)
        .where(PlanningRun.repository_id == spec.repository_id, PlanningRun.spec_path == spec.path)
        .order_by(PlanningRun.id.desc())
        .limit(1)
    ).first()


def revisions_of(session: Session, run: PlanningRun) -> int:
    """How many times the pull request of `run` was revised."""
    return max(
        session.scalars(
            select(PlanningRun.revision).where(
                PlanningRun.repository_id == run.repository_id,
                PlanningRun.pull_request_number == run.pull_request_number,
            )
        ),
        default=0,
    )


def queue_run(
    session: Session,
    settings: Settings,
    repository: Repository,
    issue_number: int,
    *,
    phase: str,
    agent: str,
    asked_by: str,
    idea: str = "",
    follows: PlanningRun | None = None,
    review: str | None = None,
    revise: bool = False,
) -> PlanningRun:
    """Record a run and queue its job. `follows`: the run it continues (an answered
    question, a revision, or the phase before): the spec's place is its; `revise`:
    on the pull request of `follows`, one revision more."""
    run = PlanningRun(
        repository_id=repository.id,
        issue_number=issue_number,
        title=follows.title if follows else "",
        idea=idea or (follows.idea if follows else ""),
        asked_by=asked_by,
        phase=SpecPhase(phase),
        status=PlanningStatus.QUEUED,
        agent=agent,
        review=review,
        revision=0,
        attempts=0,
    )
    if follows is not None:
        run.issue_node_id = follows.issue_node_id
        run.spec_format, run.spec_path, run.spec_key = (
            follows.spec_format,
            follows.spec_path,
            follows.spec_key,
        )
        if follows.phase.value == phase:
            # The same phase again: its questions answered, or its pull request revised.
            run.questions = follows.questions
            if revise:
                run.branch, run.pull_request_number = follows.branch, follows.pull_request_number
                run.revision = revisions_of(session, follows) + 1
    session.add(run)
    session.commit()
    profile = load_profiles(settings).get(agent)
    timeout = (profile.timeout if profile else 1800) + RUN_OVERHEAD_SECONDS
    enqueue(settings, AGENTS, run_planning, run.id, job_id=f"planning-{run.id}", timeout=timeout)
    return run


def planner_of(settings: Settings, config: RepoConfig) -> AgentProfile:
    """The repository's planner profile (`planner:`, else the operator's profile named
    `planner`); SettingsError says why there is none to run."""
    profiles = load_profiles(settings)
    name = config.planner or (DEFAULT_PLANNER if DEFAULT_PLANNER in profiles else None)
    if name is None:
        raise SettingsError(
            f"no planner is named: `planner:` in `{CONFIG_PATH}` names the agent profile "
            "that writes specs"
        )
    profile = profiles.get(name)
    if profile is None:
        raise SettingsError(f"no agent profile named {name!r} is configured")
    if profile.command is None:
        raise SettingsError(
            f"the profile {profile.name!r} dispatches on GitHub: a planner must run here "
            "(a preset or a command)"
        )
    return profile


def next_phase(phase: str) -> str | None:
    index = PHASES.index(phase) if phase in PHASES else -1
    return PHASES[index + 1] if 0 <= index < len(PHASES) - 1 else None


def phase_merged(session: Session, settings: Settings, repo: RepositoryGateway, spec: Spec) -> None:
    """A sync recorded `spec` at a phase its planning pull request proposed: that phase is
    merged. The idea's issue becomes the spec's tracking issue; the next phase is said
    (`/plan`, `/tasks`), or queued with `phases: auto`. Call it under the spec's lock."""
    run = run_of_spec(session, spec)
    if run is None or spec.phase is None or run.phase.value != spec.phase.value:
        return
    if run.status is not PlanningStatus.OPENED:
        return  # said already (another push of the same spec), or not proposed yet
    run.status = PlanningStatus.MERGED
    if spec.tracking_issue_number is None:
        spec.tracking_issue_number, spec.tracking_issue_node_id = (
            run.issue_number,
            run.issue_node_id,
        )
    config = RepoConfig.from_dict(spec.repository.settings)
    upcoming = next_phase(run.phase.value)
    merged = f"The {run.phase.value} of `{spec.path}` are merged"
    if upcoming is None:
        said = (
            f"{merged}: this issue is the spec's tracking issue, and each task gets its "
            "own issue now. specbridge writes this issue's description from here on."
        )
    elif config.phases == "auto":
        follow = queue_run(
            session,
            settings,
            spec.repository,
            run.issue_number,
            phase=upcoming,
            agent=config.planner or run.agent,
            asked_by=run.asked_by,
            follows=run,
        )
        said = f"{merged}. The planner writes the {upcoming} now (run {follow.id}, `phases: auto`)."
    else:
        command = "/plan" if upcoming == "design" else "/tasks"
        said = (
            f"{merged}: this issue is now the spec's tracking issue. `{command}` here starts "
            f"the {upcoming}."
        )
    node_id = run.issue_node_id
    session.commit()
    if upcoming is None:
        said += _as_first_written(repo.get_issue(run.issue_number).body)
        show_idea_card(repo, config, node_id, TicketPhase.BUILDING)  # its tickets are worked
    repo.comment_on_issue(run.issue_number, cut(said, MAX_BODY))


def _as_first_written(body: str) -> str:
    """The idea's description, quoted, before the tracking issue's takes its place."""
    text = inert(body or "").strip()
    if not text:
        return ""
    quoted = "\n".join(f"> {line}" for line in text.splitlines())
    return f" The idea, as it was written:\n\n{quoted}"


def show_idea_card(
    repo: RepositoryGateway, config: RepoConfig, node_id: str | None, phase: TicketPhase
) -> None:
    """Put the idea's issue on the repository's board, in the column of `phase`. A board
    that cannot show it is no reason to stop anything: it is logged."""
    if not config.has_board or node_id is None:
        return
    assert config.project_owner is not None and config.project_number is not None
    boards = BoardGateway(repo.connection)
    try:
        board = boards.find_board(config.project_owner, config.project_number)
        [item] = boards.add_to_board(board, [node_id])
        column = column_for(board, config.status, phase)
        if item is not None and boards.item_status(item) != column:
            boards.set_status(board, [item], column)
    except (GithubException, RequestException, LookupError) as error:
        log.warning("the card of the idea %s stays as it is: %s", node_id, error)


def describe(run: PlanningRun) -> str:
    """Where an idea's planning is, for `/status`."""
    place = f" in `{run.spec_path}`" if run.spec_path else ""
    pull = f" #{run.pull_request_number}" if run.pull_request_number else ""
    said = {
        PlanningStatus.QUEUED: f"the planner `{run.agent}` is queued to write the {run.phase}",
        PlanningStatus.RUNNING: f"the planner `{run.agent}` is writing the {run.phase}{place}",
        PlanningStatus.ASKING: (
            f"the planner asked questions about the {run.phase}: answer them here, then "
            "comment `/specify continue`"
        ),
        PlanningStatus.OPENED: f"the {run.phase}{place} wait for review and merge in{pull}",
        PlanningStatus.MERGED: f"the {run.phase}{place} are merged ({pull.strip() or 'done'})",
        PlanningStatus.FAILED: (
            f"the planner's run for the {run.phase} failed: {shown(run.error or '')} "
            "(`/specify continue` runs it again)"
        ),
        PlanningStatus.CANCELLED: f"the planner's run for the {run.phase} was cancelled",
    }[run.status]
    revision = f", revision {run.revision}" if run.revision else ""
    return f"Planning phase **{run.phase}** (run {run.id}{revision}): {said}."


# -- the queue job --------------------------------------------------------------------


def run_planning(run_id: int) -> None:
    settings = get_settings()
    with session_scope(settings.database_url) as session:
        now = datetime.now(UTC)
        claimed = session.execute(
            update(PlanningRun)
            .where(PlanningRun.id == run_id, PlanningRun.status == PlanningStatus.QUEUED)
            .values(
                status=PlanningStatus.RUNNING,
                attempts=PlanningRun.attempts + 1,
                started_at=now,
                heartbeat_at=now,
            )
        ).rowcount
        session.commit()
        if claimed != 1:
            return
        with _heartbeats(settings, run_id):
            _Planning(session, settings, session.get_one(PlanningRun, run_id)).execute()


def _heartbeats(settings: Settings, run_id: int) -> AbstractContextManager[None]:
    """The run's heartbeat for the whole run (a clone, the planner, the pull request)."""
    running = and_(PlanningRun.id == run_id, PlanningRun.status == PlanningStatus.RUNNING)
    return heartbeat(settings, PlanningRun, running, f"planning-heartbeat-{run_id}")


def queue_planning_again(settings: Settings, run: PlanningRun, delay: float = 0) -> None:
    """The run queued again, as a new attempt (its job id names the attempt)."""
    enqueue(
        settings,
        AGENTS,
        run_planning,
        run.id,
        job_id=f"planning-{run.id}-{run.attempts}",
        delay=delay,
    )


class _Planning:
    """One planning run; the session is committed before every call to GitHub or git."""

    def __init__(self, session: Session, settings: Settings, run: PlanningRun) -> None:
        self.session, self.settings, self.run = session, settings, run
        repository = run.repository
        installation = repository.installation_github_id
        self.installation = installation
        self.full_name, self.default_branch = repository.full_name, repository.default_branch
        self.phase = run.phase.value
        session.commit()
        self.repo = RepositoryGateway(github_client(settings, installation), self.full_name)
        self.output = ""
        self.started = time.monotonic()
        self.config = RepoConfig()
        self.existing: set[str] = set()  # the specs on the branch before the planner ran
        self._secrets: list[str | None] = []

    def execute(self) -> None:
        workspace: Workspace | None = None
        try:
            config, _ = parse_repo_config(self.repo.read_file(CONFIG_PATH, self.default_branch))
            profile = self._profile()
            env = self._environment(profile)
            issue = self.repo.get_issue(self.run.issue_number)
            comments = self._peoples_comments(issue.author)
            revising = self.run.pull_request_number is not None
            branch = self.run.branch or BRANCH.format(issue=self.run.issue_number, phase=self.phase)
            workspace = Workspace.create(
                self._clone_url(),
                branch if revising else self.default_branch,
                branch,
                self.repo.connection.token,
                agent_account(self.settings),
                also=(self.default_branch,) if revising else (),
            )
            workspace.ignore(
                (QUESTIONS_FILE, *(PRESETS[profile.preset].ignore if profile.preset else ()))
            )
            layout = self._layout(config, issue.title, issue.node_id, branch, workspace)
            self._show_card(config, issue.node_id)
            self.config, self.existing = config, _specs_in(config, workspace.checkout)
            workspace.write_context(self._prompt(layout, issue.body, comments, workspace), {})
            workspace.hand_over()
            self._run_planner(profile, env, workspace)
            self._take(profile, layout, workspace)
        except (PlanningFailed, WorkspaceError, sandbox.SandboxError) as failure:
            self._fail(str(failure))
        except (GithubException, RequestException) as error:
            self._github_failed(error)
        finally:
            if workspace is not None:
                workspace.remove()

    # -- before the planner --------------------------------------------------------------

    def _profile(self) -> AgentProfile:
        try:
            profile = load_profiles(self.settings).get(self.run.agent)
        except SettingsError as error:
            raise PlanningFailed(str(error)) from None
        if profile is None or profile.command is None:
            raise PlanningFailed(f"no agent profile named {self.run.agent!r} runs here")
        return profile

    def _environment(self, profile: AgentProfile) -> dict[str, str]:
        try:
            own = profile.environment()
        except SettingsError as error:
            raise PlanningFailed(str(error)) from None
        self._secrets = [
            *held_secrets(self.settings, self.repo.connection.token),
            *operator_values(profile, own),
        ]
        return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", **own}

    def _peoples_comments(self, author: str) -> list[tuple[str, str]]:
        """The idea's issue's comments by its author and by people with write access, in
        order, commands left out: a reader's words never reach the planner."""
        allowed: dict[str, bool] = {}
        found = []
        for comment in self.repo.issue_comments(self.run.issue_number)[-MAX_COMMENTS:]:
            if comment.by_bot or comment.author.endswith("[bot]") or _commands_only(comment.body):
                continue
            if comment.author not in allowed:
                permission = self.repo.permission_of(comment.author)
                allowed[comment.author] = (
                    comment.author == author or permission in WRITE_PERMISSIONS
                )
            if allowed[comment.author]:
                found.append((comment.author, comment.body))
        return found

    def _layout(
        self, config: RepoConfig, title: str, node_id: str, branch: str, workspace: Workspace
    ) -> SpecLayout:
        run = self.run
        if run.spec_path is None or run.spec_format is None:
            # One idea at a time per repository takes its place: two planned at once
            # would otherwise both take the next spec-kit number (or the same name).
            with exclusive(self.settings, f"planning-layout:{run.repository_id}"):
                taken = self._places_being_planned()
                fmt = config.formats[0]
                layout = new_layout(fmt, title, config.specs_path, workspace.checkout, taken)
                run.spec_format, run.spec_path = layout.format, layout.path
                run.spec_key = slug(layout.path.rstrip("/").rsplit("/", 1)[-1].rsplit(".", 1)[0])
                self.session.commit()
        run.title = run.title or title
        run.issue_node_id = run.issue_node_id or node_id
        run.branch = branch
        self.session.commit()
        assert run.spec_format is not None and run.spec_path is not None
        return SpecLayout(run.spec_format, run.spec_path)

    def _places_being_planned(self) -> set[str]:
        """The paths other ideas of the repository took and have not merged yet."""
        paths = self.session.scalars(
            select(PlanningRun.spec_path).where(
                PlanningRun.repository_id == self.run.repository_id,
                PlanningRun.id != self.run.id,
                PlanningRun.spec_path.is_not(None),
                PlanningRun.status.in_(UNMERGED),
            )
        )
        return {path for path in paths if path}

    def _show_card(self, config: RepoConfig, node_id: str) -> None:
        """The idea's issue on the board, in Analyzing while its requirements and design
        are written."""
        if self.phase != "tasks":
            show_idea_card(self.repo, config, node_id, TicketPhase.ANALYZING)

    def _prompt(
        self,
        layout: SpecLayout,
        body: str,
        comments: list[tuple[str, str]],
        workspace: Workspace,
    ) -> str:
        run = self.run
        assert run.spec_key is not None
        allowed = ", ".join(f"`{p}`" for p in layout.files(self.phase))
        sections = [
            f"# Plan the spec “{run.title}”: its {self.phase}",
            "You are specbridge's planner. Explore this repository (read it; change none of "
            f"its code) and write the {self.phase} of a spec for the idea below, in the "
            "repository's format. People review what you write in a pull request.",
            _section(f"The idea (issue #{run.issue_number})", f"**{run.title}**\n\n{run.idea}"),
            _section("The issue's description", body),
            _section(
                "What people said on the issue, in order",
                "\n\n".join(f"@{who} said:\n\n{text.strip()}" for who, text in comments),
            ),
            _section(
                "Your questions before (their answers are in what people said)",
                run.questions or "",
            ),
            _section(
                f"Write the {self.phase}",
                what_to_write(layout, self.phase, run.spec_key, run.title),
            ),
            "\n".join(
                [
                    "## Rules",
                    "",
                    f"- Write {allowed} and nothing else: a change to any other file and "
                    "nothing of yours is committed.",
                    "- If the idea is too unclear to write this phase, do not guess: write "
                    f"your questions, one a line, to `{QUESTIONS_FILE}` at the repository's "
                    "root (or mark them `[NEEDS CLARIFICATION: question]` where they arise), "
                    "and stop. specbridge asks them on the issue.",
                    "- Do not commit, push or open a pull request: specbridge does.",
                    "- End with a short summary of what you wrote and why.",
                ]
            ),
            *self._earlier(layout, workspace),
            *(
                _section(f"The repository's instructions ({path})", text)
                for path, text in read_instructions(workspace.checkout).items()
            ),
            _section("What the review asks (this run revises your pull request)", run.review or ""),
        ]
        return "\n\n".join(s for s in sections if s).strip() + "\n"

    def _earlier(self, layout: SpecLayout, workspace: Workspace) -> list[str]:
        found = []
        for path in layout.earlier_files(self.phase):
            text = read_text(workspace.checkout, path, MAX_FILE_CHARS)
            if text:
                found.append(_section(f"Written before: `{path}`", code_block(text)))
        return found

    # -- the planner, and what it left ------------------------------------------------------

    def _run_planner(
        self, profile: AgentProfile, env: dict[str, str], workspace: Workspace
    ) -> None:
        env = {
            **env,
            "HOME": str(workspace.agent_home),
            "TMPDIR": str(workspace.agent_home),
            "SPECBRIDGE_TASK_FILE": str(workspace.task_file),
            "SPECBRIDGE_TASK_JSON": str(workspace.task_json),
            "SPECBRIDGE_ISSUE": str(self.run.issue_number),
            "SPECBRIDGE_PHASE": self.phase,
            "SPECBRIDGE_SPEC_PATH": self.run.spec_path or "",
            "SPECBRIDGE_QUESTIONS": QUESTIONS_FILE,
        }
        outcome = sandbox.run(
            profile.command or "",
            workspace=workspace.checkout,
            context=workspace.context,
            env=env,
            limits=profile.limits,
            policy=profile.policy,
            account=workspace.account,
            shown=(workspace.history,),
            disk_baseline=sandbox.tree_size(workspace.checkout),
            redact=self._redact,
        )
        self.output = outcome.output
        summary = summary_of(profile.preset, outcome.output)
        self.run.log_tail = self._tail()
        if summary is not None:
            self.run.summary = cut(self._redact(str(summary["text"])), MAX_BODY)
        self.session.commit()
        if outcome.reason == "timeout":
            raise PlanningFailed(f"the planner ran longer than its {profile.timeout}s timeout")
        if outcome.reason in ("memory", "processes", "disk"):
            raise PlanningFailed(
                f"the planner was stopped: it went past its {outcome.reason} limit"
            )
        if outcome.exit_code != 0:
            raise PlanningFailed(exit_reason("planner", outcome.exit_code, outcome.output))

    def _take(self, profile: AgentProfile, layout: SpecLayout, workspace: Workspace) -> None:
        """Check what the planner left, then ask its questions or propose its files."""
        checkout = workspace.checkout
        written = workspace.changes()
        # Questions instead of files: asked on the issue, and nothing of the run committed.
        asked_in = [QUESTIONS_FILE, *(p for p in written.kept if is_questions_file(p))]
        asked = {p: text for p in asked_in if (text := read_text(checkout, p, MAX_SPEC_BYTES))}
        questions = questions_in({f"{QUESTIONS_FILE}#{n}": t for n, t in enumerate(asked.values())})
        if questions:
            self._ask(questions)
            return
        changes = Changes(
            tuple(p for p in written.kept if not is_questions_file(p)), written.left_out
        )
        layout = self._place(layout, changes)
        outside = [p for p in (*changes.kept, *changes.left_out) if not layout.may_write(p)]
        if outside:
            raise PlanningFailed(
                f"the planner changed {named(outside)}, outside the spec's "
                f"{'file' if layout.format == 'yaml' else 'folder'} `{layout.path}`: "
                "nothing is committed"
            )
        # The phase's own documents may mark what is unclear, as spec-kit does.
        documents = [p for p in changes.kept if layout.is_phase_file(p, self.phase)]
        questions = questions_in(
            {p: read_text(checkout, p, MAX_SPEC_BYTES) or "" for p in documents}
        )
        if questions:
            self._ask(questions)
            return
        if not changes.kept:
            raise PlanningFailed(f"the planner finished without writing `{layout.path}`")
        self._check_spec(layout, checkout)
        commit = workspace.commit(Changes(changes.kept), self._commit_message())
        if commit is None:
            raise PlanningFailed("the planner's files say what the branch says already")
        token = repository_token(self.settings, self.installation, self.full_name)
        self._secrets.append(token)
        assert self.run.branch is not None
        workspace.push(commit, self.run.branch, token, force=self.run.revision == 0)
        self._open_pull_request(profile)

    def _place(self, layout: SpecLayout, changes: Changes) -> SpecLayout:
        """Where the spec is: where specbridge said, or, for the requirements of a new
        spec, one new spec of the repository's formats that the planner named itself
        (every file it changed that spec's)."""
        written = [*changes.kept, *changes.left_out]
        if all(layout.may_write(p) for p in written) or self.phase != "requirements":
            return layout
        if self.run.pull_request_number is not None or changes.left_out:
            return layout
        specs = {spec for p in changes.kept if (spec := self.config.spec_of(p))}
        folders = [spec for spec in specs if spec.endswith("/")]
        # A spec-kit folder's contracts or notes are its too; any other file is not.
        stray = [
            p
            for p in changes.kept
            if self.config.spec_of(p) is None and not any(p.startswith(f) for f in folders)
        ]
        if stray or len(specs) != 1:
            return layout
        [path] = specs
        if path in self.existing:
            return layout  # a spec that exists: not this idea's to rewrite
        chosen = SpecLayout(format_of(path), path)
        run = self.run
        run.spec_format, run.spec_path = chosen.format, chosen.path
        self.session.commit()
        return chosen

    def _check_spec(self, layout: SpecLayout, checkout: Path) -> None:
        """The files must load as a spec of the repository's format, at this phase."""
        files = {
            name: text
            for name in spec_files(layout.path)
            if (text := read_text(checkout, name, MAX_SPEC_BYTES)) is not None
        }
        loaded = validate_files(files, None, (layout.format,))
        spec, findings = loaded.get(layout.path, (None, []))
        if spec is None:
            said = "; ".join(
                f"{f.path} line {f.line}: {f.message}" for f in findings if f.is_error
            )[:1500]
            raise PlanningFailed(f"the planner's spec does not load: {said or 'no spec found'}")
        if spec.phase != self.phase:
            raise PlanningFailed(
                f"the planner's spec says phase `{spec.phase}`; this run writes the {self.phase}"
            )
        self.run.spec_key = spec.id
        self.session.commit()

    def _open_pull_request(self, profile: AgentProfile) -> None:
        run = self.run
        assert run.branch is not None
        if run.pull_request_number is None:
            run.pull_request_number = self.repo.open_pull_request(
                title=cut(f"Spec: {run.title} — {self.phase}", MAX_TITLE),
                head=run.branch,
                base=self.default_branch,
                body=self._pull_request_body(profile),
            )
        run.status = PlanningStatus.OPENED
        self._finish()
        if run.revision:
            said = (
                f"The planner revised #{run.pull_request_number} in {self._duration()} "
                f"(revision {run.revision} of {profile.max_revisions})."
            )
        else:
            after = (
                "this issue becomes the spec's tracking issue"
                if self.phase == "requirements"
                else f"`{'/tasks' if self.phase == 'design' else 'its tickets'}` follow"
            )
            said = (
                f"The planner wrote the {self.phase} in {self._duration()}: "
                f"#{run.pull_request_number}. Review it (a review that requests changes, or "
                f"`/revise` there, runs the planner again); merge it and {after}."
            )
        self._say(f"{said}{self._summary_block()}")

    def _pull_request_body(self, profile: AgentProfile) -> str:
        run = self.run
        text = (
            f"The {self.phase} of the spec `{run.spec_path}`, written by the planner "
            f"`{profile.name}` for the idea in #{run.issue_number}.\n\n"
            "Merging it is approving this phase: "
            + (
                f"#{run.issue_number} becomes the spec's tracking issue, and "
                if self.phase == "requirements"
                else ""
            )
            + (
                "each task gets its issue."
                if self.phase == "tasks"
                else f"`/{'plan' if self.phase == 'requirements' else 'tasks'}` on "
                f"#{run.issue_number} starts the next phase."
            )
            + "\n\nA review that requests changes, or `/revise <what>` here, runs the "
            f"planner again on this branch.{self._summary_block()}"
        )
        return cut(text, MAX_BODY)

    def _ask(self, questions: list[str]) -> None:
        run = self.run
        run.questions = "\n".join(f"- {q}" for q in questions)
        run.status = PlanningStatus.ASKING
        self._finish()
        listed = "\n".join(f"- {inert(self._redact(q))}" for q in questions[:30])
        self._say(
            f"The planner has questions before it writes the {self.phase}:\n\n{listed}\n\n"
            "Answer them here (the issue's author or someone with write access), then "
            "comment `/specify continue` to run it again with your answers."
        )

    # -- endings ---------------------------------------------------------------------------

    def _fail(self, reason: str) -> None:
        reason = self._redact(reason)
        self.session.refresh(self.run)
        if self.run.status is not PlanningStatus.CANCELLED:
            self.run.status = PlanningStatus.FAILED
        self.run.error = reason
        self.run.log_tail = self._tail()
        self._finish()
        tail = self._tail().strip()
        output = (
            f"\n\n<details><summary>Output (last lines)</summary>\n\n{code_block(tail)}\n</details>"
            if tail
            else ""
        )
        self._say(
            f"The planner's run for the {self.phase} failed after {self._duration()}: "
            f"{inert(reason)}. Comment `/specify continue` to run it again.{output}"
        )

    def _github_failed(self, error: Exception) -> None:
        if self.run.attempts >= MAX_ATTEMPTS or self.run.pull_request_number is not None:
            self._fail(f"GitHub kept failing: {error}")
            return
        self.run.status = PlanningStatus.QUEUED
        self.session.commit()
        queue_planning_again(self.settings, self.run, delay=30)

    def _finish(self) -> None:
        self.run.finished_at = datetime.now(UTC)
        outcome = self.run.status.value
        self.session.commit()
        seconds = time.monotonic() - self.started
        # Counted with the agents' runs: a pull request opened or questions asked succeeded.
        counted = outcome if outcome in ("failed", "cancelled") else "succeeded"
        observe_agent_run(self.settings, self.run.agent, counted, seconds)
        log.info(
            "planning run %s for %s#%s (%s) ended: %s in %.0fs",
            self.run.id,
            self.full_name,
            self.run.issue_number,
            self.phase,
            outcome,
            seconds,
        )

    def _say(self, body: str) -> None:
        try:
            self.repo.comment_on_issue(self.run.issue_number, cut(body, MAX_BODY))
        except GithubException as error:
            log.warning("GitHub refused the comment of planning run %s: %s", self.run.id, error)

    # -- helpers ---------------------------------------------------------------------------

    def _commit_message(self) -> str:
        run = self.run
        if run.revision:
            said = f"Spec {run.spec_key}: revise the {self.phase} ({run.revision})"
        else:
            said = f"Spec {run.spec_key}: the {self.phase}"
        return f"{said}\n\nFor #{run.issue_number}"

    def _clone_url(self) -> str:
        return f"{web_url_for(self.settings.github_api_url)}/{self.full_name}.git"

    def _summary_block(self) -> str:
        text = inert(self.run.summary or "").strip()
        if not text:
            return ""
        quoted = "\n".join(f"> {line}" for line in text.splitlines())
        return f"\n\nThe planner's summary:\n\n{quoted}"

    def _tail(self) -> str:
        tail = self._redact(self.output)[-LOG_TAIL_CHARS:]
        return tail[tail.find("\n") + 1 :] if len(self.output) > LOG_TAIL_CHARS else tail

    def _redact(self, text: str) -> str:
        return Redactor.of(self._secrets)(text)

    def _duration(self) -> str:
        seconds = int(time.monotonic() - self.started)
        return f"{seconds // 60} min {seconds % 60} s" if seconds >= 60 else f"{seconds} s"


def _specs_in(config: RepoConfig, checkout: Path) -> set[str]:
    """The specs in the checkout before the planner ran (read by the bot, not after it)."""
    found: set[str] = set()
    for root in config.spec_roots:
        folder = checkout / root
        if folder.is_dir():
            for path in folder.rglob("*"):
                spec = config.spec_of(path.relative_to(checkout).as_posix())
                if spec is not None:
                    found.add(spec)
    return found


def _commands_only(body: str) -> bool:
    """A comment that only gives commands (`/specify continue`, `/status`)."""
    lines = [line.strip() for line in body.splitlines() if line.strip()]
    return all(line.startswith("/") for line in lines)


def _section(heading: str, text: str) -> str:
    return f"## {heading}\n\n{text.strip()}" if text and text.strip() else ""

"""Whether a job on a task can speak to GitHub for its repository, checked as it starts.

As an App, specbridge needs the installation on the task's repository. One recorded
before `specbridge sync` stored what it looked up has none: the job looks it up (and
records it) before anything else. A job that still cannot authenticate fails at once
with the reason, instead of dying in its run and being retried as a lost worker.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

from github import GithubException
from requests import RequestException
from sqlalchemy.orm import Session

from bot.agents.costs import record_end
from bot.counters import observe_agent_run
from bot.github import repository_installation
from bot.repositories import record_installation
from bot.settings import Settings
from storage.models import Repository, Task, TaskStatus

log = logging.getLogger(__name__)


def failed_to_authenticate(
    session: Session, settings: Settings, task: Task, max_attempts: int
) -> bool:
    """True when the task, claimed by this job, could not authenticate and is now failed
    with the reason; False when the job can go on. GitHub out of reach while the
    installation is looked up is no reason: the task is queued again and the job
    retried, as a run's transient failures are, up to `max_attempts`."""
    started = time.monotonic()
    repository = task.ticket.repository
    try:
        problem = _credentials_problem(session, settings, repository)
    except (GithubException, RequestException) as error:
        if task.attempts < max_attempts:
            task.status = TaskStatus.QUEUED  # the queue retries the job, as for a run's
            session.commit()
            raise
        problem = f"GitHub kept failing: {error}"
    if problem is None:
        return False
    full_name, issue = repository.full_name, task.ticket.issue_number
    task.status, task.error, task.finished_at = TaskStatus.FAILED, problem, datetime.now(UTC)
    record_end(task, time.monotonic() - started, "credentials")
    session.commit()
    observe_agent_run(settings, task.agent, TaskStatus.FAILED.value, time.monotonic() - started)
    # Nothing can be said on the issue without credentials: the log and the task say it.
    log.warning(
        "agent task %s for %s#%s failed before it started: %s", task.id, full_name, issue, problem
    )
    return True


def _credentials_problem(
    session: Session, settings: Settings, repository: Repository
) -> str | None:
    if settings.github_token:
        return None
    if not settings.uses_app_auth:
        return "no GitHub credentials: set GITHUB_APP_ID and GITHUB_PRIVATE_KEY, or GITHUB_TOKEN"
    if repository.installation is not None:
        return None
    full_name = repository.full_name
    session.commit()  # no transaction open while GitHub answers
    try:
        installation = repository_installation(settings, full_name)
    except GithubException as error:
        if error.status != 404:
            raise
        return f"the App is not installed on {full_name}: no installation to authenticate with"
    assert installation is not None  # as an App
    repository.installation = record_installation(session, installation)
    session.commit()
    return None

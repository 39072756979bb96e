"""A repository's work by hand: sync its specs, apply board moves, list agent tasks."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING

from bot.cli.problems import (
    CommandError,
    migrated_settings,
    repo_name,
    require_github,
    require_redis,
)
from bot.settings import Settings
from storage.models import TaskStatus

if TYPE_CHECKING:
    from bot.sync import SyncReport


def add_commands(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """sync, reconcile, tasks."""
    sync = commands.add_parser("sync", help="sync a repository's specs by hand")
    sync.add_argument(
        "--repo", required=True, type=repo_name, metavar="OWNER/NAME", help="the repository"
    )
    sync.add_argument("--ref", help="branch, tag or commit (default: the default branch)")
    sync.add_argument(
        "--no-wait",
        action="store_true",
        help="end when this command's part is done, not when every paused sync has ended",
    )
    sync.set_defaults(run=_sync)

    reconcile = commands.add_parser(
        "reconcile", help="apply the moves made on boards (for user-owned boards; run from cron)"
    )
    reconcile.add_argument(
        "--repo", type=repo_name, metavar="OWNER/NAME", help="only this repository"
    )
    reconcile.set_defaults(run=_reconcile)

    tasks = commands.add_parser("tasks", help="agent tasks: spec, task, status, attempts, timings")
    tasks.add_argument("--repo", type=repo_name, metavar="OWNER/NAME", help="only this repository")
    tasks.add_argument(
        "--status", choices=[s.value for s in TaskStatus], help="only tasks with this status"
    )
    tasks.add_argument("--json", action="store_true", help="print JSON instead of a table")
    tasks.set_defaults(run=_tasks)


def _sync(args: argparse.Namespace) -> int:
    from github import UnknownObjectException

    from bot.sync import SyncFailed, sync_repository

    settings = migrated_settings()
    require_redis(settings)
    require_github(settings)
    try:
        report = sync_repository(settings, args.repo, args.ref, progress=print)
    except UnknownObjectException:
        raise CommandError(_unreachable_repository(settings, args.repo)) from None
    except SyncFailed as failed:
        print(failed)
        return 1
    if report.paused and not args.no_wait:
        # The rest of a paused sync runs in the queue's jobs: its end is the sync's end.
        print(f"{len(report.paused)} spec(s) continue in the queue's jobs; waiting for their end")
        for path in wait_for_continuations(settings, args.repo, list(report.paused), print):
            del report.paused[path]
            report.synced.append(path)
    print(report)
    print(_sync_summary(settings, args.repo, report))
    return 0


# A continuation this late has not run: no worker takes the queue's jobs.
OVERDUE_SECONDS = 120


def wait_for_continuations(
    settings: Settings,
    full_name: str,
    paths: list[str],
    say: Callable[[str], None],
    poll_seconds: float = 2.0,
) -> list[str]:
    """Wait until the paused syncs of these specs end, saying how far each is as it
    goes; the paths whose sync ended (one overdue is left, said, and not waited for)."""
    import time
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import select

    from storage.db import session_scope
    from storage.models import Repository, Spec

    waiting, ended, said = set(paths), [], {}
    while waiting:
        with session_scope(settings.database_url) as session:
            specs = session.scalars(
                select(Spec)
                .join(Repository)
                .where(Repository.full_name == full_name, Spec.path.in_(waiting))
            ).all()
            waiting &= {spec.path for spec in specs}  # a spec gone is waited for no more
            now = datetime.now(UTC)
            for spec in specs:
                resume_at = spec.resume_at
                if resume_at is None:
                    waiting.discard(spec.path)
                    ended.append(spec.path)
                    continue
                if resume_at.tzinfo is None:
                    resume_at = resume_at.replace(tzinfo=UTC)
                if now - resume_at > timedelta(seconds=OVERDUE_SECONDS):
                    waiting.discard(spec.path)
                    say(
                        f"{spec.path}: its sync should have continued at {resume_at:%H:%M:%S} "
                        "UTC and has not: is a `specbridge worker` running?"
                    )
                    continue
                opened = (spec.sync_totals or {}).get("opened", 0)
                if said.get(spec.path) != opened:
                    said[spec.path] = opened
                    say(
                        f"{spec.path}: {opened} issues opened so far, "
                        f"continues from {resume_at:%H:%M:%S} UTC"
                    )
        if waiting:
            time.sleep(poll_seconds)
    return ended


def _unreachable_repository(settings: Settings, full_name: str) -> str:
    from bot.github.auth import app_slug

    if settings.uses_app_auth and not settings.github_token:
        slug = app_slug(settings)
        where = (
            f"from {settings.github_web_url}/apps/{slug}"
            if slug
            else f"from its page under {settings.github_web_url}/settings/apps "
            "(set GITHUB_APP_SLUG to have its link here)"
        )
        return (
            f"the App is not installed on {full_name}, or there is no such repository: "
            f"install it {where}"
        )
    return f"GITHUB_TOKEN cannot see {full_name}, or there is no such repository"


def _sync_summary(settings: Settings, full_name: str, report: SyncReport) -> str:
    """Counts, then a link to each synced spec's tracking issue."""
    from sqlalchemy import select

    from storage.db import session_scope
    from storage.models import Repository, Spec

    counts = {
        what: len(getattr(report, what))
        for what in ("synced", "paused", "invalid", "failed", "cancelled")
    }
    lines = [", ".join(f"{count} {what}" for what, count in counts.items())]
    paths = [*report.synced, *report.paused]
    with session_scope(settings.database_url) as session:
        specs = session.scalars(
            select(Spec)
            .join(Repository)
            .where(Repository.full_name == full_name, Spec.path.in_(paths))
            .order_by(Spec.path)
        ).all()
        web = f"{settings.github_web_url}/{full_name}/issues"
        lines += [
            f"{spec.key}: {web}/{spec.tracking_issue_number}"
            for spec in specs
            if spec.tracking_issue_number is not None
        ]
    return "\n".join(lines)


def _reconcile(args: argparse.Namespace) -> int:
    from bot.steer.reconcile import reconcile

    settings = migrated_settings()
    require_github(settings)
    changes = reconcile(settings, args.repo)
    print("\n".join(changes) or "every ticket matches its card")
    return 0


def _tasks(args: argparse.Namespace) -> int:
    from bot.agents.task_table import task_json, task_table

    show = task_json if args.json else task_table
    print(show(migrated_settings().database_url, args.repo, args.status))
    return 0

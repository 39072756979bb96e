"""A repository's work by hand: sync its specs, apply board moves, list agent tasks."""

from __future__ import annotations

import argparse
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
    print(report)
    print(_sync_summary(settings, args.repo, report))
    return 0


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

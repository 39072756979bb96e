"""The bridge, both ways: spec files → rows (`rows`), rows → GitHub (`writer`),
what a merge would do (`plan`), and where tickets hang (`tree`).

The entry points live in `repository_sync`: `sync_files` for a push,
`sync_repository` for every spec of a repository, `resume_spec` for a sync that
paused. The tracking issue's progress is `progress`, ticks written back to the
spec's files `write_back`, tasks proposed from issues `proposals`.

May import agents, github and the foundations; never steer, review or a stage above.
"""

from bot.sync.github_side import GitHubSide
from bot.sync.repository_sync import (
    SyncFailed,
    SyncReport,
    cancel_spec_at,
    read_specs,
    record_settings,
    resume_due_specs,
    resume_spec,
    spec_paths_at,
    sync_files,
    sync_repository,
    sync_spec,
)

__all__ = [
    "GitHubSide",
    "SyncFailed",
    "SyncReport",
    "cancel_spec_at",
    "read_specs",
    "record_settings",
    "resume_due_specs",
    "resume_spec",
    "spec_paths_at",
    "sync_files",
    "sync_repository",
    "sync_spec",
]

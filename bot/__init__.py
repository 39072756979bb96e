"""specbridge: the GitHub App that bridges spec files and tracked work.

The folders read as the flow of a delivery, each stage importing only the
stages below it (tests/unit/test_layers.py holds them to it):

    cli/      the `specbridge` command                               — top
    web/      app factory, POST /webhook, serve, status page, /metrics — HTTP in
    ops/      setup (the manifest flow), demo                          — operator tools
    events/   the delivery outbox, router, worker, chores, handlers/   — on the way to a handler
    review/   the pull request check and its plan                      — before the merge
    steer/    comment commands, card moves, ticket state, reconcile    — people steering
    sync/     spec files → rows → GitHub, issue bodies, progress       — the bridge
    agents/   scheduler, profiles, one run, the task table             — tasks worked
    github/   auth, REST, GraphQL, pacing, board columns               — the only HTTP to GitHub
    *.py      settings, locks, beats, queue, logs, counters, repositories,
              repo_config, hooks                                       — foundations
"""

__version__ = "0.1.0"

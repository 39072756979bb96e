"""`check_suite` requested or rerequested → the `specbridge` check on its head.

GitHub lists a suite's pull requests only when they come from the same
repository: a fork's suite, or a push with no pull request, lists none. A
suite requested for a push with no pull request gets no check (the
`pull_request` event brings one when a pull request opens); one re-run by a
person is checked against the default branch.
"""

from __future__ import annotations

from bot.checks import check_head, target_of
from bot.router import Event, router


@router.register("check_suite", "requested", "rerequested")
def on_check_suite(event: Event) -> None:
    suite = event.payload["check_suite"]
    target = target_of(
        event, suite["head_sha"], suite.get("pull_requests") or [], event.action == "rerequested"
    )
    if target.pull_number is None and not target.rerun:
        return
    check_head(event, target)

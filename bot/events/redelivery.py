"""Deliveries GitHub gave up on, asked for again.

GitHub tries a webhook once and never again by itself: an event sent while the
web process was down, or answered 5xx, is lost unless someone presses
Redeliver. This chore does, as an App only (a JWT reads the App's webhook
record; a GITHUB_TOKEN cannot): every SPECBRIDGE_REDELIVER_SECONDS, and at
start, it reads GitHub's record of the App's deliveries newer than the last
one it read (the high-water mark, `chore_runs.mark`) and redelivers each
event (`guid`, the X-GitHub-Delivery header)

- that has no successful (2xx) attempt, first or redelivered,
- that the outbox does not have (an answer GitHub timed out on may still
  have been stored),
- whose last answer was not a deliberate refusal (4xx but 408 and 429: a bad
  signature or payload gets the same answer again, every round).

A redelivery that fails too is a new attempt, newer than the mark, so the next
round asks again. The newest failed attempt of each event is redelivered,
oldest event first, at most MAX_PER_ROUND a round; the mark stays below any
event not asked for yet.
"""

from __future__ import annotations

import logging

from github import GithubException
from sqlalchemy import select

from bot.events.chore_runs import claim_round, read_mark, write_mark
from bot.github.hook_deliveries import HookDelivery, hook_deliveries, redeliver
from bot.settings import Settings
from storage.db import session_scope
from storage.models import Delivery

log = logging.getLogger(__name__)

CHORE = "redeliver"
MAX_PER_ROUND = 100
# Answers a client may get differently next time; any other 4xx is a refusal.
TRANSIENT_4XX = (408, 429)
LOOKUP_BATCH = 500


def redeliver_when_due(settings: Settings) -> int:
    """The periodic chore: one process per interval runs `redeliver_missed`."""
    if not as_app(settings) or settings.redeliver_seconds == 0:
        return 0
    if not claim_round(settings, CHORE, settings.redeliver_seconds):
        return 0
    return redeliver_missed(settings)


def as_app(settings: Settings) -> bool:
    return settings.github_token is None and settings.uses_app_auth


def redeliver_missed(settings: Settings) -> int:
    """Redeliver what GitHub failed to deliver since the mark; returns how many."""
    mark = read_mark(settings, CHORE)
    attempts = list(hook_deliveries(settings, after=mark))
    if not attempts:
        return 0
    succeeded = {a.guid for a in attempts if a.succeeded}
    newest_failed: dict[str, HookDelivery] = {}
    for attempt in attempts:  # newest first
        if attempt.guid not in succeeded and attempt.guid not in newest_failed:
            newest_failed[attempt.guid] = attempt
    missing = _not_in_outbox(settings, [a for a in newest_failed.values() if _worth_again(a)])
    missing.sort(key=lambda a: a.id)  # the oldest event first
    sent, unsent = 0, missing[MAX_PER_ROUND:]
    for attempt in missing[:MAX_PER_ROUND]:
        try:
            redeliver(settings, attempt.id)
            sent += 1
        except Exception as error:  # GitHub refused, had a moment, or was out of reach
            status = error.status if isinstance(error, GithubException) else None
            if status is None or status >= 500 or status in TRANSIENT_4XX:
                unsent.append(attempt)  # asked again next round
            log.warning(
                "GitHub did not redeliver %s (%s, attempt %s): %s",
                attempt.guid,
                attempt.event,
                attempt.id,
                status or error,
            )
    newest = attempts[0].id
    write_mark(settings, CHORE, min(a.id for a in unsent) - 1 if unsent else newest)
    if sent:
        log.info("asked GitHub to redeliver %d events it could not deliver", sent)
    return sent


def _worth_again(attempt: HookDelivery) -> bool:
    code = attempt.status_code
    return not (400 <= code < 500) or code in TRANSIENT_4XX


def _not_in_outbox(settings: Settings, attempts: list[HookDelivery]) -> list[HookDelivery]:
    if not attempts:
        return []
    guids = [a.guid for a in attempts]
    known: set[str] = set()
    with session_scope(settings.database_url) as session:
        for start in range(0, len(guids), LOOKUP_BATCH):
            chunk = guids[start : start + LOOKUP_BATCH]
            known.update(
                session.scalars(select(Delivery.delivery_id).where(Delivery.delivery_id.in_(chunk)))
            )
    return [a for a in attempts if a.guid not in known]

"""What GitHub and specbridge's storage hold, so that a spec that validates syncs.

A spec is refused (with a finding at the line to change) rather than accepted and
then failed at every sync: GitHub refuses an issue title past 256 characters, a
body past 65,536 and a label past 50, a login is at most 39 characters, and the
database's columns are sized to the limits here (tests/unit/specs/test_limits.py
reads the models against them).
"""

from __future__ import annotations

import re

ISSUE_TITLE = 256
ISSUE_BODY = 65_536
LABEL = 50
LOGIN = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38}$")
ITEM_ID = 64  # task, requirement and criterion ids (rules.ITEM_ID)
SPEC_ID = 64  # rules.SPEC_ID
AGENT = 128  # an agent profile's name
# GitHub holds 100 sub-issues under an issue: 100 groups of 100 tickets a spec.
TASKS = 10_000

# How specbridge titles its issues (bot/sync/render.py): the spec's words must fit
# with what specbridge adds.
TICKET_TITLE = "{key}: {title}"
TRACKING_TITLE = "Spec: {title}"
GROUP_SUFFIX = " (part 100)"  # the longest a group issue adds, past 100 tasks
# What a ticket's body adds around the task's own text: headings, the footer that
# links the spec, the hidden markers (bot/sync/render.ticket_part); paths and ids
# are counted apart.
TICKET_BODY_FRAME = 400
PER_REQUIREMENT = 16  # "- **KEY** " and a line break
PER_CRITERION = 14
PER_DEPENDENCY = 20  # "- #12345 `KEY`"
MENTION = len("&#8203;")  # an @ is shown escaped, so it cannot notify


def one_line(text: str) -> str:
    """A title as GitHub gets it: whitespace runs as one space."""
    return " ".join(text.split())


def shown_length(text: str) -> int:
    """The most a text takes once shown on GitHub (mentions escaped)."""
    return len(text.strip()) + MENTION * text.count("@")


def title_room(spec_tasks: int) -> int:
    """The longest spec title whose tracking (and group) issues' titles fit."""
    suffix = len(GROUP_SUFFIX) if spec_tasks > 100 else 0
    return ISSUE_TITLE - len(TRACKING_TITLE.format(title="")) - suffix
